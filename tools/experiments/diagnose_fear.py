"""Where EmoDB's "fear" comes from, stage by stage, in the shipped checkpoint.

    PYTHONPATH=. ATTUNE_HOME=... python tools/experiments/diagnose_fear.py [checkpoint]

Per stage on EmoDB whole (535 clips) and RAVDESS held-out actors (240): macro F1, accuracy,
the share of answers that are fear, mean confidence, ECE. Stages: the fusion's fused head on
speech alone, its unimodal speech head, the speech expert alone, the stack untempered, the
stack tempered by reliability (the front door's answer). Then the feature shift: how far
EmoDB's expert inputs sit from RAVDESS's in the expert's own standardisation."""
import sys
from pathlib import Path

import numpy as np
import torch

from cmt.contract import EMOTIONS
from cmt.model.experts import experts_from_dict
from cmt.training.experts import pool_read, pooled_inputs
from cmt.training.features import FeatureSet
from cmt.model.fusion import fusion_from_checkpoint, read_checkpoint
from cmt.training.metrics import scores
from cmt.model.tokens import Encoders
from cmt.training.corpora import features
from cmt.model.reliability import Reliability
from cmt.model.stack import Stack, log_probs
from cmt.training.train import predict_pool

D = Path("/work/shared/datasets")
path = Path(sys.argv[1] if len(sys.argv) > 1 else "cmt/checkpoints/cmt.pt")
ckpt = read_checkpoint(path)
model = fusion_from_checkpoint(ckpt, path)
enc = Encoders(ckpt["config"].get("encoders"), speech_summary=True)
stack, experts = Stack.from_dict(ckpt["stack"]), experts_from_dict(ckpt["experts"])
rel = {m: Reliability.from_dict(b) for m, b in (ckpt.get("reliability") or {}).items()}
FEAR = EMOTIONS.index("fear")
print("stack weights speech:", stack.weights.get("speech"), "rel", {m: (r.a, r.b) for m, r in rel.items()})


def line(name, y, p):
    s = scores([EMOTIONS[i] for i in y], p)
    top = p.argmax(1)
    print(f"  {name:28s} macroF1 {s['macro_f1']:.3f} acc {s['accuracy']:.3f} fear share "
          f"{(top == FEAR).mean():.3f} ({(top == FEAR).sum()}) conf {p.max(1).mean():.3f} ece {s['ece']:.3f}")


sets = {"emodb whole": features("emodb", D / "emodb", "all", enc),
        "ravdess dev": features("ravdess", D / "ravdess", "dev", enc)}
for name, fs in sets.items():
    y = fs.labels.numpy()
    print(name, len(fs))
    fused = predict_pool(model, fs)
    uni = predict_pool(model, fs, head="unimodal")
    ex, feats = pool_read(experts["speech"], fs)
    line("fusion fused head", y, fused)
    line("fusion unimodal head", y, uni)
    line("expert", y, ex)
    line("stack untempered", y, stack.combine("speech", [log_probs(fused), log_probs(ex)]))
    r = rel["speech"].score(feats)
    line("stack tempered (shipped)", y, stack.combine("speech", [log_probs(fused), log_probs(ex)], [r, r]))
    print(f"  mean reliability {r.mean():.3f}")
    e = experts["speech"]
    x = torch.from_numpy(pooled_inputs(fs, e.config.n_layers))
    z = ((x - e.feat_mean) / e.feat_std)
    print("  expert-input |z| per layer (mean over dims and clips):",
          [round(float(v), 2) for v in z.abs().mean((0, 2))],
          " mean z (signed) of the layer-mean half:", [round(float(v), 2) for v in z[..., :384].mean((0, 2))])
