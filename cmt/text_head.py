"""Text emotion head: a small classifier over a FROZEN text encoder's features.

Trained on GoEmotions (Ekman grouping, single-label rows) train + MELD train, scored on
both dev sets. Encoder features are computed once and cached under
`Settings().home / "cache" / "text"`, keyed by encoder name, corpus and split.

    python -m cmt.text_head train --datasets-dir /work/shared/datasets
    python -m cmt.text_head evaluate --corpus meld --data-dir /work/shared/datasets/meld

Two pooling variants share one model: "mean" (the sentence-transformers vector, the
input then being (B, 1, d)) and "attention" (a learned softmax over token states).
`train_text_head` trains the candidates listed in CANDIDATES and keeps the one with the
best mean dev weighted F1 over the two corpora.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmt.contract import EMOTIONS
from cmt.model.labels import Example
from cmt.training.datasets.text import load_text_corpus
from cmt.model.encoders.text import DEFAULT_TEXT_ENCODER, TextEncoder
from cmt.training.metrics import scores
from cmt.settings import Settings

CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "text_head.pt"
CORPORA = {"goemotions": Path("goemotions") / "ekman", "meld": Path("meld")}  # under datasets_dir
CACHE_VERSION = 1


@dataclass(frozen=True)
class HeadConfig:
    d_in: int = 384  # encoder hidden size
    d_hidden: int = 256
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.2
    pool: str = "mean"  # "mean" | "attention"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    class_weight: str = "none"  # "none" | "sqrt" (inverse square-root frequency)
    meld_weight: float = 1.0  # loss weight of a MELD example relative to a GoEmotions one


class AttentionPool(nn.Module):
    """Softmax over token scores: (B, T, d), (B, T) -> (B, d)."""

    def __init__(self, d: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d, d // 2), nn.Tanh(), nn.Linear(d // 2, 1))

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, d), (B, T) -> (B, T): each token's share of the pooled vector."""
        s = self.score(x).squeeze(-1)  # (B, T)
        return s.masked_fill(~mask, float("-inf")).softmax(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.weights(x, mask).unsqueeze(-1) * x).sum(1)  # (B, d)


class TextHead(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.attn = AttentionPool(cfg.d_in) if cfg.pool == "attention" else None
        d_pool = cfg.d_in * (2 if self.attn is not None else 1)
        self.mlp = nn.Sequential(
            nn.LayerNorm(d_pool),
            nn.Dropout(cfg.dropout),
            nn.Linear(d_pool, cfg.d_hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.d_hidden, cfg.n_classes),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor | None = None,
                weight: torch.Tensor | None = None):
        """x: (B, T, d) token states, mask: (B, T) bool; targets: (B,) class ids.

        Returns (logits (B, n_classes), loss or None). `weight` (B,) scales each example's loss.
        """
        m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, d)
        if self.attn is not None:
            pooled = torch.cat([pooled, self.attn(x, mask)], -1)  # (B, 2d)
        logits = self.mlp(pooled)  # (B, n_classes)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, reduction="none")
            if weight is not None:
                loss = (loss * weight).sum() / weight.sum()
            else:
                loss = loss.mean()
        return logits, loss


# --- cached features ----------------------------------------------------------------


