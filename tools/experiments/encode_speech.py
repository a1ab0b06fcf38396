"""Encode (and cache under ATTUNE_HOME) the speech features the experiments read:
RAVDESS and EmoDB, train and dev parts, the shipped encoder with summary tokens;
then, with --augment K, K augmented copies of each corpus's train part."""
import logging, sys, time
from pathlib import Path
from cmt.model.tokens import Encoders
from cmt.training.corpora import features

logging.basicConfig(level=logging.INFO)
D = Path("/work/shared/datasets")
enc = Encoders({"speech": None}, speech_summary=True)
aug = int(sys.argv[1]) if len(sys.argv) > 1 else 0
jobs = [("emodb", "train", 0), ("emodb", "dev", 0), ("ravdess", "dev", 0), ("ravdess", "train", 0)]
if aug:
    jobs = [("emodb", "train", aug), ("ravdess", "train", aug)]
for corpus, split, a in jobs:
    t = time.time()
    fs = features(corpus, D / corpus, split, enc, augment=a)
    print(corpus, split, a, len(fs), f"{time.time()-t:.0f}s", flush=True)
