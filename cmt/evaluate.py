"""Scores of a fusion checkpoint on one corpus, through the modality that corpus carries."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cmt.contract import EMOTIONS
from cmt.metrics import scores

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "cmt.pt"
# Corpora Attune trains on that have no test split of their own: dev and test are one held-out part.
HELD_OUT = {"ravdess": "its held-out actors (17-20)",
            "facial_expressions": "its held-out identities (cmt.datasets.face.identity_split)"}


def evaluate(*, dataset: str, data_dir: Path, split: str = "dev", checkpoint: Path | None = None,
             modality: str | None = None, encoders=None) -> dict:
    """n, accuracy, weighted_f1, macro_f1, cross_entropy, per_class, confusion (+ what was run)."""
    from cmt.experts import experts_from_dict
    from cmt.fusion import fusion_from_checkpoint, read_checkpoint
    from cmt.pipeline import Encoders, features
    from cmt.stack import Stack
    from cmt.train import predict_pool

    path = Path(checkpoint or DEFAULT_CHECKPOINT)
    ckpt = read_checkpoint(path)
    model = fusion_from_checkpoint(ckpt, path)
    enc = encoders or Encoders(ckpt["config"].get("encoders"),
                               speech_summary=ckpt["config"].get("speech_summary", False))
    fs = features(dataset, Path(data_dir), split, enc, modality=modality)
    if fs.modality not in model.modalities:
        raise ValueError(f"{path.name} has no {fs.modality} input")
    t0 = time.perf_counter()
    stack, experts = Stack.from_dict(ckpt.get("stack")), experts_from_dict(ckpt.get("experts"))
    probs = predict_pool(model, fs, stack=stack, experts=experts)
    ms = (time.perf_counter() - t0) * 1e3 / max(len(fs), 1)
    y = [EMOTIONS[i] for i in fs.labels.tolist()]
    out = scores(y, probs)
    out.update(dataset=dataset, split=split, modality=fs.modality, checkpoint=str(path),
               fusion_ms_per_sample=ms)
    if split == "test" and dataset in HELD_OUT:
        out["note"] = f"{dataset} has no test split of its own: test is {HELD_OUT[dataset]}, as dev"
    return out


def plot_confusion(result: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    m = np.array(result["confusion"]["matrix"], dtype=float)
    labels = result["confusion"]["labels"]
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(6, 5), dpi=120)
    ax = fig.add_subplot()
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
