"""Fitting the stack's weights and each modality's reliability (what cmt.model.stack and
cmt.model.reliability apply at inference), on data the fusion model never trained on."""

from __future__ import annotations

import numpy as np
import torch

from cmt.model.reliability import Reliability
from cmt.model.stack import Stack, log_probs

L2 = 1e-3  # pull of the weights towards the plain fused answer (1, 0, ..., 0)


def fit_weights(logps: np.ndarray, labels: np.ndarray, balanced: bool, steps: int = 200) -> list[float]:
    """logps (N, K, C): K sources' log-probabilities, labels (N,) -> K non-negative weights.

    `balanced`: every class weighs the same in the loss, whatever its count. For tuples of
    several modalities: their label mix follows the corpora they came from (mostly neutral and
    joy for text), and a modality that is only good at the common classes (the face, at joy)
    must not win its weight on them. A single modality is fitted on its natural mix."""
    x = torch.as_tensor(logps, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    counts = torch.bincount(y, minlength=x.shape[2]).to(torch.float64)
    class_weight = None
    if balanced:
        class_weight = torch.where(counts > 0, counts.sum() / (counts.clamp(min=1) * (counts > 0).sum()), 0.0)
    K = x.shape[1]
    prior = torch.zeros(K, dtype=torch.float64)
    prior[0] = 1.0
    raw = torch.full((K,), -4.0, dtype=torch.float64)  # softplus(-4) ~ 0.018
    raw[0] = float(np.log(np.expm1(1.0)))  # softplus -> 1: start from the plain fused answer
    raw.requires_grad_(True)
    opt = torch.optim.LBFGS([raw], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        w = torch.nn.functional.softplus(raw)  # (K,)
        z = torch.einsum("k,nkc->nc", w, x)
        loss = (torch.nn.functional.cross_entropy(z, y, weight=class_weight)
                + L2 * ((w - prior) ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return [float(v) for v in torch.nn.functional.softplus(raw.detach())]


def fit_stack(sources: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> Stack:
    """Per subset key: sources (N, K, C) probabilities in Stack.combine's order, labels (N,);
    a subset of several modalities is fitted class-balanced (fit_weights)."""
    return Stack(weights={key: fit_weights(log_probs(p), labels[key], balanced="+" in key)
                          for key, p in sources.items() if len(labels[key])})



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
