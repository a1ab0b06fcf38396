"""No picture or recording stays on disk: `attune run` in its own folders, a student in
headless Chromium (../shared/media as the fake camera and microphone) takes a camera turn and
a spoken turn, then the demo frames their face and reads a recording, and each time every
file under Gradio's cache (GRADIO_TEMP_DIR), the app's home (ATTUNE_HOME) and the app's
system temp folder (TMPDIR) is read for image and audio data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import REPO
from tests.ui.conftest import needs_a_browser
from tools.trust import free_port, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.shared]
MEDIA_SUFFIXES = {".wav", ".webm", ".ogg", ".mp3", ".flac", ".m4a", ".mp4", ".jpg", ".jpeg",
                  ".png", ".webp", ".gif", ".bmp", ".y4m"}


def media_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is, if a picture or a recording."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"GIF8":
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return head[8:12].decode().lower()
    if head[:4] in (b"OggS", b"fLaC") or head[:3] == b"ID3":
        return "audio"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:9] == b"YUV4MPEG2":
        return "y4m"
    return None


def media_files(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for p in folder.rglob("*"):
            if not p.is_file():
                continue
            with open(p, "rb") as f:
                kind = media_kind(f.read(16))
            if kind or p.suffix.lower() in MEDIA_SUFFIXES:
                found.append(f"{p} ({kind or p.suffix})")
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    needs_a_browser()
    root = tmp_path_factory.mktemp("nomedia")
    folders = {name: root / name for name in ("home", "gradio", "tmp")}
    for f in folders.values():
        f.mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "ATTUNE_HOME": str(folders["home"]),
           "GRADIO_TEMP_DIR": str(folders["gradio"]), "TMPDIR": str(folders["tmp"]),
           "ATTUNE_CMT_URL": "embedded", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("ATTUNE_DATABASE_URL", None)
    log = open(root / "app.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "run", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_port(port, up=True, timeout_s=240):
            pytest.fail(f"attune run did not start: {(root / 'app.log').read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}", folders
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def page(app, open_page):
    return open_page(app[0])


def test_after_a_camera_turn_and_a_spoken_turn_no_picture_or_recording_is_on_disk(app, page):
    url, folders = app
    uploads: list[str] = []
    page.on("response", lambda r: uploads.extend(r.json()) if r.url.endswith("/gradio_api/upload")
            and r.ok else None)
    page.locator("#student-name textarea, #student-name input").first.fill("Sam")
    # a camera turn: ticking the box starts the webcam (the page presses its buttons; a
    # second press here would stop it), frames stream, and a typed answer goes with a frame
    page.locator("#consent-camera input[type=checkbox]").check()
    page.locator("#student-camera-note").get_by_text("Camera:").wait_for(timeout=120_000)
    box = page.locator("#student-message textarea")
    box.fill("I think it's 3/4")
    box.press("Enter")
    page.locator("#student-noticed").get_by_text("Tutor noticed").wait_for(timeout=120_000)
    # a spoken turn: the recording is uploaded, transcribed, and answered
    page.locator("#consent-microphone input[type=checkbox]").check()
    mic = page.locator("#student-mic")
    mic.wait_for(state="visible")
    mic.get_by_role("button", name="Record").click()
    page.wait_for_timeout(5_000)
    mic.get_by_role("button", name="Stop").click()
    page.locator("#student-chat").get_by_text("🎤").wait_for(timeout=120_000)
    page.wait_for_timeout(1_000)

    assert uploads, "the recording was never uploaded (the test saw no spoken turn)"
    for path in uploads:  # the recording's own URL serves nothing now, even to its page
        assert page.request.get(f"{url}/gradio_api/file={quote(path)}").status in (403, 404)
    assert media_files(*folders.values()) == []
    assert (folders["home"] / "attune.db").exists()  # the turns were stored; the media not


def test_the_demos_framed_face_is_shown_inline_and_never_written(app, page):
    url, folders = app
    uploads: list[str] = []
    page.on("response", lambda r: uploads.extend(r.json()) if r.url.endswith("/gradio_api/upload")
            and r.ok else None)
    page.get_by_role("tab", name="Demo").click()
    page.locator("#demo-consent input[type=checkbox]").check()  # starts the webcam too
    framed = page.locator("#demo-boxed img")
    framed.wait_for(timeout=120_000)
    assert framed.get_attribute("src").startswith("data:image/jpeg;base64,")
    # a spoken demo turn: the recording is uploaded, read with the current frame, deleted
    mic = page.locator("#demo-mic")
    mic.get_by_role("button", name="Record").click()
    page.wait_for_timeout(4_000)
    mic.get_by_role("button", name="Stop").click()
    for _ in range(120):  # until the handler has read the recording (and so deleted it)
        if uploads and not any(Path(p).exists() for p in uploads):
            break
        page.wait_for_timeout(1_000)
    assert uploads, "the demo's recording was never uploaded (the test saw no spoken turn)"
    for path in uploads:
        assert page.request.get(f"{url}/gradio_api/file={quote(path)}").status in (403, 404)
    page.wait_for_timeout(2_000)  # a few more frames
    assert media_files(*folders.values()) == []
