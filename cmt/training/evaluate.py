"""Scores of a fusion checkpoint on one corpus, through the modality that corpus carries."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cmt.contract import EMOTIONS
from cmt.model.checkpoint import CHECKPOINT_DIR
from cmt.training.metrics import scores

DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "cmt.pt"
# Corpora Attune trains on that have no test split of their own: dev and test are one held-out part.
HELD_OUT = {"ravdess": "its held-out actors (17-20)",
            "emodb": "its held-out speakers (cmt.training.corpora._group_split)",
            "facial_expressions": "its held-out identities (cmt.training.datasets.face.identity_split)"}


def evaluate(*, dataset: str, data_dir: Path, split: str = "dev", checkpoint: Path | None = None,
             modality: str | None = None, encoders=None) -> dict:
    """n, accuracy, weighted_f1, macro_f1, cross_entropy, ece, per_class, confusion,
    calibration_bins, mean_reliability (+ what was run). The answers are the front door's:
    stacked with the modality's expert and tempered by its reliability where the checkpoint
    has them."""
    from cmt.model.experts import experts_from_dict
    from cmt.model.reliability import Reliability
    from cmt.model.tokens import Encoders
    from cmt.training.experts import pool_read
    from cmt.model.fusion import fusion_from_checkpoint, read_checkpoint
    from cmt.training.corpora import features
    from cmt.model.stack import Stack
    from cmt.training.train import predict_pool

    path = Path(checkpoint or DEFAULT_CHECKPOINT)
    ckpt = read_checkpoint(path)
    model = fusion_from_checkpoint(ckpt, path)
    enc = encoders or Encoders(ckpt["config"].get("encoders"),
                               speech_summary=ckpt["config"].get("speech_summary", False),
                               speech_loudness=ckpt["config"].get("speech_loudness"))
    fs = features(dataset, Path(data_dir), split, enc, modality=modality)
    if fs.modality not in model.modalities:
        raise ValueError(f"{path.name} has no {fs.modality} input")
    t0 = time.perf_counter()
    stack, experts = Stack.from_dict(ckpt.get("stack")), experts_from_dict(ckpt.get("experts"))
    rel = {m: Reliability.from_dict(b) for m, b in (ckpt.get("reliability") or {}).items()}
    fused_source = (ckpt.get("probe") or {}).get("fused_source", True)
    probs = predict_pool(model, fs, stack=stack, experts=experts, reliability=rel,
                         fused_source=fused_source)
    ms = (time.perf_counter() - t0) * 1e3 / max(len(fs), 1)
    y = [EMOTIONS[i] for i in fs.labels.tolist()]
    out = scores(y, probs)
    out.update(dataset=dataset, split=split, modality=fs.modality, checkpoint=str(path),
               fusion_ms_per_sample=ms)
    if fs.modality in rel and fs.modality in experts:
        r = rel[fs.modality].score(pool_read(experts[fs.modality], fs)[1])
        out["mean_reliability"] = float(r.mean())
    if split == "test" and dataset in HELD_OUT:
        out["note"] = f"{dataset} has no test split of its own: test is {HELD_OUT[dataset]}, as dev"
    return out


def plot_confusion(result: dict, path: Path) -> Path:
    """The confusion matrix and, beside it, the reliability diagram (accuracy against
    confidence per bin, with the ECE)."""
    from matplotlib.figure import Figure

    m = np.array(result["confusion"]["matrix"], dtype=float)
    labels = result["confusion"]["labels"]
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(11, 5), dpi=120)
    ax, rd = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    _reliability_diagram(rd, result)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{result['dataset']} {result['split']}: macro F1 {result['macro_f1']:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _reliability_diagram(ax, result: dict) -> None:
    bins = result.get("calibration_bins") or []
    width = (bins[0]["high"] - bins[0]["low"]) if bins else 1 / 15
    lows = [b["low"] for b in bins]
    ax.bar(lows, [b["accuracy"] for b in bins], width=width, align="edge", color="tab:blue",
           edgecolor="black", label="accuracy")
    ax.bar(lows, [b["confidence"] - b["accuracy"] for b in bins], bottom=[b["accuracy"] for b in bins],
           width=width, align="edge", color="tab:red", alpha=0.3, edgecolor="tab:red", label="gap")
    ax.plot([0, 1], [0, 1], "--", color="gray")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    ax.set_title(f"reliability: ECE {result.get('ece', float('nan')):.3f} (n={result['n']})")
