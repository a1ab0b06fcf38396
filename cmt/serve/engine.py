"""The inference engine: a wire-contract request in, a wire-contract response out.

The service (cmt.serve) puts it behind HTTP; the tutor can also hold one in-process
(embedded mode, and the fallback when the service is down). Both answer the same way.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time

from cmt.contract import AnalyzeRequest, AnalyzeResponse, reading_from_probs


log = logging.getLogger("cmt.serve.engine")


class InputError(ValueError):
    """The request cannot be analysed as given; the message says why, for a person."""


LANES: tuple[str, ...] = ("text", "face", "speech")  # by cost: a request's costliest input


def lane(req: AnalyzeRequest) -> str:
    """The lane a request runs in: "speech" with audio, else "face" with an image, else "text".
    Lanes run side by side, so a text turn never waits behind a batch of speech."""
    if req.audio_b64:
        return "speech"
    return "face" if req.image_b64 else "text"


class Engine:
    """`biometrics=False` refuses images and reads no emotion from voice (text-only affect)."""

    def __init__(self, model, *, biometrics: bool = True, text_encoder: str | None = None,
                 device: str | None = None, similarity=None):
        self.model = model
        self.biometrics = biometrics
        self.version: str = model.version
        # Answer similarity: the base sentence encoder `text_encoder` (its cosine is what the
        # lesson packs' thresholds were set on; the model's own text encoder is tuned for
        # emotion). Loaded at the first comparison; None: this engine compares nothing unless
        # given `similarity`, a function (a, b) -> float to use instead (tests).
        self.text_encoder, self.device = text_encoder, device or "cpu"
        self._similarity = similarity
        self._similarity_lock = threading.Lock()
        # One model call at a time per lane: torch modules are not re-entrant across threads
        # for the same work (Whisper's decoder keeps a cache), but lanes share no encoder
        # state that changes (the speech lane alone runs Whisper).
        self._locks = {name: threading.Lock() for name in LANES}

    @classmethod
    def load(cls, checkpoint: str | None = None, device: str | None = None, *,
             biometrics: bool = True, text_encoder: str | None = None) -> Engine:
        """The model `checkpoint` names, warmed up; with `text_encoder`, its answer similarity
        then loads in a thread (a comparison asked before it is ready waits for it)."""
        from cmt import load_model
        from cmt.model.runtime import ready_to_serve

        model = load_model(checkpoint, device=device)
        ready_to_serve(model)  # threads, and the decoders' lazy imports (cmt.model.runtime)
        engine = cls(model, biometrics=biometrics, text_encoder=text_encoder, device=device)
        if hasattr(model, "warm_up"):
            model.warm_up()
        if text_encoder is not None:  # loads the encoder (an empty pair compares nothing);
            # after the warm-up, which imported transformers: two threads importing it at once
            # can fail ("cannot import name 'AutoModel'")
            threading.Thread(target=engine.similarity, args=("", ""), name="similarity-load",
                             daemon=True).start()
        return engine

    def similarity(self, a: str, b: str) -> float:
        """How alike `a` and `b` mean (cmt.contract.SimilarityResponse). Raises InputError where
        this engine has no text encoder for it."""
        with self._similarity_lock:
            if self._similarity is None:
                if self.text_encoder is None:
                    raise InputError(f"this model ({self.version}) does not compare texts")
                from cmt.model.encoders.text import TextEncoder, similarity_fn

                self._similarity = similarity_fn(TextEncoder(self.text_encoder, device=self.device))
            if not a.strip() or not b.strip():
                return -1.0  # nothing to compare (the warm-up asks this)
            return self._similarity(a, b)

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        (result,) = self.analyze_batch([req])
        if isinstance(result, Exception):
            raise result
        return result

    def analyze_batch(self, reqs: list[AnalyzeRequest]) -> list[AnalyzeResponse | Exception]:
        """Many requests, one model call per lane; each request fails alone: an InputError
        (bad input: the service's 422) or, for a bug it triggered, the exception (a 500 for that
        request only) in its slot. Whatever one input raises, the others are answered."""
        results: list[AnalyzeResponse | Exception | None] = [None] * len(reqs)
        for name in LANES:
            idx = [i for i, req in enumerate(reqs) if lane(req) == name]
            if idx:
                for i, result in zip(idx, self._run([reqs[i] for i in idx], name), strict=True):
                    results[i] = result
        return results

    def _run(self, reqs: list[AnalyzeRequest], name: str) -> list[AnalyzeResponse | Exception]:
        t0 = time.perf_counter()
        results: list[AnalyzeResponse | Exception | None] = [None] * len(reqs)
        items, slots, stages = [], [], []
        for i, req in enumerate(reqs):
            stage_ms: dict[str, float] = {}
            try:
                items.append(self._inputs(req, stage_ms))
            except Exception as e:  # noqa: BLE001  the item's own failure, in its slot
                results[i] = _own_failure(e, "decoding")
                continue
            slots.append(i)
            stages.append(stage_ms)
        if items:
            t1 = time.perf_counter()
            with self._locks[name]:
                preds = self._predict(items)
            model_ms = (time.perf_counter() - t1) * 1e3
            for i, pred, stage_ms in zip(slots, preds, stages, strict=True):
                if isinstance(pred, Exception):
                    results[i] = pred
                    continue
                stage_ms["model"] = model_ms
                try:
                    results[i] = self._response(pred, stage_ms, t0)
                except Exception as e:  # noqa: BLE001
                    results[i] = _own_failure(e, "answering")
        return results

    def _response(self, pred, stage_ms: dict[str, float], t0: float) -> AnalyzeResponse:
        readings = [pred.probs, *pred.modalities.values()]
        if not all(math.isfinite(p) for probs in readings for p in probs.values()):
            raise InputError("this input could not be read: the model's reading of it is not a "
                             "number (is the audio or image extreme?)")
        reliability = getattr(pred, "reliability", None) or {}  # per modality, where measured
        return AnalyzeResponse.from_probs(
            pred.probs,
            modalities={m: reading_from_probs(p, reliability.get(m))
                        for m, p in pred.modalities.items()},
            transcript=pred.transcript,
            model_version=self.version,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            stage_ms=stage_ms,
            attention=getattr(pred, "attention", None),
            face_box=getattr(pred, "face_box", None),
        )

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
        try:
            preds = self.model.predict_batch(items)
            if len(preds) == len(items):
                return preds
            log.error("the model answered %d items for %d", len(preds), len(items))
        except Exception:  # noqa: BLE001  found item by item below
            pass
        return [self._one(item) for item in items]

    def _one(self, item: dict):
        try:
            return self.model.predict(**item)
        except ValueError as e:
            return InputError(_plain(str(e)))
        except Exception as e:  # noqa: BLE001  a bug, not the caller's fault: this item fails
            return _own_failure(e, "the model")

    def _decode(self, kind: str, data: bytes, stage_ms: dict[str, float]):
        decoders = getattr(self.model, "decoders", {})
        if kind not in decoders:
            raise InputError(f"this model ({self.version}) does not read {kind}; send text")
        t = time.perf_counter()
        try:
            out = decoders[kind](data)
        except ValueError as e:
            raise InputError(_plain(str(e))) from e
        except MemoryError as e:
            raise InputError(f"the {kind} is too large to decode") from e
        stage_ms[f"decode_{kind}"] = (time.perf_counter() - t) * 1e3
        return out


def _own_failure(e: Exception, where: str) -> Exception:
    """What one item's exception becomes: bad input (InputError) stays one; running out of
    memory on it is bad input too; anything else is a bug, logged, failing this item alone."""
    if isinstance(e, InputError):
        return e
    if isinstance(e, MemoryError):
        return InputError("this input is too large to analyse")
    log.error("%s failed on one input", where, exc_info=e)
    return e


def _plain(message: str) -> str:
    """A decoder's message for a person: without the reprs of Python objects that some
    libraries put in theirs ("cannot identify image file <_io.BytesIO object at 0x7f...>")."""
    return _REPR.sub("the data", message)


_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
