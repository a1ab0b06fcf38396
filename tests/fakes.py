"""The fake models, shared by the tests and the stress harness (tools/trust.py):
one module, so a change to the engine's model interface is made once.

- `KeywordModel`: text only, a keyword reading; no decoders. For the plumbing's tests.
- `StandInModel`: the real image and audio decoders, a keyword reading of text, a brightness
  reading of faces, an optional delay per batch. For the service's hardening tests and the
  stress harness, where hostile media must go through the real decoders.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import ClassVar


class KeywordModel:
    """A deterministic stand-in for the emotion model, for tests of the plumbing only.

    The real model is tested in tests/cmt; this one lets service, client and session tests
    run in milliseconds and know the expected label.
    """

    version = "test-keyword-0"
    decoders: dict = {}
    WORDS = {"happy": "joy", "great": "joy", "hate": "anger", "angry": "anger", "sad": "sadness",
             "scared": "fear", "wow": "surprise", "gross": "disgust"}

    def __init__(self):
        self.batch_sizes: list[int] = []

    def predict_batch(self, items):
        self.batch_sizes.append(len(items))
        return [self.predict(**item) for item in items]

    def predict(self, text=None, face=None, audio=None, sample_rate=16000, modalities=None):
        from cmt.contract import EMOTIONS

        if not text:
            raise ValueError("no text")
        hit = next((e for w, e in self.WORDS.items() if w in text.lower()), "neutral")
        probs = {e: (0.7 if e == hit else 0.05) for e in EMOTIONS}
        return SimpleNamespace(label=hit, probs=probs, modalities={"text": probs},
                               transcript=None, attention=None)


class StandInModel:
    """A fast, deterministic stand-in for the emotion model: the real decoders, a keyword
    reading of text, a brightness reading of faces. `delay_s` per batch simulates a slow model."""

    version = "stand-in-0"
    WORDS: ClassVar[dict[str, str]] = {"happy": "joy", "great": "joy", "hate": "anger", "angry": "anger", "sad": "sadness",
                                       "scared": "fear", "wow": "surprise", "gross": "disgust",
                                       "confus": "fear"}

    def __init__(self, delay_s: float = 0.0):
        from cmt.model.encoders.face import decode_image
        from cmt.model.encoders.speech import decode_audio

        self.delay_s = delay_s
        self.decoders = {"image": decode_image, "audio": lambda data: decode_audio(data)[0]}

    def predict_batch(self, items: list[dict]) -> list:
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self.predict(**item) for item in items]

    def predict(self, text=None, face=None, audio=None, sample_rate=16000, modalities=None):
        import numpy as np

        from cmt.contract import EMOTIONS
        from cmt.model.encoders.speech import is_silent

        def peaked(label: str, p: float = 0.7) -> dict[str, float]:
            rest = (1 - p) / (len(EMOTIONS) - 1)
            return {e: (p if e == label else rest) for e in EMOTIONS}

        allowed = set(modalities or ("text", "face", "speech"))
        mods = {}
        if text and text.strip() and "text" in allowed:
            hit = next((e for w, e in self.WORDS.items() if w in text.lower()), "neutral")
            mods["text"] = peaked(hit)
        if face is not None and "face" in allowed:
            face = np.asarray(face)
            if face.ndim != 3 or face.shape[2] != 3 or face.size == 0:
                raise ValueError("face must be an RGB image")
            mods["face"] = peaked("joy" if float(face.mean()) > 128 else "neutral", 0.5)
        if audio is not None and "speech" in allowed and not is_silent(audio, sample_rate):
            mods["speech"] = peaked("neutral", 0.4)
        if not mods:
            raise ValueError("nothing to analyse: no text, no face, no speech was heard")
        fused = {e: sum(p[e] for p in mods.values()) / len(mods) for e in EMOTIONS}
        return SimpleNamespace(label=max(fused, key=fused.get), probs=fused, modalities=mods,
                               transcript=None, attention=None, face_box=None)
