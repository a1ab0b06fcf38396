"""Each modality's expert: a small classifier over pooled tokens, stacked beside the fusion.

The fusion model's own unimodal heads learn alongside the fusion, from label-matched tuples
with modality dropout. On its own corpus a plain classifier over well-pooled features reads a
modality better (RAVDESS: a standalone speech head, since removed, scored 0.742 where the fused answer on
speech alone scored 0.646). The calibrated stack (cmt.model.stack) weighs each present modality's
expert with the fused answer, with weights fitted on data neither was trained on.

An expert reads the very tokens the fusion reads, so the front door runs no extra encoder:
  - speech with summary tokens (cmt.model.tokens.layer_summary): the first 2L tokens are the mean
    and the std of L Whisper layers; they become (L, 2d) and are mixed by learned softmax
    weights, as SUPERB does;
  - any other modality: the mean and the std over its real tokens, (1, 2d).
Then standardisation, a LayerNorm and a two-layer MLP.

    experts = experts_from_dict(checkpoint["experts"])
    probs = experts["speech"].probs_of(tokens, mask)            # (B, 7)

Training them is cmt.training.experts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmt.contract import EMOTIONS


@dataclass(frozen=True)
class ExpertConfig:
    n_layers: int = 1  # pooled layers; above 1, read from the first 2*n_layers summary tokens
    d_model: int = 384  # token width
    n_hidden: int = 128
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.3


def pool(hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Per layer (B, T, d) frames, (B, T) mask -> (B, L, 2d): mean and std over real frames."""
    m = mask[..., None].to(hidden_states[0].dtype)  # (B, T, 1)
    n = m.sum(1).clamp(min=1)  # (B, 1)
    out = []
    for h in hidden_states:
        mean = (h * m).sum(1) / n  # (B, d)
        var = (((h - mean[:, None]) ** 2) * m).sum(1) / n  # (B, d)
        out.append(torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1))
    return torch.stack(out, dim=1)  # (B, L, 2d)


def expert_input(tokens: torch.Tensor, mask: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Tokens (B, T, d), mask (B, T) -> (B, L, 2d): the layer summaries, or a mean/std pool."""
    if n_layers == 1:
        return pool([tokens.float()], mask)
    B, _, d = tokens.shape
    return tokens[:, :2 * n_layers].float().reshape(B, n_layers, 2 * d)  # [mean, std] per layer


class Expert(nn.Module):
    def __init__(self, config: ExpertConfig):
        super().__init__()
        self.config = c = config
        self.register_buffer("feat_mean", torch.zeros(c.n_layers, 2 * c.d_model))
        self.register_buffer("feat_std", torch.ones(c.n_layers, 2 * c.d_model))
        self.layer_logits = nn.Parameter(torch.zeros(c.n_layers))
        self.mlp = nn.Sequential(nn.LayerNorm(2 * c.d_model), nn.Dropout(c.dropout),
                                 nn.Linear(2 * c.d_model, c.n_hidden), nn.GELU(),
                                 nn.Dropout(c.dropout), nn.Linear(c.n_hidden, c.n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, 2d) pooled features -> (B, n_hidden), what the last layer reads."""
        x = (x - self.feat_mean) / self.feat_std  # (B, L, 2d)
        w = self.layer_logits.softmax(0)  # (L,)
        x = torch.einsum("l,bld->bd", w, x)  # (B, 2d)
        return self.mlp[:4](x)  # LayerNorm, dropout, linear, GELU: (B, n_hidden)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """x: (B, L, 2d) pooled features; targets: (B,) class ids -> (logits (B, C), loss)."""
        logits = self.mlp[4:](self.embed(x))  # (B, C)
        loss = None if targets is None else F.cross_entropy(logits, targets, label_smoothing=0.1)
        return logits, loss

    @torch.inference_mode()
    def probs(self, x: torch.Tensor) -> list[dict[str, float]]:
        """(B, L, 2d) pooled features -> B dicts {emotion: probability}."""
        logits, _ = self(x)
        return [dict(zip(EMOTIONS, p.tolist())) for p in logits.float().softmax(-1)]

    @torch.inference_mode()
    def probs_of(self, tokens: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """The fusion's tokens (B, T, d), mask (B, T) -> probabilities (B, C)."""
        return self.read(tokens, mask)[0]

    @torch.inference_mode()
    def read(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The fusion's tokens (B, T, d), mask (B, T) -> probabilities (B, C) and the
        penultimate features (B, n_hidden) that cmt.model.reliability measures distances on."""
        h = self.embed(expert_input(tokens, mask, self.config.n_layers))
        return self.mlp[4:](h).double().softmax(-1).numpy(), h.double().numpy()


def experts_to_dict(experts: dict[str, Expert]) -> dict:
    return {m: {"config": asdict(e.config), "state_dict": e.state_dict()} for m, e in experts.items()}


def experts_from_dict(blob: dict | None) -> dict[str, Expert]:
    out = {}
    for m, part in (blob or {}).items():
        e = Expert(ExpertConfig(**part["config"]))
        e.load_state_dict({k: v.float() for k, v in part["state_dict"].items()})
        out[m] = e.eval()
    return out
