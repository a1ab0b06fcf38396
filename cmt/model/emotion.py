"""The front door: `load_model()` and `EmotionModel.predict(text=, face=, audio=)`.

An EmotionModel is the fusion checkpoint plus the frozen encoders it was trained on:
text (MiniLM, top layers tuned), face (Haar detector + tuned EfficientNet-Lite0), speech (Whisper tiny.en, whose
one encoder pass gives both the speech tokens and the transcript). Any subset of inputs
is normal; a face that is not found or a silent clip simply leaves that modality out.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cmt.contract import EMOTIONS, MODALITIES
from cmt.model.checkpoint import CHECKPOINT_DIR
from cmt.model.encoders.text import clean_text
from cmt.model.experts import Expert, experts_from_dict
from cmt.model.fusion import FusionModel, OneModality, fusion_from_checkpoint, read_checkpoint
from cmt.model.reliability import Reliability
from cmt.model.stack import Stack, log_probs, subset_key
from cmt.model.tokens import MAX_TOKENS, Encoders

SAMPLE_RATE = 16000  # Hz
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "cmt.pt"
# An image whose shorter side is at most this is read as a face crop (no detection): the
# detector looks for faces of at least a fifth of the frame, which a frame this small cannot
# show, and face-crop corpora (FER2013: 48x48) and thumbnails are this small.
CROP_MAX_SIDE = 64  # px


@dataclass
class Prediction:
    label: str
    probs: dict[str, float]  # fused, over EMOTIONS
    modalities: dict[str, dict[str, float]] = field(default_factory=dict)  # each present one alone
    transcript: str | None = None
    attention: dict[str, dict[str, float]] | None = None  # cross-modal attention shares
    face_box: tuple[int, int, int, int] | None = None
    # per present modality: how much its answer is worth for this input, 0..1 (cmt.model.reliability);
    # absent for a modality the checkpoint has no reliability model for
    reliability: dict[str, float] = field(default_factory=dict)


# checkpoints that are parts of encoders (cmt tune-face, cmt tune-text), not fusion models
ENCODER_FILES = ("face_tuned", "text_tuned")


def available_models() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt")
                  if p.stem not in ENCODER_FILES)


def load_model(name_or_path: str | None = None, device: str | None = None) -> EmotionModel:
    """None: the shipped default; a name from available_models(); or a checkpoint path."""
    path = DEFAULT_CHECKPOINT if name_or_path is None else Path(name_or_path)
    if not path.is_file() and (CHECKPOINT_DIR / f"{name_or_path}.pt").is_file():
        path = CHECKPOINT_DIR / f"{name_or_path}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no model {name_or_path!r}; available: {available_models()}")
    blob = path.read_bytes()
    ckpt = read_checkpoint(path)
    fusion = fusion_from_checkpoint(ckpt, path)
    device = device or "cpu"
    encoders = Encoders(ckpt["config"].get("encoders"), device=device,
                        speech_summary=ckpt["config"].get("speech_summary", False),
                        speech_loudness=ckpt["config"].get("speech_loudness"))
    version = f"cmt-{ckpt['dims']['fusion']}-{hashlib.sha256(blob).hexdigest()[:8]}"
    return EmotionModel(fusion.to(device).eval(), encoders, version,
                        stack=Stack.from_dict(ckpt.get("stack")),
                        experts=experts_from_dict(ckpt.get("experts")),
                        reliability={m: Reliability.from_dict(b)
                                     for m, b in (ckpt.get("reliability") or {}).items()})


class EmotionModel:
    def __init__(self, fusion: FusionModel, encoders: Encoders, version: str,
                 stack: Stack | None = None, experts: dict[str, Expert] | None = None,
                 reliability: dict[str, Reliability] | None = None, runtime: str = "auto"):
        from cmt.model.encoders.onnx import wanted

        self.fusion, self.encoders, self.version = fusion, encoders, version
        self.stack = stack  # calibrated weighing of fused, single-modality and expert answers
        self.experts = experts or {}  # modality -> its own classifier (cmt.model.experts)
        self.reliability = reliability or {}  # modality -> distance to its training data
        self.modalities = tuple(m for m in MODALITIES if m in fusion.modalities)
        # a batch of one modality (a face frame, a typed turn) is fused on ONNX Runtime where it
        # is installed, on a CPU: a sixth of torch's time for a face frame; torch otherwise
        self._use_onnx = wanted(runtime, next(fusion.parameters()).device)
        self._onnx: dict[str, object] = {}  # modality -> its export's run, or False: torch
        self._onnx_version = None  # cmt.model.encoders.onnx.state_version of those exports
        self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                                        thread_name_prefix="face-detect")

    def warm_up(self) -> None:
        """Load every encoder now and run each once, so the first request is not the slow one."""
        rng = np.random.default_rng(0)
        audio = (0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220)).astype(np.float32)
        face = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        self.encoders.text_tokens(["warm up"])
        self.encoders.face_tokens([face])
        self.encoders.face.crop(face)
        self.encoders.speech_tokens([audio], transcribe=True)
        for m in self.modalities:  # each modality's fusion export, made or loaded now
            self._fuse({m: (torch.zeros(1, 1, self.fusion.dims.d_in[m]),
                            torch.ones(1, 1, dtype=torch.bool))})

    @property
    def decoders(self) -> dict:
        """Bytes -> model input, for the wire: what the engine may hand to predict()."""
        from cmt.model.encoders.face import decode_image
        from cmt.model.encoders.speech import decode_audio

        return {"image": decode_image, "audio": lambda data: decode_audio(data)[0]}

    def predict(self, text: str | None = None, face: np.ndarray | None = None,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
                modalities: list[str] | None = None, face_is_crop: bool = False) -> Prediction:
        """text: str; face: RGB uint8 (H, W, 3); audio: float32 mono at sample_rate.
        face_is_crop: the image is already a face crop (read whole, no detection); images
        no larger than CROP_MAX_SIDE are read so anyway."""
        return self.predict_batch([dict(text=text, face=face, audio=audio, sample_rate=sample_rate,
                                        modalities=modalities, face_is_crop=face_is_crop)])[0]

    @torch.inference_mode()
    def predict_batch(self, items: list[dict]) -> list[Prediction]:
        if not items:
            return []
        items = [_check(i, it) for i, it in enumerate(items)]
        tokens: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {m: {} for m in MODALITIES}
        boxes: dict[int, tuple] = {}
        transcripts: dict[int, str] = {}
        self._speech(items, tokens, transcripts)
        self._face(items, tokens, boxes)
        self._text(items, tokens, transcripts)
        present = [[m for m in self.modalities if i in tokens[m]] for i in range(len(items))]
        for i, mods in enumerate(present):
            if not mods:  # in a batch, the message says which item
                where = f"item {i}: " if len(items) > 1 else ""
                raise ValueError(where + _nothing_message(items[i], transcripts.get(i)))
        # one forward: each item with all its modalities, then each modality alone (an item
        # with one modality is already alone: its row serves both)
        rows = [(i, tuple(mods)) for i, mods in enumerate(present)]
        rows += [(i, (m,)) for i, mods in enumerate(present) if len(mods) > 1 for m in mods]
        batch = self._batch(rows, tokens)
        logits, extras = self._fuse(batch)
        probs = logits.softmax(-1).double().numpy()
        out = []
        singles = {(i, mods[0]): probs[j] for j, (i, mods) in enumerate(rows) if len(mods) == 1}
        own, rel = self._experts(tokens) if self.stack is not None else ({}, {})
        for i, mods in enumerate(present):
            fused = _as_dict(self._stacked(probs[i], mods, singles, own, i, rel))
            att = None
            if "attention" in extras and len(mods) > 1:
                att = {m: {o: float(v[i]) for o, v in row.items()}
                       for m, row in extras["attention"].items() if m in mods}
            out.append(Prediction(label=max(fused, key=fused.get), probs=fused,
                                  modalities={m: _as_dict(self._stacked(singles[(i, m)], [m], singles,
                                                                                        own, i, rel))
                                              for m in mods},
                                  transcript=transcripts.get(i), attention=att, face_box=boxes.get(i),
                                  reliability={m: float(rel[(i, m)]) for m in mods if (i, m) in rel}))
        return out

    def _fuse(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The fusion's logits (B, C) and extras; a batch of one modality runs on ONNX Runtime
        where it can (its extras, the cross-modal attention, are empty for a lone modality)."""
        if len(batch) == 1 and self._use_onnx:
            ((m, (x, mask)),) = batch.items()
            run = self._fusion_onnx(m)
            if run is not None:
                return torch.from_numpy(run({"x": x.numpy(), "mask": mask.numpy()})[0]), {}
        logits, _, extras = self.fusion(batch)
        return logits, extras

    def _fusion_onnx(self, modality: str):
        """The fusion on `modality` alone on ONNX Runtime (None: torch serves), exported at the
        first call and cached by a digest of the fusion's weights (cmt.model.encoders.onnx)."""
        from cmt.model.encoders.onnx import state_version

        version = state_version(self.fusion)
        if version != self._onnx_version:  # weights changed in place: digest again, new exports
            self._onnx, self._onnx_version = {}, version
        if modality not in self._onnx:
            from cmt.model.encoders.onnx import prepared

            example = (torch.zeros(2, 3, self.fusion.dims.d_in[modality]),
                       torch.tensor([[True, True, True], [True, True, False]]))
            axes = {"x": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                    "logits": {0: "batch"}}
            self._onnx[modality] = prepared(
                f"fusion-{modality}", OneModality(self.fusion, modality), example,
                input_names=["x", "mask"], output_names=["logits"], dynamic_axes=axes) or False
        return self._onnx[modality] or None

    def _stacked(self, fused: np.ndarray, mods: list[str], singles: dict, own: dict,
                 i: int, rel: dict) -> np.ndarray:
        """The stack's answer for item i with modalities mods (cmt.model.stack.source_names' order),
        each source tempered by the reliability of what it reads (the fused answer: by the
        least reliable of mods)."""
        if self.stack is None:
            return fused
        r = {m: rel.get((i, m), 1.0) for m in mods}
        parts = [fused] + ([singles[(i, m)] for m in sorted(mods)] if len(mods) > 1 else [])
        scales = [min(r.values())] + ([r[m] for m in sorted(mods)] if len(mods) > 1 else [])
        parts += [own[(i, m)] for m in sorted(mods) if (i, m) in own]
        scales += [r[m] for m in sorted(mods) if (i, m) in own]
        logps = [log_probs(p)[None] for p in parts]
        return self.stack.combine(subset_key(mods), logps, [np.array([s]) for s in scales])[0]

    def _experts(self, tokens) -> tuple[dict[tuple[int, str], np.ndarray], dict[tuple[int, str], float]]:
        """(item, modality) -> that modality's expert probabilities (C,), from the same tokens;
        and -> the modality's reliability for that item, where the checkpoint has a model of it."""
        out, rel = {}, {}
        for m, expert in self.experts.items():
            have = tokens.get(m) or {}
            if not have:
                continue
            batch = self._batch([(i, (m,)) for i in have], {m: have})[m]
            probs, feats = expert.read(*batch)
            r = self.reliability[m].score(feats) if m in self.reliability else None
            for row, i in enumerate(have):
                out[(i, m)] = probs[row]
                if r is not None:
                    rel[(i, m)] = r[row]
        return out, rel

    # -- per modality
    def _speech(self, items, tokens, transcripts) -> None:
        from cmt.model.encoders.speech import is_silent, prepare_audio

        idx = [i for i, it in enumerate(items) if it["audio"] is not None]
        clips = {i: prepare_audio(items[i]["audio"], items[i]["sample_rate"], SAMPLE_RATE)[0] for i in idx}
        heard = [i for i in idx if not is_silent(clips[i])]
        for i in set(idx) - set(heard):
            transcripts[i] = ""
        if not heard:
            return
        t, mask, texts = self.encoders.speech_tokens([clips[i] for i in heard], transcribe=True)
        for row, i in enumerate(heard):
            transcripts[i] = texts[row] if texts else None
            if "speech" in self.modalities and _allowed(items[i], "speech"):
                tokens["speech"][i] = _trim(t[row], mask[row], MAX_TOKENS["speech"])

    def _face(self, items, tokens, boxes) -> None:
        idx = [i for i, it in enumerate(items) if it["face"] is not None and _allowed(it, "face")]
        crops = {}
        # the detector is the costly part of a frame and cannot be batched: a batch's frames
        # are searched in parallel (OpenCV releases the GIL); a face crop is read whole
        search = [i for i in idx if not _is_crop(items[i])]
        boxes_of = dict(zip(search, self._pool.map(self.encoders.face.crop, [items[i]["face"] for i in search])
                            if len(search) > 1 else
                            [self.encoders.face.crop(items[i]["face"]) for i in search], strict=True))
        found = [boxes_of[i] if i in boxes_of else (items[i]["face"], _whole(items[i]["face"]))
                 for i in idx]
        for i, (crop, box) in zip(idx, found, strict=True):
            if crop is not None:
                crops[i], boxes[i] = crop, box
        if not crops or "face" not in self.modalities:
            return
        t, mask = self.encoders.face_tokens(list(crops.values()))
        for row, i in enumerate(crops):
            tokens["face"][i] = _trim(t[row], mask[row], MAX_TOKENS["face"])

    def _text(self, items, tokens, transcripts) -> None:
        texts = {}
        for i, it in enumerate(items):
            words = it["text"] if it["text"] and it["text"].strip() else transcripts.get(i)
            if words and words.strip() and _allowed(it, "text"):
                texts[i] = clean_text(words).strip()
        if not texts or "text" not in self.modalities:
            return
        t, mask = self.encoders.text_tokens(list(texts.values()))
        for row, i in enumerate(texts):
            tokens["text"][i] = _trim(t[row], mask[row], MAX_TOKENS["text"])

    def _batch(self, rows, tokens) -> dict:
        # a modality no row reads is left out where the fusion allows it: its keys would all be
        # masked, and a face frame then runs one stream of the fusion instead of three
        used = {m for _, mods in rows for m in mods}
        batch = {}
        for m in self.modalities:
            if m not in tokens or (m not in used and not self.fusion.reads_absent_modalities):
                continue
            have = [tokens[m].get(i) if m in mods else None for i, mods in rows]
            d = self.fusion.dims.d_in[m]
            T = max([h[0].shape[0] for h in have if h is not None], default=1)
            x = torch.zeros(len(rows), T, d)
            mask = torch.zeros(len(rows), T, dtype=torch.bool)
            for r, h in enumerate(have):
                if h is not None:
                    n = h[0].shape[0]
                    x[r, :n], mask[r, :n] = h[0], True
            batch[m] = (x, mask)
        return batch


