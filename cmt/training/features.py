"""The one cache of what frozen encoders and detectors make of a corpus, so that CPU
training takes minutes.

A FeatureSet holds one corpus split of one modality: every example's real fp16 tokens back
to back (ΣT, d), their lengths, labels (indices into EMOTIONS) and groups
(speaker/identity/dialogue). It is computed once per (modality, corpus, split, encoder) and
stored under Settings().home / "cache" / "features" as safetensors (no pickle: a cache file
cannot run code), written atomically (cmt.model.checkpoint.atomic_write). `cached_tensors`
keeps any other per-corpus arrays the same way (the face tuner's detected boxes).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cmt.contract import EMOTIONS
from cmt.model.checkpoint import atomic_write

log = logging.getLogger("cmt.training.features")
FORMAT_VERSION = 2  # 2: safetensors (1: a torch pickle)


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
        write_tensors(path, {"tokens": self.tokens, "lengths": self.lengths, "labels": self.labels},
                      {"modality": self.modality, "groups": self.groups, "meta": self.meta})

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        t, info = read_tensors(path)
        return cls(info["modality"], t["tokens"], t["lengths"], t["labels"], info["groups"],
                   info["meta"])


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Tensors and JSON-able info in one safetensors file, whole or not at all."""
    from safetensors.torch import save_file

    meta = {"format": str(FORMAT_VERSION), "info": json.dumps(info)}
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()},
                                             str(tmp), metadata=meta))


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != str(FORMAT_VERSION):
            raise ValueError(f"{path}: cache format {meta.get('format')}, need {FORMAT_VERSION}")
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(meta["info"])


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
    return home / "cache" / "features" / f"{safe}-{digest}.safetensors"


def cached(path: Path, build: Callable[[], FeatureSet]) -> FeatureSet:
    if path.is_file():
        try:
            return FeatureSet.load(path)
        except Exception as e:  # a stale or broken cache is rebuilt, not fatal
            log.warning("rebuilding feature cache %s: %s", path, e)
    fs = build()
    fs.save(path)
    return fs


def cached_tensors(path: Path, build: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Named tensors kept as a FeatureSet is: built once, rebuilt when stale or broken."""
    if path.is_file():
        try:
            return read_tensors(path)[0]
        except Exception as e:  # noqa: BLE001 - a stale or broken cache is rebuilt, not fatal
            log.warning("rebuilding cache %s: %s", path, e)
    tensors = build()
    write_tensors(path, tensors, {})
    return tensors
