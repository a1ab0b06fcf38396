"""The text encoder (MiniLM) quantised to int8 against float32, on real dev text:

    python tools/bench_text_int8.py [--data-dir ../shared/datasets]

The served model's ONNX export of the text encoder is quantised dynamically to int8 by ONNX
Runtime, per output channel (`per_channel=True`) and per tensor (the default), and the
shipped checkpoint answers MELD dev and GoEmotions (Ekman) dev through each, as
`cmt evaluate` does (stacked with the text expert, tempered by its reliability). It prints,
per corpus and encoder, how many answers keep the float32 label, the dev scores (weighted and
macro F1), and the median ms of one sentence through the encoder alone. Nothing is served
from here: this measures whether int8 may be.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = {"meld": "meld", "goemotions": "goemotions/ekman"}


def predictions(enc, corpus: str, data_dir: Path):
    """(labels, probs (N, C)) of the shipped checkpoint on a corpus's dev split through enc."""
    from cmt.model.emotion import DEFAULT_CHECKPOINT
    from cmt.model.experts import experts_from_dict
    from cmt.model.fusion import fusion_from_checkpoint, read_checkpoint
    from cmt.training.corpora import features
    from cmt.model.reliability import Reliability
    from cmt.model.stack import Stack
    from cmt.training.train import predict_pool

    ckpt = read_checkpoint(Path(DEFAULT_CHECKPOINT))
    model = fusion_from_checkpoint(ckpt, Path(DEFAULT_CHECKPOINT))
    fs = features(corpus, data_dir, "dev", enc)
    probs = predict_pool(model, fs, stack=Stack.from_dict(ckpt.get("stack")),
                         experts=experts_from_dict(ckpt.get("experts")),
                         reliability={m: Reliability.from_dict(b)
                                      for m, b in (ckpt.get("reliability") or {}).items()},
                         fused_source=(ckpt.get("probe") or {}).get("fused_source", True))
    return fs.labels.numpy(), probs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    args = ap.parse_args()

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from cmt.contract import EMOTIONS
    from cmt.model.encoders.onnx import session, state_version
    from cmt.model.emotion import DEFAULT_CHECKPOINT
    from cmt.model.fusion import read_checkpoint
    from cmt.training.metrics import scores
    from cmt.model.tokens import Encoders

    torch.set_num_threads(1)  # as the service runs (Settings.serve_threads)
    config = read_checkpoint(Path(DEFAULT_CHECKPOINT))["config"]
    enc = Encoders(config.get("encoders"), speech_summary=config.get("speech_summary", False))
    text = enc.text
    text.tokens(["warm"])  # exports (or finds) the float32 ONNX model
    fp32 = text._onnx.path
    runs = {"float32": (text._onnx, text.fingerprint)}
    for name, per_channel in (("int8 per channel", True), ("int8 per tensor", False)):
        out = fp32.with_name(fp32.stem + ("-int8pc" if per_channel else "-int8") + ".onnx")
        if not out.is_file():
            quantize_dynamic(str(fp32), str(out), per_channel=per_channel,
                             weight_type=QuantType.QInt8)
        sess = session(out)
        runs[name] = (lambda feeds, s=sess: s.run(["hidden"], feeds),
                      f"{text.fingerprint}+onnx-{out.stem[-6:]}")  # its own feature cache
    sentence = ["I keep getting these fractions wrong and it is so annoying."]
    version = state_version(text.model)
    for corpus, folder in CORPORA.items():
        ref = None
        print(f"\n{corpus} dev:")
        print(f"{'encoder':>18s} {'n':>5s} {'same label':>10s} {'weighted F1':>11s} "
              f"{'macro F1':>8s} {'ms/sentence':>11s}")
        for name, (run, fingerprint) in runs.items():
            text._onnx, text._onnx_version, text.fingerprint = run, version, fingerprint
            labels, probs = predictions(enc, corpus, args.data_dir / folder)
            y = [EMOTIONS[i] for i in labels.tolist()]
            s = scores(y, probs)
            pred = probs.argmax(1)
            ref = pred if ref is None else ref
            ts = []
            for _ in range(20):
                t = time.perf_counter()
                text.tokens(sentence)
                ts.append((time.perf_counter() - t) * 1e3)
            print(f"{name:>18s} {len(pred):5d} {(pred == ref).mean():10.3f} "
                  f"{s['weighted_f1']:11.4f} {s['macro_f1']:8.4f} {statistics.median(ts):11.1f}",
                  flush=True)
        text._onnx, text.fingerprint = runs["float32"]


if __name__ == "__main__":
    main()
