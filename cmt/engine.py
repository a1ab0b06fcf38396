"""The inference engine: a wire-contract request in, a wire-contract response out.

The service (cmt.serve) puts it behind HTTP; the tutor can also hold one in-process
(embedded mode, and the fallback when the service is down). Both answer the same way.
"""

from __future__ import annotations

import threading
import time

from cmt.contract import AnalyzeRequest, AnalyzeResponse, reading_from_probs


class InputError(ValueError):
    """The request cannot be analysed as given; the message says why, for a person."""


class Engine:
    def __init__(self, model):
        self.model = model
        self.version: str = model.version
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    @classmethod
    def load(cls, checkpoint: str | None = None, device: str | None = None) -> Engine:
        from cmt import load_model

        return cls(load_model(checkpoint, device=device))

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        t0 = time.perf_counter()
        stage_ms: dict[str, float] = {}
        text = req.text if req.text and req.text.strip() else None
        face = audio = None
        if req.image_b64 is not None:
            face = self._decode("image", req.image_bytes(), stage_ms)
        if req.audio_b64 is not None:
            audio = self._decode("audio", req.audio_bytes(), stage_ms)
        t1 = time.perf_counter()
        with self._lock:
            pred = self.model.predict(text=text, face=face, audio=audio)
        stage_ms["model"] = (time.perf_counter() - t1) * 1e3
        return AnalyzeResponse.from_probs(
            pred.probs,
            modalities={m: reading_from_probs(p) for m, p in pred.modalities.items()},
            transcript=pred.transcript,
            model_version=self.version,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            stage_ms=stage_ms,
            attention=getattr(pred, "attention", None),
        )

    def _decode(self, kind: str, data: bytes, stage_ms: dict[str, float]):
        decoders = getattr(self.model, "decoders", {})
        if kind not in decoders:
            raise InputError(f"this model ({self.version}) does not read {kind}; send text")
        t = time.perf_counter()
        try:
            out = decoders[kind](data)
        except ValueError as e:
            raise InputError(str(e)) from e
        stage_ms[f"decode_{kind}"] = (time.perf_counter() - t) * 1e3
        return out
