from __future__ import annotations

import numpy as np

from cmt.serve.engine import Engine
from tutor.client import EmbeddedCMT
from tutor.kiosk import SAMPLE_RATE, run, utterances, wav_bytes
from tutor.privacy import record_consent
from tutor.session import Conversation

BLOCK = int(SAMPLE_RATE * 0.1)


def blocks(pattern: str, loud: float = 0.2):
    """'s' = a block of speech (a tone), '.' = a block of silence."""
    t = np.arange(BLOCK) / SAMPLE_RATE
    tone = (loud * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return [tone if c == "s" else np.zeros(BLOCK, np.float32) for c in pattern]


def test_speech_is_cut_at_pauses_and_short_bursts_are_ignored():
    pattern = "...." + "s" * 10 + "." * 9 + "s" + "." * 9 + "s" * 6 + "." * 3
    found = list(utterances(blocks(pattern)))
    assert [round(len(u) / SAMPLE_RATE, 1) for u in found] == [1.8, 0.9]  # speech + its pause; tail flushed


def test_a_long_monologue_is_cut_at_the_limit():
    found = list(utterances(blocks("s" * 50), max_s=2.0))
    assert [len(u) / SAMPLE_RATE for u in found] == [2.0, 2.0, 1.0]


class HearingModel:
    """Test double: transcribes a clip as its length; speech only."""

    version = "test-hearing-0"

    def __init__(self):
        from cmt.model.encoders.speech import decode_audio

        self.decoders = {"audio": lambda b: decode_audio(b)[0]}

    def predict_batch(self, items):
        return [self.predict(**i) for i in items]

    def predict(self, text=None, face=None, audio=None, sample_rate=16000, modalities=None):
        from types import SimpleNamespace

        from cmt.contract import EMOTIONS

        probs = {e: 1 / 7 for e in EMOTIONS}
        return SimpleNamespace(label="neutral", probs=probs, modalities={"speech": probs},
                               transcript=f"{len(audio) / 16000:.1f} seconds", attention=None)


def test_each_utterance_becomes_a_spoken_turn(db):
    conv = Conversation(db=db, cmt=EmbeddedCMT(Engine(HearingModel())), student_handle="kio")
    with db.begin() as s:
        record_consent(session=s, student_id=conv.student_id, modality="microphone", granted=True)
    said = []
    n = run(conv, blocks=blocks("s" * 10 + "." * 9 + "s" * 5 + "." * 9), say=said.append)
    assert n == 2 and "you: 1.8 seconds" in said and any(s.startswith("tutor: ") for s in said)
    assert wav_bytes(np.zeros(160, np.float32))[:4] == b"RIFF"
