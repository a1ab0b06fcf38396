"""The data files shipped built by `tools/build_*.py`: written, or checked against a fresh
build (`--check`, exit 1 when the shipped file differs)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def serialise(table: dict) -> str:
    return json.dumps(table, ensure_ascii=False, sort_keys=True, indent=0) + "\n"


def write_or_check(path: Path, build: Callable[[], dict], doc: str,
                   describe: Callable[[dict], str]) -> None:
    """The command line of a build tool: `doc`'s first paragraph is its help; `describe` says
    what a written table holds."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the shipped file instead of writing it")
    args = ap.parse_args()
    text = serialise(build())
    if args.check:
        same = path.exists() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'as built' if same else 'differs from a fresh build'}")
        raise SystemExit(0 if same else 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {describe(json.loads(text))}")
