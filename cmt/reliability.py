"""How far an input is from what a modality's expert was trained on, and how much its answer
is then worth.

Per modality: the expert's penultimate features of its training examples give class means and
one shared covariance (Ledoit-Wolf); an input's distance is its smallest Mahalanobis distance
to a class mean (Lee et al., NeurIPS 2018), relative to the median over the calibration split
(held out of training): s = log(d^2 / median d^2). Then

    reliability r = sigmoid(a - b * s)  in (0, 1),    b >= 0

and every answer that reads the modality is tempered by it: the stack's log-probabilities are
multiplied by r (cmt.stack.Stack.combine), so an input unlike the training data (r near 0)
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
        return _sigmoid(self.a - self.b * self.log_ratio(feats))

    def to_dict(self) -> dict:
        return {"means": torch.from_numpy(self.means.astype(np.float32)),
                "precision": torch.from_numpy(self.precision.astype(np.float32)),
                "median": self.median, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, blob: dict) -> Reliability:
        return cls(np.asarray(blob["means"], dtype=np.float64),
                   np.asarray(blob["precision"], dtype=np.float64),
                   float(blob["median"]), float(blob["a"]), float(blob["b"]))


def fit_density(feats: np.ndarray, labels: np.ndarray, calib_feats: np.ndarray) -> Reliability:
    """Class means and the shared Ledoit-Wolf covariance of training features (N, h); the
    median distance over calibration features (M, h). a, b are left for fit_mapping."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(feats, dtype=np.float64)
    classes = sorted(set(labels.tolist()))
    means = np.stack([x[labels == c].mean(0) for c in classes])
    centred = x - means[np.searchsorted(classes, labels)]
    precision = LedoitWolf().fit(centred).precision_
    rel = Reliability(means, precision, 1.0)
    rel.median = float(np.median(rel.distance(calib_feats)))
    return rel


def fit_mapping(log_ratio: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                weights: np.ndarray | None = None, steps: int = 200) -> tuple[float, float]:
    """(a, b) minimising the cross-entropy of softmax(r * logits), r = sigmoid(a - b * s).

    log_ratio (N,): s per example; logits (N, C): the answer's log-probabilities before
    tempering; labels (N,); weights (N,): each example's share of the loss (default equal).
    b is kept non-negative: farther never means more reliable."""
    s = torch.as_tensor(log_ratio, dtype=torch.float64)
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    w = torch.as_tensor(np.ones(len(s)) if weights is None else weights, dtype=torch.float64)
    w = w / w.sum()
    a = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    raw_b = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, raw_b], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        r = torch.sigmoid(a - torch.nn.functional.softplus(raw_b) * s)  # (N,)
        loss = (w * torch.nn.functional.cross_entropy(r[:, None] * z, y, reduction="none")).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(a.detach()), float(torch.nn.functional.softplus(raw_b.detach()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
