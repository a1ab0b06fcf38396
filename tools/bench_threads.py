"""Torch threads in the serving process: 1, 2 and torch's default, idle and under load.

    python tools/bench_threads.py [--repeats 8] [--load 2] [--clip ../shared/media/X.wav]

One engine (the shipped model) reads a typed turn, a camera frame and a spoken turn
(`--clip`, default the test fixture) `--repeats` times per thread count; then the same
again while `--load` busy processes (pure-Python loops) compete for the CPUs. It prints the
median and p95 of each, in ms. Every figure comes from this run; on a shared machine "idle"
is only as idle as the neighbours let it be, so compare the rows of one run.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


class BusyLoad:
    """`n` processes spinning on a CPU each (the "busy background processes" of a shared
    machine), stopped on exit."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.n)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def requests(clip: Path) -> dict:
    from cmt.contract import AnalyzeRequest

    face = sorted((FIXTURES / "faces").glob("*.jpg"))[0].read_bytes()
    return {
        "typed": AnalyzeRequest(text="I keep getting these fractions wrong and it is annoying"),
        "frame": AnalyzeRequest(image_b64=base64.b64encode(face).decode()),
        "spoken": AnalyzeRequest(audio_b64=base64.b64encode(clip.read_bytes()).decode()),
    }


def time_engine(engine, reqs: dict, repeats: int) -> dict[str, tuple[float, float]]:
    out = {}
    for name, req in reqs.items():
        engine.analyze(req)  # warm
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            engine.analyze(req)
            times.append((time.perf_counter() - t) * 1e3)
        out[name] = (float(np.median(times)), float(np.percentile(times, 95)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--load", type=int, default=2, help="busy processes in the loaded runs")
    ap.add_argument("--clip", type=Path, default=FIXTURES / "audio" / "so_frustrating_16k.flac")
    args = ap.parse_args()

    import torch

    from cmt.serve.engine import Engine

    auto = torch.get_num_threads()
    engine = Engine.load()
    reqs = requests(args.clip)
    print(f"model {engine.version}; {os.cpu_count()} CPUs; torch's default {auto} threads; "
          f"clip {args.clip.name}; {args.repeats} repeats; load = {args.load} busy processes")
    print(f"{'threads':>8s} {'load':>5s} " + " ".join(f"{n + ' p50':>11s} {n + ' p95':>11s}"
                                                     for n in reqs))
    for loaded in (False, True):
        for threads in dict.fromkeys((1, 2, auto)):  # auto: torch's default, one per core
            torch.set_num_threads(threads)
            label = f"{threads}" + (" auto" if threads == auto else "")
            if loaded:
                with BusyLoad(args.load):
                    figures = time_engine(engine, reqs, args.repeats)
            else:
                figures = time_engine(engine, reqs, args.repeats)
            print(f"{label:>8s} {args.load if loaded else 0:5d} " + " ".join(
                f"{p50:11.1f} {p95:11.1f}" for p50, p95 in figures.values()), flush=True)
    torch.set_num_threads(auto)


if __name__ == "__main__":
    main()
