"""The front door: `load_model()` -> EmotionModel -> `predict(text=..., face=..., audio=...)`.

For now the model reads text only: a frozen text encoder plus the head trained by
cmt.text_head. Face and audio are accepted and ignored (they are absent from
`Prediction.modalities`); the fusion model will answer them behind the same API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cmt.contract import EMOTIONS
from cmt.datasets.text import clean_text
from cmt.settings import Settings
from cmt.text_head import CHECKPOINT, TextHead, load_head

SAMPLE_RATE = 16000  # Hz
_MODELS = {"text-minilm": CHECKPOINT}  # shipped checkpoints, by name
DEFAULT_MODEL = "text-minilm"


class EmotionInputError(ValueError):
    """The input cannot be analysed: nothing to read, or the wrong type."""


@dataclass
class Prediction:
    label: str  # one of EMOTIONS, argmax of probs
    probs: dict[str, float]  # over EMOTIONS, sums to 1
    modalities: dict[str, dict[str, float]]  # each present and supported modality's own probs
    transcript: str | None = None
    attention: dict | None = None  # {"text": [[weight per word piece]]} for an attention head

    @property
    def confidence(self) -> float:
        return self.probs[self.label]


def available_models() -> list[str]:
    """Names `load_model` accepts besides a checkpoint path."""
    return [name for name, path in _MODELS.items() if path.is_file()]


def load_model(name_or_path: str | Path | None = None, device: str | None = None) -> EmotionModel:
    """Load a model by name (see available_models()) or checkpoint path; None: the default."""
    if name_or_path is None or str(name_or_path) in _MODELS:
        path = _MODELS[str(name_or_path or DEFAULT_MODEL)]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"unknown model {str(name_or_path)!r}: not a checkpoint file and not "
                             f"one of {sorted(_MODELS)}")
    return EmotionModel.from_checkpoint(path, device=device or Settings().device)


class EmotionModel:
    def __init__(self, head: TextHead, encoder, *, checkpoint: dict, version: str, device: str):
        self.head = head.to(device).eval()
        self.encoder = encoder
        self.checkpoint = checkpoint
        self.version = version
        self.device = device

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu") -> EmotionModel:
        from cmt.encoders.text import TextEncoder

        head, ckpt = load_head(path)
        max_length = ckpt.get("max_length", 128)
        encoder = TextEncoder(ckpt["encoder"], device=device, max_length=max_length)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
        tag = "minilm" if "minilm" in ckpt["encoder"].lower() else "text"
        version = f"text-{tag}-0.1+{digest}"
        return cls(head, encoder, checkpoint=ckpt, version=version, device=device)

    @property
    def dev_scores(self) -> dict:
        return self.checkpoint.get("scores", {}).get("dev", {})

    def predict(self, text: str | None = None, face: Any = None, audio: Any = None,
                sample_rate: int = SAMPLE_RATE) -> Prediction:
        """The emotion of one input. face/audio are accepted and, for now, ignored."""
        return self.predict_batch([{"text": text, "face": face, "audio": audio,
                                    "sample_rate": sample_rate}])[0]

    @torch.inference_mode()
    def predict_batch(self, items: list[dict]) -> list[Prediction]:
        """Each item is a dict of predict()'s keyword arguments; one Prediction per item."""
        texts = [self._text(item, i) for i, item in enumerate(items)]
        if not texts:
            return []
        hidden, mask = self.encoder.tokens(texts)  # (B, T, d), (B, T)
        logits, _ = self.head(hidden.to(self.device), mask.to(self.device))  # (B, n_classes)
        probs = logits.double().softmax(-1).cpu()  # (B, n_classes)
        probs = (probs / probs.sum(-1, keepdim=True)).tolist()
        weights = None
        if self.head.attn is not None:  # (B, T): how much each word piece counted
            weights = self.head.attn.weights(hidden.to(self.device), mask.to(self.device)).cpu()
        out = []
        for i, row in enumerate(probs):
            p = {e: float(v) for e, v in zip(EMOTIONS, row)}
            label = max(p, key=p.get)
            attention = None
            if weights is not None:
                attention = {"text": [weights[i, : int(mask[i].sum())].tolist()]}
            out.append(Prediction(label=label, probs=p, modalities={"text": dict(p)},
                                  attention=attention))
        return out

    def text_tokens(self, text: str) -> list[str]:
        """The word pieces that `attention["text"]` weighs, [CLS] and [SEP] included."""
        ids = self.encoder.tokenizer(clean_text(text), truncation=True,
                                     max_length=self.encoder.max_length)["input_ids"]
        return self.encoder.tokenizer.convert_ids_to_tokens(ids)

    @staticmethod
    def _text(item: dict, i: int) -> str:
        if not isinstance(item, dict):
            raise EmotionInputError(f"item {i}: expected a dict with text/face/audio, got "
                                    f"{type(item).__name__}")
        unknown = set(item) - {"text", "face", "audio", "sample_rate"}
        if unknown:
            raise EmotionInputError(f"item {i}: unknown keys {sorted(unknown)}; "
                                    "use text, face, audio, sample_rate")
        text = item.get("text")
        if text is not None and not isinstance(text, str):
            raise EmotionInputError(f"item {i}: text must be a string, got {type(text).__name__}")
        text = clean_text(text or "")
        if text:
            return text
        if item.get("face") is None and item.get("audio") is None:
            raise EmotionInputError(f"item {i}: nothing to analyze: give non-empty text "
                                    "(or a face image or audio)")
        raise EmotionInputError(f"item {i}: this model reads text only for now; face and audio "
                                "are not analysed yet, so give non-empty text as well")