def _trim(t: torch.Tensor, mask: torch.Tensor, limit: int):
    real = t[mask.bool()][:limit].float()  # (n, d)
    return real, torch.ones(real.shape[0], dtype=torch.bool)


def _is_crop(item: dict) -> bool:
    return bool(item.get("face_is_crop")) or min(item["face"].shape[:2]) <= CROP_MAX_SIDE


def _whole(image: np.ndarray) -> tuple[int, int, int, int]:
    return 0, 0, int(image.shape[1]), int(image.shape[0])


def _allowed(item: dict, modality: str) -> bool:
    return item.get("modalities") is None or modality in item["modalities"]


def _as_dict(p: np.ndarray) -> dict[str, float]:
    p = p / p.sum()
    return {e: float(v) for e, v in zip(EMOTIONS, p)}


def _nothing_message(item: dict, transcript: str | None) -> str:
    parts = []
    if item["face"] is not None:
        parts.append("no face was found in the image")
    if item["audio"] is not None:
        parts.append("no speech was heard in the audio" if not transcript else "speech is not analysed here")
    if not parts:
        return "nothing to analyse: give text, a face image or audio"
    return "nothing to analyse: " + " and ".join(parts)


def _check(i: int, item: dict) -> dict:
    """Validate one predict() input; errors say which input is wrong and how."""
    unknown = set(item) - {"text", "face", "audio", "sample_rate", "modalities", "face_is_crop"}
    if unknown:
        raise ValueError(f"item {i}: unknown keys {sorted(unknown)}")
    text, face, audio = item.get("text"), item.get("face"), item.get("audio")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"item {i}: text must be a str")
    if face is not None:
        face = np.asarray(face)
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ValueError(f"item {i}: face must be an RGB uint8 array (H, W, 3), got "
                             f"{face.dtype} {face.shape}")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"item {i}: audio must be a non-empty mono float32 array")
        if not np.isfinite(audio).all():
            raise ValueError(f"item {i}: audio contains NaN or infinity")
    sr = int(item.get("sample_rate") or SAMPLE_RATE)
    if sr <= 0:
        raise ValueError(f"item {i}: sample_rate must be positive")
    return {"text": text, "face": face, "audio": audio, "sample_rate": sr,
            "modalities": item.get("modalities"), "face_is_crop": bool(item.get("face_is_crop"))}
