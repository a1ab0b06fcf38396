"""The face and text encoders on torch and on ONNX Runtime, side by side, one thread:

    python tools/bench_encoders.py [--repeats 10]

For the tuned face encoder (EfficientNet-Lite0 with its mirror pass) at batch 1 and 16, and
the tuned text encoder (MiniLM) at batch 1 and 8, it prints the median ms of each runtime,
their ratio, and the largest difference of their outputs (face: probabilities on the
fixture faces; text: token states). The runtimes alternate call by call, so a busy spell of
a shared machine falls on both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SENTENCES = ["I keep getting these fractions wrong and it is so annoying.", "Yes!! I got it!",
             "I'm scared I'll fail the test tomorrow.", "ok", "What is the next question?",
             "hmm, is it the bottom number that tells how many parts?", "3/4", "no idea"]


def side_by_side(calls: dict, repeats: int) -> dict[str, float]:
    for call in calls.values():
        call()  # warm (and, for ONNX, export once)
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - t) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()

    import torch

    from cmt.model.encoders.face import FaceEncoder, decode_image
    from cmt.model.encoders.text import TextEncoder

    torch.set_num_threads(1)  # as the service runs (Settings.serve_threads)
    faces = [decode_image(p.read_bytes())
             for p in sorted((REPO / "tests" / "fixtures" / "faces").glob("*.jpg"))]
    face = {r: FaceEncoder("attune-face-emotion", runtime=r) for r in ("torch", "onnx")}
    crops = [c if c is not None else f for f in faces for c in [face["torch"].crop(f)[0]]]
    text = {r: TextEncoder("attune-minilm-emotion", runtime=r) for r in ("torch", "onnx")}
    dprob = np.abs(face["torch"].encode(crops).probs - face["onnx"].encode(crops).probs).max()
    a, mask = text["torch"].tokens(SENTENCES)
    dstate = ((a - text["onnx"].tokens(SENTENCES)[0]).abs() * mask[..., None]).max().item()
    print(f"1 thread, {args.repeats} repeats, median ms; largest difference torch/ONNX: face "
          f"probabilities {dprob:.1e}, text states {dstate:.1e}")
    print(f"{'encoder':>8s} {'batch':>5s} {'torch':>8s} {'onnx':>8s} {'speed-up':>8s}")
    for name, enc, inputs in (("face", face, crops), ("text", text, SENTENCES)):
        for batch in (1, 16 if name == "face" else 8):
            items = (inputs * 16)[:batch]
            run = (lambda e: lambda: e.encode(items)) if name == "face" else (
                lambda e: lambda: e.tokens(items))
            ms = side_by_side({r: run(e) for r, e in enc.items()}, args.repeats)
            print(f"{name:>8s} {batch:5d} {ms['torch']:8.1f} {ms['onnx']:8.1f} "
                  f"{ms['torch'] / ms['onnx']:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
