"""The inference engine: a wire-contract request in, a wire-contract response out.

The service (cmt.serve) puts it behind HTTP; the tutor can also hold one in-process
(embedded mode, and the fallback when the service is down). Both answer the same way.
"""

from __future__ import annotations

import logging
import threading
import time

from cmt.contract import AnalyzeRequest, AnalyzeResponse, reading_from_probs


log = logging.getLogger("cmt.engine")


class InputError(ValueError):
    """The request cannot be analysed as given; the message says why, for a person."""


class Engine:
    """`biometrics=False` refuses images and reads no emotion from voice (text-only affect)."""

    def __init__(self, model, *, biometrics: bool = True):
        self.model = model
        self.biometrics = biometrics
        self.version: str = model.version
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    @classmethod
    def load(cls, checkpoint: str | None = None, device: str | None = None, *,
             biometrics: bool = True) -> Engine:
        from cmt import load_model

        model = load_model(checkpoint, device=device)
        if hasattr(model, "warm_up"):
            model.warm_up()
        return cls(model, biometrics=biometrics)

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        (result,) = self.analyze_batch([req])
        if isinstance(result, Exception):
            raise result
        return result

    def analyze_batch(self, reqs: list[AnalyzeRequest]) -> list[AnalyzeResponse | Exception]:
        """Many requests, one model call; a bad request fails alone: an InputError (or, for a
        bug it triggered, the exception) in its slot."""
        t0 = time.perf_counter()
        results: list[AnalyzeResponse | InputError | None] = [None] * len(reqs)
        items, slots, stages = [], [], []
        for i, req in enumerate(reqs):
            stage_ms: dict[str, float] = {}
            try:
                items.append(self._inputs(req, stage_ms))
            except InputError as e:
                results[i] = e
                continue
            slots.append(i)
            stages.append(stage_ms)
        if items:
            t1 = time.perf_counter()
            preds = self._predict(items)
            model_ms = (time.perf_counter() - t1) * 1e3
            for i, pred, stage_ms in zip(slots, preds, stages, strict=True):
                if isinstance(pred, Exception):
                    results[i] = pred
                    continue
                stage_ms["model"] = model_ms
                results[i] = AnalyzeResponse.from_probs(
                    pred.probs,
                    modalities={m: reading_from_probs(p, getattr(pred, "reliability", {}).get(m))
                                for m, p in pred.modalities.items()},
                    transcript=pred.transcript,
                    model_version=self.version,
                    latency_ms=(time.perf_counter() - t0) * 1e3,
                    stage_ms=stage_ms,
                    attention=getattr(pred, "attention", None),
                    face_box=getattr(pred, "face_box", None),
                )
        return results

    def _inputs(self, req: AnalyzeRequest, stage_ms: dict[str, float]) -> dict:
        text = req.text if req.text and req.text.strip() else None
        allowed = set(req.modalities or ("text", "face", "speech"))
        if not self.biometrics:
            allowed &= {"text"}
            if req.image_b64 is not None:
                raise InputError("face analysis is switched off on this service (biometrics off)")
        face = audio = None
        if req.image_b64 is not None and "face" in allowed:
            face = self._decode("image", req.image_bytes(), stage_ms)
        if req.audio_b64 is not None:
            audio = self._decode("audio", req.audio_bytes(), stage_ms)
        item = {"text": text, "face": face, "audio": audio}
        if allowed != {"text", "face", "speech"}:
            item["modalities"] = sorted(allowed)
        return item

    def _predict(self, items: list[dict]) -> list:
        """The model on a batch; if the batch fails, each item alone finds which one, so one
        bad input (or one bug it triggers) does not fail the others."""
        with self._lock:
            try:
                return self.model.predict_batch(items)
            except Exception:
                return [self._one(item) for item in items]

    def _one(self, item: dict):
        try:
            return self.model.predict(**item)
        except ValueError as e:
            return InputError(str(e))
        except Exception as e:  # a bug, not the caller's fault: logged, and this item alone fails
            log.exception("model failed on one input")
            return e

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
