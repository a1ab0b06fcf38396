"""How far an input is from what a modality's expert was trained on, and how much its answer
is then worth.

Per modality: the expert's penultimate features of its training examples give class means and
one shared covariance (Ledoit-Wolf); an input's distance is its smallest Mahalanobis distance
to a class mean (Lee et al., NeurIPS 2018), relative to the median over the calibration split
(held out of training): s = log(d^2 / median d^2). Then

    reliability r = sigmoid(a - b * s)  in (0, 1),    b >= 0

and every answer that reads the modality is tempered by it: the stack's log-probabilities are
multiplied by r (cmt.model.stack.Stack.combine), so an input unlike the training data (r near 0)
answers near uniform instead of with a confident guess. a and b are fitted by cross-entropy on
the calibration split together with a corpus held out of training (for speech, a probe expert
is trained without EmoDB and EmoDB is scored by it): the mapping learns how quickly answers go
wrong as inputs move away, and carries over to the shipped expert because s is measured
against each expert's own calibration median.

    rel = Reliability.from_dict(blob)
    r = rel.score(features)          # (N, h) expert features -> (N,) in (0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Reliability:
    means: np.ndarray  # (C, h) class means of the expert's training features
    precision: np.ndarray  # (h, h) inverse of the shared covariance
    median: float  # median squared distance over the calibration split
    a: float = 5.0  # sigmoid offset: r at a typical in-domain input is sigmoid(a)
    b: float = 0.0  # how fast r falls with the log distance ratio

    def distance(self, feats: np.ndarray) -> np.ndarray:
        """(N, h) -> (N,) smallest squared Mahalanobis distance to a class mean."""
        x = np.asarray(feats, dtype=np.float64)
        out = np.full(len(x), np.inf)
        for mu in self.means:
            d = x - mu  # (N, h)
            out = np.minimum(out, np.einsum("nh,hk,nk->n", d, self.precision, d))
        return out

    def log_ratio(self, feats: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(self.distance(feats), 1e-9) / self.median)

    def score(self, feats: np.ndarray) -> np.ndarray:
        """(N, h) expert features -> (N,) reliability in (0, 1)."""
        return self.score_from_log_ratio(self.log_ratio(feats))

    def score_from_log_ratio(self, s: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a - self.b * s)

    def to_dict(self) -> dict:
        return {"means": torch.from_numpy(self.means.astype(np.float32)),
                "precision": torch.from_numpy(self.precision.astype(np.float32)),
                "median": self.median, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, blob: dict) -> Reliability:
        return cls(np.asarray(blob["means"], dtype=np.float64),
                   np.asarray(blob["precision"], dtype=np.float64),
                   float(blob["median"]), float(blob["a"]), float(blob["b"]))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
