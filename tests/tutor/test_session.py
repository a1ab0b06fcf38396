from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tutor.client import CMTUnavailable, EmbeddedCMT
from tutor.db import crud
from tutor.db.models import Turn
from tutor.session import Conversation, MessageError, StorageError, TurnLimit, clean_message


class DeadCMT:
    def analyze(self, req):
        raise CMTUnavailable("connection refused")


def test_a_turn_is_answered_and_logged_with_its_reading_and_adaptation(db, keyword_engine):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="ana")
    conv.policy.since -= 60  # a minute into the session
    first = conv.turn("I hate fractions, I'm so angry")
    assert first.reading.label == "anger" and first.decision.tone == "neutral"  # hysteresis
    result = conv.turn("I hate this, so angry")
    assert result.reading.label == "anger" and result.decision.tone == "calm"
    assert result.reply
    with db() as s:
        _, turn = crud.session_turns(session=s, tutor_session_id=conv.session_id)
        assert turn.id == result.turn_id and turn.tutor_text == result.reply
        _, reading = crud.session_readings(session=s, tutor_session_id=conv.session_id)
        assert reading.turn_id == turn.id and reading.label == "anger"
        _, adaptation = crud.session_adaptations(session=s, tutor_session_id=conv.session_id)
        assert adaptation.tone == "calm" and "frustration" in adaptation.reason
        assert adaptation.changes["tone"] == ["neutral", "calm"]


@pytest.mark.parametrize("raw, words", [
    ("", "Type a message"), ("   \n\t", "Type a message"), (None, "Type a message"),
    ("x" * 1_000_000, "1,000,000 characters"), (b"\xff\xfe\xfa", "UTF-8"),
])
def test_bad_messages_get_a_clear_error_and_nothing_is_written(db, keyword_engine, raw, words):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="bo")
    with pytest.raises(MessageError, match=words):
        conv.turn(raw)
    assert conv.turn("still here").reply  # and the session keeps working
    with db() as s:
        assert len(s.scalars(select(Turn)).all()) == 1


def test_a_student_over_the_turn_limit_is_asked_to_slow_down_and_it_resets(db, keyword_engine):
    import time

    limit = TurnLimit("3/second")
    cmt = EmbeddedCMT(keyword_engine)
    tab1, tab2 = (Conversation(db=db, cmt=cmt, student_handle="fay", turn_limit=limit)
                  for _ in range(2))
    other = Conversation(db=db, cmt=cmt, student_handle="gus", turn_limit=limit)
    for conv in (tab1, tab2, tab1):
        conv.turn("one more")
    with pytest.raises(MessageError, match=r"slow down: please wait 1 seconds"):
        tab2.turn("and another")  # the limit is the student's, whichever tab they type in
    assert other.turn("my first").reply  # another student is unaffected
    with db() as s:
        assert len(s.scalars(select(Turn).where(Turn.student_text == "and another")).all()) == 0
    time.sleep(1.05)
    assert tab2.turn("and another").reply


def test_an_empty_turn_limit_is_no_limit(db, keyword_engine):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="hal",
                        turn_limit=TurnLimit(""))
    assert all(conv.turn(f"message {i}").reply for i in range(40))


def test_control_characters_are_dropped_but_text_kept():
    assert clean_message("a\x00b\x07c\n d ") == "abc\n d"


def test_a_dead_cmt_costs_the_reading_not_the_turn(db):
    conv = Conversation(db=db, cmt=DeadCMT(), student_handle="cy")
    result = conv.turn("hello?")
    assert result.reading is None and "connection refused" in result.notice
    with db() as s:
        assert [t.student_text for t in crud.session_turns(session=s, tutor_session_id=conv.session_id)] == ["hello?"]
        assert crud.session_readings(session=s, tutor_session_id=conv.session_id) == []


def test_a_failed_write_is_not_acknowledged(db, keyword_engine):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="di")
    with db.begin() as s:  # break the schema under the session: the last insert must fail
        s.execute(text("DROP TABLE adaptations"))
    with pytest.raises(StorageError, match="send it again"):
        conv.turn("this will not be saved")
    with db() as s:
        assert s.scalars(select(Turn)).all() == []  # the turn's transaction rolled back whole


def test_the_dialogues_evidence_reaches_the_policy_and_the_log(db, keyword_engine):
    from tutor.dialogue import Dialogue, load_lesson

    t = [0.0]
    pack = load_lesson("fractions")
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="ed",
                        dialogue=Dialogue(pack, seed=0, clock=lambda: t[0]), clock=lambda: t[0])
    assert conv.pack is pack
    for message in ("hi", "3/5", "3/5"):
        t[0] += 20
        result = conv.turn(message)
    assert result.move == "answer" and result.correct is False and "wrong" in result.action
    with db() as s:
        adaptation = crud.session_adaptations(session=s, tutor_session_id=conv.session_id)[-1]
        assert "two wrong answers" in adaptation.reason


