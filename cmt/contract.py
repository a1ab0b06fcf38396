"""The wire contract between the tutor and the CMT inference service.

One module of pydantic schemas, shared by the server (cmt.serve) and its clients
(tutor.client). Importing it needs no torch.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EMOTIONS: tuple[str, ...] = ("neutral", "joy", "sadness", "anger", "fear", "disgust", "surprise")
MODALITIES: tuple[str, ...] = ("text", "face", "speech")

Emotion = Literal["neutral", "joy", "sadness", "anger", "fear", "disgust", "surprise"]
Modality = Literal["text", "face", "speech"]

MAX_TEXT_CHARS = 4_000  # characters; a chat message, not a document
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # bytes, encoded (JPEG/PNG)
MAX_AUDIO_BYTES = 16 * 1024 * 1024  # bytes, encoded (WAV/FLAC/OGG/...)
MAX_AUDIO_SECONDS = 30.0  # s, one utterance
PROB_TOLERANCE = 1e-3


BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# JSON Schema: non-blank text, or an image, or audio (what AnalyzeRequest requires)
SOMETHING_TO_ANALYZE = [
    {"required": ["text"], "properties": {"text": {"type": "string", "pattern": r"\S"}}},
    {"required": ["image_b64"], "properties": {"image_b64": {"type": "string", "minLength": 1}}},
    {"required": ["audio_b64"], "properties": {"audio_b64": {"type": "string", "minLength": 1}}},
]


def _check_probs(probs: dict[str, float]) -> dict[str, float]:
    if set(probs) != set(EMOTIONS):
        missing = sorted(set(EMOTIONS) - set(probs))
        extra = sorted(set(probs) - set(EMOTIONS))
        raise ValueError(f"probabilities must cover exactly {EMOTIONS}; missing {missing}, extra {extra}")
    if any(not math.isfinite(p) or p < 0 for p in probs.values()):
        raise ValueError("probabilities must be finite and non-negative")
    total = sum(probs.values())
    if abs(total - 1.0) > PROB_TOLERANCE:
        raise ValueError(f"probabilities must sum to 1, got {total:.4f}")
    return {e: float(probs[e]) for e in EMOTIONS}


class AnalyzeRequest(BaseModel):
    """What the tutor sends: any subset of text, a face image and an audio clip.

    Over JSON, image and audio travel base64-encoded (small payloads); the multipart
    form of POST /v1/analyze takes them as files.
    """

    # The schema says what _something_to_analyze checks: at least one of them, not empty.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": SOMETHING_TO_ANALYZE})

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image_b64: str | None = Field(default=None, description="JPEG or PNG, base64",
                                  json_schema_extra={"pattern": BASE64_PATTERN})
    audio_b64: str | None = Field(default=None, description="WAV, FLAC, OGG or MP3, base64",
                                  json_schema_extra={"pattern": BASE64_PATTERN})
    student_id: str | None = Field(default=None, max_length=128)
    modalities: list[Modality] | None = Field(
        default=None, description="modalities whose emotion may be read; None: all given. "
        "Audio is still transcribed when speech is excluded.")

    @field_validator("text")
    @classmethod
    def _text_is_clean(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if "\x00" in v:
            raise ValueError("text must not contain NUL characters")
        return v

    @field_validator("image_b64", "audio_b64")
    @classmethod
    def _is_base64(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError("not valid base64") from e
        return v

    @model_validator(mode="after")
    def _something_to_analyze(self) -> AnalyzeRequest:
        has_text = self.text is not None and self.text.strip() != ""
        if not (has_text or self.image_b64 or self.audio_b64):
            raise ValueError("nothing to analyze: give non-empty text, an image or audio")
        return self

    def image_bytes(self) -> bytes | None:
        return base64.b64decode(self.image_b64) if self.image_b64 else None

    def audio_bytes(self) -> bytes | None:
        return base64.b64decode(self.audio_b64) if self.audio_b64 else None


class ModalityReading(BaseModel):
    """One modality's own view: its probabilities over EMOTIONS."""

    label: Emotion
    confidence: float = Field(ge=0, le=1)
    probs: dict[str, float]
    reliability: float | None = Field(
        default=None, ge=0, le=1, description="how much this modality's reading is worth for "
        "this input: near 1 for inputs like the training data, near 0 for unlike ones (whose "
        "probabilities are then near uniform); None when the model does not measure it")

    @field_validator("probs")
    @classmethod
    def _probs_ok(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_probs(v)


class AnalyzeResponse(BaseModel):
    """What the CMT answers: the fused reading, each modality's reading, and timings."""

    label: Emotion
    confidence: float = Field(ge=0, le=1)
    probs: dict[str, float]
    modalities: dict[Modality, ModalityReading] = Field(default_factory=dict)
    transcript: str | None = None
    model_version: str
    latency_ms: float = Field(ge=0, description="server-side total")
    stage_ms: dict[str, float] = Field(default_factory=dict, description="server-side per stage")
    degraded: bool = Field(default=False, description="true when a fallback model answered")
    face_box: tuple[int, int, int, int] | None = Field(default=None, description="x, y, w, h")
    attention: dict[str, dict[str, float]] | None = Field(
        default=None, description="per modality: share of its cross-attention on each other one")

    @field_validator("probs")
    @classmethod
    def _probs_ok(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_probs(v)

    @classmethod
    def from_probs(cls, probs: dict[str, float], **kw) -> AnalyzeResponse:
        label = max(probs, key=probs.get)
        return cls(label=label, confidence=probs[label], probs=probs, **kw)


class SimilarityRequest(BaseModel):
    """Two texts to compare: a student's free-text answer and an expected idea."""

    model_config = ConfigDict(extra="forbid")

    a: str = Field(max_length=MAX_TEXT_CHARS)
    b: str = Field(max_length=MAX_TEXT_CHARS)


class SimilarityResponse(BaseModel):
    """How alike two texts mean: the text encoder's cosine, shifted down so that unrelated
    sentences sit near 0 (about -0.1 to 0.9); the tutor takes the larger of it and word overlap."""

    similarity: float = Field(ge=-2, le=1)
    model_version: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx of the service has this body."""

    error: str
    detail: str


def reading_from_probs(probs: dict[str, float], reliability: float | None = None) -> ModalityReading:
    label = max(probs, key=probs.get)
    return ModalityReading(label=label, confidence=probs[label], probs=probs, reliability=reliability)
