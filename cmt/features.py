"""Cached token features of frozen encoders, so that CPU training takes minutes.

A FeatureSet holds one corpus split of one modality: padded fp16 tokens (N, T, d), their
lengths, labels (indices into EMOTIONS) and groups (speaker/identity/dialogue). It is
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

log = logging.getLogger("cmt.features")
FORMAT_VERSION = 1


@dataclass
class FeatureSet:
    modality: str
    tokens: torch.Tensor  # (N, T, d) float16, zero-padded
    lengths: torch.Tensor  # (N,) int64, real tokens per row
    labels: torch.Tensor  # (N,) int64, index into EMOTIONS
    groups: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def dim(self) -> int:
        return self.tokens.shape[-1]

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows idx (B,) -> tokens (B, T, d) float32, mask (B, T) bool."""
        tokens = self.tokens[idx].float()
        mask = torch.arange(tokens.shape[1])[None, :] < self.lengths[idx][:, None]
        return tokens, mask

    def subset(self, idx: torch.Tensor | list[int]) -> FeatureSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return FeatureSet(self.modality, self.tokens[idx], self.lengths[idx], self.labels[idx],
                          [self.groups[i] for i in idx.tolist()] if self.groups else [],
                          dict(self.meta))

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
    """Encoder outputs [(tokens (b,T,d), mask (b,T)), ...] -> one padded fp16 FeatureSet."""
    rows, lengths = [], []
    for tokens, mask in chunks:
        for t, m in zip(tokens, mask):
            real = t[m.bool()][:max_tokens]  # (n, d)
            rows.append(real.to(torch.float16))
            lengths.append(real.shape[0])
    d = rows[0].shape[-1]
    T = max(lengths)
    out = torch.zeros(len(rows), T, d, dtype=torch.float16)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return FeatureSet(modality, out, torch.tensor(lengths), torch.tensor([EMOTIONS.index(y) for y in labels]),
                      list(groups), dict(meta or {}))


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
