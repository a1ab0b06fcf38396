import logging, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from loudness import NormEncoders
from cmt.training.corpora import features
logging.basicConfig(level=logging.INFO)
D = Path("/work/shared/datasets")
enc = NormEncoders({"speech": None}, speech_summary=True)
for corpus, split in [("emodb", "train"), ("emodb", "dev"), ("ravdess", "dev"), ("ravdess", "train")]:
    t = time.time(); fs = features(corpus, D / corpus, split, enc)
    print(corpus, split, len(fs), f"{time.time()-t:.0f}s", flush=True)
