"""Build a checkpoint that keeps the shipped fusion, text and face parts and replaces the speech
parts: a speech expert trained on RAVDESS + EmoDB (fit parts, plus augmented copies), the stack
refitted on every modality's calibration split, speech reliability fitted across corpora
(probes without EmoDB and on EmoDB alone, cmt.train.fit_reliability).

    PYTHONPATH=. ATTUNE_HOME=... python tools/experiments/ship_speech.py OUT.pt \
        [--loud] [--aug K] [--epochs E] [--probe-dir DIR]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from cmt.contract import EMOTIONS
from cmt.training.experts import ExpertSpec, fit_experts
from cmt.model.experts import experts_from_dict, experts_to_dict
from cmt.training.features import FeatureSet, cache_path, cached, pack
from cmt.model.fusion import fusion_from_checkpoint, read_checkpoint
from cmt.training.metrics import scores
from cmt.model.tokens import MAX_TOKENS, Encoders
from cmt.training.corpora import SUBDIR, _extract, examples, features
from cmt.settings import Settings
from cmt.model.stack import Stack
from cmt.training.train import TrainConfig, _brief, _save_checkpoint, calibration_split, evaluate_pools, fit_calibration, fit_reliability, predict_pool
from cmt.training.corpora import calibration_mask

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--loud", action="store_true")
ap.add_argument("--aug", type=int, default=0)
ap.add_argument("--epochs", type=int, default=300)
ap.add_argument("--probe-dir", type=Path, default=None)
ap.add_argument("--base", type=Path, default=Path("cmt/checkpoints/cmt.pt"))
args = ap.parse_args()
D = Path("/work/shared/datasets")
t0 = time.time()
base = read_checkpoint(args.base)
model = fusion_from_checkpoint(base, args.base)
cfg0 = base["config"]
LOUD = -23.0 if args.loud else None
enc = Encoders(cfg0["encoders"], speech_summary=True, speech_loudness=LOUD)
SEED, FRAC = cfg0.get("seed", 0), cfg0.get("calibration", 0.15)


def calib_items_features(corpus):
    """The calibration part of a text or face corpus's train split, encoded alone (the same
    examples cmt.train.calibration_split would hold out of the whole split's features)."""
    items = examples(corpus, D / SUBDIR[corpus], "train")
    held = calibration_mask([e.group or "" for e in items], FRAC, SEED)
    part = [e for e, h in zip(items, held) if h]
    mod = {"goemotions": "text", "meld": "text", "facial_expressions": "face"}[corpus]
    path = cache_path(Settings().home, mod, corpus, "train-calib", enc.key(mod), str(D / SUBDIR[corpus]),
                      f"{len(part)}:{part[0]}:{part[-1]}")

    def build():
        chunks, kept = _extract(mod, part, enc, 64)
        assert len(kept) == len(part)
        return pack(mod, chunks, [e.label for e in kept], [e.group or "" for e in kept], MAX_TOKENS[mod],
                    meta={"corpus": corpus, "split": "train-calib"})
    return cached(path, build)


speech = ["ravdess", "emodb"]
fit, calib_by, dev_by, aug = {"speech": {}}, {"speech": {}}, {"speech": {}}, {"speech": {}}
for c in speech:
    tr = features(c, D / c, "train", enc)
    fit["speech"][c], calib_by["speech"][c] = calibration_split(tr, FRAC, SEED)
    dev_by["speech"][c] = features(c, D / c, "dev", enc)
    if args.aug:
        a = features(c, D / c, "train", enc, augment=args.aug)
        keep = set(fit["speech"][c].groups)
        aug["speech"][c] = a.subset([i for i, g in enumerate(a.groups) if g in keep])
print("speech fit", {c: len(f) for c, f in fit["speech"].items()}, "calib",
      {c: len(f) for c, f in calib_by["speech"].items()}, "aug", {c: len(f) for c, f in aug["speech"].items()},
      flush=True)

