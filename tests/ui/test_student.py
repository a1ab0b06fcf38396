from __future__ import annotations

import warnings

import numpy as np
import pytest

from cmt.serve.engine import Engine
from tutor.settings import Settings
from tests.tutor.test_reports import fast_hashing  # noqa: F401 (fixture)
from tests.tutor.test_session import TranscribingModel
from tutor import reports
from tutor.auth import AccessDenied, Principal, create_student
from tutor.client import EmbeddedCMT
from tutor.db import crud
from tutor.db.models import Student, TutorSession
from tutor.dialogue import load_lesson
from tutor.mastery import Mastery
from ui.deps import Deps
from ui import student
from ui.student import encode_frame, lesson_choices, on_frame, respond, respond_spoken, set_consent


@pytest.fixture
def deps(db, keyword_engine):
    return Deps(settings=Settings(), db=db, cmt=EmbeddedCMT(keyword_engine))


def test_lessons_offered_are_the_shipped_packs(deps):
    ids = [pid for _, pid in lesson_choices(deps)]
    assert {"fractions", "linear_equations"} <= set(ids)


def last(gen):
    *_, final = gen
    return final


def test_the_message_shows_at_once_and_the_reply_as_soon_as_it_is_ready(deps):
    steps = list(respond(deps, "Sam", "fractions", "I am happy", [], None))
    first, final = steps[0], steps[-1]
    assert first[0][0]["content"] == "I am happy" and first[0][1]["content"] == "…"
    assert first[1] == SKIP  # the page emptied the box as it sent (student.SEND_HEAD)
    # the reply is written whole: it is shown whole, not revealed word by word with pauses
    assert len(steps) == 2 and len(final[0][-1]["content"].split()) > 4


def test_a_typed_message_is_answered_logged_and_explained(deps):
    history, box, conv, note = last(respond(deps, "Sam", "fractions", "I am happy", [], None))
    # the page empties the box as it sends; the reply leaves what was typed since alone
    assert box == SKIP and [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "I am happy" and history[1]["content"]
    assert note.startswith("**Tutor noticed:**") and "tone: **neutral**" in note
    assert "→" not in note and not any(c.isdigit() for c in note)  # plain words, no scores
    with deps.db() as s:
        (turn,) = crud.session_turns(session=s, tutor_session_id=conv.session_id)
        assert turn.student_text == "I am happy"
    # the same conversation carries on
    history, _, conv2, _ = last(respond(deps, "Sam", "fractions", "next", history, conv))
    assert conv2 is conv and len(history) == 4


@pytest.mark.parametrize("name, message", [("Sam", ""), ("Sam", "x" * 1_000_000), ("<script>", "hi")])
def test_bad_input_keeps_the_message_and_history(deps, name, message):
    with pytest.warns(UserWarning):
        history, box, conv, note = last(respond(deps, name, "fractions", message,
                                                [{"role": "user", "content": "a"}], None))
    assert box == message and len(history) == 1


def test_a_refused_message_comes_back_whole_for_the_page_to_put_back(deps):
    """The page emptied the box as the message went; a refused one comes back as it was sent
    (the page puts it before whatever was typed since: NEXT_JS), the chat unchanged."""
    with pytest.warns(UserWarning):
        history, refused, _, _ = last(respond(deps, "Sam", "fractions", "x" * 1_000_000, [],
                                              None))
    assert refused == "x" * 1_000_000 and history == []


def test_consent_shows_the_camera_and_frames_are_read_only_with_it(deps):
    conv, cam, _ = set_consent(deps, "Ana", "fractions", None, "camera", True)
    assert cam["visible"] is True
    conv, cam, _ = set_consent(deps, "Ana", "fractions", conv, "camera", False)
    assert cam["visible"] is False
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    assert encode_frame(frame)[:2] == b"\xff\xd8"  # JPEG
    assert on_frame(deps, "Ana", frame, conv) is not None  # a skip: nothing analysed without consent
    with deps.db() as s:
        assert crud.session_readings(session=s, tutor_session_id=conv.session_id) == []


def test_a_spoken_recording_becomes_the_students_message(db, tmp_path):
    deps = Deps(settings=Settings(), db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())))
    conv, mic, _ = set_consent(deps, "Bo", "fractions", None, "microphone", True)
    rec = tmp_path / "r.wav"
    rec.write_bytes(b"three quarters")
    history, conv, note = respond_spoken(deps, "Bo", "fractions", str(rec), [], conv)
    assert history[0]["content"] == "🎤 three quarters" and history[1]["role"] == "assistant"


