"""Classification scores over EMOTIONS, the same for every corpus and model."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.metrics import precision_recall_fscore_support

from cmt.contract import EMOTIONS

ECE_BINS = 15  # equal-width bins of top-label confidence


def scores(y_true: list[str] | np.ndarray, probs: np.ndarray) -> dict:
    """y_true: emotion names (N,); probs: (N, len(EMOTIONS)) rows summing to 1."""
    labels = list(range(len(EMOTIONS)))
    t = np.array([EMOTIONS.index(y) for y in y_true])
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum(1, keepdims=True)  # float32 softmax rows drift from 1 by ~1e-7
    pred = p.argmax(1)
    present = sorted(set(t.tolist()))  # macro F1 over the classes the corpus carries
    ece, bins = calibration(t, p)
    prec, rec, f1, support = precision_recall_fscore_support(
        t, pred, labels=labels, zero_division=0
    )
    return {
        "n": int(len(t)),
        "accuracy": float(accuracy_score(t, pred)),
        "weighted_f1": float(f1_score(t, pred, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(t, pred, labels=present, average="macro", zero_division=0)),
        "cross_entropy": float(log_loss(t, _floor(p, 1e-7), labels=labels)),
        "ece": ece,
        "mean_confidence": float(p.max(1).mean()),
        "per_class": {
            e: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, e in enumerate(EMOTIONS)
        },
        "confusion": {"labels": list(EMOTIONS),
                      "matrix": confusion_matrix(t, pred, labels=labels).tolist()},
        "calibration_bins": bins,
    }


def calibration(t: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error of the top label (Guo et al. 2017): the answers binned by
    their confidence into n_bins equal-width bins over [0, 1]; the mean over answers of
    |accuracy - confidence| of their bin. Also each non-empty bin (for a reliability diagram).

    t: (N,) true class ids; p: (N, C) probabilities."""
    conf, correct = p.max(1), (p.argmax(1) == t).astype(float)
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)  # (N,) bin of each answer
    ece, bins = 0.0, []
    for b in range(n_bins):
        inside = which == b
        if not inside.any():
            continue
        acc, mean_conf = float(correct[inside].mean()), float(conf[inside].mean())
        ece += inside.mean() * abs(acc - mean_conf)
        bins.append({"low": b / n_bins, "high": (b + 1) / n_bins, "n": int(inside.sum()),
                     "confidence": mean_conf, "accuracy": acc})
    return float(ece), bins


def _floor(p: np.ndarray, eps: float) -> np.ndarray:
    """Probabilities of at least eps, rows still summing to 1 (a certain answer costs -log eps
    when wrong, not infinity)."""
    p = np.clip(p, eps, 1.0)
    return p / p.sum(1, keepdims=True)
