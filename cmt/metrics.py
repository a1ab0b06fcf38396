"""Classification scores over EMOTIONS, the same for every corpus and model."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.metrics import precision_recall_fscore_support

from cmt.contract import EMOTIONS


def scores(y_true: list[str] | np.ndarray, probs: np.ndarray) -> dict:
    """y_true: emotion names (N,); probs: (N, len(EMOTIONS)) rows summing to 1."""
    labels = list(range(len(EMOTIONS)))
    t = np.array([EMOTIONS.index(y) for y in y_true])
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum(1, keepdims=True)  # float32 softmax rows drift from 1 by ~1e-7
    pred = p.argmax(1)
    present = sorted(set(t.tolist()))  # macro F1 over the classes the corpus carries
    prec, rec, f1, support = precision_recall_fscore_support(
        t, pred, labels=labels, zero_division=0
    )
    return {
        "n": int(len(t)),
        "accuracy": float(accuracy_score(t, pred)),
        "weighted_f1": float(f1_score(t, pred, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(t, pred, labels=present, average="macro", zero_division=0)),
        "cross_entropy": float(log_loss(t, _floor(p, 1e-7), labels=labels)),
        "per_class": {
            e: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, e in enumerate(EMOTIONS)
        },
        "confusion": {"labels": list(EMOTIONS),
                      "matrix": confusion_matrix(t, pred, labels=labels).tolist()},
    }


def _floor(p: np.ndarray, eps: float) -> np.ndarray:
    """Probabilities of at least eps, rows still summing to 1 (a certain answer costs -log eps
    when wrong, not infinity)."""
    p = np.clip(p, eps, 1.0)
    return p / p.sum(1, keepdims=True)
