"""End to end in real headless Chromium at 1280 x 800, with ../shared/media as the fake camera
and microphone.

A student is greeted with the lesson's first question, allows the camera with one tick, is
seen, answers it, types (three times in frustration) and speaks; the next student at the same
keyboard starts clean; the teacher finds the camera student flagged, sees who needs help now,
adds the walk-in student to the class from the page and reads the session's timeline beside
its transcript; the demo runs live and plays a scenario. Each view is checked for text drawn
over text. These run in open sign-in (the app on localhost); a second app with sign-in codes
checks that a student signs in, chats as themselves, and after signing out cannot chat.
Screenshots of each view are written to docs/img/ (the README shows them).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO
from tests.ui.conftest import broken_words, needs_a_browser, text_overlaps
from tools.trust import free_port

pytestmark = [pytest.mark.browser, pytest.mark.shared]
SHOTS = REPO / "docs" / "img"
PASSWORD = "correct horse 42"
FRUSTRATED = ["I hate this, it's so annoying", "This is stupid, I give up",
              "I'm so angry, nothing I do works"]


def _port(k: int) -> int:
    """ATTUNE_TEST_PORT_BASE + k where a range is set aside for this run, else a free port."""
    base = os.environ.get("ATTUNE_TEST_PORT_BASE")
    return int(base) + k if base else free_port()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    needs_a_browser()
    from tutor.settings import Settings
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
        crud.create_class(session=s, name="Year 8 maths", teacher_id=teacher.id)
        crud.enrol(session=s, student=crud.get_or_create_student(session=s, handle="sam",
                                                                  display_name="Sam"),
                   class_id=klass.id)
        _, code = create_student(session=s, name="Lee", class_id=klass.id)
    deps = Deps(settings=settings, db=db, cmt=EmbeddedCMT.load(settings))
    # the same app as a school server would run it: students sign in with a code
    coded = Deps(settings=settings.model_copy(update={"student_sign_in": "code"}), db=db,
                 cmt=deps.cmt)
    urls, apps = [], []
    for k, d in enumerate((deps, coded)):  # served as `attune run` serves it (ui.app.launch)
        port = _port(k)
        blocks = build_app(d)
        launch(blocks, d.settings.model_copy(update={"host": "127.0.0.1", "port": port}),
               prevent_thread_lock=True, quiet=True)
        urls.append(f"http://127.0.0.1:{port}")
        apps.append(blocks)
    yield urls[0], db, (urls[1], code)
    for blocks in apps:
        blocks.close()


@pytest.fixture(scope="module")
def page(app, open_page):
    return open_page(app[0])


def _shot(page, name: str, locator=None, down_to: str | None = None) -> None:
    """docs/img/<name>: the whole page, one part of it, or the page down to an element."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if locator is not None:
        locator.screenshot(path=str(SHOTS / name))
        return
    clip = None
    if down_to is not None:
        bottom = page.locator(down_to).evaluate(
            "(e) => e.getBoundingClientRect().bottom + window.scrollY")
        clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": bottom + 12}
    page.screenshot(path=str(SHOTS / name), full_page=True, clip=clip)


def _no_overlaps(page) -> None:
    """At 1280 x 800, scrolled through: no text of the open view drawn over other text."""
    for y in range(0, page.evaluate("document.body.scrollHeight"), 700):
        page.evaluate(f"window.scrollTo(0, {y})")
        assert text_overlaps(page) == [], f"text over text, scrolled to {y} px"
    page.evaluate("window.scrollTo(0, 0)")


def _say(page, db, text: str) -> None:
    """Type a message and wait until the tutor's reply is stored and has streamed in."""
    import time

    from sqlalchemy import func, select

    from tutor.db.models import Turn

    def stored() -> int:
        with db() as s:
            return s.scalar(select(func.count(Turn.id)).where(Turn.student_text == text))

    before = stored()
    box = page.locator("#student-message textarea")
    box.fill(text)
    box.press("Enter")
    page.locator("#student-chat").get_by_text(text).first.wait_for()
    deadline = time.monotonic() + 90
    while stored() == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert stored() > before, f"no reply to {text!r}"
    page.locator("#student-noticed").get_by_text("Tutor noticed").wait_for(timeout=30_000)
    page.wait_for_timeout(2_500)  # the reply streams in a few words at a time


