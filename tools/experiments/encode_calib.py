"""Encode the calibration parts of the text and face corpora alone (for the stack refit in
ship_speech.py), cached under ATTUNE_HOME."""
import sys, time
from pathlib import Path
sys.argv = [sys.argv[0], "/dev/null"]
t = time.time()
src = open(Path(__file__).parent / "ship_speech.py").read().split('speech = ["ravdess", "emodb"]')[0]
exec(compile(src, "ship_speech_head", "exec"))
for c in ("facial_expressions", "meld", "goemotions"):
    fs = calib_items_features(c)
    print(c, len(fs), f"{time.time() - t:.0f}s", flush=True)
