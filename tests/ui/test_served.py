"""The app as `attune run` serves it (ui.app.launch), spoken to over HTTP as a browser would:
a session belongs to its browser, uploads are bounded and need an open page, a recording is
gone once its turn is taken, an export once it is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cmt.serve.engine import Engine
from tutor.settings import Settings
from tests.tutor.test_reports import fast_hashing  # noqa: F401 (fixture)
from tests.tutor.test_session import TranscribingModel
from tutor.auth import create_teacher
from tutor.client import EmbeddedCMT
from tutor.db import crud, init_db
from tools.trust import free_port

PASSWORD = "correct horse 42"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The app on a free loopback port with its own Gradio cache: (url, cache, home).
    One per test, so that no test spends another's upload budget."""
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))  # read as the Blocks and server are made
    from ui.app import build_app, launch
    from ui.deps import Deps

    settings = Settings(home=tmp_path / "home", port=free_port())
    db = init_db(f"sqlite:///{tmp_path / 'attune.db'}")
    with db.begin() as s:
        teacher = create_teacher(session=s, name="Ms Rivera", email="rivera@school.test",
                                 password=PASSWORD)
        klass = crud.create_class(session=s, name="7a", teacher_id=teacher.id)
        sam = crud.get_or_create_student(session=s, handle="sam", display_name="Sam")
        crud.enrol(session=s, student=sam, class_id=klass.id)
        ts = crud.start_session(session=s, student=sam, lesson="fractions")
        crud.add_turn(session=s, tutor_session_id=ts.id, student_text="is it 3/4?",
                      tutor_text="yes")
    blocks = build_app(Deps(settings=settings, db=db, cmt=EmbeddedCMT(Engine(TranscribingModel()))))
    launch(blocks, settings, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{settings.port}", cache, settings.home
    blocks.close()
    db.kw["bind"].dispose()


def browser(url: str) -> httpx.Client:
    """A client that has loaded the page (and so holds the app's cookie)."""
    http = httpx.Client(base_url=url, timeout=30)
    http.get("/").raise_for_status()
    return http


def fn_index(http, *, api_name: str | None = None, elem_id: str | None = None,
             event: str | None = None) -> int:
    """The id of the event named `api_name`, or of `elem_id`'s `event` listener."""
    config = http.get("/config").json()
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
    for dep in config["dependencies"]:
        if api_name and dep.get("api_name") == api_name:
            return dep["id"]
        if elem_id and any(t[0] == ids.get(elem_id) and t[1] == event for t in dep["targets"]):
            return dep["id"]
    raise LookupError(api_name or f"{elem_id}.{event}")


def call(http, fn: int, data: list, session_hash: str) -> httpx.Response | dict:
    """Run event `fn` through Gradio's queue: its completed message, or the refusal."""
    r = http.post("/gradio_api/queue/join", json={
        "data": data, "fn_index": fn, "session_hash": session_hash, "event_data": None,
        "trigger_id": None})
    if r.status_code != 200:
        return r
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash}) as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("the event never completed")


def sign_in_teacher(http, session_hash: str) -> dict:
    done = call(http, fn_index(http, api_name="teacher_sign_in"),
                ["rivera@school.test", PASSWORD], session_hash)
    assert "Ms Rivera" in json.dumps(done["output"]["data"])
    return done


def upload(http, name: str, data: bytes) -> httpx.Response:
    return http.post("/gradio_api/upload", files={"files": (name, data)})


def test_a_teachers_session_is_refused_to_another_browser(served):
    url, _, _ = served
    teacher = browser(url)
    sign_in_teacher(teacher, "teachers-tab")
    overview = fn_index(teacher, api_name="teacher_overview")
    mine = call(teacher, overview, [None, 1, "All time", None, None], "teachers-tab")
    assert "Sam" in json.dumps(mine["output"]["data"])  # the teacher's own browser goes on
    # the session_hash travels in URLs; another browser that learns it gets nothing
    other = browser(url)
    r = call(other, overview, [None, 1, "All time", None, None], "teachers-tab")
    assert isinstance(r, httpx.Response) and r.status_code == 403
    bare = httpx.Client(base_url=url, timeout=30)  # no cookie at all
    r = call(bare, overview, [None, 1, "All time", None, None], "teachers-tab")
    assert isinstance(r, httpx.Response) and r.status_code == 403
    r = other.get("/gradio_api/queue/data", params={"session_hash": "teachers-tab"})
    assert r.status_code == 403
    assert other.get("/gradio_api/heartbeat/teachers-tab").status_code == 403