class TranscribingModel:
    """Test double: the 'audio' bytes are the spoken words; a 'frame' reads as joy."""

    version = "test-transcribe-0"

    def __init__(self):
        self.decoders = {"audio": lambda b: b.decode(), "image": lambda b: b}

    def predict_batch(self, items):
        return [self.predict(**item) for item in items]

    def predict(self, text=None, face=None, audio=None, sample_rate=16000, modalities=None):
        from types import SimpleNamespace

        from cmt.contract import EMOTIONS

        label = "joy" if face is not None else "neutral"
        probs = {e: (0.7 if e == label else 0.05) for e in EMOTIONS}
        return SimpleNamespace(label=label, probs=probs, modalities={"speech": probs},
                               transcript=audio, attention=None)


def _consent(db, conv, *modalities):
    from tutor.privacy import record_consent

    with db.begin() as s:
        for m in modalities:
            record_consent(session=s, student_id=conv.student_id, modality=m, granted=True)


def test_a_spoken_turn_uses_its_transcript_as_the_message(db):
    from cmt.serve.engine import Engine

    conv = Conversation(db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())), student_handle="sp")
    with pytest.raises(MessageError, match="allow the microphone"):
        conv.turn(None, audio=b"hello there")
    _consent(db, conv, "microphone")
    result = conv.turn(None, audio=b"hello there")
    with pytest.raises(MessageError, match="couldn't hear any words"):
        conv.turn(None, audio=b"   ")
    with db() as s:
        (turn,) = crud.session_turns(session=s, tutor_session_id=conv.session_id)
        assert turn.student_text == "hello there" and turn.input_source == "spoken"
        assert turn.id == result.turn_id


def test_camera_frames_between_turns_are_read_and_logged_with_consent_only(db):
    from cmt.serve.engine import Engine

    conv = Conversation(db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())), student_handle="fr")
    assert conv.observe_frame(b"jpeg") is None
    _consent(db, conv, "camera")
    reading = conv.observe_frame(b"jpeg")
    assert reading.label == "joy"
    with db() as s:
        (r,) = crud.session_readings(session=s, tutor_session_id=conv.session_id)
        assert r.turn_id is None and r.label == "joy"


def test_the_opening_asks_a_question_and_the_conversation_starts_from_it(db, keyword_engine):
    from tutor.dialogue import load_lesson
    from tutor.session import open_lesson

    pack = load_lesson("linear_equations")
    opening = open_lesson(pack)
    step, question = pack.question(opening.question_id)
    assert step is pack.steps[0] and question.prompt in opening.text and step.title in opening.text
    assert step.explanations.at("standard") in opening.text
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="di",
                        lesson="linear_equations", asked=opening.question_id)
    result = conv.turn(question.answer[0])
    assert result.move == "answer" and result.correct is True
    with db() as s:  # the opening is no turn of its own: the teacher sees the student's turns
        assert [t.student_text for t in s.scalars(select(Turn))] == [question.answer[0]]


def test_a_question_of_another_lesson_is_ignored_and_the_first_reply_asks(db, keyword_engine):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="ed",
                        lesson="fractions", asked="sub_three_x_plus_two")
    assert not conv.dialogue.expecting_answer
    assert conv.turn("hi").reply


def test_a_finished_lesson_opens_by_saying_so(db):
    from tutor.dialogue import load_lesson
    from tutor.mastery import Mastery
    from tutor.session import open_lesson

    pack = load_lesson("fractions")
    done = Mastery()
    done.set_known(pack.skills)
    opening = open_lesson(pack, mastery=done.to_dict())
    assert opening.question_id is None and opening.text



def test_a_spoken_turn_a_typed_turn_and_camera_frames_at_once_leave_one_ordered_session(db):
    """The page runs a recording's turn, a typed turn and the camera's frames in threads of
    their own; on one conversation they must not interleave: every turn is stored, each in
    its own place in the session, and every frame's reading is logged."""
    import threading

    from cmt.serve.engine import Engine

    conv = Conversation(db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())), student_handle="cy")
    _consent(db, conv, "camera", "microphone")
    errors: list[BaseException] = []

    def run(fn, n):
        try:
            for i in range(n):
                fn(i)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    jobs = [(lambda i: conv.turn(f"typed {i}"), 15),
            (lambda i: conv.turn(None, audio=f"spoken {i}".encode()), 15),
            (lambda i: conv.observe_frame(b"jpeg"), 60)]
    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db() as s:
        turns = crud.session_turns(session=s, tutor_session_id=conv.session_id)
        assert sorted(t.index for t in turns) == list(range(30))
        readings = crud.session_readings(session=s, tutor_session_id=conv.session_id)
        assert sum(r.turn_id is None for r in readings) == 60