def test_a_recording_delivered_twice_is_answered_once_and_a_lost_one_is_said(db, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    deps = Deps(settings=Settings(), db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())))
    conv, _, _ = set_consent(deps, "Bo", "fractions", None, "microphone", True)
    rec = tmp_path / "gradio" / "5b7e" / "audio.wav"
    rec.parent.mkdir(parents=True)
    rec.write_bytes(b"three quarters")
    history, conv, _ = respond_spoken(deps, "Bo", "fractions", str(rec), [], conv)
    assert len(history) == 2 and not rec.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no warning shown either (gr.Warning)
        again = respond_spoken(deps, "Bo", "fractions", str(rec), [], conv)  # the stop event again
    assert again == (SKIP, SKIP, SKIP)  # nothing changes on the page
    with deps.db() as s:
        assert len(crud.session_turns(session=s, tutor_session_id=conv.session_id)) == 1
    with pytest.warns(UserWarning, match="did not reach the tutor"):
        lost = respond_spoken(deps, "Bo", "fractions", str(rec.parent.parent / "0" / "a.wav"),
                              history, conv)
    assert lost[0] == history


# ---------------------------------------------------------------- code sign-in
SKIP = {"__type__": "update"}


@pytest.fixture
def coded(db, keyword_engine):
    """Code mode, with students Ana and Ben and their codes: (deps, {handle: code})."""
    deps = Deps(settings=Settings(student_sign_in="code"), db=db, cmt=EmbeddedCMT(keyword_engine))
    with db.begin() as s:
        codes = {st.handle: code for st, code in (create_student(session=s, name="Ana"),
                                                  create_student(session=s, name="Ben"))}
    return deps, codes


def signed_in(deps, handle, code):
    principal, conv, status, chat, cam, mic = student.sign_in(deps, handle, code)
    assert isinstance(principal, Principal) and principal.role == "student"
    assert conv is None and chat == [] and "Signed in as" in status
    return principal


def turns_of(db, session_id):
    with db() as s:
        return [t.student_text for t in crud.session_turns(session=s, tutor_session_id=session_id)]


def test_the_sign_in_mode_follows_the_address_unless_set():
    assert Settings(host="127.0.0.1").student_sign_in == "open"
    assert Settings(host="0.0.0.0").student_sign_in == "code"
    assert Settings(host="0.0.0.0", student_sign_in="open").student_sign_in == "open"
    with pytest.raises(ValueError):
        Settings(student_sign_in="anyone")


def test_a_signed_in_student_chats_in_their_own_session(coded):
    deps, codes = coded
    ana = signed_in(deps, "ana", codes["ana"])
    history, box, conv, note = last(respond(deps, ana, "fractions", "I am happy", [], None))
    assert box == SKIP and len(history) == 2 and "Tutor noticed:" in note
    assert conv.student_id == ana.id and turns_of(deps.db, conv.session_id) == ["I am happy"]
    _, _, again, _ = last(respond(deps, ana, "fractions", "next", history, conv))
    assert again is conv


def test_wrong_code_and_unknown_handle_read_the_same_and_sign_no_one_in(coded):
    deps, codes = coded
    with pytest.warns(UserWarning) as w1:
        out1 = student.sign_in(deps, "ana", codes["ben"])
    with pytest.warns(UserWarning) as w2:
        out2 = student.sign_in(deps, "nobody", codes["ana"])
    assert out1 == out2 == (None, None, student.NOT_SIGNED_IN, [], False, False)
    assert [str(w.message) for w in w1] == [str(w.message) for w in w2] == [student.SIGN_IN_FAILED]
    with pytest.warns(UserWarning, match="handle and code"):
        assert student.sign_in(deps, "ana", "  ") == (SKIP,) * 6


def test_in_code_mode_a_typed_name_reaches_no_ones_session(coded):
    deps, codes = coded
    ana = signed_in(deps, "ana", codes["ana"])
    *_, ana_conv, _ = last(respond(deps, ana, "fractions", "mine", [], None))
    for who in ("Ana", "ana", None):
        with pytest.warns(UserWarning, match="sign in"):
            history, box, conv, _ = last(respond(deps, who, "fractions", "hijack", [], ana_conv))
        assert box == "hijack" and history == []
        with pytest.warns(UserWarning, match="sign in"):
            set_consent(deps, who, "fractions", ana_conv, "camera", True)
        with pytest.warns(UserWarning, match="sign in"):
            assert respond_spoken(deps, who, "fractions", __file__, [], ana_conv)[2] == SKIP
        assert on_frame(deps, who, np.zeros((8, 8, 3), np.uint8), ana_conv) == SKIP
    assert turns_of(deps.db, ana_conv.session_id) == ["mine"]
    with deps.db() as s:
        assert s.query(TutorSession).count() == 1  # no session was made for a typed name


