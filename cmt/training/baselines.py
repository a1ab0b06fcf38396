"""`cmt baselines`: the CMT against the paper's comparators, same code, same data, one table.

Rows: each modality alone (the CMT given only that input), late fusion (averaged unimodal
probabilities), early concatenation fusion, conventional transformer fusion (one joint
self-attention stack over all tokens), and the CMT (cross-modal attention). Every fusion
variant is trained with the same config (only `fusion` differs) and scored on the same
label-matched dev tuples; latency is the fusion step per sample at batch size 1 (the
frozen encoders, shared by all rows, are timed separately by `cmt bench`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from cmt.contract import EMOTIONS
from cmt.model.fusion import FUSIONS
from cmt.training.metrics import scores
from cmt.settings import Settings
from cmt.training.train import (
    TrainConfig,
    build_pools,
    dev_tuples,
    expert_pool_probs,
    load_fusion,
    load_stack,
    merged,
    predict_stacked,
    predict_tuples,
    train,
    training_pools,
)

METRICS = ("weighted_f1", "macro_f1", "accuracy", "cross_entropy")


def latency_ms(model, pools, rows, present, n: int = 200) -> float:
    """Median fusion-step time per sample at batch size 1 over n dev tuples."""
    model.eval()
    times = []
    with torch.inference_mode():
        for j in range(min(n, len(next(iter(rows.values()))))):
            batch = {m: pools[m].rows(torch.tensor([rows[m][j]])) for m in present}
            t = time.perf_counter()
            model(batch)
            times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def latency_stacked_ms(model, stack, experts, pools, rows, present, n: int = 200) -> float:
    """As latency_ms, for the front door's path: one forward over the tuple fused and each of
    its modalities alone (1 + M rows), each modality's expert, then the stack."""
    from cmt.model.stack import EPS, subset_key

    model.eval()
    times, M = [], len(present)
    with torch.inference_mode():
        for j in range(min(n, len(next(iter(rows.values()))))):
            batch = {}
            for k, m in enumerate(present):
                tokens, mask = pools[m].rows(torch.tensor([rows[m][j]]))
                keep = torch.tensor([True] + [i == k for i in range(M)])[:, None]  # (1+M, 1)
                batch[m] = (tokens.expand(1 + M, -1, -1), mask.expand(1 + M, -1) & keep)
            t = time.perf_counter()
            logits, _, _ = model(batch)
            logp = list(logits.log_softmax(-1).double().numpy().clip(np.log(EPS))[:, None])  # (1,C) each
            singles = [logp[1 + list(present).index(m)] for m in sorted(present)]
            own = [np.log(experts[m].probs_of(batch[m][0][:1], batch[m][1][:1]).clip(EPS))
                   for m in sorted(present) if m in experts]
            stack.combine(subset_key(present), [logp[0]] + singles + own)
            times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def run(config: TrainConfig, *, retrain: bool = False, progress: bool = True) -> list[dict]:
    from cmt.model.tokens import Encoders

    cache = Settings().home / "cache" / "baselines"
    # comparators are cached per encoder weights: features from other encoders mean retraining
    enc = Encoders(config.encoders, speech_summary=config.speech_summary,
                   speech_loudness=config.speech_loudness)
    encoders = hashlib.sha1("|".join(enc.key(m) for m in sorted(config.corpora)).encode()).hexdigest()[:8]
    train_pools, _calib = training_pools(config)  # the same data the shipped CMT trained on
    dev = merged(build_pools(config, "dev"))
    rows, labels = dev_tuples(dev)
    y = [EMOTIONS[i] for i in labels]
    mods = tuple(dev)
    table = []
    models = {}
    for fusion in FUSIONS:
        if fusion == config.fusion:  # the config's own model, made (with its stack) by `cmt train`
            path = Path(config.out)
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: run `cmt train` with this config first")
        else:  # a comparator, never written over the config's model
            path = cache / f"{config.name}-{fusion}-{encoders}.pt"
            if retrain or not path.is_file():
                cfg = config.model_copy(update={"fusion": fusion, "out": path,
                                                "name": f"{config.name}-{fusion}"})
                train(cfg, train_pools, progress=progress)
        models[fusion] = load_fusion(path)
    cross = models.get("cross") or models[config.fusion]
    for m in mods:  # each modality alone, through the CMT
        res = scores(y, predict_tuples(cross, dev, rows, (m,)))
        table.append({"model": f"unimodal: {m}", **{k: res[k] for k in METRICS},
                      "latency_ms": latency_ms(cross, dev, rows, (m,))})
    names = {"late": "late fusion (mean of unimodal probabilities)",
             "concat": "early fusion (concatenation + MLP)",
             "joint": "conventional transformer fusion (joint self-attention)",
             "cross": "CMT (cross-modal attention)"}
    for fusion in ("late", "concat", "joint", "cross"):
        res = scores(y, predict_tuples(models[fusion], dev, rows, mods))
        table.append({"model": names[fusion], **{k: res[k] for k in METRICS},
                      "latency_ms": latency_ms(models[fusion], dev, rows, mods)})
    stack, experts = load_stack(Path(config.out)) if config.fusion == "cross" else (None, {})
    if stack is not None:  # the shipped front door: the CMT through its calibrated stack
        eprobs = expert_pool_probs(experts, dev)
        for m in mods:
            if m in eprobs:
                res = scores(y, eprobs[m][rows[m]])
                table.append({"model": f"expert: {m}", **{k: res[k] for k in METRICS},
                              "latency_ms": None})
        res = scores(y, predict_stacked(cross, dev, rows, mods, stack, eprobs))
        name = f"CMT + {'experts + ' if experts else ''}calibrated stack (shipped)"
        table.append({"model": name, **{k: res[k] for k in METRICS},
                      "latency_ms": latency_stacked_ms(cross, stack, experts, dev, rows, mods)})
        for sub in [p for p in _pairs(mods)]:
            res = scores(y, predict_stacked(cross, dev, rows, sub, stack, eprobs))
            table.append({"model": f"  stacked, {'+'.join(sub)} only", **{k: res[k] for k in METRICS},
                          "latency_ms": None})
    for row in table:
        row["n"] = len(y)
    return table


def _pairs(mods: tuple[str, ...]) -> list[tuple[str, ...]]:
    from itertools import combinations

    return list(combinations(mods, 2))


def render(table: list[dict]) -> str:
    head = f"{'model':58s} {'wF1':>6s} {'mF1':>6s} {'acc':>6s} {'CE':>6s} {'ms/sample':>9s}"
    lines = [head, "-" * len(head)]
    for r in table:
        lines.append(f"{r['model']:58s} {r['weighted_f1']:6.3f} {r['macro_f1']:6.3f} "
                     f"{r['accuracy']:6.3f} {r['cross_entropy']:6.3f} "
                     + (f"{r['latency_ms']:9.2f}" if r["latency_ms"] is not None else f"{'-':>9s}"))
    lines.append(f"(n = {table[0]['n']} label-matched dev tuples; ms/sample: fusion step only, batch 1)")
    return "\n".join(lines)
