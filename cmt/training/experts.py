"""Training each modality's expert (cmt.model.experts) on its pool of cached features.

    experts = fit_experts(train_pools, {"speech": ExpertSpec(epochs=300, summary_layers=5)})
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from cmt.model.experts import Expert, ExpertConfig, expert_input
from cmt.training.features import FeatureSet
from cmt.training.fit import OneCycle, fit


class ExpertSpec(BaseModel):
    """How to train one modality's expert (`experts:` in a training config)."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    n_hidden: int = 128
    dropout: float = 0.3
    balanced: bool = True  # class-balanced batches (RAVDESS neutral is calm + neutral)
    summary_layers: int = 1  # speech with summary tokens: 5 (cmt.model.tokens.SPEECH_SUMMARY_LAYERS)


def train_expert(x: np.ndarray, y: np.ndarray, config: ExpertConfig, epochs: int = 300,
                 lr: float = 2e-3, weight_decay: float = 0.05, batch_size: int = 64,
                 seed: int = 0, balanced: bool = True) -> Expert:
    """x: (N, L, 2d) pooled features, y: (N,) class ids -> a trained expert (eval mode)."""
    torch.manual_seed(seed)
    head = Expert(config)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    head.feat_mean.copy_(xt.mean(0))
    head.feat_std.copy_(xt.std(0).clamp(min=1e-4))
    counts = torch.bincount(yt, minlength=config.n_classes).float()
    sample_w = (1.0 / counts.clamp(min=1))[yt] if balanced else torch.ones(len(yt))
    opt = OneCycle([(head.parameters(), lr)], weight_decay=weight_decay,
                   total_steps=epochs * math.ceil(len(x) / batch_size))
    g = torch.Generator().manual_seed(seed)

    def batch_losses(_epoch: int):
        idx = torch.multinomial(sample_w, len(x), replacement=True, generator=g)
        for s in range(0, len(x), batch_size):
            b = idx[s:s + batch_size]
            yield head(xt[b], yt[b])[1]

    fit(head, opt, epochs, batch_losses)
    return head.eval()


def pooled_inputs(fs: FeatureSet, n_layers: int, batch_size: int = 1024) -> np.ndarray:
    """Every example of a feature set -> (N, L, 2d) float32 expert inputs."""
    out = []
    for s in range(0, len(fs), batch_size):
        tokens, mask = fs.rows(torch.arange(s, min(s + batch_size, len(fs))))
        out.append(expert_input(tokens, mask, n_layers).numpy())
    return np.concatenate(out).astype(np.float32)


def fit_experts(pools: dict[str, FeatureSet], specs: dict[str, ExpertSpec], seed: int = 0) -> dict[str, Expert]:
    """One expert per modality that has both a spec and a pool, trained on that pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small MLP: one thread is faster than two fighting
    try:
        experts = {}
        for m, spec in specs.items():
            if m not in pools:
                continue
            fs = pools[m]
            x = pooled_inputs(fs, spec.summary_layers)
            config = ExpertConfig(n_layers=spec.summary_layers, d_model=fs.dim,
                                  n_hidden=spec.n_hidden, dropout=spec.dropout)
            experts[m] = train_expert(x, fs.labels.numpy(), config, epochs=spec.epochs, lr=spec.lr,
                                      weight_decay=spec.weight_decay, batch_size=spec.batch_size,
                                      seed=seed, balanced=spec.balanced)
        return experts
    finally:
        torch.set_num_threads(threads)


def pool_probs(expert: Expert, fs: FeatureSet, batch_size: int = 1024) -> np.ndarray:
    """An expert's probabilities (N, C) for every example of a feature set."""
    return pool_read(expert, fs, batch_size)[0]


def pool_read(expert: Expert, fs: FeatureSet, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """An expert's probabilities (N, C) and penultimate features (N, h) over a feature set."""
    parts = [expert.read(*fs.rows(torch.arange(s, min(s + batch_size, len(fs)))))
             for s in range(0, len(fs), batch_size)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([h for _, h in parts])