def test_a_student_is_greeted_allows_the_camera_with_one_tick_and_is_answered(app, page):
    from playwright.sync_api import expect
    from sqlalchemy import select

    from tutor.db.models import EmotionReading, Turn
    from tutor.dialogue import load_lesson
    from tutor.prompts import PHRASES

    first = load_lesson("fractions").steps[0]
    chat = page.locator("#student-chat")
    expect(chat).to_contain_text("Hello! I'm your tutor for")
    expect(chat).to_contain_text(first.questions[0].prompt)  # asked before anyone types
    expect(page.locator("#student-media-heading")).to_contain_text("Camera and microphone are off")
    _no_overlaps(page)
    page.locator("#student-name textarea, #student-name input").first.fill("Sam")
    page.locator("#consent-camera input[type=checkbox]").check()  # the one click
    page.locator("#student-camera-note").get_by_text("Camera:").wait_for(timeout=90_000)
    expect(page.locator("#student-media-heading")).to_contain_text("Camera is on, microphone is off")
    _, db, _ = app
    _say(page, db, "I think it's 3/4")
    with db() as s:  # the first message answered the greeting's question: checked, and wrong
        reply = s.scalars(select(Turn.tutor_text)
                          .where(Turn.student_text == "I think it's 3/4")).one()
    assert any(reply.startswith(line) for lines in PHRASES["wrong"].values() for line in lines)
    expect(chat).to_contain_text("Hello! I'm your tutor for")  # the greeting stays
    for line in FRUSTRATED:
        _say(page, db, line)
    expect(chat).to_contain_text("Hello! I'm your tutor for")
    _no_overlaps(page)
    _shot(page, "student.png")
    with db() as s:
        turn = s.scalars(select(Turn).where(Turn.student_text == "I think it's 3/4")).one()
        reading = s.scalars(select(EmotionReading).where(EmotionReading.turn_id == turn.id)).one()
        assert "text" in reading.modality_probs
        frames = s.scalars(select(EmotionReading).where(EmotionReading.turn_id.is_(None))).all()
        assert any("face" in r.modality_probs for r in frames)  # the face was seen


def test_student_speaks_and_the_transcript_is_the_message(app, page):
    from playwright.sync_api import expect

    page.locator("#consent-microphone input[type=checkbox]").check()
    expect(page.locator("#student-media-heading")).to_contain_text("Camera and microphone are on")
    mic = page.locator("#student-mic")
    mic.wait_for(state="visible")
    mic.get_by_role("button", name="Record").click()
    page.wait_for_timeout(5_000)
    mic.get_by_role("button", name="Stop").click()
    page.locator("#student-chat").get_by_text("🎤").wait_for(timeout=90_000)
    text = page.locator("#student-chat").inner_text().lower()
    assert "frustrat" in text  # the fake microphone's sentence, transcribed


def test_the_next_student_at_the_keyboard_starts_clean(app, page):
    """Issue 19, item 11: a new name resets the chat, notes and boxes to that name's own."""
    from playwright.sync_api import expect

    name = page.locator("#student-name textarea, #student-name input").first
    name.fill("Zoe")
    expect(page.locator("#consent-camera input[type=checkbox]")).not_to_be_checked()
    expect(page.locator("#consent-microphone input[type=checkbox]")).not_to_be_checked()
    expect(page.locator("#student-camera")).to_be_hidden()
    expect(page.locator("#student-camera-note")).not_to_contain_text("Camera:")
    expect(page.locator("#student-chat")).not_to_contain_text("I think it's 3/4")
    expect(page.locator("#student-media-heading")).to_contain_text("Camera and microphone are off")
    _say(page, app[1], "hello")  # Zoe is a walk-in now, in no class
    name.fill("Sam")  # back (or after a reload): Sam's stored choices show
    expect(page.locator("#consent-camera input[type=checkbox]")).to_be_checked()
    expect(page.locator("#consent-microphone input[type=checkbox]")).to_be_checked()


def test_a_fast_typist_s_messages_arrive_whole_without_waiting_for_the_tutor(app, page):
    """Messages typed at 40 ms a key, each sent with Enter (the last with Send) at once, while
    the tutor is still answering the last: each is stored whole, in order, and each is
    answered. (Before, a message sent while a reply was pending was read from the box later,
    with the next message's first letters in it, or joined to the next.)"""
    import time

    from sqlalchemy import select

    from tutor.db.models import Turn

    page.locator("#student-name textarea, #student-name input").first.fill("Kit")
    sent = ["hi its kit here", "this is so stupid honestly", "i really dont get it kit",
            "is it 3 over 8"]
    box = page.locator("#student-message textarea")
    for text in sent[:-1]:
        box.type(text, delay=40)
        box.press("Enter")
    box.type(sent[-1], delay=40)
    page.locator("#student-send").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app[1]() as s:
            turns = s.scalars(select(Turn).where(Turn.student_text.in_(sent))
                              .order_by(Turn.id)).all()
        if len(turns) == len(sent):
            break
        page.wait_for_timeout(250)
    assert [turn.student_text for turn in turns] == sent
    assert box.input_value() == ""
    chat = page.locator("#student-chat")
    for turn in turns:  # each answered in the page, not one reply drawn over another
        chat.get_by_text(turn.tutor_text.splitlines()[0], exact=False).first.wait_for()


