"""The policy's channel reliabilities, measured: each modality's Cohen's kappa (agreement with
the true labels beyond chance: 0 is guessing, 1 is always right) on the sets it was scored on,
the lowest of them, since a student is unlike every corpus.

    PYTHONPATH=. python tools/policy_reliability.py                  # from data/policy/measured.json
    PYTHONPATH=. python tools/policy_reliability.py --reports R.json ...  # record new reports

A report is what `cmt evaluate --dataset D --data-dir DIR --json` prints; `--reports` keeps
each one's confusion matrix in data/policy/measured.json (with the checkpoint it scored) and
prints the reliabilities to copy into `channels` of data/policy/default.yaml. The fused
channel (a reading that names no modality) has no corpus to be measured on and stays stated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "data" / "policy" / "measured.json"


def kappa(matrix: list[list[float]]) -> float:
    """Cohen's kappa of a confusion matrix (rows: true labels, columns: answers)."""
    n = sum(map(sum, matrix))
    observed = sum(matrix[i][i] for i in range(len(matrix))) / n
    rows = [sum(r) for r in matrix]
    cols = [sum(r[j] for r in matrix) for j in range(len(matrix))]
    chance = sum(a * b for a, b in zip(rows, cols)) / n ** 2
    return (observed - chance) / (1 - chance)


def reliabilities(sets: list[dict]) -> dict[str, tuple[float, str]]:
    """Per modality: the lowest kappa over its sets, and the set that gave it."""
    out: dict[str, tuple[float, str]] = {}
    for s in sets:
        k = kappa(s["matrix"])
        name = f"{s['dataset']} {s['split']}"
        if s["modality"] not in out or k < out[s["modality"]][0]:
            out[s["modality"]] = (k, name)
    return out


def record(reports: list[Path], out: Path) -> list[dict]:
    """Keep what each `cmt evaluate --json` report measured (its confusion matrix) in `out`."""
    sets = []
    for path in reports:
        r = json.loads(path.read_text())
        sets.append({"modality": r["modality"], "dataset": r["dataset"], "split": r["split"],
                     "n": r["n"], "checkpoint": Path(r["checkpoint"]).name,
                     "labels": r["confusion"]["labels"], "matrix": r["confusion"]["matrix"]})
    out.write_text(json.dumps(sets, indent=1) + "\n")
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=Path, nargs="+", help="`cmt evaluate --json` outputs")
    ap.add_argument("--measured", type=Path, default=MEASURED, help=f"default {MEASURED}")
    args = ap.parse_args()
    if args.reports:
        record(args.reports, args.measured)
    sets = json.loads(args.measured.read_text())
    for s in sets:
        print(f"{s['modality']:6} {s['dataset']} {s['split']} (n {s['n']}): "
              f"kappa {kappa(s['matrix']):.3f}")
    for modality, (k, name) in sorted(reliabilities(sets).items()):
        print(f"channels.{modality}.reliability: {k:.2f}  (lowest, on {name})")


if __name__ == "__main__":
    sys.exit(main())
