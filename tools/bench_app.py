"""What a person waits for in the real page: `attune run` driven by Chromium.

    python tools/bench_app.py [--turns 6] [--record-s 6] [--load 2] [--port 18301]

Starts `attune run` (the default `local` mode, a fresh ATTUNE_HOME) and times it to the first
HTTP 200; opens the student page in headless Chromium with a fake microphone playing
`--wav` (default ../shared/media/student_frustrated_tts.wav); then, idle and with `--load`
busy processes beside it, times `--turns` typed turns (Enter until the reply is on the page)
and `--turns` spoken turns (a `--record-s` recording: Stop until the reply is on the page).
Beside each it prints, from the app's database, the turn inside the app (Turn.latency_ms)
and the model's own pass (EmotionReading.latency_ms), and how many readings were marked
degraded. Every figure is from this run; on a shared machine "idle" means no load of ours,
so compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_threads import BusyLoad  # noqa: E402 - a sibling script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MESSAGES = ["I think it's 3/4", "is it 2/4?", "I don't know", "maybe 1/2", "3/6",
            "can I have a hint?", "the bottom number", "6/8"]
BOT = "#student-chat .bot-row"  # one per tutor message (Gradio's chatbot)


def start_app(repo: Path, port: int, home: Path) -> tuple[subprocess.Popen, float]:
    """`attune run` from `repo`; (process, seconds until GET / answered 200)."""
    env = {**os.environ, "PYTHONPATH": str(repo), "ATTUNE_HOME": str(home)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "run", "--port", str(port)],
                            cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(home / "app.log", "wb"))
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"attune run exited ({proc.returncode}); see {home / 'app.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t
        except OSError:
            time.sleep(0.1)


def bot_count(page) -> int:
    return page.locator(BOT).count()


def wait_reply(page, before: int, timeout_s: float = 120) -> float:
    """Seconds until a tutor message beyond `before` is on the page with its text."""
    t = time.perf_counter()
    page.wait_for_function(
        """([sel, n]) => { const rows = document.querySelectorAll(sel);
                           return rows.length > n && rows[rows.length - 1].innerText.trim()
                                  && rows[rows.length - 1].innerText.trim() !== '…'; }""",
        arg=[BOT, before], timeout=timeout_s * 1000, polling=20)
    return time.perf_counter() - t


def typed_turn(page, i: int) -> float:
    box = page.locator("#student-message textarea")
    box.fill(MESSAGES[i % len(MESSAGES)])
    before = bot_count(page)
    box.press("Enter")
    return wait_reply(page, before)


def spoken_turn(page, record_s: float) -> float:
    mic = page.locator("#student-mic")
    record = mic.get_by_role("button", name="Record")
    if not record.is_visible():  # the last recording is still in the player
        mic.get_by_role("button", name="Clear").click()
    record.click()
    page.wait_for_timeout(record_s * 1000)
    before = bot_count(page)
    mic.get_by_role("button", name="Stop").click()
    waited = wait_reply(page, before)
    mic.get_by_role("button", name="Clear").click()  # ready for the next one
    return waited


def db_figures(db: Path, since_turn: int, source: str) -> tuple[list[float], list[float], int]:
    """(turn latencies, reading latencies, degraded readings) of `source` turns after id."""
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT t.latency_ms, r.latency_ms, r.degraded FROM turns t "
                         "LEFT JOIN emotion_readings r ON r.turn_id = t.id "
                         "WHERE t.id > ? AND t.input_source = ?", (since_turn, source)).fetchall()
    return ([r[0] for r in rows if r[0] is not None], [r[1] for r in rows if r[1] is not None],
            sum(bool(r[2]) for r in rows))


def last_turn(db: Path) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0]


def p(xs: list[float], q: float) -> str:
    return f"{np.percentile(xs, q):7.0f}" if xs else "      -"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=6, help="typed and spoken turns per phase")
    ap.add_argument("--record-s", type=float, default=6.0, help="seconds per recording")
    ap.add_argument("--load", type=int, default=2, help="busy processes in the loaded phase")
    ap.add_argument("--port", type=int, default=18301)
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose app to start")
    ap.add_argument("--startup-only", action="store_true", help="time the start-up and stop")
    ap.add_argument("--wav", type=Path, default=SHARED / "media" / "student_frustrated_tts.wav")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="attune-bench-app-"))
    cache = Path(os.environ.get("ATTUNE_HOME", Path.home() / ".attune")) / "cache"
    if cache.is_dir():  # converted Whisper weights, ONNX exports: a second start, not a first
        shutil.copytree(cache, home / "cache")
    proc, startup = start_app(args.repo.resolve(), args.port, home)
    print(f"start-up: `attune run` to the first HTTP 200 in {startup:.1f} s "
          f"({args.repo.resolve().name}, caches {'warm' if cache.is_dir() else 'cold'})",
          flush=True)
    try:
        if not args.startup_only:
            drive(args, home / "attune.db")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def drive(args, db: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={args.wav}"])
        page = browser.new_context(permissions=["microphone"]).new_page()
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{args.port}/")
        page.locator("#student-name textarea, #student-name input").first.fill("Bench")
        page.locator("#consent-microphone input[type=checkbox]").check()
        page.locator("#student-mic").get_by_role("button", name="Record").wait_for()
        first = typed_turn(page, 0)  # the first turn starts the session: not in the table
        print(f"first typed turn: {first:.1f} s (sent as soon as the page opened, while the "
              "model may still load: answered without an emotion reading then)", flush=True)
        print(f"{'phase':>10s} {'turn':>6s} {'n':>3s} {'page p50':>8s} {'page p95':>8s} "
              f"{'app p50':>7s} {'app p95':>7s} {'model p50':>9s} {'model p95':>9s} "
              f"{'degraded':>8s}  (ms)")
        for loaded in (False, True):
            phase = f"load {args.load}" if loaded else "no load"
            load = BusyLoad(args.load if loaded else 0)
            with load:
                for source, run in (("spoken", lambda i: spoken_turn(page, args.record_s)),
                                    ("typed", lambda i: typed_turn(page, i))):
                    since = last_turn(db)
                    waits = [run(i) * 1e3 for i in range(args.turns)]
                    app_ms, model_ms, degraded = db_figures(db, since, source)
                    print(f"{phase:>10s} {source:>6s} {len(waits):3d} {p(waits, 50)} "
                          f"{p(waits, 95)} {p(app_ms, 50)} {p(app_ms, 95)} {p(model_ms, 50):>9s} "
                          f"{p(model_ms, 95):>9s} {degraded:8d}", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
