"""Fusion of per-modality token sequences: the Cross-Modal Transformer and its baselines.

Each encoder (text, face, speech) hands over a token sequence (B, T_m, d_m) and a mask
(B, T_m), True where a token is real. A modality is *present* for a sample when any of its
mask is True; a missing modality is normal input (all-False mask), never an error.

fusion="cross"  the CMT: every modality's tokens attend to the other modalities' tokens
                (cross-attention, plus self-attention), with modality embeddings and masks;
                the pooled modalities are then weighed by attention pooling.
fusion="joint"  "conventional transformer fusion": one self-attention stack over all
                modalities' tokens concatenated.
fusion="concat" early fusion: masked-mean of each modality, concatenated, MLP.
fusion="late"   late fusion: the unimodal heads' probabilities averaged over present modalities.

Every model also has unimodal heads (per-modality probabilities, and the unimodal baselines).
forward(batch, targets=None) -> (logits, loss, extras).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmt.contract import EMOTIONS, MODALITIES
from cmt.model.checkpoint import load

FUSIONS = ("cross", "joint", "concat", "late")
Batch = dict[str, tuple[Tensor, Tensor]]  # modality -> (tokens (B,T,d_m), mask (B,T) bool)


@dataclass(frozen=True)
class FusionDims:
    d_in: dict[str, int] = field(default_factory=lambda: {"text": 384, "face": 256, "speech": 384})
    d_model: int = 128
    n_head: int = 4
    n_layer: int = 2
    n_class: int = len(EMOTIONS)
    dropout: float = 0.1
    fusion: str = "cross"
    unimodal_weight: float = 0.5  # loss weight of the unimodal heads
    label_smoothing: float = 0.0  # keeps a weak modality from voting with false certainty

    def __post_init__(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if set(self.d_in) - set(MODALITIES):
            raise ValueError(f"modalities must be among {MODALITIES}, got {sorted(self.d_in)}")


class MultiHeadAttention(nn.Module):
    """Self-attention when xa is None, cross-attention to xa otherwise (as in whisper)."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d, bias=False), nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, xa: Tensor | None = None, key_mask: Tensor | None = None):
        """x (B,T,d), xa (B,S,d), key_mask (B,S) True=attend -> (out (B,T,d), weights (B,T,S))."""
        kv = x if xa is None else xa
        B, T, d = x.shape
        S, h = kv.shape[1], self.n_head
        q = self.query(x).view(B, T, h, d // h).transpose(1, 2)  # (B,h,T,dh)
        k = self.key(kv).view(B, S, h, d // h).transpose(1, 2)  # (B,h,S,dh)
        v = self.value(kv).view(B, S, h, d // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / (d // h) ** 0.5  # (B,h,T,S)
        if key_mask is not None:
            att = att.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        w = att.softmax(-1)
        y = (w @ v).transpose(1, 2).reshape(B, T, d)
        return self.out(y), w.mean(1)


class Block(nn.Module):
    """Pre-norm: self-attention, optional cross-attention, MLP."""

    def __init__(self, d: int, n_head: int, dropout: float, cross: bool):
        super().__init__()
        self.attn, self.attn_ln = MultiHeadAttention(d, n_head), nn.LayerNorm(d)
        self.cross = MultiHeadAttention(d, n_head) if cross else None
        self.cross_ln = nn.LayerNorm(d) if cross else None
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.mlp_ln, self.drop = nn.LayerNorm(d), nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, xa: Tensor | None = None,
                xa_mask: Tensor | None = None):
        """x (B,T,d) mask (B,T); xa (B,S,d) xa_mask (B,S) -> (x, cross weights (B,T,S) | None)."""
        y, _ = self.attn(self.attn_ln(x), key_mask=mask | ~mask.any(1, keepdim=True))
        x = x + self.drop(y)
        w = None
        if self.cross is not None:
            y, w = self.cross(self.cross_ln(x), xa, key_mask=xa_mask)
            x = x + self.drop(y)
        return x + self.drop(self.mlp(self.mlp_ln(x))), w


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """x (B,T,d), mask (B,T) -> (B,d); zeros where nothing is present."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class FusionModel(nn.Module):
    def __init__(self, dims: FusionDims):
        super().__init__()
        self.dims = dims
        d, mods = dims.d_model, list(dims.d_in)
        self.modalities = mods
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(dims.d_in[m]),
                                                    nn.Linear(dims.d_in[m], d)) for m in mods})
        self.modality_emb = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m in mods})
        self.unimodal = nn.ModuleDict({m: nn.Linear(d, dims.n_class) for m in mods})
        self.drop = nn.Dropout(dims.dropout)
        if dims.fusion == "cross":
            self.null = nn.Parameter(torch.zeros(1, 1, d))  # always-valid key: "attend to nothing"
            self.blocks = nn.ModuleList(
                nn.ModuleDict({m: Block(d, dims.n_head, dims.dropout, cross=True) for m in mods})
                for _ in range(dims.n_layer))
        elif dims.fusion == "joint":
            self.blocks = nn.ModuleList(Block(d, dims.n_head, dims.dropout, cross=False)
                                        for _ in range(dims.n_layer))
        if dims.fusion in ("cross", "joint"):
            self.pool_query = nn.Parameter(torch.zeros(d))
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, dims.n_class)
        elif dims.fusion == "concat":
            self.head = nn.Sequential(nn.Linear(len(mods) * (d + 1), 2 * d), nn.GELU(),
                                      nn.Dropout(dims.dropout), nn.Linear(2 * d, dims.n_class))
        for m in mods:
            nn.init.normal_(self.modality_emb[m], std=0.02)

    @property
    def reads_absent_modalities(self) -> bool:
        """Whether a modality absent from every row still enters the logits (concat's head has
        a slot for each). Otherwise a batch may leave such a modality out: same logits."""
        return self.dims.fusion == "concat"

    def forward(self, batch: Batch, targets: Tensor | None = None):
        """batch: modality -> (tokens (B,T,d_m), mask (B,T)); targets (B,) -> (logits (B,C), loss, extras)."""
        mods = [m for m in self.modalities if m in batch]
        if not mods:
            raise ValueError(f"no modality given; expected some of {self.modalities}")
        x = {m: self.drop(self.proj[m](batch[m][0]) + self.modality_emb[m]) for m in mods}  # (B,T_m,d)
        mask = {m: batch[m][1].bool() for m in mods}
        present = torch.stack([mask[m].any(1) for m in mods], 1)  # (B,M)
        pooled0 = {m: masked_mean(x[m], mask[m]) for m in mods}
        uni_logits = {m: self.unimodal[m](pooled0[m]) for m in mods}  # (B,C) each
        extras: dict = {"unimodal_logits": uni_logits, "present": dict(zip(mods, present.T))}
        fusion = self.dims.fusion
        if fusion == "late":
            probs = torch.stack([uni_logits[m].softmax(-1) for m in mods], 1)  # (B,M,C)
            w = present.to(probs.dtype).unsqueeze(-1)
            logits = ((probs * w).sum(1) / w.sum(1).clamp(min=1)).clamp(min=1e-8).log()
        elif fusion == "concat":
            feats = [torch.cat([pooled0[m], present[:, i:i + 1].to(x[m].dtype)], -1)
                     for i, m in enumerate(mods)]
            logits = self.head(torch.cat(feats, -1))
        else:
            pooled = self._cross(x, mask, mods, extras) if fusion == "cross" else self._joint(x, mask, mods)
            logits = self.head(self.ln_f(self._attention_pool(pooled, present)))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, label_smoothing=self.dims.label_smoothing)
            if self.dims.unimodal_weight and fusion != "late":
                loss = loss + self.dims.unimodal_weight * self._unimodal_loss(
                    uni_logits, present, mods, targets, self.dims.label_smoothing)
            elif fusion == "late":
                loss = self._unimodal_loss(uni_logits, present, mods, targets, self.dims.label_smoothing)
        return logits, loss, extras

    def _cross(self, x, mask, mods, extras) -> Tensor:
        B = next(iter(x.values())).shape[0]
        null = self.null.expand(B, 1, -1)
        true = torch.ones(B, 1, dtype=torch.bool, device=null.device)
        for layer in self.blocks:
            new, weights = {}, {}
            for m in mods:
                others = [o for o in mods if o != m]
                xa = torch.cat([null] + [x[o] for o in others], 1)  # (B,1+ΣT_o,d)
                xa_mask = torch.cat([true] + [mask[o] for o in others], 1)
                new[m], weights[m] = layer[m](x[m], mask[m], xa, xa_mask)
            x = new
        # how much of each modality's cross-attention went to each other modality (last layer)
        att = {}
        for m in mods:
            w = masked_mean(weights[m], mask[m])  # (B,1+ΣT_o)
            spans, start = {"none": (0, 1)}, 1
            for o in [o for o in mods if o != m]:
                spans[o] = (start, start + x[o].shape[1])
                start += x[o].shape[1]
            att[m] = {o: w[:, a:b].sum(-1) for o, (a, b) in spans.items()}
        extras["attention"] = att
        return torch.stack([masked_mean(x[m], mask[m]) for m in mods], 1)  # (B,M,d)

    def _joint(self, x, mask, mods) -> Tensor:
        sizes = [x[m].shape[1] for m in mods]
        h, hm = torch.cat([x[m] for m in mods], 1), torch.cat([mask[m] for m in mods], 1)
        for block in self.blocks:
            h, _ = block(h, hm)
        parts = torch.split(h, sizes, 1)
        return torch.stack([masked_mean(p, mask[m]) for p, m in zip(parts, mods)], 1)  # (B,M,d)

    def _attention_pool(self, pooled: Tensor, present: Tensor) -> Tensor:
        """pooled (B,M,d), present (B,M) -> (B,d): a learned weighing of the present modalities."""
        scores = (pooled @ self.pool_query) / pooled.shape[-1] ** 0.5  # (B,M)
        scores = scores.masked_fill(~present, float("-inf"))
        return (scores.softmax(-1).unsqueeze(-1) * pooled).sum(1)

    @staticmethod
    def _unimodal_loss(uni_logits, present, mods, targets, smoothing: float = 0.0) -> Tensor:
        losses = []
        for i, m in enumerate(mods):
            keep = present[:, i]
            if keep.any():
                losses.append(F.cross_entropy(uni_logits[m][keep], targets[keep],
                                              label_smoothing=smoothing))
        return torch.stack(losses).mean()


class OneModality(nn.Module):
    """The fusion on one modality's tokens alone, as one graph: x (B,T,d_m), mask (B,T) ->
    logits (B,C) (the ONNX export a batch of one modality runs on)."""

    def __init__(self, fusion: FusionModel, modality: str):
        super().__init__()
        self.fusion, self.modality = fusion, modality

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.fusion({self.modality: (x, mask)})[0]  # (B,C)


def drop_modalities(batch: Batch, p: float, generator: torch.Generator | None = None) -> Batch:
    """Modality dropout: hide each present modality with probability p, keeping at least one."""
    mods = list(batch)
    present = torch.stack([batch[m][1].any(1) for m in mods], 1)  # (B,M)
    drop = (torch.rand(present.shape, generator=generator) < p) & present
    all_gone = (present & ~drop).sum(1) == 0
    if all_gone.any():  # give back one random present modality to those rows
        idx = torch.multinomial(present[all_gone].float() + 1e-9, 1, generator=generator).squeeze(1)
        drop[all_gone.nonzero().squeeze(1), idx] = False
    return {m: (t, mask & ~drop[:, i:i + 1]) for i, (m, (t, mask)) in enumerate(batch.items())}


# --- checkpoints ----------------------------------------------------------------------

CHECKPOINT_KEYS = ("dims", "state_dict", "config")  # what `cmt train` writes, at least


def read_checkpoint(path: Path | str) -> dict:
    """A fusion checkpoint's contents (cmt.model.checkpoint.load): a missing file is a
    FileNotFoundError, one that is not a fusion checkpoint (a tuned encoder, anything else)
    a ValueError naming it."""
    return load(path, what="Attune fusion checkpoint", command="cmt train", keys=CHECKPOINT_KEYS)


def fusion_from_checkpoint(ckpt: dict, path: Path | str = "checkpoint") -> FusionModel:
    """The fusion model a checkpoint holds, in eval mode."""
    try:
        model = FusionModel(FusionDims(**ckpt["dims"]))
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, RuntimeError, KeyError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]  # torch's run to pages
        raise ValueError(f"{path}: its weights do not fit its model: {reason[:200]}") from e
    return model.eval()
