"""ui.media: recordings read into memory and deleted, pictures sent inline, exports private."""

from __future__ import annotations

import numpy as np
import pytest

from ui import media


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_a_recording_is_read_and_its_cache_folder_deleted(cache):
    upload = cache / "4f0c9a" / "audio.wav"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"RIFF....WAVE")
    upload.with_suffix(".mp3").write_bytes(b"converted copy")
    assert media.take_bytes(upload, max_bytes=100) == b"RIFF....WAVE"
    assert list(cache.iterdir()) == []


def test_a_recording_too_large_is_refused_and_deleted_all_the_same(cache):
    upload = cache / "77aa" / "audio.wav"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"x" * 101)
    assert media.take_bytes(upload, max_bytes=100) is None
    assert not upload.exists()


def test_files_outside_gradios_cache_are_read_but_never_deleted(cache, tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_bytes(b"keep me")
    assert media.take_bytes(mine, max_bytes=100) == b"keep me"
    assert mine.read_bytes() == b"keep me"
    media.forget(cache)  # not even the cache folder itself
    media.forget(tmp_path / "gradio" / ".." / "notes.txt")
    assert mine.exists()


def test_the_demos_framed_face_goes_inline_and_never_to_disk(cache):
    image = media.inline_image(label="What the CMT sees", interactive=False)
    frame = np.full((48, 64, 3), 200, dtype=np.uint8)
    out = image.postprocess(frame)
    assert out.path is None and out.url.startswith("data:image/jpeg;base64,")
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []
    assert image.postprocess(None) is None


def test_exports_go_to_a_private_folder_in_gradios_cache(cache):
    path = media.export_file("attune session 3.csv", "a,b\n1,2\n")
    p = media.Path(path)
    assert p.read_text() == "a,b\n1,2\n" and p.name == "attune_session_3.csv"
    assert p.parent.parent == cache.resolve() and p.parent.stat().st_mode & 0o077 == 0
    assert media.is_export(p) and not media.is_export(cache / "abc" / "audio.wav")


def test_a_file_read_once_and_asked_for_again_is_told_apart_from_one_never_there(cache):
    """One upload delivered twice (a browser sending a recording's stop event again) finds its
    file gone: AlreadyTaken, so the handler can skip it; a file never there is plain missing."""
    upload = cache / "9e1d" / "audio.wav"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"RIFF....WAVE")
    assert media.take_bytes(upload, max_bytes=100) == b"RIFF....WAVE"
    with pytest.raises(media.AlreadyTaken):
        media.take_bytes(upload, max_bytes=100)
    with pytest.raises(FileNotFoundError) as e:
        media.take_bytes(cache / "0000" / "audio.wav", max_bytes=100)
    assert not isinstance(e.value, media.AlreadyTaken)
    upload.parent.mkdir(parents=True)  # the same bytes uploaded again: a new recording
    upload.write_bytes(b"RIFF....WAVE")
    assert media.take_bytes(upload, max_bytes=100) == b"RIFF....WAVE"
