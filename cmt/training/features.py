"""Cached token features of frozen encoders, so that CPU training takes minutes.

A FeatureSet holds one corpus split of one modality: every example's real fp16 tokens back
to back (ΣT, d), their lengths, labels (indices into EMOTIONS) and groups
(speaker/identity/dialogue). It is
computed once per (modality, corpus, split, encoder) and stored under
Settings().home / "cache" / "features".
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cmt.contract import EMOTIONS

log = logging.getLogger("cmt.training.features")
FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    modality: str
    tokens: torch.Tensor  # (ΣT, d) float16, all examples' real tokens back to back
    lengths: torch.Tensor  # (N,) int64, tokens per example
    labels: torch.Tensor  # (N,) int64, index into EMOTIONS
    groups: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])

    def __len__(self) -> int:
        return self.lengths.shape[0]

    @property
    def dim(self) -> int:
        return self.tokens.shape[-1]

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples idx (B,) -> tokens (B, T, d) float32 zero-padded, mask (B, T) bool."""
        lens = self.lengths[idx]
        T = max(int(lens.max()), 1) if len(idx) else 1
        mask = torch.arange(T)[None, :] < lens[:, None]  # (B, T)
        pos = torch.where(mask, self.offsets[idx][:, None] + torch.arange(T)[None, :], 0)
        return self.tokens[pos].float() * mask.unsqueeze(-1), mask

    def subset(self, idx: torch.Tensor | list[int]) -> FeatureSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        tokens, mask = self.rows(idx)
        return FeatureSet(self.modality, tokens[mask].half(), self.lengths[idx], self.labels[idx],
                          [self.groups[i] for i in idx.tolist()] if self.groups else [],
                          dict(self.meta))

    @classmethod
    def concat(cls, parts: list[FeatureSet]) -> FeatureSet:
        if len({p.modality for p in parts}) != 1:
            raise ValueError("cannot concatenate feature sets of different modalities")
        return cls(parts[0].modality, torch.cat([p.tokens for p in parts]),
                   torch.cat([p.lengths for p in parts]), torch.cat([p.labels for p in parts]),
                   [g for p in parts for g in p.groups],
                   {"parts": [p.meta for p in parts]})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"format": FORMAT_VERSION, "modality": self.modality, "tokens": self.tokens,
                    "lengths": self.lengths, "labels": self.labels, "groups": self.groups,
                    "meta": self.meta}, tmp)
        tmp.replace(path)  # never a half-written cache file

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        blob = torch.load(path, weights_only=False)
        if blob.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: feature cache format {blob.get('format')}, need {FORMAT_VERSION}")
        return cls(blob["modality"], blob["tokens"], blob["lengths"], blob["labels"],
                   blob["groups"], blob["meta"])


def pack(modality: str, chunks: list[tuple[torch.Tensor, torch.Tensor]], labels: list[str],
         groups: list[str], max_tokens: int, meta: dict | None = None) -> FeatureSet:
    """Encoder outputs [(tokens (b,T,d), mask (b,T)), ...] -> one FeatureSet (fp16)."""
    rows = [t[m.bool()][:max_tokens].to(torch.float16)  # (n, d) real tokens
            for tokens, mask in chunks for t, m in zip(tokens, mask)]
    return FeatureSet(modality, torch.cat(rows), torch.tensor([r.shape[0] for r in rows]),
                      torch.tensor([EMOTIONS.index(y) for y in labels]), list(groups),
                      dict(meta or {}))


def cache_path(home: Path, *key: str) -> Path:
    digest = hashlib.sha1("|".join(key).encode()).hexdigest()[:10]
    safe = "-".join(k.replace("/", "_")[:40] for k in key[:3])
    return home / "cache" / "features" / f"{safe}-{digest}.pt"


def cached(path: Path, build: Callable[[], FeatureSet]) -> FeatureSet:
    if path.is_file():
        try:
            return FeatureSet.load(path)
        except Exception as e:  # a stale or broken cache is rebuilt, not fatal
            log.warning("rebuilding feature cache %s: %s", path, e)
    fs = build()
    fs.save(path)
    return fs
