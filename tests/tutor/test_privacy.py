from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from cmt.contract import AnalyzeRequest
from cmt.serve.engine import Engine, InputError
from tests.fakes import KeywordModel
from tutor.client import EmbeddedCMT
from tutor.db import crud
from tutor.db.models import EmotionReading, Student
from tutor.privacy import (count_rows_of, current_consents, erase_student, export_student,
                           purge_readings, record_consent)
from tutor.session import Conversation


class SeeingModel(KeywordModel):
    """Records which media reached the model."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.decoders = {"image": lambda b: b"face:" + b, "audio": lambda b: b"audio:" + b}

    def predict(self, text=None, face=None, audio=None, sample_rate=16000, modalities=None):
        self.seen.append((face is not None, audio is not None, modalities))
        return super().predict(text=text)


@pytest.fixture
def seeing():
    model = SeeingModel()
    return model, EmbeddedCMT(Engine(model))


def test_media_reaches_the_model_only_with_consent_and_withdrawal_stops_it_at_once(db, seeing):
    model, cmt = seeing
    conv = Conversation(db=db, cmt=cmt, student_handle="eve")
    r = conv.turn("hello", image=b"jpeg", audio=b"wav")
    assert model.seen[-1][:2] == (False, False) and "camera" in r.notice
    with db.begin() as s:
        record_consent(session=s, student_id=conv.student_id, modality="camera", granted=True)
    conv.turn("hello again", image=b"jpeg")
    assert model.seen[-1][:2] == (True, False)
    with db.begin() as s:
        record_consent(session=s, student_id=conv.student_id, modality="camera", granted=False)
    conv.turn("and again", image=b"jpeg")
    assert model.seen[-1][:2] == (False, False)
    with db() as s:
        assert current_consents(session=s, student_id=conv.student_id) == {"camera": False, "microphone": False}


def test_biometrics_off_reads_text_only_even_with_consent(db, seeing):
    model, cmt = seeing
    conv = Conversation(db=db, cmt=cmt, student_handle="fay", biometrics=False)
    with db.begin() as s:
        for m in ("camera", "microphone"):
            record_consent(session=s, student_id=conv.student_id, modality=m, granted=True)
    conv.turn("spoken words", image=b"jpeg", audio=b"wav")
    face, audio, modalities = model.seen[-1]
    assert not face and audio and modalities == ["text"]  # audio only for its transcript


def test_a_service_with_biometrics_off_refuses_images(keyword_engine):
    engine = Engine(KeywordModel(), biometrics=False)
    with pytest.raises(InputError, match="biometrics off"):
        engine.analyze(AnalyzeRequest(text="hi", image_b64="aGk="))


def test_mastery_outlives_the_session(db, keyword_engine):
    cmt = EmbeddedCMT(keyword_engine)
    a = Conversation(db=db, cmt=cmt, student_handle="gus")
    fresh = a.dialogue.mastery.to_dict()
    a.turn("hi")  # the tutor presents its first question
    a.turn(a.dialogue.question.answer[0])  # and it is answered right
    state = a.dialogue.mastery.to_dict()
    assert state != fresh
    b = Conversation(db=db, cmt=cmt, student_handle="gus")
    assert b.dialogue.mastery.to_dict() == state and b.session_id != a.session_id


def test_a_class_with_adaptation_off_runs_in_control_mode(db, keyword_engine):
    with db.begin() as s:
        klass = crud.create_class(session=s, name="7A", teacher_id=None, adaptation_enabled=False)
        crud.enrol(session=s, student=crud.get_or_create_student(session=s, handle="hal"), class_id=klass.id)
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="hal")
    assert conv.policy.mode == "control"
    assert conv.turn("I hate this so much").decision.reason == "control mode: no adaptation"


def test_export_then_erase_leaves_nothing_of_the_student(db, keyword_engine):
    cmt = EmbeddedCMT(keyword_engine)
    conv = Conversation(db=db, cmt=cmt, student_handle="ivy")
    other = Conversation(db=db, cmt=cmt, student_handle="jon")
    with db.begin() as s:
        record_consent(session=s, student_id=conv.student_id, modality="camera", granted=True)
    conv.turn("I am happy")
    conv.turn("so happy")
    other.turn("wow")
    with db() as s:
        data = export_student(session=s, student_id=conv.student_id)
    json.dumps(data)  # JSON-ready
    assert data["student"]["handle"] == "ivy" and len(data["sessions"][0]["turns"]) == 2
    assert data["sessions"][0]["readings"][0]["label"] == "joy" and data["consents"][0]["granted"]
    with db.begin() as s:
        counts = erase_student(session=s, student_id=conv.student_id)
    assert counts["turns"] == 2 and counts["students"] == 1
    with db() as s:
        assert count_rows_of(session=s, student_id=conv.student_id) == 0
        assert s.scalar(select(Student).where(Student.handle == "ivy")) is None
        assert count_rows_of(session=s, student_id=other.student_id) > 0  # others untouched


def test_retention_purges_old_readings_only(db, keyword_engine):
    conv = Conversation(db=db, cmt=EmbeddedCMT(keyword_engine), student_handle="kim")
    conv.turn("happy old")
    conv.turn("happy new")
    with db.begin() as s:
        first = s.scalars(select(EmotionReading).order_by(EmotionReading.id)).first()
        s.execute(update(EmotionReading).where(EmotionReading.id == first.id)
                  .values(created_at=datetime.now(timezone.utc) - timedelta(days=400)))
    with db.begin() as s:
        assert purge_readings(session=s, older_than_days=365) == 1
    with db() as s:
        assert len(s.scalars(select(EmotionReading)).all()) == 1


def test_the_notices_say_it_is_emotion_recognition_as_art_50_3_requires():
    from tutor.privacy import NOTICES, notice

    for modality in ("camera", "microphone"):
        text = notice(modality)
        assert "emotion recognition" in text and "Art. 50(3)" in text and text == NOTICES[modality]
    assert "never the picture" in notice("camera") and "never the recording" in notice("microphone")
    dictation = notice("microphone", biometrics=False)
    assert "no emotion is read from your voice" in dictation and "never stored" in dictation


def test_readme_and_compliance_page_state_the_art_50_3_duty():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    page = (REPO / "docs" / "compliance.md").read_text()
    for text in (readme, page):
        assert "Art. 50(3)" in text and "emotion recognition must be informed" in text
    for words in ("ATTUNE_BIOMETRICS=false", "Art. 5(1)(f)", "VACUUM", "synchronous=FULL"):
        assert words in page
