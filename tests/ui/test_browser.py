"""End to end in real headless Chromium, with ../shared/media as the fake camera and microphone.

A student consents, the face is seen, a typed and a spoken answer are answered; the teacher
signs in and finds that session's timeline; the demo plays a scenario. These run in open
sign-in (the app on localhost); a second app with sign-in codes checks that a student signs
in, chats as themselves, and after signing out cannot chat. Screenshots of each
view are written to docs/img/ (the README shows them).
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO, SHARED
from tutor.trust import free_port

pytestmark = [pytest.mark.browser, pytest.mark.shared]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = REPO / "docs" / "img"
PASSWORD = "correct horse 42"



@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from cmt.settings import Settings
    from tutor.auth import create_student, create_teacher
    from tutor.client import EmbeddedCMT
    from tutor.db import crud, init_db
    from ui.app import build_app, launch
    from ui.deps import Deps

    home = tmp_path_factory.mktemp("attune")
    settings = Settings(home=home, cmt_url="embedded")
    db = init_db(settings.database_url)
    with db.begin() as s:
        teacher = create_teacher(session=s, name="Ms Rivera", email="rivera@school.test",
                                 password=PASSWORD)
        klass = crud.create_class(session=s, name="Year 7 maths", teacher_id=teacher.id)
        crud.enrol(session=s, student=crud.get_or_create_student(session=s, handle="sam",
                                                                  display_name="Sam"),
                   class_id=klass.id)
        _, code = create_student(session=s, name="Lee", class_id=klass.id)
    deps = Deps(settings=settings, db=db, cmt=EmbeddedCMT.load(settings))
    # the same app as a school server would run it: students sign in with a code
    coded = Deps(settings=settings.model_copy(update={"student_sign_in": "code"}), db=db,
                 cmt=deps.cmt)
    urls, apps = [], []
    for d in (deps, coded):  # served as `attune run` serves it (ui.app.launch)
        port = free_port()
        blocks = build_app(d)
        launch(blocks, d.settings.model_copy(update={"host": "127.0.0.1", "port": port}),
               prevent_thread_lock=True, quiet=True)
        urls.append(f"http://127.0.0.1:{port}")
        apps.append(blocks)
    yield urls[0], db, (urls[1], code)
    for blocks in apps:
        blocks.close()


@pytest.fixture(scope="module")
def page(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={SHARED / 'media' / 'student_face.y4m'}",
            f"--use-file-for-fake-audio-capture={SHARED / 'media' / 'student_frustrated_tts.wav'}"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      permissions=["camera", "microphone"])
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(app[0])
        yield pg
        browser.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_student_consents_is_seen_and_answered(app, page):
    from sqlalchemy import select

    from tutor.db.models import EmotionReading, Turn

    page.locator("#student-name textarea, #student-name input").first.fill("Sam")
    page.locator("#consent-camera input[type=checkbox]").check()
    webcam = page.locator("#student-camera")
    webcam.wait_for(state="visible")
    webcam.get_by_text("Click to Access Webcam").click()
    webcam.get_by_role("button", name="capture photo").click()  # starts streaming
    page.locator("#student-camera-note").get_by_text("Camera:").wait_for(timeout=90_000)
    box = page.locator("#student-message textarea")
    box.fill("I think it's 3/4")
    box.press("Enter")
    page.locator("#student-chat").get_by_text("I think it's 3/4").wait_for()
    page.locator("#student-noticed").get_by_text("Tutor noticed").wait_for(timeout=90_000)
    _shot(page, "student.png")
    _, db, _ = app
    with db() as s:
        turn = s.scalars(select(Turn).where(Turn.student_text == "I think it's 3/4")).one()
        reading = s.scalars(select(EmotionReading).where(EmotionReading.turn_id == turn.id)).one()
        assert "text" in reading.modality_probs
        frames = s.scalars(select(EmotionReading).where(EmotionReading.turn_id.is_(None))).all()
        assert any("face" in r.modality_probs for r in frames)  # the face was seen


def test_student_speaks_and_the_transcript_is_the_message(app, page):
    page.locator("#consent-microphone input[type=checkbox]").check()
    mic = page.locator("#student-mic")
    mic.wait_for(state="visible")
    mic.get_by_role("button", name="Record").click()
    page.wait_for_timeout(5_000)
    mic.get_by_role("button", name="Stop").click()
    page.locator("#student-chat").get_by_text("🎤").wait_for(timeout=90_000)
    text = page.locator("#student-chat").inner_text().lower()
    assert "frustrat" in text  # the fake microphone's sentence, transcribed


def test_teacher_signs_in_and_finds_the_session_timeline(app, page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Teacher").click()
    page.locator("#teacher-email input, #teacher-email textarea").first.fill("rivera@school.test")
    page.locator("#teacher-password input").fill(PASSWORD)
    page.locator("#teacher-sign-in").click()
    page.locator("#teacher-status").get_by_text("Ms Rivera").wait_for()
    _pick(page, "Class", "Year 7 maths")
    page.get_by_role("button", name="Show overview").click()
    expect(page.locator("#teacher-overview")).to_contain_text("Sam")
    _pick(page, "Student", "Sam")
    _pick(page, "Session", None)
    expect(page.locator("#teacher-transcript")).to_contain_text("I think it's 3/4")
    page.locator("#teacher-timeline img, #teacher-timeline svg, #teacher-timeline canvas").first.wait_for()
    _shot(page, "teacher.png")


def test_demo_plays_a_scripted_scenario(app, page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Demo").click()
    page.get_by_role("tab", name="Scripted scenario").click()
    page.locator("#demo-play").click()
    expect(page.locator("#demo-table")).to_contain_text("a harder problem")  # the bored student
    _shot(page, "demo.png")


def test_with_sign_in_codes_a_student_signs_in_and_chats_as_themselves(app, page):
    from playwright.sync_api import expect
    from sqlalchemy import select

    from tutor.db.models import Student, Turn, TutorSession

    _, db, (url, code) = app
    page.goto(url)
    expect(page.locator("#student-name")).to_have_count(0)  # no name to type
    page.locator("#student-handle input, #student-handle textarea").first.fill("lee")
    page.locator("#student-code input").fill("wrong-code")
    page.locator("#student-sign-in").click()
    page.get_by_text("do not match").first.wait_for()
    # the refused attempt ends by clearing the code box: typing before then would be wiped
    expect(page.locator("#student-code input")).to_have_value("")
    page.locator("#student-code input").fill(code)
    page.locator("#student-sign-in").click()
    page.locator("#student-status").get_by_text("Signed in as Lee").wait_for()
    box = page.locator("#student-message textarea")
    box.fill("is it 2/4?")
    box.press("Enter")
    page.locator("#student-noticed").get_by_text("Tutor noticed").wait_for(timeout=90_000)
    page.locator("#student-sign-out").click()
    page.locator("#student-status").get_by_text("Signed out").wait_for()
    box.fill("who am I?")
    box.press("Enter")
    page.get_by_text("sign in with your handle and code").first.wait_for()
    with db() as s:
        (who,) = s.execute(select(Student.handle).join(TutorSession).join(Turn)
                           .where(Turn.student_text == "is it 2/4?")).scalars().all()
        assert who == "lee"
        assert s.scalars(select(Turn).where(Turn.student_text == "who am I?")).all() == []


def _pick(page, label: str, option: str | None) -> None:
    """Open a Gradio dropdown by its label and choose an option (the first when None)."""
    page.get_by_label(label, exact=True).click()
    options = page.locator("ul[role=listbox] li")
    (options.filter(has_text=option) if option else options).first.click()