@dataclass
class Features:
    """Encoder output for a list of examples: pooled vectors and token states."""

    pooled: torch.Tensor  # (N, d) float32
    tokens: torch.Tensor  # (sum of lengths, d) float16, all examples' real tokens back to back
    lengths: torch.Tensor  # (N,) int64
    labels: torch.Tensor  # (N,) int64 into EMOTIONS

    def __post_init__(self):
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)])

    def __len__(self) -> int:
        return len(self.lengths)

    @staticmethod
    def concat(parts: list[Features]) -> Features:
        return Features(*(torch.cat([getattr(p, k) for p in parts])
                          for k in ("pooled", "tokens", "lengths", "labels")))

    def batch(self, idx: torch.Tensor, pool: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, d) float32 and (B, T) bool for the examples idx."""
        if pool == "mean":
            x = self.pooled[idx].unsqueeze(1)  # (B, 1, d)
            return x, torch.ones(len(idx), 1, dtype=torch.bool)
        lens = self.lengths[idx]
        t = int(lens.max())
        mask = torch.arange(t)[None, :] < lens[:, None]  # (B, T)
        pos = self.offsets[idx][:, None] + torch.arange(t)[None, :]  # (B, T) rows of self.tokens
        pos = torch.where(mask, pos, 0)
        x = self.tokens[pos].float() * mask.unsqueeze(-1)  # (B, T, d)
        return x, mask


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-80:]


def encode(encoder: TextEncoder, texts: list[str], batch_size: int = 64, log=None) -> tuple:
    """Pooled (N, d) float32, token states back to back (sum T, d) float16, lengths (N,)."""
    n = len(texts)
    pooled = torch.zeros(n, encoder.dim)
    per_item: list[torch.Tensor | None] = [None] * n
    order = sorted(range(n), key=lambda i: len(texts[i]))
    t0 = time.time()
    for s in range(0, n, batch_size):
        if log is not None and s and s % (batch_size * 100) == 0:
            log(f"  encoded {s}/{n} texts in {time.time() - t0:.0f} s")
        idx = order[s : s + batch_size]
        hidden, mask = encoder.tokens([texts[i] for i in idx])  # (b, T, d), (b, T)
        m = mask.unsqueeze(-1).float()
        pooled[idx] = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        for row, i in enumerate(idx):
            per_item[i] = hidden[row, : int(mask[row].sum())].half()
    lengths = torch.tensor([len(t) for t in per_item], dtype=torch.long)
    tokens = torch.cat(per_item) if n else torch.zeros(0, encoder.dim, dtype=torch.float16)
    return pooled, tokens, lengths


def cached_features(encoder: TextEncoder, corpus: str, split: str, examples: list[Example],
                    cache_dir: Path | None = None, log=None) -> Features:
    """Features for examples, computed once and cached by encoder + corpus + split."""
    texts = [e.text or "" for e in examples]
    key = json.dumps([CACHE_VERSION, encoder.fingerprint, encoder.max_length, texts]).encode()
    digest = hashlib.sha1(key).hexdigest()
    cache_dir = cache_dir or Settings().home / "cache" / "text"
    path = cache_dir / f"{_slug(encoder.name)}-{corpus}-{split}.pt"
    labels = torch.tensor([EMOTIONS.index(e.label) for e in examples], dtype=torch.long)
    if path.is_file():
        blob = torch.load(path, map_location="cpu")
        if blob.get("digest") == digest:
            return Features(blob["pooled"], blob["tokens"], blob["lengths"], labels)
    if log is not None:
        log(f"encoding {corpus}/{split} ({len(texts)} texts) with {encoder.name}, cached at {path}")
    pooled, tokens, lengths = encode(encoder, texts, log=log)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"digest": digest, "pooled": pooled, "tokens": tokens, "lengths": lengths}, tmp)
    tmp.replace(path)
    return Features(pooled, tokens, lengths, labels)


# --- training -----------------------------------------------------------------------


@torch.inference_mode()
def predict_probs(head: TextHead, feats: Features, batch_size: int = 512) -> np.ndarray:
    head.eval()
    out = []
    for s in range(0, len(feats), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(feats)))
        x, mask = feats.batch(idx, head.cfg.pool)
        out.append(head(x, mask)[0].softmax(-1))
    if not out:
        return np.zeros((0, len(EMOTIONS)))
    p = torch.cat(out).double().numpy()  # (N, n_classes)
    return p / p.sum(1, keepdims=True)


def fit(train: list[tuple[str, Features]], dev: dict[str, Features], hcfg: HeadConfig,
        tcfg: TrainConfig, seed: int = 0, log=print) -> tuple[TextHead, dict]:
    """Train a head on the concatenated train features; return it and its dev scores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small head: one thread is faster than two fighting
    try:
        return _fit(train, dev, hcfg, tcfg, seed, log)
    finally:
        torch.set_num_threads(threads)