cfg = {**cfg0, "expert_corpora": {**(cfg0.get("expert_corpora") or {}), "speech": speech},
       "augment": {"speech": args.aug} if args.aug else {},
       "reliability": {"speech": {"held_out": "emodb"}},
       "experts": {**cfg0["experts"], "speech": {**cfg0["experts"]["speech"], "epochs": args.epochs}},
       "probe_dir": str(args.probe_dir) if args.probe_dir else None, "datasets_dir": str(D),
       "speech_loudness": LOUD, "name": "cmt", "out": str(args.out), "fusion_from": None}
config = TrainConfig(**cfg)
pool = FeatureSet.concat([fs for c in speech for fs in [fit["speech"][c]] + ([aug["speech"][c]] if c in aug["speech"] else [])])
experts = experts_from_dict(base["experts"])
experts["speech"] = fit_experts({"speech": pool}, {"speech": config.experts["speech"]}, seed=SEED)["speech"]
print("speech expert trained on", len(pool), f"({time.time() - t0:.0f}s)", flush=True)

import os
while os.environ.get("WAIT_PID") and Path(f"/proc/{os.environ['WAIT_PID']}").exists():
    time.sleep(5)  # the text calibration features are still being encoded by another process
calib = {"text": FeatureSet.concat([calib_items_features(c) for c in ("goemotions", "meld")]),
         "face": calib_items_features("facial_expressions"),
         "speech": FeatureSet.concat([calib_by["speech"][c] for c in speech])}
print("calibration sizes", {m: len(f) for m, f in calib.items()}, f"({time.time() - t0:.0f}s)", flush=True)
stack = fit_calibration(model, calib, experts=experts)
old = base["stack"]["weights"]
for k in ("text", "face", "face+text"):
    print("stack", k, "shipped", np.round(old[k], 4).tolist(), "refit", np.round(stack.weights[k], 4).tolist())
    stack.weights[k] = list(old[k])  # the text and face answers stay the shipped ones exactly
for k in sorted(stack.weights):
    print("stack", k, np.round(stack.weights[k], 3).tolist())

ckpt = {k: v for k, v in base.items() if k not in ("report",)}
ckpt["config"] = config.model_dump(mode="json")
ckpt["experts"], ckpt["stack"] = experts_to_dict(experts), stack.to_dict()
sub = config.model_copy(update={"corpora": {"speech": ["ravdess"]}})
rels, rel_rep, cross = fit_reliability(sub, model, stack, experts, fit, aug,
                                       calib_by, dev_by, ckpt)
reliability = dict(base.get("reliability") or {})
reliability["speech"] = rels["speech"].to_dict()
ckpt["reliability"] = reliability
from cmt.model.reliability import Reliability
relm = {m: Reliability.from_dict(b) for m, b in reliability.items()}
per = {}
for c in speech:
    fs = dev_by["speech"][c]
    y = [EMOTIONS[i] for i in fs.labels.tolist()]
    per[c] = {"expert": _brief(scores(y, predict_pool(model, fs, stack=Stack({"speech": [0.0, 1.0]}), experts=experts))),
              "stacked_tempered": _brief(scores(y, predict_pool(model, fs, stack=stack, experts=experts, reliability=relm)))}
report = {"built_by": "tools/experiments/ship_speech.py " + " ".join(sys.argv[1:]), "base": str(args.base),
          "speech_expert_train_size": len(pool), "calibration_sizes": {m: len(f) for m, f in calib.items()},
          "stack": stack.to_dict(), "reliability": rel_rep, "cross_corpus": cross, "speech_dev": per,
          "seconds": time.time() - t0}
ckpt["report"] = {**(base.get("report") or {}), "speech_rebuild": report}
_save_checkpoint(ckpt, args.out)
print(json.dumps({k: report[k] for k in ("reliability", "cross_corpus", "speech_dev")}, indent=1, default=str)[:6000])
