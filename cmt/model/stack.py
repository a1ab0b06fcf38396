"""Calibrated stacking: the fused answer is not let below the modalities it was given.

For an input whose present modalities are S, the fusion model gives p_S (all of S fused)
and, for each m in S, p_m (m alone); each m with an expert (cmt.model.experts) gives e_m. The
stack answers

    softmax(w_S,fused * log p_S + sum over m in S of (w_S,m * log p_m + v_S,m * log e_m))

with non-negative weights per subset S (p_m only when S has several modalities; for a single
modality without an expert, one weight: a temperature). `source_names` gives the order.
The weights are fitted by cross-entropy on label-matched tuples from a calibration split of
train that the fusion model never trained on (`cmt.training.train` holds it out), so where adding a
weak modality (a face the CNN reads poorly) would pull the fused answer down, the stack leans
on the modalities that carry the signal, and where fusion helps it keeps fusion.

    stack = fit_stack(sources_by_subset, labels_by_subset)
    probs = stack.combine("face+text", [logp_fused, logp_face, logp_text, logp_expert_text])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS = 1e-8


def log_probs(p: np.ndarray) -> np.ndarray:
    """Probabilities -> their logs, a zero counting as EPS (the stack's inputs)."""
    return np.log(np.clip(p, EPS, 1.0))


def subset_key(mods) -> str:
    """A subset's name: its modalities sorted and joined by '+' (e.g. 'face+text')."""
    return "+".join(sorted(mods))


def source_names(mods, experts=()) -> list[str]:
    """The stack's sources for the modalities `mods`, in Stack.combine's order: the fused
    answer, each modality alone (when there are several), each modality's expert (if any)."""
    mods = sorted(mods)
    return (["fused"] + (mods if len(mods) > 1 else [])
            + [f"expert:{m}" for m in mods if m in experts])


@dataclass
class Stack:
    weights: dict[str, list[float]] = field(default_factory=dict)  # key -> one per source

    def combine(self, key: str, logps: list[np.ndarray],
                scales: list[np.ndarray] | None = None) -> np.ndarray:
        """logps: (N,C) log-probabilities of the sources, in source_names' order -> (N,C).

        scales: per source (N,) factors in [0, 1] (cmt.model.reliability: how far the input is from
        what that source learned from); a source scaled to 0 says nothing. Without weights for
        this subset the fused probabilities are returned (scaled, if scales are given)."""
        w = self.weights.get(key) or [1.0] + [0.0] * (len(logps) - 1)
        scales = scales or [np.ones(len(lp)) for lp in logps]
        z = sum(wk * np.asarray(sk)[:, None] * lp
                for wk, sk, lp in zip(w, scales, logps, strict=True))
        return _softmax(z)

    def logits(self, key: str, logps: list[np.ndarray]) -> np.ndarray:
        """The weighted sum of the sources' log-probabilities (N, C), before any scaling."""
        w = self.weights.get(key) or [1.0] + [0.0] * (len(logps) - 1)
        return sum(wk * lp for wk, lp in zip(w, logps, strict=True))

    def to_dict(self) -> dict:
        return {"weights": self.weights}

    @classmethod
    def from_dict(cls, blob: dict | None) -> Stack | None:
        return None if not blob else cls(weights={k: list(v) for k, v in blob["weights"].items()})


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)