def _fit(train, dev, hcfg, tcfg, seed, log):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    head = TextHead(hcfg)
    labels = torch.cat([f.labels for _, f in train])
    corpus_w = torch.cat([torch.full((len(f),), tcfg.meld_weight if name == "meld" else 1.0)
                          for name, f in train])
    counts = torch.bincount(labels, minlength=hcfg.n_classes).float().clamp(min=1)
    class_w = torch.ones_like(counts)
    if tcfg.class_weight == "sqrt":
        class_w = (counts.sum() / counts).sqrt()
    class_w = class_w / (class_w[labels].mean())
    weight = corpus_w * class_w[labels]  # (N,)
    feats = Features.concat([f for _, f in train])

    opt = torch.optim.AdamW(head.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps = tcfg.epochs * math.ceil(len(feats) / tcfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=steps,
                                                pct_start=0.1)
    t0 = time.time()
    for epoch in range(tcfg.epochs):
        head.train()
        perm = torch.randperm(len(feats), generator=g)
        total = 0.0
        for s in range(0, len(perm), tcfg.batch_size):
            idx = perm[s : s + tcfg.batch_size]
            x, mask = feats.batch(idx, hcfg.pool)  # (B, T, d), (B, T)
            _, loss = head(x, mask, labels[idx], weight[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if (epoch + 1) % 5 == 0 or epoch == tcfg.epochs - 1:
            dev_s = {c: _summary(scores([EMOTIONS[i] for i in f.labels], predict_probs(head, f)))
                     for c, f in dev.items()}
            log(f"  epoch {epoch + 1} ({time.time() - t0:.0f} s):"
                f" train loss {total / len(perm):.4f}"
                f"  dev {json.dumps(dev_s)}")
    dev_scores = {c: scores([EMOTIONS[i] for i in f.labels], predict_probs(head, f))
                  for c, f in dev.items()}
    return head, dev_scores


def _summary(s: dict) -> dict:
    return {k: round(s[k], 4) for k in ("accuracy", "weighted_f1", "macro_f1")}


# What `train` tries, in order; the best mean dev weighted F1 is kept. Class weights
# "sqrt" helped MELD's weighted F1 (its minority classes) in a first sweep of the mean head.
CANDIDATES: list[tuple[HeadConfig, TrainConfig]] = [
    (HeadConfig(pool="mean"), TrainConfig(class_weight="sqrt", epochs=20)),
    (HeadConfig(pool="mean", d_hidden=512, dropout=0.3),
     TrainConfig(class_weight="sqrt", epochs=20, meld_weight=2.0)),
    (HeadConfig(pool="attention"), TrainConfig(class_weight="sqrt", epochs=10)),
    (HeadConfig(pool="attention", dropout=0.3), TrainConfig(class_weight="sqrt", epochs=6)),
    (HeadConfig(pool="attention", dropout=0.3),
     TrainConfig(class_weight="sqrt", epochs=6, meld_weight=2.0)),
]


def train_text_head(*, datasets_dir: Path, out: Path = CHECKPOINT, seed: int = 0,
                    encoder: str = DEFAULT_TEXT_ENCODER,
                    candidates: list[tuple[HeadConfig, TrainConfig]] | None = None,
                    log=print) -> dict:
    """Train the candidates, keep the best by mean dev weighted F1, save it to `out`.

    Returns {"selected": ..., "dev": {corpus: summary}, "candidates": [...], "train_s": ...}.
    """
    t0 = time.time()
    datasets_dir = Path(datasets_dir)
    enc = TextEncoder(encoder)
    train, dev, sizes = [], {}, {}
    for corpus, rel in CORPORA.items():
        for split in ("train", "dev"):
            ex = load_text_corpus(corpus, datasets_dir / rel, split)
            f = cached_features(enc, corpus, split, ex, log=log)
            sizes[f"{corpus}/{split}"] = len(ex)
            if split == "train":
                train.append((corpus, f))
            else:
                dev[corpus] = f
    t_feat = time.time() - t0
    log(f"features ready in {t_feat:.0f} s: {sizes}")

    results, best = [], None
    for hcfg, tcfg in candidates or CANDIDATES:
        hcfg = HeadConfig(**{**asdict(hcfg), "d_in": enc.dim})
        t1 = time.time()
        log(f"candidate {asdict(hcfg)} {asdict(tcfg)}")
        head, dev_scores = fit(train, dev, hcfg, tcfg, seed=seed, log=log)
        key = float(np.mean([dev_scores[c]["weighted_f1"] for c in dev_scores]))
        row = {"head": asdict(hcfg), "train": asdict(tcfg), "train_s": round(time.time() - t1, 1),
               "dev": {c: _summary(s) for c, s in dev_scores.items()}, "mean_dev_weighted_f1": key}
        results.append(row)
        log(f"  -> {json.dumps(row['dev'])}  mean weighted F1 {key:.4f}")
        if best is None or key > best[0]:
            best = (key, head, row, dev_scores)

    _, head, row, dev_scores = best
    train_s = round(time.time() - t0, 1)
    ckpt = {
        "kind": "text_head",
        "head_config": row["head"],
        "train_config": row["train"],
        "state_dict": {k: v.detach().clone() for k, v in head.state_dict().items()},
        "encoder": encoder,
        "max_length": enc.max_length,
        "labels": list(EMOTIONS),
        "seed": seed,
        "scores": {"dev": dev_scores},
        "candidates": results,
        "training_data": {
            "train": "GoEmotions Ekman train.tsv (single-label rows) + MELD train_sent_emo.csv "
                     "(utterance text only, no context)",
            "selection": "best mean weighted F1 over GoEmotions dev.tsv (single-label rows) "
                         "and MELD dev",
            "sizes": sizes,
        },
        "train_s": train_s,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) in {train_s} s")
    return {"selected": row, "dev": row["dev"], "candidates": results, "train_s": train_s,
            "checkpoint": str(out)}


# --- loading and evaluation -----------------------------------------------------------


def load_head(checkpoint: Path | None = None) -> tuple[TextHead, dict]:
    path = Path(checkpoint) if checkpoint is not None else CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"text head checkpoint not found: {path} "
                                "(train one with `python -m cmt.text_head train`)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("kind") != "text_head" or ckpt.get("labels") != list(EMOTIONS):
        raise ValueError(f"{path} is not a text head checkpoint over {EMOTIONS}")
    head = TextHead(HeadConfig(**ckpt["head_config"]))
    head.load_state_dict(ckpt["state_dict"])
    return head.eval(), ckpt


def evaluate_text(*, corpus: str, data_dir: Path, split: str = "dev",
                  checkpoint: Path | None = None, encoder: TextEncoder | None = None) -> dict:
    """cmt.training.metrics.scores of the text head on one corpus split."""
    head, ckpt = load_head(checkpoint)
    enc = encoder or TextEncoder(ckpt["encoder"], max_length=ckpt.get("max_length", 128))
    ex = load_text_corpus(corpus, Path(data_dir), split)
    f = cached_features(enc, corpus, split, ex)
    return scores([e.label for e in ex], predict_probs(head, f))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m cmt.text_head", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the head on GoEmotions + MELD train, score on dev")
    t.add_argument("--datasets-dir", type=Path, required=True)
    t.add_argument("--out", type=Path, default=CHECKPOINT)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--encoder", default=DEFAULT_TEXT_ENCODER)
    e = sub.add_parser("evaluate", help="score a checkpoint on one corpus split")
    e.add_argument("--corpus", choices=sorted(CORPORA), required=True)
    e.add_argument("--data-dir", type=Path, required=True)
    e.add_argument("--split", default="dev")
    e.add_argument("--checkpoint", type=Path, default=None)
    a = p.parse_args(argv)
    if a.cmd == "train":
        r = train_text_head(datasets_dir=a.datasets_dir, out=a.out, seed=a.seed, encoder=a.encoder)
        summary = {"dev": r["dev"], "train_s": r["train_s"], "selected": r["selected"]}
        print(json.dumps(summary, indent=2))
    else:
        s = evaluate_text(corpus=a.corpus, data_dir=a.data_dir, split=a.split,
                          checkpoint=a.checkpoint)
        print(json.dumps({k: s[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1",
                                            "cross_entropy")}, indent=2))


if __name__ == "__main__":
    main()
