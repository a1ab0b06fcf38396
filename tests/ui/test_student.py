from __future__ import annotations

import numpy as np
import pytest

from cmt.engine import Engine
from cmt.settings import Settings
from tests.tutor.test_session import TranscribingModel
from tutor.client import EmbeddedCMT
from tutor.db import crud
from ui.deps import Deps
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


def test_the_message_shows_at_once_and_the_reply_streams_in(deps):
    steps = list(respond(deps, "Sam", "fractions", "I am happy", [], None))
    first, final = steps[0], steps[-1]
    assert first[0][0]["content"] == "I am happy" and first[0][1]["content"] == "…" and first[1] == ""
    replies = [s[0][-1]["content"] for s in steps[1:]]
    assert all(final[0][-1]["content"].startswith(r) for r in replies)  # a growing prefix
    assert len(steps) > 3


def test_a_typed_message_is_answered_logged_and_explained(deps):
    history, box, conv, note = last(respond(deps, "Sam", "fractions", "I am happy", [], None))
    assert box == "" and [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "I am happy" and history[1]["content"]
    assert "Tutor noticed **joy**" in note
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


def test_consent_shows_the_camera_and_frames_are_read_only_with_it(deps):
    conv, cam, _ = set_consent(deps, "Ana", "fractions", None, "camera", True)
    assert cam["visible"] is True
    conv, cam, _ = set_consent(deps, "Ana", "fractions", conv, "camera", False)
    assert cam["visible"] is False
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    assert encode_frame(frame)[:2] == b"\xff\xd8"  # JPEG
    assert on_frame(deps, frame, conv) is not None  # a skip: nothing analysed without consent
    with deps.db() as s:
        assert crud.session_readings(session=s, tutor_session_id=conv.session_id) == []


def test_a_spoken_recording_becomes_the_students_message(db, tmp_path):
    deps = Deps(settings=Settings(), db=db, cmt=EmbeddedCMT(Engine(TranscribingModel())))
    conv, mic, _ = set_consent(deps, "Bo", "fractions", None, "microphone", True)
    rec = tmp_path / "r.wav"
    rec.write_bytes(b"three quarters")
    history, conv, note = respond_spoken(deps, "Bo", "fractions", str(rec), [], conv)
    assert history[0]["content"] == "🎤 three quarters" and history[1]["role"] == "assistant"