def test_a_message_refused_as_too_long_comes_back_without_losing_what_was_typed_since(
        app, page):
    """A message over the length limit is refused and put back in the box; keys typed while
    it was away stay, after it. (Before, the server sent the box back as it was when the
    message left, overwriting whatever was typed during the round trip.)"""
    from tutor.session import MAX_TEXT_CHARS

    page.locator("#student-name textarea, #student-name input").first.fill("Len")
    box = page.locator("#student-message textarea")
    long = "x" * (MAX_TEXT_CHARS + 1)
    box.fill(long)
    box.press("Enter")
    box.type("ok", delay=0)  # at once: typically before the refusal is back
    page.wait_for_function("window.attuneOutbox && !window.attuneOutbox.busy")
    page.wait_for_function("document.querySelector('#student-message textarea').value.length"
                           f" > {len(long)}")
    value = box.input_value()
    assert value.startswith(long) and value.endswith("ok")
    assert value in (long + "\nok", long + "ok")  # "ok" typed before or after it came back
    assert page.locator("#student-refused textarea").input_value() == ""
    warning = page.locator(".toast-body", has_text="characters long")
    warning.wait_for()  # the student is told why
    warning.locator(".toast-close").click()
    box.fill("")


def test_what_one_student_typed_and_did_not_send_is_never_sent_as_the_next_ones(app, page):
    """Messages waiting in the page's outbox (a reply is pending) when a new name is typed
    belong to the last student: they are dropped, not sent under the new name."""
    from sqlalchemy import select

    from tutor.db.models import Turn

    name = page.locator("#student-name textarea, #student-name input").first
    name.fill("Lu")
    page.evaluate("window.attuneOutbox = {queue: [], busy: true}")  # as while a reply is pending
    box = page.locator("#student-message textarea")
    box.type("lus secret answer", delay=20)
    box.press("Enter")
    assert page.evaluate("window.attuneOutbox.queue") == ["lus secret answer"]
    name.fill("Max")
    page.wait_for_function("window.attuneOutbox.queue.length === 0")
    page.evaluate("window.attuneOutbox.busy = false")
    _say(page, app[1], "hello from max")  # the page sends again, Max's own message only
    with app[1]() as s:
        assert s.scalars(select(Turn).where(Turn.student_text == "lus secret answer")).all() == []


