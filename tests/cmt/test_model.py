from __future__ import annotations

import re

import pytest

from cmt import available_models, load_model
from cmt.contract import EMOTIONS
from cmt.model import EmotionInputError, Prediction
from cmt.text_head import CHECKPOINT

UNMISTAKABLE = [
    ("I am so happy, this is wonderful!", "joy"),
    ("I'm terrified of what will happen", "fear"),
    ("My dog died yesterday and I can't stop crying.", "sadness"),
    ("I am furious, how dare you lie to me!", "anger"),
    ("Wow, I did not expect that at all!", "surprise"),
    ("The lecture starts at nine in room 4.", "neutral"),
]


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_shipped_checkpoint_is_small_and_listed():
    assert CHECKPOINT.stat().st_size < 5e6
    assert "text-minilm" in available_models()


def test_version(model):
    assert re.fullmatch(r"text-minilm-0\.1\+[0-9a-f]{8}", model.version)


@pytest.mark.parametrize("text,emotion", UNMISTAKABLE)
def test_unmistakable_sentences(model, text, emotion):
    p = model.predict(text=text)
    assert isinstance(p, Prediction)
    assert p.label == emotion, p.probs
    assert list(p.probs) == list(EMOTIONS)
    assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(p.modalities) == {"text"} and p.modalities["text"] == pytest.approx(p.probs)
    assert p.transcript is None


def test_predict_batch_equals_predict(model):
    items = [{"text": t} for t, _ in UNMISTAKABLE]
    batch = model.predict_batch(items)
    for item, b in zip(items, batch):
        one = model.predict(**item)
        assert b.label == one.label
        assert b.probs == pytest.approx(one.probs, abs=1e-4)
    assert model.predict_batch([]) == []


def test_typographic_quotes_read_like_ascii(model):
    a = model.predict(text="I can\u2019t believe it\u2026").probs
    b = model.predict(text="I can't believe it...").probs
    assert a == pytest.approx(b, abs=1e-6)


def test_face_and_audio_are_accepted_and_ignored_for_now(model):
    p = model.predict(text="I am so happy, this is wonderful!", face=object(), audio=object())
    assert set(p.modalities) == {"text"}


@pytest.mark.parametrize("kw", [{}, {"text": ""}, {"text": "   \n\t"}, {"text": None}])
def test_nothing_to_analyze(model, kw):
    with pytest.raises(ValueError, match="nothing to analyze"):
        model.predict(**kw)


def test_bad_inputs_are_clear(model):
    with pytest.raises(EmotionInputError, match="text only"):
        model.predict(face=object())
    with pytest.raises(ValueError, match="text must be a string"):
        model.predict(text=42)
    with pytest.raises(ValueError, match="item 1: unknown keys"):
        model.predict_batch([{"text": "hi"}, {"txt": "hi"}])
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")


def test_attention_weighs_the_word_pieces(model):
    text = "I am so happy, this is wonderful!"
    p = model.predict(text=text)
    if model.head.attn is None:
        assert p.attention is None
        return
    (w,) = p.attention["text"]
    tokens = model.text_tokens(text)
    assert len(w) == len(tokens) and sum(w) == pytest.approx(1.0, abs=1e-5)
    assert "happy" in tokens