def test_a_student_cannot_continue_or_read_anothers_session(coded):
    deps, codes = coded
    ana = signed_in(deps, "ana", codes["ana"])
    ben = signed_in(deps, "ben", codes["ben"])
    *_, ana_conv, _ = last(respond(deps, ana, "fractions", "ana's answer", [], None))
    # Ben's handler is handed Ana's conversation: his message goes to a session of his own
    *_, conv, _ = last(respond(deps, ben, "fractions", "ben's answer", [], ana_conv))
    assert conv is not ana_conv and conv.student_id == ben.id
    assert turns_of(deps.db, ana_conv.session_id) == ["ana's answer"]
    assert turns_of(deps.db, conv.session_id) == ["ben's answer"]
    conv2, _, _ = set_consent(deps, ben, "fractions", ana_conv, "camera", True)
    assert conv2.student_id == ben.id
    assert on_frame(deps, ben, np.zeros((8, 8, 3), np.uint8), ana_conv) == SKIP
    with deps.db() as s:
        with pytest.raises(AccessDenied):
            reports.session_timeline(session=s, principal=ben, session_id=ana_conv.session_id)
        assert reports.session_timeline(session=s, principal=ana,
                                        session_id=ana_conv.session_id).turns


def test_signing_in_shows_the_students_own_consents_and_signing_out_forgets_them(coded):
    deps, codes = coded
    ana = signed_in(deps, "ana", codes["ana"])
    conv, cam, _ = set_consent(deps, ana, "fractions", None, "camera", True)
    assert cam["visible"] is True
    principal, conv2, _, _, cam_ok, mic_ok = student.sign_in(deps, "ana", codes["ana"], conv)
    assert (cam_ok, mic_ok) == (True, False) and conv2 is None
    with deps.db() as s:
        assert s.get(TutorSession, conv.session_id).ended_at is not None  # the old one closed
    _, _, _, _, cam_ok, _ = student.sign_in(deps, "ben", codes["ben"])
    assert cam_ok is False  # Ben does not inherit Ana's camera
    assert student.sign_out(None) == (None, None, "Signed out. " + student.NOT_SIGNED_IN, [],
                                      False, False)


def test_a_deleted_student_is_signed_out_at_their_next_message(coded):
    deps, codes = coded
    ana = signed_in(deps, "ana", codes["ana"])
    with deps.db.begin() as s:
        s.delete(s.get(Student, ana.id))
    with pytest.warns(UserWarning, match="no longer exists"):
        history, box, conv, _ = last(respond(deps, ana, "fractions", "hello", [], None))
    assert box == "hello" and conv is None


def test_build_student_in_code_mode_has_a_sign_in_row_and_no_name_field(coded):
    import gradio as gr

    deps, _ = coded
    with gr.Blocks() as app:
        student.build_student(deps)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"student-handle", "student-code", "student-sign-in", "student-sign-out"} <= ids
    assert "student-name" not in ids


def test_hundreds_of_messages_a_minute_get_a_polite_slow_down_and_nothing_is_lost(db, keyword_engine):
    deps = Deps(settings=Settings(student_turn_limit="5/minute"), db=db,
                cmt=EmbeddedCMT(keyword_engine))
    history, conv = [], None
    for i in range(5):
        history, _, conv, _ = last(respond(deps, "Ivy", "fractions", f"answer {i}", history, conv))
    with pytest.warns(UserWarning, match="slow down") as w:
        after, box, conv2, note = last(respond(deps, "Ivy", "fractions", "answer 5", history, conv))
    assert box == "answer 5" and after == history and note == SKIP  # the message is still there
    assert "Traceback" not in str(w[0].message)
    # another student is unaffected
    assert last(respond(deps, "Jo", "fractions", "hello", [], None))[1] == SKIP


# ---------------------------------------------------------------- issue 19, item 11


def test_a_new_name_in_open_sign_in_starts_clean_with_that_students_own_consents(deps):
    conv, cam, _ = set_consent(deps, "Ana", "fractions", None, "camera", True)
    conv, mic, _ = set_consent(deps, "Ana", "fractions", conv, "microphone", True)
    history, _, conv, _ = last(respond(deps, "Ana", "fractions", "I am happy", [], conv))
    out = student.switch_student(deps, "Ben", "fractions", conv)
    new_conv, chat, cam_ok, mic_ok, cam, mic, note, noticed, heading, shown = out
    assert new_conv is None and (cam_ok, mic_ok) == (False, False)
    assert cam["visible"] is False and mic["visible"] is False and note == "" and noticed == ""
    assert "I am happy" not in str(chat)  # Ana's conversation is not Ben's to read
    with deps.db() as s:
        assert s.get(TutorSession, conv.session_id).ended_at is not None
    # coming back (or reloading the page and typing the name): the stored choices show
    _, _, cam_ok, mic_ok, cam, mic, *_ = student.switch_student(deps, "ana", "fractions", None)
    assert (cam_ok, mic_ok) == (True, True) and cam["visible"] is True and mic["visible"] is True
    with deps.db() as s:  # looking a name up creates no one
        assert s.query(Student).filter_by(handle="ben").count() == 0


