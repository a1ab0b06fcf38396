"""Score `attune moves` on a labelled split, through the command itself.

    PYTHONPATH=. python tools/eval_moves.py [data/moves/dev.jsonl] [--attune PATH] [--errors]
    PYTHONPATH=. python tools/eval_moves.py data/moves/heldout.txt
    PYTHONPATH=. python tools/eval_moves.py --second-reader data/moves/second_reader.jsonl
    PYTHONPATH=. python tools/eval_moves.py --not-answers data/moves/not_answers_languages.txt

A split is a `.jsonl` file as `tools/train_moves.py` writes them, or a `.txt` file in the
format of `data/moves/messages.txt`. Feeds the split's messages to `attune moves` (with `--no-question` for those labelled
`question_waiting: false`) and prints move accuracy, frustration-flag accuracy, per-move
recall and, for answers, how often the extracted answer has the labelled value; where some
messages are near copies of training messages (`near_copy_key`), the same two figures on the
rest, the messages the classifier never saw; then the time `classify_move` takes per message in this process (the model loaded once).

`--not-answers FILE` instead reads messages that hold no answer (one a line, a question
waiting) and counts those `attune moves` reads as answers.

`--second-reader FILE` instead compares a second person's labels of some messages (JSON lines:
`text`, `question_waiting`, `move`, `frustrated`) with the labels in the splits (train and dev):
how often two careful readers agree, the ceiling a classifier can be held to.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def same_value(got: str | None, want: str | None) -> bool:
    """Two written answers name the same value ("1 1/2" and "3/2", "x = 5" and "x=5")."""
    from tutor.answers import ParseProblem, _equal, parse_math

    if got is None or want is None:
        return got == want
    def plain(s: str) -> str:
        return re.sub(r"\s*([-+*/=^()])\s*", r"\1", s.strip().lower())

    if plain(got) == plain(want):
        return True  # as written ("5n", "12x": not a number and a unit)
    # the value, not its unit or currency: "450g", "£1.40" and "72 km/h" are 450, 1.40 and 72
    want = re.sub(r"(?<=\d)\s*(?:[a-z]+(?:/[a-z]+)?|[²³])$", "", re.sub(r"^[£$€]\s*", "", want.strip()))
    if got.strip().lower() == want.strip().lower():
        return True
    if not any(c.isdigit() for c in want):
        return False
    try:
        g = [parse_math(side, ("x", "y", "n", "a"), mixed_numbers=True)
             for side in got.split("=")]
        w = [parse_math(side, ("x", "y", "n", "a"), mixed_numbers=True)
             for side in want.split("=")]
    except ParseProblem:
        return False
    return _equal(g[-1], w[-1]) and (len(g) == len(w) or len(w) == 1)


def run_moves(attune: str, texts: list[str], no_question: bool) -> list[dict]:
    args = [attune, "moves"] + (["--no-question"] if no_question else [])
    done = subprocess.run(args, input="".join(t + "\n" for t in texts), capture_output=True,
                          text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def second_reader(path: Path, splits: list[Path]) -> None:
    from tools.train_moves import read_jsonl

    labels = {(r["text"], r["question_waiting"]): r for split in splits
              for r in read_jsonl(split)}
    second = read_jsonl(path)
    pairs = [(labels[(r["text"], r["question_waiting"])], r) for r in second
             if (r["text"], r["question_waiting"]) in labels]
    if not pairs:
        raise SystemExit(f"{path}: none of its messages is in the splits")
    n = len(pairs)
    move = sum(a["move"] == b["move"] for a, b in pairs)
    frus = sum(a["frustrated"] == b["frustrated"] for a, b in pairs)
    print(f"{path}: {n} messages labelled by a second reader (of {len(second)})")
    print(f"agreement: move {move / n:.3f} ({move}/{n}), frustration flag {frus / n:.3f} "
          f"({frus}/{n})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("split", nargs="?", type=Path, default=ROOT / "data/moves/dev.jsonl")
    beside = Path(sys.executable).with_name("attune")  # this venv's, when not on PATH
    ap.add_argument("--attune", default=shutil.which("attune")
                    or (str(beside) if beside.exists() else "attune"))
    ap.add_argument("--errors", action="store_true", help="list the messages it gets wrong")
    ap.add_argument("--train", type=Path, default=ROOT / "data/moves/train.jsonl",
                    help="the split the shipped classifier was fitted on")
    ap.add_argument("--second-reader", type=Path, metavar="FILE",
                    help="compare a second reader's labels with the splits', then stop")
    ap.add_argument("--not-answers", type=Path, metavar="FILE",
                    help="count the messages of FILE (none an answer) read as answers, then stop")
    args = ap.parse_args()
    from tools.train_moves import near_copy_key, read_jsonl, read_messages

    if args.second_reader:
        second_reader(args.second_reader, [args.train, ROOT / "data/moves/dev.jsonl"])
        return
    if args.not_answers:
        texts = [t.strip() for t in args.not_answers.read_text(encoding="utf-8").splitlines()
                 if t.strip()]
        read = [g for g in run_moves(args.attune, texts, False) if g["move"] == "answer"]
        print(f"{args.not_answers}: {len(texts)} messages that hold no answer; read as answers:"
              f" {len(read)}")
        for g in read if args.errors else ():
            print(f"  {g['text']!r}: answer {g['answer']!r}")
        return

    if args.split.suffix == ".txt":
        rows = read_messages(args.split)
    else:
        rows = read_jsonl(args.split)
    if any("\n" in r["text"] or "\r" in r["text"] for r in rows):
        raise SystemExit("a message spans lines; `attune moves` reads one per line")
    out: list[tuple[dict, dict]] = []
    for waiting in (True, False):
        part = [r for r in rows if r["question_waiting"] == waiting]
        if part:
            got = run_moves(args.attune, [r["text"] for r in part], not waiting)
            out += list(zip(part, got, strict=True))
    n = len(out)
    move_ok = sum(g["move"] == r["move"] for r, g in out)
    frus_ok = sum(g["frustrated"] == r["frustrated"] for r, g in out)
    answers = [(r, g) for r, g in out if r["move"] == "answer" and r.get("answer")]
    value_ok = sum(g["move"] == "answer" and same_value(g["answer"], r["answer"])
                   for r, g in answers)
    # read as an answer with another number in it: a right answer the checker would mark wrong
    wrong = sum(g["move"] == "answer" and not same_value(g["answer"], r["answer"])
                and any(c.isdigit() for c in g["answer"] or "") for r, g in answers)
    print(f"{args.split}: {n} messages")
    print(f"move accuracy       {move_ok / n:.3f}  ({move_ok}/{n})")
    print(f"frustration flag    {frus_ok / n:.3f}  ({frus_ok}/{n})")
    if answers:
        print(f"answer value        {value_ok / len(answers):.3f}  ({value_ok}/{len(answers)}"
              " labelled answers read as answers with the labelled value; "
              f"{wrong} with another number)")
    seen = {near_copy_key(r["text"]) for r in read_jsonl(args.train)}
    unseen = [(r, g) for r, g in out if near_copy_key(r["text"]) not in seen]
    if 0 < len(unseen) < n:
        m = sum(g["move"] == r["move"] for r, g in unseen)
        f = sum(g["frustrated"] == r["frustrated"] for r, g in unseen)
        print(f"never seen in train {len(unseen)} of the {n}: move {m / len(unseen):.3f}, "
              f"frustration flag {f / len(unseen):.3f}")
    from tutor.moves import beyond_ascii

    for name, other in (("plain ASCII letters", False), ("another script or accents", True)):
        part = [(r, g) for r, g in out if beyond_ascii(r["text"]) == other]
        if 0 < len(part) < n:
            m = sum(g["move"] == r["move"] for r, g in part)
            f = sum(g["frustrated"] == r["frustrated"] for r, g in part)
            print(f"{name:<26} {len(part)}: move {m / len(part):.3f}, "
                  f"frustration flag {f / len(part):.3f}")
    totals, hits = Counter(r["move"] for r, _ in out), Counter(
        r["move"] for r, g in out if g["move"] == r["move"])
    print("recall by move      " + ", ".join(
        f"{k} {hits[k] / totals[k]:.2f}" for k in sorted(totals)))
    from tutor.intents import classify_move

    classify_move("warm up", expecting_answer=True)  # loads the weights
    times = []
    for r in rows:
        start = time.perf_counter()
        classify_move(r["text"], expecting_answer=r["question_waiting"])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"classify_move       median {times[len(times) // 2]:.2f} ms, p99 "
          f"{times[int(len(times) * 0.99)]:.2f} ms, max {times[-1]:.2f} ms per message")
    if args.errors:
        for r, g in out:
            if g["move"] != r["move"] or g["frustrated"] != r["frustrated"]:
                print(f"  {r['text']!r}: {r['move']}{'!' * r['frustrated']} -> "
                      f"{g['move']}{'!' * g['frustrated']}")


if __name__ == "__main__":
    main()