def test_teacher_finds_the_camera_student_flagged_adds_the_walk_in_and_reads_the_timeline(app, page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Teacher").click()
    page.locator("#teacher-email input, #teacher-email textarea").first.fill("rivera@school.test")
    page.locator("#teacher-password input").fill(PASSWORD)
    page.locator("#teacher-sign-in").click()
    page.locator("#teacher-status").get_by_text("Ms Rivera").wait_for()
    _pick(page, "Class", "Year 7 maths (2 students)")
    overview = page.locator("#teacher-overview")
    expect(overview).to_contain_text("Sam")
    sam = overview.locator("tr", has_text="Sam (sam)")
    expect(sam).to_contain_text("yes")  # struggling, although the camera saw smiles
    expect(sam).to_contain_text("turns frustrated")
    expect(page.locator("#teacher-help-now")).to_contain_text("Sam", timeout=30_000)
    _pick(page, "Add a student who chatted with open sign-in (or type their name)", "Zoe")
    page.locator("#teacher-add").click()
    expect(page.locator("#teacher-add-note")).to_contain_text("Added Zoe (zoe) to Year 7 maths")
    expect(overview).to_contain_text("Zoe (zoe)")
    expect(page.get_by_label("Class", exact=True)).to_have_value("Year 7 maths (3 students)")
    _no_overlaps(page)
    assert broken_words(page, "#teacher-overview .table-container") == []
    _shot(page, "teacher.png", down_to="#teacher-add-note")
    _pick(page, "Student", "Sam")
    _pick(page, "Session", None)
    transcript = page.locator("#teacher-transcript")
    expect(transcript).to_contain_text("I think it's 3/4")
    plot = page.locator("#teacher-timeline img").first
    plot.wait_for()  # the matplotlib figure
    # the timeline and the transcript side by side, every column of the transcript readable
    p, t = plot.bounding_box(), transcript.bounding_box()
    assert p["x"] + p["width"] <= t["x"] + 1 and abs(p["y"] - t["y"]) < 80
    assert t["x"] + t["width"] <= 1280
    for column in ("Turn", "Time", "Student", "Tutor", "Read", "State"):
        head = transcript.locator("th", has_text=column).last.bounding_box()
        assert t["x"] <= head["x"] and head["x"] + head["width"] <= t["x"] + t["width"] + 1, column
    assert broken_words(page, "#teacher-transcript .table-container") == []
    _no_overlaps(page)
    _shot(page, "timeline.png", page.locator("#teacher-session-view"))
    transcript.get_by_text(FRUSTRATED[0]).click()
    expect(page.locator("#teacher-turn")).to_contain_text(FRUSTRATED[0])


def test_the_download_box_shows_only_a_file_of_the_class_and_session_in_view(app, page):
    from playwright.sync_api import expect

    download = page.locator("#teacher-download")
    expect(download).to_be_hidden()  # no empty box taking the page
    page.get_by_role("button", name="Export session CSV (a row per turn)").click()
    expect(download).to_be_visible()
    expect(download).to_contain_text("attune-session-")
    _pick(page, "Class", "Year 8 maths")  # another class: the file goes with the box
    expect(download).to_be_hidden()
    page.get_by_role("button", name="Export class CSV (period)").click()
    expect(download).to_be_visible()
    _pick(page, "Class", "Year 7 maths")
    expect(download).to_be_hidden()


def test_the_live_demo_reads_the_camera_after_one_tick_without_flashing(app, page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Demo").click()
    page.get_by_role("tab", name="Live").click()
    page.locator("#demo-consent input[type=checkbox]").check()
    page.locator("#demo-boxed img").wait_for(timeout=90_000)  # the framed face, inline
    assert page.locator("#demo-boxed img").get_attribute("src").startswith("data:image/jpeg")
    box = page.locator("#demo-text textarea")
    box.fill("I am so happy to see this")
    box.press("Enter")
    expect(page.locator("#demo-attention table")).to_be_visible(timeout=90_000)
    panels = ", ".join(f"{p} [data-testid=status-tracker]:not(.hide)" for p in (
        "#demo-fused", "#demo-attention", "#demo-style", "#demo-latency", "#demo-boxed"))
    for _ in range(20):  # while frames stream in, no panel shows Gradio's timer or greys out
        assert page.locator(panels).count() == 0
        page.wait_for_timeout(150)
    expect(page.locator("#demo-style")).to_contain_text("The tutor judges the learner")
    _no_overlaps(page)
    _shot(page, "demo.png")


def test_demo_plays_a_scripted_scenario_with_the_tutors_replies(app, page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Demo").click()
    page.get_by_role("tab", name="Scripted scenario").click()
    _pick(page, "Scenario", "bored fast student")  # not the first in the list
    page.locator("#demo-play").click()
    table = page.locator("#demo-table")
    expect(table).to_contain_text("a harder problem")  # the bored student
    expect(table).to_contain_text("tutor said")
    assert "worked_example" not in table.inner_text()
    assert broken_words(page, "#demo-table .table-container") == []
    _no_overlaps(page)


def test_with_sign_in_codes_a_student_signs_in_and_chats_as_themselves(app, page):
    from playwright.sync_api import expect
    from sqlalchemy import select

    from tutor.db.models import Student, Turn, TutorSession
    from tutor.dialogue import load_lesson

    _, db, (url, code) = app
    page.goto(url)
    expect(page.locator("#student-name")).to_have_count(0)  # no name to type
    expect(page.locator("#student-chat")).to_contain_text("Sign in above")
    page.locator("#student-handle input, #student-handle textarea").first.fill("lee")
    page.locator("#student-code input").fill("wrong-code")
    page.locator("#student-sign-in").click()
    page.get_by_text("do not match").first.wait_for()
    # the refused attempt ends by clearing the code box: typing before then would be wiped
    expect(page.locator("#student-code input")).to_have_value("")
    page.locator("#student-code input").fill(code)
    page.locator("#student-sign-in").click()
    page.locator("#student-status").get_by_text("Signed in as Lee").wait_for()
    expect(page.locator("#student-chat")).to_contain_text(  # now the greeting asks
        load_lesson("fractions").steps[0].questions[0].prompt)
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