def test_with_biometrics_off_a_stored_camera_yes_shows_no_camera(db, keyword_engine):
    deps = Deps(settings=Settings(biometrics=False), db=db, cmt=EmbeddedCMT(keyword_engine))
    with db.begin() as s:
        from tutor.privacy import record_consent

        ana = crud.get_or_create_student(session=s, handle="ana", display_name="Ana")
        record_consent(session=s, student_id=ana.id, modality="camera", granted=True)
    _, _, cam_ok, _, cam, *_ = student.switch_student(deps, "Ana", "fractions", None)
    assert cam_ok is False and cam["visible"] is False


def test_headings_say_what_is_on():
    assert student.media_heading(False, False) == "**Camera and microphone are off** until you allow them."
    assert student.media_heading(True, False).startswith("**Camera is on, microphone is off.**")
    assert student.media_heading(True, True) == "**Camera and microphone are on.** Untick a box to turn it off at once."
    assert "are off" not in student.media_heading(True, True)
    assert "is off" not in student.media_heading(True, True)


# ---------------------------------------------------------------- issue 20: the greeting asks


def test_the_greeting_asks_the_first_question_and_the_first_message_answers_it(deps):
    chat, shown = student.greeting(deps, "fractions")
    (hello,) = chat
    step = load_lesson("fractions").steps[0]
    question = step.questions[0]
    assert shown == ("fractions", question.id)
    assert step.title in hello["content"] and question.prompt in hello["content"]
    assert "Type your name above" in hello["content"]
    history, box, conv, _ = last(respond(deps, "Sam", "fractions", question.answer[0], chat,
                                         None, None, shown))
    assert box == SKIP and history[0] == hello  # the greeting stays above the first turn
    assert [m["role"] for m in history] == ["assistant", "user", "assistant"]
    assert conv.dialogue.last_answered == (step, question)  # checked, and right
    assert question.prompt not in history[-1]["content"]  # on to the next question


def test_an_answer_spelled_in_another_language_is_checked_and_right(deps):
    chat, shown = student.greeting(deps, "fractions")
    step = load_lesson("fractions").steps[0]
    assert step.questions[0].answer == ["3/8"]
    history, _, conv, _ = last(respond(deps, "Sam", "fractions", "tres octavos", chat, None,
                                       None, shown))
    assert conv.dialogue.last_answered == (step, step.questions[0])  # checked, and right
    assert "type" not in history[-1]["content"].lower()  # no "type a fraction like 3/4"


def test_without_the_greetings_question_a_first_answer_is_not_checked(deps):
    """The contrast: a conversation that was not handed the greeting's question treats the
    same first message as an answer before any question (what the student saw before)."""
    answer = load_lesson("fractions").steps[0].questions[0].answer[0]
    *_, conv, _ = last(respond(deps, "Sam", "fractions", answer, [], None))
    assert conv.dialogue.last_answered is None


def test_a_returning_student_is_greeted_where_their_lessons_stand(deps):
    pack = load_lesson("fractions")
    first, second = pack.steps[0], pack.steps[1]
    with deps.db.begin() as s:
        ana = crud.get_or_create_student(session=s, handle="ana", display_name="Ana")
        done = Mastery()
        done.set_known(first.skills)
        crud.save_mastery(session=s, student_id=ana.id, lesson="fractions", state=done.to_dict())
    chat, shown = student.greeting(deps, "fractions", "Ana")
    assert shown[1] in {q.id for q in second.questions} and second.title in chat[0]["content"]
    assert "Type your name above" not in chat[0]["content"]
    *_, chat, _, _, _, _, _, _, _, shown2 = student.switch_student(deps, "Ana", "fractions", None)
    assert shown2 == shown
    _, shown_new = student.greeting(deps, "fractions", "Nobody Yet")
    assert shown_new == ("fractions", first.questions[0].id)
    with deps.db() as s:  # looking a name up creates no one
        assert s.query(Student).filter_by(handle="nobody yet").count() == 0


def test_the_consent_tick_before_the_first_message_keeps_the_greetings_question(deps):
    chat, shown = student.greeting(deps, "linear_equations", "Cy")
    conv, _, _ = set_consent(deps, "Cy", "linear_equations", None, "camera", True, shown)
    assert conv.dialogue.expecting_answer and conv.dialogue.question.id == shown[1]


def test_with_sign_in_codes_the_greeting_asks_once_the_student_is_known(coded):
    deps, codes = coded
    chat, shown = student.greeting(deps, "fractions")
    assert shown is None and "Sign in above" in chat[0]["content"]
    ana = signed_in(deps, "ana", codes["ana"])
    chat, shown = student.greeting(deps, "fractions", ana)
    _, asked = load_lesson("fractions").question(shown[1])
    assert asked.prompt in chat[0]["content"]