def test_the_cookie_is_http_only_and_server_issued(served):
    url, _, _ = served
    r = httpx.get(url)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("attune_client=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback; behind an https proxy it is:
    assert "; Secure" in httpx.get(url, headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
    forged = httpx.Client(base_url=url, cookies={"attune_client": "mine.notsigned"}, timeout=30)
    assert upload(forged, "a.wav", b"x").status_code == 403


def test_uploads_need_an_open_page_and_are_bounded(served):
    url, cache, _ = served
    assert upload(httpx.Client(base_url=url), "a.wav", b"x" * 1000).status_code == 403
    page = browser(url)
    assert upload(page, "a.wav", b"x" * 1000).status_code == 403  # a cookie, but no session yet
    call(page, fn_index(page, api_name="teacher_sign_out"), [], "a-tab")  # the page opens one
    r = upload(page, "big.wav", b"\0" * (17 * 1024 * 1024))
    assert r.status_code == 413
    r = upload(page, "small.wav", b"x" * 1000)
    assert r.status_code == 200 and Path(r.json()[0]).is_relative_to(cache)
    codes = {upload(page, "more.wav", b"x" * (3 * 1024 * 1024)).status_code for _ in range(12)}
    assert 429 in codes  # 32 MB a minute from one address


def test_a_recording_is_gone_once_its_turn_is_taken(served):
    url, cache, _ = served
    page = browser(url)
    consent = fn_index(page, elem_id="consent-microphone", event="input")
    call(page, consent, ["Bo", "fractions", None, True, None], "bo-tab")
    (path,) = upload(page, "audio.wav", b"three quarters").json()
    assert Path(path).exists()
    spoken = fn_index(page, elem_id="student-mic", event="stop_recording")
    done = call(page, spoken, ["Bo", "fractions",
                               {"path": path, "meta": {"_type": "gradio.FileData"}}, [], None,
                               None], "bo-tab")
    assert "three quarters" in json.dumps(done["output"]["data"])  # the turn was taken
    assert not Path(path).exists() and not Path(path).parent.exists()
    assert page.get(f"/gradio_api/file={path}").status_code in (403, 404)
    left = [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == b"three quarters"]
    assert left == []


def test_an_export_is_served_once_from_the_cache_and_then_gone(served):
    url, cache, _ = served
    teacher = browser(url)
    sign_in_teacher(teacher, "export-tab")
    for api_name, data in (("teacher_overview", [None, 1, "All time", None, None]),
                           ("teacher_sessions", [None, 1])):  # what the pickers offer
        call(teacher, fn_index(teacher, api_name=api_name), data, "export-tab")
    done = call(teacher, fn_index(teacher, api_name="teacher_session_csv"), [None, 1], "export-tab")
    (file,) = [d for d in done["output"]["data"] if isinstance(d, dict) and d.get("path")]
    path = Path(file["path"])
    assert path.is_relative_to(cache) and path.parent.name.startswith("attune-export-")
    assert [p for p in cache.rglob(path.name)] == [path]  # one copy, not two
    r = teacher.get(f"/gradio_api/file={path}")
    assert r.status_code == 200 and "is it 3/4?" in r.text
    assert not path.exists()
    assert teacher.get(f"/gradio_api/file={path}").status_code in (403, 404)


def test_the_apps_home_is_never_served(served):
    url, _, home = served
    home.mkdir(parents=True, exist_ok=True)
    (home / "attune.db").write_bytes(b"secret")
    assert browser(url).get(f"/gradio_api/file={home / 'attune.db'}").status_code in (403, 404)
