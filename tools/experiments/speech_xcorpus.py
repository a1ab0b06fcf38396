"""Speech expert experiments: normalisation variants, choices on held-out speakers of the
training corpus, then leave-one-corpus-out both ways.

    PYTHONPATH=. ATTUNE_HOME=... python tools/experiments/speech_xcorpus.py raw|loud [epochs]

For each variant: 4-fold by actor inside RAVDESS (5 actors held out per fold; the choice),
5-fold by speaker inside EmoDB (2 speakers per fold), RAVDESS whole -> EmoDB whole and EmoDB
whole -> RAVDESS whole (reported, never chosen on). Macro F1, accuracy, fear share, ECE."""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from cmt.contract import EMOTIONS
from cmt.model.experts import ExpertConfig
from cmt.training.experts import pooled_inputs, train_expert
from cmt.training.features import FeatureSet
from cmt.training.metrics import scores
from cmt.model.tokens import Encoders
from cmt.training.corpora import features

torch.set_num_threads(1)
D = Path("/work/shared/datasets")
kind = sys.argv[1] if len(sys.argv) > 1 else "raw"
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
VARIANTS = sys.argv[3].split(",") if len(sys.argv) > 3 else ["none", "speaker", "utt_layer"]
if kind == "loud":
    from loudness import NormEncoders as E
else:
    E = Encoders
enc = E({"speech": None}, speech_summary=True)
FEAR = EMOTIONS.index("fear")


def load(corpus):
    fs = FeatureSet.concat([features(corpus, D / corpus, s, enc) for s in ("train", "dev")])
    return pooled_inputs(fs, 5), fs.labels.numpy(), np.array(fs.groups)


def normalise(x, groups, how):
    """x (N, 5, 768) pooled [mean, std] per layer."""
    x = x.copy()
    if how == "none":
        return x
    if how == "speaker":  # each speaker's own mean and deviation (known speakers only)
        for g in np.unique(groups):
            i = groups == g
            x[i] = (x[i] - x[i].mean(0)) / (x[i].std(0) + 1e-4)
        return x
    if how == "utt_layer":  # per utterance: each layer's mean vector less its own average over dims
        m = x[..., :384]
        x[..., :384] = (m - m.mean(-1, keepdims=True)) / (m.std(-1, keepdims=True) + 1e-6)
        return x
    if how == "std_only":  # drop the layer means (channel and speaker offsets), keep spreads
        x[..., :384] = 0
        return x
    raise ValueError(how)


def fit_eval(xtr, ytr, xte, yte):
    e = train_expert(xtr, ytr, ExpertConfig(n_layers=5, d_model=384), epochs=EPOCHS, seed=0)
    with torch.inference_mode():
        p = e(torch.from_numpy(xte))[0].double().softmax(-1).numpy()
    return p


def report(name, y, p):
    s = scores([EMOTIONS[i] for i in y], p)
    top = p.argmax(1)
    print(f"  {name:26s} n {len(y):4d} macroF1 {s['macro_f1']:.3f} acc {s['accuracy']:.3f} "
          f"fear {(top == FEAR).mean():.3f} conf {p.max(1).mean():.3f} ece {s['ece']:.3f}", flush=True)
    return s


def group_cv(x, y, g, k):
    names = np.array(sorted(set(g)))
    rng = np.random.default_rng(0)
    rng.shuffle(names)
    folds = np.array_split(names, k)
    p = np.zeros((len(y), len(EMOTIONS)))
    for f in folds:
        te = np.isin(g, f)
        p[te] = fit_eval(x[~te], y[~te], x[te], y[te])
    return p


rav, emo = load("ravdess"), load("emodb")
print(kind, "epochs", EPOCHS, "ravdess", rav[0].shape, "emodb", emo[0].shape, flush=True)
for how in VARIANTS:
    t = time.time()
    xr, xe = normalise(rav[0], rav[2], how), normalise(emo[0], emo[2], how)
    print(f"[{kind} / {how}]")
    report("RAVDESS 4-fold actors", rav[1], group_cv(xr, rav[1], rav[2], 4))
    report("EmoDB 5-fold speakers", emo[1], group_cv(xe, emo[1], emo[2], 5))
    report("RAVDESS -> EmoDB", emo[1], fit_eval(xr, rav[1], xe, emo[1]))
    report("EmoDB -> RAVDESS", rav[1], fit_eval(xe, emo[1], xr, rav[1]))
    print(f"  ({time.time() - t:.0f}s)", flush=True)
