"""cmt.evaluate.evaluate on the speech sets, for several checkpoints, in one process:
    python tools/experiments/eval_speech.py OUT.json CKPT:DATASET:SPLIT ..."""
import json
import sys
from pathlib import Path

from cmt.contract import EMOTIONS
from cmt.training.evaluate import evaluate

D = Path("/work/shared/datasets")
out = {}
for spec in sys.argv[2:]:
    ckpt, ds, split = spec.split(":")
    r = evaluate(dataset=ds, data_dir=D / ds, split=split, checkpoint=Path(ckpt))
    m = r["confusion"]["matrix"]
    fear = sum(row[EMOTIONS.index("fear")] for row in m)
    pc = {k: (round(v["precision"], 2), round(v["recall"], 2), v.get("support")) for k, v in r["per_class"].items()}
    out[spec] = {k: r[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", "ece", "mean_confidence")}
    out[spec].update(mean_reliability=r.get("mean_reliability"), answered_fear=fear, per_class=pc)
    print(spec, json.dumps(out[spec]), flush=True)
Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
