"""The frozen encoders and the per-modality token preparation: the same for the served model
(cmt.model.emotion) and for training's cached features (cmt.training.corpora)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from cmt.settings import Settings

SPEECH_POOL = 4  # Whisper frames (50/s) averaged per token: 12.5 tokens/s
# Speech summary tokens: the mean and the standard deviation over real frames of each of the
# encoder's last SPEECH_SUMMARY_LAYERS hidden states (for Whisper tiny: its input embedding
# and four blocks), put before the frame tokens. Emotion lives in the middle layers as much
# as in the last (SUPERB); the speech expert (cmt.model.experts) reads these too.
SPEECH_SUMMARY_LAYERS = 5
# Tokens kept per example, the same in training and in the front door. Text keeps every word
# piece the encoder gives (its max_length, 128): the cached text features were built that way.
MAX_TOKENS = {"text": 128, "face": 64, "speech": 80}


def pool_time(tokens: torch.Tensor, mask: torch.Tensor, factor: int = SPEECH_POOL):
    """Average every `factor` frames: tokens (B,T,d), mask (B,T) -> (B,T/factor,d), mask."""
    B, T, d = tokens.shape
    pad = (-T) % factor
    m = torch.nn.functional.pad(mask, (0, pad)).view(B, -1, factor).to(tokens.dtype)  # (B,T',f)
    x = torch.nn.functional.pad(tokens, (0, 0, 0, pad)).view(B, -1, factor, d)
    summed = (x * m.unsqueeze(-1)).sum(2)
    count = m.sum(2)
    return summed / count.clamp(min=1).unsqueeze(-1), count > 0


def layer_summary(hidden_states, last: torch.Tensor, mask: torch.Tensor,
                  layers: int = SPEECH_SUMMARY_LAYERS) -> torch.Tensor:
    """Per hidden state (B,T,d), the final output `last` (B,T,d), frames mask (B,T) ->
    (B, 2*layers, d): the mean and the std over real frames of the last `layers` states
    (the final one after the encoder's closing layer norm), as the speech expert pools them."""
    from cmt.model.experts import pool

    states = list(hidden_states[:-1])[-(layers - 1):] + [last]
    pooled = pool(states, mask)  # (B, layers, 2d): [mean, std] per state
    B, L, d2 = pooled.shape
    return pooled.reshape(B, 2 * L, d2 // 2)  # mean, std, mean, std, ... as tokens


class Encoders:
    """The frozen encoders, each loaded on first use."""

    def __init__(self, names: dict[str, str | None] | None = None, device: str = "cpu", *,
                 speech_summary: bool = False, speech_loudness: float | None = None):
        self.names = {"text": Settings().text_encoder, "face": None, "speech": None, **(names or {})}
        self.device = device
        self.speech_summary = speech_summary  # layer-summary tokens before the speech frames
        # dBFS every clip is brought to before the speech encoder (None: as recorded)
        self.speech_loudness = speech_loudness

    @cached_property
    def text(self):
        from cmt.model.encoders.text import TextEncoder

        return TextEncoder(self.names["text"], device=self.device)

    @cached_property
    def face(self):
        from cmt.model.encoders.face import FaceEncoder

        return FaceEncoder(self.names["face"], device=self.device)

    @cached_property
    def speech(self):
        from cmt.model.encoders.speech import SpeechEncoder

        return SpeechEncoder(self.names["speech"], device=self.device)

    def key(self, modality: str) -> str:
        key = str(self.names[modality] or f"default-{modality}")
        if modality == "text":  # a tuned encoder's name stays; its weights may change
            from cmt.model.encoders.text import fingerprint

            key = fingerprint(key)
        if modality == "face":  # a tuned encoder's weights, and the crops the detector gives
            from cmt.model.encoders.face import CASCADE_WINDOW, MIN_FACE_FRACTION, face_fingerprint

            key = face_fingerprint(self.names["face"]) or key
            key += f"@haar-{MIN_FACE_FRACTION}-{CASCADE_WINDOW}"
        if modality == "speech" and self.speech_summary:
            key += f"+summary{SPEECH_SUMMARY_LAYERS}"
        if modality == "speech" and self.speech_loudness is not None:
            key += f"+loud{self.speech_loudness:g}"
        return key

    # -- per-modality tokens, the same for training and for the front door
    def text_tokens(self, texts: list[str]):
        return self.text.tokens(texts)  # (B,T,d), (B,T)

    def face_tokens(self, crops: list[np.ndarray]):
        enc = self.face.encode(crops)
        return enc.tokens, enc.mask

    def speech_tokens(self, clips: list[np.ndarray], transcribe: bool = False):
        if self.speech_loudness is not None:
            from cmt.model.encoders.speech import normalise_loudness

            clips = [normalise_loudness(c, self.speech_loudness) for c in clips]
        out = self.speech.encode_batch(clips, transcribe=transcribe)
        tokens, mask = pool_time(out.tokens, out.mask)  # (B,T',d), (B,T')
        if self.speech_summary and out.hidden_states:
            summary = layer_summary(out.hidden_states, out.tokens, out.mask)  # (B,2L,d)
            tokens = torch.cat([summary, tokens], 1)
            mask = torch.cat([torch.ones(summary.shape[:2], dtype=torch.bool, device=mask.device), mask], 1)
        return tokens, mask, out.transcripts


def face_crop(encoders: Encoders, rgb: np.ndarray, is_crop: bool = False) -> np.ndarray:
    """The detected face, or the whole image when no face is found (corpus photos are framed)
    or when the image is already a face crop (FER2013's 48x48 faces: no detection)."""
    if is_crop:
        return rgb
    crop, _box = encoders.face.crop(rgb)
    return rgb if crop is None else crop
