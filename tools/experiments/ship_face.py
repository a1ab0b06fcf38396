"""Build a checkpoint that keeps the shipped fusion, text and speech parts and replaces the face
parts: a face expert trained on facial_expressions' and FER2013's fit parts (FER2013's training
crops, read whole), the stack's face subsets refitted on every modality's calibration split
(the subsets without a face kept as shipped, so text and speech answers do not move), and the
face reliability fitted across corpora (probes without FER2013 and on FER2013 alone, each
scored on the other corpus's dev split alone, which the tuned encoder never saw).

    PYTHONPATH=. python tools/experiments/ship_face.py OUT.pt [--limit N] [--fe-times K] \
        [--epochs E] [--probe-dir DIR] [--data-dir ../shared/datasets]

Scores on the calibration split (which chooses between runs) and on dev (only reported) are
printed and kept in the checkpoint's report (`face_rebuild`).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cmt.contract import EMOTIONS  # noqa: E402
from cmt.model.experts import experts_from_dict, experts_to_dict  # noqa: E402
from cmt.model.fusion import fusion_from_checkpoint, read_checkpoint  # noqa: E402
from cmt.model.reliability import Reliability  # noqa: E402
from cmt.model.stack import Stack  # noqa: E402
from cmt.training.experts import fit_experts  # noqa: E402
from cmt.training.metrics import scores  # noqa: E402
from cmt.training.train import (TrainConfig, _brief, _save_checkpoint, build_pools,  # noqa: E402
                                expert_pools, fit_calibration, fit_reliability, predict_pool,
                                merged, split_pools)

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--limit", type=int, default=0, help="FER2013 training crops (0: all 28,709)")
ap.add_argument("--fe-times", type=int, default=1, help="facial_expressions' fit part this many times")
ap.add_argument("--epochs", type=int, default=100)
ap.add_argument("--probe-dir", type=Path, default=None)
ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
ap.add_argument("--base", type=Path, default=Path("cmt/checkpoints/cmt.pt"))
args = ap.parse_args()
D = args.data_dir.resolve()
t0 = time.time()
base = read_checkpoint(args.base)
model = fusion_from_checkpoint(base, args.base)
cfg0 = base["config"]
SEED = cfg0.get("seed", 0)
FACES = ["facial_expressions", "fer2013"]
limits = {k: v for k, v in (cfg0.get("corpus_limit") or {}).items() if k != "fer2013"}
if args.limit:
    limits["fer2013"] = args.limit


def log(*a):
    print(f"[{time.time() - t0:5.0f}s]", *a, flush=True)


cfg = {**cfg0, "expert_corpora": {**(cfg0.get("expert_corpora") or {}), "face": FACES},
       "corpus_limit": limits,
       "corpus_times": {**(cfg0.get("corpus_times") or {}),
                        **({"facial_expressions": args.fe_times} if args.fe_times > 1 else {})},
       # the probes are scored on dev alone: the tuned encoder has seen both training splits
       "reliability": {**(cfg0.get("reliability") or {}),
                       "face": {"held_out": "fer2013", "probe_on": "dev"}},
       "experts": {**cfg0["experts"], "face": {**cfg0["experts"]["face"], "epochs": args.epochs}},
       "probe_dir": str(args.probe_dir) if args.probe_dir else None, "datasets_dir": str(D),
       "name": "cmt", "out": str(args.out), "fusion_from": None}
config = TrainConfig(**cfg)
# every corpus the checkpoint's fusion and experts read, split as `cmt train` splits them
fit, calib_by = split_pools(config)
dev_by = build_pools(config, "dev")
for m, by in fit.items():
    for c, f in by.items():
        log(m, c, "fit", len(f), "calibration", len(calib_by[m][c]), "dev", len(dev_by[m][c]))
pool = expert_pools(config, fit, {})["face"]
experts = experts_from_dict(base["experts"])
experts["face"] = fit_experts({"face": pool}, {"face": config.experts["face"]}, seed=SEED)["face"]
log("face expert trained on", len(pool))

# modalities in the order the shipped stack was fitted with: the label-matched tuples are drawn
# anchor by anchor in this order, so another order draws other tuples
calib = {m: merged(calib_by)[m] for m in ("face", "text", "speech")}
stack = fit_calibration(model, calib, experts=experts)
old = base["stack"]["weights"]
for k in sorted(stack.weights):
    if "face" not in k.split("+"):
        stack.weights[k] = list(old[k])  # text and speech answers stay the shipped ones exactly
    log("stack", k, "shipped", np.round(old[k], 3).tolist(), "now", np.round(stack.weights[k], 3).tolist())

ckpt = {k: v for k, v in base.items() if k != "report"}
ckpt["config"] = config.model_dump(mode="json")
ckpt["experts"], ckpt["stack"] = experts_to_dict(experts), stack.to_dict()
sub = config.model_copy(update={"reliability": {"face": config.reliability["face"]},
                                "corpora": {"face": ["facial_expressions"]},
                                "expert_corpora": {"face": FACES},
                                "experts": {"face": config.experts["face"]}})
rels, rel_rep, cross = fit_reliability(sub, model, stack, experts, {"face": fit["face"]}, {},
                                       {"face": calib_by["face"]}, {"face": dev_by["face"]}, ckpt)
reliability = dict(base.get("reliability") or {})
reliability["face"] = rels["face"].to_dict()
ckpt["reliability"] = reliability
relm = {m: Reliability.from_dict(b) for m, b in reliability.items()}
log("face reliability", rel_rep["face"])

per = {}
for part, by in (("calibration", calib_by["face"]), ("dev", dev_by["face"])):
    for c, fs in by.items():
        y = [EMOTIONS[i] for i in fs.labels.tolist()]
        per[f"{c} {part}"] = {
            "expert": _brief(scores(y, predict_pool(model, fs, stack=Stack({"face": [0.0, 1.0]}),
                                                    experts=experts))),
            "stacked_tempered": _brief(scores(y, predict_pool(model, fs, stack=stack, experts=experts,
                                                              reliability=relm)))}
        log(c, part, json.dumps(per[f"{c} {part}"]))
report = {"built_by": "tools/experiments/ship_face.py " + " ".join(sys.argv[1:]), "base": str(args.base),
          "face_expert_train_size": len(pool), "calibration_sizes": {m: len(f) for m, f in calib.items()},
          "stack": stack.to_dict(), "reliability": rel_rep, "cross_corpus": cross, "face_scores": per,
          "seconds": time.time() - t0}
ckpt["report"] = {**(base.get("report") or {}), "face_rebuild": report}
_save_checkpoint(ckpt, args.out)
log("wrote", args.out)
print(json.dumps({"cross_corpus": cross}, indent=1, default=str)[:4000])
