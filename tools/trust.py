"""Reliability, measured: fuzzing, a simulated class under load, faults, audio bombs and
mixed traffic.

    attune trust [--short] [--students N] [--seconds S] [--only CHECK] [--json]
    python -m tools.trust --short

Five checks, each a function that returns its figures (a dict whose "ok" says whether it
passed):

- `fuzz`: hypothesis over clean_message, the engine and Conversation.turn (text, images and
  audio: random, corrupt, truncated, silent, too long, wrong format); schemathesis over the
  service's OpenAPI on loopback; a hand-made list of hostile uploads (per-part limits, a 2 GB
  body, declared and chunked, audio bombs, lying headers, prime sample rates, NaN and 1e30
  samples, non-UTF-8 form fields), slow clients that never finish their headers, and an
  overload burst. Zero 5xx (bar 503 + Retry-After from overload), zero crashes.
- `load`: a class of N students (threads), each a Conversation through one RemoteCMT to a real
  service on 127.0.0.1, typing turns and sending camera frames for S seconds; afterwards the
  database is counted against what was acknowledged.
- `faults`: the CMT service SIGKILLed mid-session and restarted; PostgreSQL cut off (a loopback
  TCP proxy in front of it is stopped and restarted, the server itself is left alone); the
  app SIGKILLed mid-write on SQLite, then checked and resumed.
- `bombs`: each crafted audio file decoded alone in a fresh process: refused, with its
  seconds and the rise of peak RSS.
- `mixed`: 32 clients on one service, 70 % text, 25 % faces, 5 % speech (a fifth of it
  crafted to be refused): p50 and p95 per modality, and answers slower than the tutor's 5 s.

The model is the shipped checkpoint when it exists (`--model real`), else a stand-in with the
real image and audio decoders and a keyword reading of text (`--model stand-in`): the checks
are about the plumbing, and the figures say which model answered. Everything runs on loopback,
in bounded loops, and stops by itself.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.fakes import StandInModel

REPO = Path(__file__).resolve().parent.parent
FACES_DIR = REPO / "tests" / "fixtures" / "faces"
AUDIO_DIR = REPO / "tests" / "fixtures" / "audio"
POSTGRES_URL = os.environ.get("ATTUNE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
GB = 1024**3

log = logging.getLogger("tools.trust")


# ---------------------------------------------------------------- the model
def real_checkpoint() -> Path:
    from cmt.model import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT


def make_engine(model: str = "auto", *, delay_s: float = 0.0):
    """`auto`: the shipped checkpoint when it exists, else the stand-in."""
    from cmt.serve.engine import Engine

    if model == "auto":
        model = "real" if real_checkpoint().is_file() else "stand-in"
    if model == "real":
        return Engine.load()
    if model == "stand-in":
        return Engine(StandInModel(delay_s=delay_s))
    raise ValueError(f"model must be auto, real or stand-in, not {model!r}")


# ---------------------------------------------------------------- media
def face_frames() -> list[bytes]:
    """Camera frames: the face fixtures when present, else a synthetic JPEG."""
    frames = [p.read_bytes() for p in sorted(FACES_DIR.glob("*.jpg"))]
    if frames:
        return frames
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (200, 170, 150)).save(buf, format="JPEG")
    return [buf.getvalue()]


def wav(seconds: float, *, amp: float = 0.0, sr: int = 16000, subtype: str = "PCM_16",
        fill: float | None = None, seed: int = 0) -> bytes:
    import numpy as np
    import soundfile as sf

    n = int(seconds * sr)
    x = np.random.default_rng(seed).uniform(-amp, amp, n).astype(np.float32) if amp else np.zeros(n, np.float32)
    if fill is not None:
        x[:] = fill
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A well-formed PNG that claims `width` x `height` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def clip(seconds: float, fmt: str = "WAV", *, sr: int = 16000, amp: float = 0.2, seed: int = 0) -> bytes:
    """`seconds` of a hummed tone encoded by libsndfile as WAV, FLAC, OGG (Vorbis) or MP3."""
    import numpy as np
    import soundfile as sf

    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    n = int(seconds * sr)
    with sf.SoundFile(buf, "w", sr, 1, format=fmt, subtype=subtype) as out:
        # a second at a time: libsndfile's Vorbis writer crashes on one 10-minute block
        for start in range(0, n, sr):
            t = np.arange(start, min(start + sr, n)) / sr
            x = amp * np.sin(2 * np.pi * 220 * t) + rng.normal(0, amp / 100, t.size)
            out.write(x.astype(np.float32))
    return buf.getvalue()


def flac_lying_header(claimed: int = 2**36 - 1) -> bytes:
    """A real 1 s FLAC whose STREAMINFO claims `claimed` samples (2^36-1: about 50 days at
    16 kHz): a decoder that allocates what the header says asks for 256 GB."""
    data = bytearray(clip(1.0, "FLAC"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO is the first block
    at = 8 + 10  # sample rate (20 bits), channels (3), bits (5), total samples (36): 8 bytes
    packed = int.from_bytes(data[at:at + 8], "big")
    packed = (packed & ~(2**36 - 1)) | (claimed & (2**36 - 1))
    data[at:at + 8] = packed.to_bytes(8, "big")
    return bytes(data)


def webm_silence(seconds: float, *, live: bool = False) -> bytes:
    """`seconds` of Opus silence in WebM, made by muxing one silent 20 ms packet over and over:
    2 h is about 3 MB (an audio decompression bomb). `live`: no duration in the container, so
    only reading it tells how long it is."""
    from fractions import Fraction

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="webm", options={"live": "1"} if live else {}) as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        packets = []
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16",
                                               layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 960
            packets += stream.encode(frame)
        silent = bytes(packets[-1])
        for i in range(int(seconds * 50)):
            packet = av.Packet(silent)
            packet.pts = packet.dts = i * 960
            packet.time_base, packet.stream = Fraction(1, 48000), stream
            out.mux(packet)
    return buf.getvalue()


CRAFTED_AUDIO: dict[str, Callable[[], bytes]] = {
    "FLAC claiming 2^36-1 samples": lambda: flac_lying_header(),
    "2 h WebM of silence": lambda: webm_silence(7200),
    "2 h WebM of silence, no duration": lambda: webm_silence(7200, live=True),
    "10 min WAV (8 kHz)": lambda: clip(600, "WAV", sr=8000),
    "10 min FLAC": lambda: clip(600, "FLAC"),
    "10 min OGG": lambda: clip(600, "OGG"),
    "10 min MP3": lambda: clip(600, "MP3"),
    "10 min WebM, no duration": lambda: webm_silence(600, live=True),
    "WAV at 999,983 Hz (prime)": lambda: wav(5.0, amp=0.2, sr=999_983),
    "WAV at 1 Hz": lambda: wav(40.0, amp=0.2, sr=1),
    "float WAV of 1e30": lambda: wav(1.0, fill=1e30, subtype="FLOAT"),
    "float WAV of NaN": lambda: wav(1.0, fill=float("nan"), subtype="FLOAT"),
}
QUICK_AUDIO = ("FLAC claiming 2^36-1 samples", "2 h WebM of silence, no duration",
               "WAV at 999,983 Hz (prime)", "WAV at 1 Hz", "float WAV of 1e30", "float WAV of NaN")


def crafted_audio(names: Sequence[str] | None = None) -> dict[str, bytes]:
    """The hostile audio of the trust checks, by name (CRAFTED_AUDIO; None: all): bombs, lying
    headers, absurd rates, non-finite and huge samples. Each must be refused with a 4xx,
    quickly and cheaply. All of them take about 15 s to make."""
    return {name: CRAFTED_AUDIO[name]() for name in (names or CRAFTED_AUDIO)}


def media_strategy():
    """Hypothesis: bytes that an image or audio field might carry, mostly hostile."""
    from hypothesis import strategies as st

    frames = face_frames()
    audio = [p.read_bytes() for p in sorted(AUDIO_DIR.glob("*.flac"))] or [wav(1.0, amp=0.3)]
    real = st.sampled_from(frames + audio)

    @st.composite
    def truncated(draw):
        data = draw(real)
        return data[: draw(st.integers(0, len(data) - 1))]

    @st.composite
    def flipped(draw):
        data = bytearray(draw(real))
        for _ in range(draw(st.integers(1, 16))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)

    @st.composite
    def header_junk(draw):
        head = draw(st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF", b"fLaC",
                                     b"OggS", b"GIF89a", b"ID3", b"\x1a\x45\xdf\xa3"]))
        return head + draw(st.binary(max_size=2048))

    made = st.sampled_from([
        b"", png_header(1, 1), png_header(60_000, 60_000), png_header(1, 200_000),
        wav(0.0), wav(0.01), wav(2.0), wav(1.0, amp=0.3), wav(31.0), wav(1.0, fill=float("nan"),
                                                                          subtype="FLOAT"),
        wav(1.0, sr=8000, amp=0.2), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    ])
    return st.one_of(st.binary(max_size=4096), real, truncated(), flipped(), header_junk(), made)


# ---------------------------------------------------------------- helpers
def percentile(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, *, up: bool, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if up:
                return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


@contextmanager
def service(engine, **settings_kw):
    """The CMT service around `engine` on a free loopback port (serve_in_thread)."""
    from cmt.serve.app import create_app, serve_in_thread
    from cmt.settings import Settings

    server, url = serve_in_thread(create_app(Settings(**settings_kw), engine_factory=lambda: engine))
    try:
        yield url
    finally:
        server.should_exit = True


def sqlite_url(folder: str | Path, name: str = "attune.db") -> str:
    return f"sqlite:///{Path(folder) / name}"


def grant_media(db, student_id: int) -> None:
    from tutor.privacy import record_consent

    with db.begin() as s:
        for modality in ("camera", "microphone"):
            record_consent(session=s, student_id=student_id, modality=modality, granted=True)


def next_message(conv, rng: random.Random) -> str:
    """What a student types next: mostly answers (right or wrong), sometimes chat."""
    from tutor.simulate import ScriptTurn, resolve

    roll = rng.random()
    if roll < 0.45:
        return resolve(ScriptTurn(answer="right"), conv.dialogue)
    if roll < 0.75:
        return resolve(ScriptTurn(answer="wrong"), conv.dialogue)
    return rng.choice(["hint please", "I hate fractions", "this is great!", "I'm confused",
                       "wow ok", "can you explain again?", "I'm so sad about this one", "next"])


def count_db(db, session_ids: Sequence[int]) -> dict:
    from sqlalchemy import func, select

    from tutor.db.models import EmotionReading, Turn

    with db() as s:
        turn_ids = set(s.scalars(select(Turn.id).where(Turn.session_id.in_(session_ids))))
        readings = s.scalar(select(func.count(EmotionReading.id))
                            .where(EmotionReading.session_id.in_(session_ids))) or 0
        degraded = s.scalar(select(func.count(EmotionReading.id))
                            .where(EmotionReading.session_id.in_(session_ids),
                                   EmotionReading.degraded.is_(True))) or 0
    return {"turn_ids": turn_ids, "readings": readings, "degraded": degraded}


# ---------------------------------------------------------------- fuzz
def _run_hypothesis(name: str, strategy, check: Callable, examples: int, seed: int,
                    figures: dict) -> None:
    """Run `check` over `strategy` for `examples` cases; count them; record a failure, if any."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    count = [0]

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def run(x):
        count[0] += 1
        check(x)

    t = time.perf_counter()
    try:
        run()
    except Exception as e:  # noqa: BLE001  a crash or a broken property: the finding
        figures["failures"].append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
    figures["cases"][name] = count[0]
    figures["seconds"][name] = round(time.perf_counter() - t, 1)


def _check_error_body(r, where: str) -> None:
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{where}: {r.status_code} without a JSON body: {r.text[:120]!r}") from None
    if set(body) != {"error", "detail"} or not body["detail"]:
        raise AssertionError(f"{where}: {r.status_code} body is not an ErrorBody: {body}")
    if "object at 0x" in body["detail"]:
        raise AssertionError(f"{where}: the detail shows a Python object: {body['detail']}")


def fuzz(*, examples: int = 200, seed: int = 0, model: str = "auto", huge: bool = True) -> dict:
    """Property-based fuzzing of the message cleaner, the engine, Conversation.turn and the
    service (schemathesis + hostile uploads + an overload burst). Counts the cases run."""
    from hypothesis import strategies as st
    from pydantic import ValidationError

    from cmt.contract import MAX_TEXT_CHARS, AnalyzeRequest, AnalyzeResponse
    from cmt.serve.engine import InputError
    from tutor.client import EmbeddedCMT
    from tutor.db import init_db
    from tutor.session import Conversation, MessageError, TurnResult, clean_message

    figures: dict = {"cases": {}, "seconds": {}, "failures": [], "status": {}}
    engine = make_engine(model)
    figures["model"] = engine.version
    media = media_strategy()

    # clean_message: a usable message or a MessageError, nothing else
    def check_clean(raw):
        try:
            out = clean_message(raw)
        except MessageError as e:
            assert str(e), "MessageError without words"
            return
        assert isinstance(out, str) and 0 < len(out) <= MAX_TEXT_CHARS and out == out.strip()

    raw = st.one_of(st.none(), st.text(max_size=6000), st.binary(max_size=6000),
                    st.text(alphabet=st.characters(codec="utf-8"), min_size=3990, max_size=4100),
                    st.integers(), st.lists(st.text(max_size=5), max_size=3))
    _run_hypothesis("clean_message", raw, check_clean, examples, seed, figures)
    for huge_text in ("x" * 10_000_000, "\x00" * 100_000, " \n\t" * 100_000):
        try:
            clean_message(huge_text)
        except MessageError:
            pass

    # the engine: a response or an InputError (the service's 422), nothing else
    def b64(x: bytes | None) -> str | None:
        return None if x is None else base64.b64encode(x).decode()

    request = st.fixed_dictionaries({}, optional={
        "text": st.one_of(st.text(max_size=300), st.text(min_size=3999, max_size=4001)),
        "image_b64": media.map(b64), "audio_b64": media.map(b64),
        "modalities": st.lists(st.sampled_from(["text", "face", "speech"]), unique=True, max_size=3),
    })

    def check_engine(fields):
        try:
            req = AnalyzeRequest.model_validate(fields)
        except ValidationError:
            return
        try:
            r = engine.analyze(req)
        except InputError as e:
            assert str(e), "InputError without words"
            return
        assert isinstance(r, AnalyzeResponse)

    _run_hypothesis("engine.analyze", request, check_engine, examples, seed, figures)

    # Conversation.turn: a saved, acknowledged turn or a MessageError, nothing else
    with tempfile.TemporaryDirectory(prefix="attune-fuzz-") as tmp:
        db = init_db(sqlite_url(tmp))
        conv = Conversation(db=db, cmt=EmbeddedCMT(engine), student_handle="fuzz")
        grant_media(db, conv.student_id)
        acked: list[int] = []
        text = st.one_of(st.none(), st.text(max_size=5000), st.binary(max_size=300),
                         st.sampled_from(["1/2", "3/4", "hint", "I hate this", "a", "b"]))
        turn_in = st.tuples(text, st.one_of(st.none(), media), st.one_of(st.none(), media))

        def check_turn(args):
            text, image, audio = args
            try:
                r = conv.turn(text, image=image, audio=audio)
            except MessageError as e:
                assert str(e), "MessageError without words"
                return
            assert isinstance(r, TurnResult) and r.reply
            acked.append(r.turn_id)

        _run_hypothesis("Conversation.turn", turn_in, check_turn, examples, seed, figures)

        def check_frame(image):
            r = conv.observe_frame(image)
            assert r is None or isinstance(r, AnalyzeResponse)

        _run_hypothesis("Conversation.observe_frame", media, check_frame, examples, seed, figures)
        stored = count_db(db, [conv.session_id])["turn_ids"]
        figures["turns_acked"] = len(acked)
        missing = set(acked) - stored
        if missing:
            figures["failures"].append(f"Conversation.turn: {len(missing)} acknowledged turns not stored")
        db.kw["bind"].dispose()

    with service(engine) as url:
        _schemathesis(url, examples, seed, figures)
        _hostile(url, figures, huge=huge)
        if huge:
            _slow_clients(url, figures)
    _overload(figures)
    figures["cases_total"] = sum(figures["cases"].values())
    figures["ok"] = not figures["failures"]
    return figures


def _schemathesis(url: str, examples: int, seed: int, figures: dict) -> None:
    """Schemathesis over the live service's OpenAPI, schema-conforming and violating cases."""
    try:
        import schemathesis
        from schemathesis.generation.modes import GenerationMode
    except ImportError:
        figures["schemathesis"] = "not installed (pip install schemathesis); skipped"
        return
    import httpx

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    statuses = figures["status"]

    def check(case):
        r = case.call(base_url=url, timeout=30)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        where = f"{case.method} {case.path} {str(case.body)[:80]!r}"
        assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:200]}"
        if r.status_code >= 400:
            _check_error_body(httpx.Response(r.status_code, content=r.content), where)

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        _run_hypothesis(f"schemathesis.{mode.value}", schema.as_strategy(generation_mode=mode),
                        check, examples, seed, figures)
    figures["schemathesis"] = f"schemathesis {schemathesis.__version__}"


def _raw_upload(url: str, path: str, headers: dict, total: int, *, chunked: bool,
                prefix: bytes = b'{"text": "', timeout_s: float = 120.0) -> tuple[int | None, bytes, int]:
    """Stream `total` bytes of body over a raw socket until the server answers; returns
    (status, body, bytes sent). The body is `prefix` and then "aaa..." that never ends."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {total}"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    block = b"a" * (1024 * 1024)
    first = True
    sent, answer = 0, b""
    deadline = time.monotonic() + timeout_s
    try:
        while sent < total and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            piece = (prefix if first else b"") + block[: min(len(block), total - sent)]
            first = False
            data = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
            try:
                sock.sendall(data)
            except OSError:
                break
            sent += len(piece)
        if chunked and sent >= total:
            try:
                sock.sendall(b"0\r\n\r\n")  # the end of the body
            except OSError:
                pass
        sock.settimeout(max(1.0, deadline - time.monotonic()))
        while True:
            try:
                part = sock.recv(65536)
            except OSError:
                break
            if not part:
                break
            answer += part
            if b"\r\n\r\n" in answer:
                head_end = answer.index(b"\r\n\r\n")
                length = [ln for ln in answer[:head_end].split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")]
                if length and len(answer) >= head_end + 4 + int(length[0].split(b":")[1]):
                    break
    finally:
        sock.close()
    if not answer.startswith(b"HTTP/1.1 "):
        return None, answer, sent
    status = int(answer[9:12])
    return status, answer.split(b"\r\n\r\n", 1)[-1], sent


def _hostile(url: str, figures: dict, *, huge: bool) -> None:
    """Hand-made hostile requests: each must be a clear 4xx with an ErrorBody."""
    import httpx

    from cmt.contract import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS

    face = face_frames()[0]
    cases: list[tuple[str, dict]] = [
        ("image over the size limit", {"files": {"image": ("a.jpg", face + b"\0" * MAX_IMAGE_BYTES, "image/jpeg")}}),
        ("audio over the size limit", {"files": {"audio": ("a.wav", b"RIFF" + b"\0" * MAX_AUDIO_BYTES, "audio/wav")}}),
        ("text over the size limit (json)", {"json": {"text": "x" * (MAX_TEXT_CHARS + 1)}}),
        ("text over the size limit (form)", {"files": {"text": (None, "x" * (MAX_TEXT_CHARS * 5))}}),
        ("corrupt JPEG", {"files": {"image": ("a.jpg", face[: len(face) // 3], "image/jpeg")}}),
        ("GIF instead of JPEG", {"files": {"image": ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif")}}),
        ("PNG bomb header", {"files": {"image": ("a.png", png_header(60_000, 60_000), "image/png")}}),
        ("JPEG sent as audio", {"files": {"audio": ("a.wav", face, "audio/wav")}}),
        ("silence", {"files": {"audio": ("s.wav", wav(2.0), "audio/wav")}}),
        ("empty audio", {"files": {"audio": ("s.wav", wav(0.0), "audio/wav")}}),
        ("audio too long", {"files": {"audio": ("l.wav", wav(31.0, amp=0.2), "audio/wav")}}),
        ("NaN audio", {"files": {"audio": ("n.wav", wav(1.0, fill=float("nan"), subtype="FLOAT"), "audio/wav")}}),
        *((f"audio: {name}", {"files": {"audio": ("a.bin", data, "application/octet-stream")}})
          for name, data in crafted_audio(None if huge else QUICK_AUDIO).items()),
        ("not base64", {"json": {"image_b64": "%%%not base64%%%"}}),
        ("NUL in text", {"json": {"text": "a\x00b"}}),
        ("JSON array", {"json": [1, 2, 3]}),
        ("JSON syntax error", {"content": b'{"text": "unterminated', "headers": {"Content-Type": "application/json"}}),
        ("wrong types", {"json": {"text": 42, "modalities": "all"}}),
        ("unknown modality", {"json": {"text": "hi", "modalities": ["smell"]}}),
        ("plain text body", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}),
        ("no content type", {"content": b"hello"}),
        ("text not UTF-8", {"files": {"text": ("t.txt", b"\xff\xfe\xfd", "text/plain")}}),
        ("text field not UTF-8", {"files": {"text": (None, b"caf\xe9 \xff")}}),
        ("URL-encoded text not UTF-8", {"content": b"text=%FF%FE",
                                        "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("three files", {"files": [("image", ("a.jpg", face, "image/jpeg"))] * 3}),
        ("empty form", {"files": {"nothing": (None, "")}}),
    ]
    statuses = figures["status"]
    failures = figures["failures"]
    results = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for name, kw in cases:
            try:
                r = http.post("/v1/analyze", **kw)
            except httpx.HTTPError as e:
                failures.append(f"hostile {name}: no answer ({type(e).__name__}: {e})")
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            results[name] = r.status_code
            try:
                assert 400 <= r.status_code < 500, f"hostile {name}: {r.status_code} {r.text[:200]}"
                _check_error_body(r, f"hostile {name}")
            except AssertionError as e:
                failures.append(str(e))
        for method, path in (("GET", "/v1/analyze"), ("POST", "/nowhere"), ("DELETE", "/healthz")):
            r = http.request(method, path)
            results[f"{method} {path}"] = r.status_code
            if not 400 <= r.status_code < 500:
                failures.append(f"hostile {method} {path}: {r.status_code}")
            if r.status_code == 405 and not r.headers.get("Allow"):
                failures.append(f"hostile {method} {path}: 405 without Allow")
        alive = http.post("/v1/analyze", json={"text": "still happy"}).status_code
        if alive != 200:
            failures.append(f"the service stopped answering after the hostile requests ({alive})")
    if huge:
        json_head = b'{"text": "'
        form_head = (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
                     b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff")
        form = "multipart/form-data; boundary=xyz"
        for name, chunked, ctype, head in (
                ("2 GB JSON, declared", False, "application/json", json_head),
                ("2 GB JSON, chunked", True, "application/json", json_head),
                ("2 GB multipart image, declared", False, form, form_head),
                ("2 GB multipart image, chunked", True, form, form_head)):
            t = time.perf_counter()
            status, body, sent = _raw_upload(url, "/v1/analyze", {"Content-Type": ctype}, 2 * GB,
                                             chunked=chunked, prefix=head)
            took = time.perf_counter() - t
            results[name] = status
            figures.setdefault("huge_upload", {})[name] = {
                "status": status, "mb_sent_before_answer": round(sent / 1e6, 1), "s": round(took, 1)}
            statuses[status] = statuses.get(status, 0) + 1
            if status != 413:
                failures.append(f"hostile {name}: answered {status} after {sent / 1e6:.0f} MB "
                                f"({body[:120]!r})")
    figures["cases"]["hostile"] = len(results)
    figures["hostile"] = results


def _slow_clients(url: str, figures: dict, *, n: int = 50) -> None:
    """`n` connections that send half a request head and then nothing (slowloris), and one
    that sends nothing: the service must close them all (HEADER_TIMEOUT_S) and keep serving."""
    import httpx

    from cmt.serve.limits import HEADER_TIMEOUT_S

    host, port = url.removeprefix("http://").split(":")
    socks = [socket.create_connection((host, int(port)), timeout=5) for _ in range(n + 1)]
    for s in socks[:n]:
        s.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    answered = httpx.post(f"{url}/v1/analyze", json={"text": "still here"}, timeout=10).status_code
    time.sleep(HEADER_TIMEOUT_S + 2)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(1024) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    figures["slow_clients"] = {"connections": len(socks), "closed_by_the_service": closed,
                               "served_meanwhile": answered == 200}
    figures["cases"]["slow_clients"] = len(socks)
    if closed != len(socks) or answered != 200:
        figures["failures"].append(f"slow clients: {figures['slow_clients']}")


def decode_cost_child(path: str) -> None:
    """Entry point of the child of `audio_bombs`: decode one file as the service does, print
    what happened, the seconds it took and how far the process's peak RSS rose (JSON)."""
    import soundfile  # noqa: F401  imported before the baseline, as in the service

    from cmt.model.encoders.speech import decode_audio

    def status_mb(field: str) -> float:  # Linux: VmRSS now, VmHWM its peak
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    data = Path(path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from now
    base = status_mb("VmRSS")
    t = time.perf_counter()
    try:
        audio, sr = decode_audio(data)
        outcome = f"decoded: {audio.size / sr:.1f} s"
    except ValueError as e:  # AudioError
        outcome = f"refused: {e}"
    except MemoryError as e:
        outcome = f"crashed: {type(e).__name__}: {str(e)[:80]}"
    took = time.perf_counter() - t
    peak = status_mb("VmHWM")
    print(json.dumps({"outcome": outcome, "s": round(took, 2), "rss_mb": round(peak - base)}))


def audio_bombs(*, names: Sequence[str] | None = None, timeout_s: float = 180.0,
                max_rss_mb: float = 300.0) -> dict:
    """Each crafted audio file (crafted_audio) decoded alone in a fresh process, as the service
    decodes it: what happened, seconds, and the rise of peak RSS. Each must be refused, within
    `max_rss_mb`. (Seconds are reported, not judged.)"""
    figures: dict = {"files": {}, "failures": []}
    with tempfile.TemporaryDirectory(prefix="attune-bombs-") as tmp:
        for i, (name, data) in enumerate(crafted_audio(names).items()):
            path = Path(tmp) / f"{i}.bin"
            path.write_bytes(data)
            code = f"from tools.trust import decode_cost_child; decode_cost_child({str(path)!r})"
            try:
                done = subprocess.run([sys.executable, "-c", code], env=_child_env(), text=True,
                                      capture_output=True, timeout=timeout_s)
                row = (json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                       else {"outcome": f"died ({done.returncode}): {done.stderr[-200:]}"})
            except subprocess.TimeoutExpired:
                row = {"outcome": f"still decoding after {timeout_s:.0f} s"}
            row["kb"] = round(len(data) / 1024)
            figures["files"][name] = row
            if not row["outcome"].startswith("refused") or row.get("rss_mb", 0) > max_rss_mb:
                figures["failures"].append(f"{name}: {row}")
    figures["ok"] = not figures["failures"]
    return figures


def _overload(figures: dict, *, burst: int = 64) -> None:
    """A burst on a slow service with a short queue: 503 + Retry-After, never a pile-up or 500."""
    import httpx

    engine = make_engine("stand-in", delay_s=0.05)
    codes: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()
    with service(engine, serve_max_queue=4, serve_max_batch=2) as url:
        def one():
            try:
                r = httpx.post(f"{url}/v1/analyze", json={"text": "happy"}, timeout=30)
                code, ra = r.status_code, r.headers.get("retry-after")
            except httpx.HTTPError:
                code, ra = -1, None
            with lock:
                codes.append(code)
                retry_after.append(ra)

        t = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(burst)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        took = time.perf_counter() - t
    shed = [ra for c, ra in zip(codes, retry_after) if c in (429, 503)]
    figures["overload"] = {"burst": burst, "ok_200": codes.count(200), "shed_503": len(shed),
                           "other": len(codes) - codes.count(200) - len(shed),
                           "all_with_retry_after": all(ra for ra in shed), "s": round(took, 2)}
    figures["cases"]["overload"] = len(codes)
    if len(codes) != burst or figures["overload"]["other"] or not all(ra for ra in shed) or not shed:
        figures["failures"].append(f"overload: {figures['overload']}")


# ---------------------------------------------------------------- load
def load(*, students: int = 30, seconds: float = 180.0, frame_hz: float = 1.0,
         think_s: tuple[float, float] = (2.0, 6.0), model: str = "auto", db_url: str | None = None,
         seed: int = 0) -> dict:
    """A simulated class on one service: typed turns and camera frames, then the database counted."""
    from tutor.client import EmbeddedCMT, FallbackCMT, RemoteCMT
    from tutor.db import init_db
    from tutor.session import Conversation, StorageError

    engine = make_engine(model)
    frames = face_frames()
    with tempfile.TemporaryDirectory(prefix="attune-load-") as tmp, service(engine) as url:
        db = init_db(db_url or sqlite_url(tmp))
        remote = RemoteCMT(url, timeout_s=10.0)
        client = FallbackCMT(remote, EmbeddedCMT(engine))  # as the app's "local" mode
        tag = f"load-{os.getpid()}-{int(time.time())}"
        convs = []
        for i in range(students):
            conv = Conversation(db=db, cmt=client, student_handle=f"{tag}-{i:03d}")
            grant_media(db, conv.student_id)
            convs.append(conv)

        stats = [{"acked": [], "latency": [], "turn_readings": 0, "frames": 0, "frame_readings": 0,
                  "storage_errors": 0, "crashes": [], "degraded": 0} for _ in convs]
        start = time.monotonic()
        deadline = start + seconds

        def student(i: int):
            conv, st, rng = convs[i], stats[i], random.Random(seed * 1000 + i)
            next_turn = time.monotonic() + rng.uniform(0, think_s[1])
            next_frame = time.monotonic() + rng.uniform(0, 1 / frame_hz)
            while time.monotonic() < deadline:
                now = time.monotonic()
                try:
                    if now >= next_turn:
                        msg = next_message(conv, rng)
                        t = time.perf_counter()
                        try:
                            r = conv.turn(msg)
                        except StorageError:
                            st["storage_errors"] += 1
                        else:
                            st["latency"].append((time.perf_counter() - t) * 1e3)
                            st["acked"].append(r.turn_id)
                            if r.reading is not None:
                                st["turn_readings"] += 1
                                st["degraded"] += r.reading.degraded
                        next_turn = time.monotonic() + rng.uniform(*think_s)
                    elif now >= next_frame:
                        st["frames"] += 1
                        reading = conv.observe_frame(frames[st["frames"] % len(frames)])
                        if reading is not None:
                            st["frame_readings"] += 1
                            st["degraded"] += reading.degraded
                        next_frame += 1 / frame_hz
                        next_frame = max(next_frame, time.monotonic() - 1)  # no catch-up storm
                    else:
                        time.sleep(min(next_turn, next_frame, deadline) - now)
                except Exception as e:  # noqa: BLE001  a crash: the finding
                    st["crashes"].append(f"{type(e).__name__}: {e}")
                    return

        threads = [threading.Thread(target=student, args=(i,), name=f"student-{i}", daemon=True)
                   for i in range(students)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(seconds + 120)
        hung = sum(th.is_alive() for th in threads)
        elapsed = time.monotonic() - start
        status = _service_statuses(url)
        counted = count_db(db, [c.session_id for c in convs])
        for c in convs:
            c.close()
        db.kw["bind"].dispose()
        remote.close()

    acked = [t for st in stats for t in st["acked"]]
    latency = [x for st in stats for x in st["latency"]]
    returned = sum(st["turn_readings"] + st["frame_readings"] for st in stats)
    crashes = [c for st in stats for c in st["crashes"]]
    figures = {
        "model": engine.version, "db": (db_url or "sqlite").split(":")[0],
        "students": students, "seconds": round(elapsed, 1),
        "turns_acked": len(acked), "turns_in_db": len(counted["turn_ids"]),
        "turns_lost": len(set(acked) - counted["turn_ids"]),
        "turns_refused": sum(st["storage_errors"] for st in stats),
        "turns_per_s": round(len(acked) / elapsed, 2),
        "frames_sent": sum(st["frames"] for st in stats),
        "frames_read": sum(st["frame_readings"] for st in stats),
        "readings_returned": returned, "readings_in_db": counted["readings"],
        "readings_lost": max(0, returned - counted["readings"]),
        "degraded_readings": sum(st["degraded"] for st in stats),
        "service_status": status,
        "turn_ms_p50": _round(percentile(latency, 50)), "turn_ms_p95": _round(percentile(latency, 95)),
        "turn_ms_max": _round(max(latency, default=None)),
        "crashes": crashes[:5], "hung_threads": hung,
    }
    figures["ok"] = (figures["turns_lost"] == 0 and figures["readings_lost"] == 0 and not crashes
                     and not hung and figures["turns_refused"] == 0 and len(acked) > 0)
    return figures


MIX = {"text": 0.70, "face": 0.25, "speech": 0.05}  # of requests, by modality


def mixed(*, clients: int = 32, seconds: float = 30.0, model: str = "auto", period_s: float = 3.0,
          timeout_s: float = 5.0, seed: int = 0) -> dict:
    """Mixed traffic on one service on 127.0.0.1: `clients` threads, each sending text (70 %),
    a camera frame (25 %) or a spoken clip (5 %) once every `period_s` (at its own phase; right
    after the previous answer when that came later), for `seconds`: the same offered load
    however fast the service is. Latency per modality (p50, p95) and how many answers took
    longer than the tutor's own timeout (`timeout_s`, Settings.cmt_timeout_s: such a turn falls
    back to the embedded model). Every fifth speech request is a crafted one that must be
    refused (a prime sample rate, a lying header, 1e30 samples) and must not slow the others."""
    import httpx

    engine = make_engine(model)
    frames = face_frames()
    speech = [p.read_bytes() for p in sorted(AUDIO_DIR.glob("*.flac"))] or [wav(2.0, amp=0.3)]
    hostile = [wav(5.0, amp=0.2, sr=999_983), flac_lying_header(), wav(1.0, fill=1e30, subtype="FLOAT")]
    times: dict[str, list[float]] = {m: [] for m in MIX}
    codes: dict[str, dict[int, int]] = {m: {} for m in [*MIX, "hostile"]}
    lock = threading.Lock()
    with service(engine, serve_rate_limit="") as url:
        deadline = time.monotonic() + seconds

        def client(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            next_at = time.monotonic() + rng.uniform(0, period_s)
            with httpx.Client(base_url=url, timeout=60) as http:
                k = 0
                while (now := time.monotonic()) < deadline:
                    time.sleep(max(0.0, next_at - now))
                    next_at = max(next_at + period_s, time.monotonic())
                    kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
                    kw: dict = {"json": {"text": next_message_text(rng)}}
                    if kind == "face":
                        kw = {"files": {"image": ("f.jpg", rng.choice(frames), "image/jpeg")}}
                    elif kind == "speech":
                        k += 1
                        if k % 5 == 0:
                            kind = "hostile"
                            kw = {"files": {"audio": ("h.wav", rng.choice(hostile), "audio/wav")}}
                        else:
                            kw = {"files": {"audio": ("s.flac", rng.choice(speech), "audio/flac")}}
                    t = time.perf_counter()
                    try:
                        code = http.post("/v1/analyze", **kw).status_code
                    except httpx.HTTPError:
                        code = -1
                    took = time.perf_counter() - t
                    with lock:
                        codes[kind][code] = codes[kind].get(code, 0) + 1
                        if kind in times and code == 200:
                            times[kind].append(took)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(seconds + 120)
    figures: dict = {"model": engine.version, "clients": clients, "seconds": seconds,
                     "offered_per_s": round(clients / period_s, 1)}
    for m, xs in times.items():
        figures[m] = {"n": len(xs), "p50_s": _round3(percentile(xs, 50)),
                      "p95_s": _round3(percentile(xs, 95)),
                      "over_timeout": sum(x > timeout_s for x in xs), "status": codes[m]}
    figures["hostile"] = {"status": codes["hostile"]}
    innocent_failed = sum(n for m in MIX for c, n in codes[m].items() if c != 200)
    hostile_not_4xx = sum(n for c, n in codes["hostile"].items() if not 400 <= c < 500)
    figures["ok"] = innocent_failed == 0 and hostile_not_4xx == 0 and any(times.values())
    return figures


def next_message_text(rng: random.Random) -> str:
    return rng.choice(["I think it is 3/4", "hint please", "I hate fractions", "this is great!",
                       "I'm confused", "wow ok", "can you explain again?", "x = 5", "next"])


def _round3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _service_statuses(url: str) -> dict[str, int]:
    """Requests by HTTP status, from the service's own /metrics."""
    import httpx

    out: dict[str, int] = {}
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        if line.startswith("cmt_requests_total{") and 'path="/v1/analyze"' in line:
            code = line.split('status="')[1].split('"')[0]
            out[code] = out.get(code, 0) + int(float(line.rsplit(" ", 1)[1]))
    return out


# ---------------------------------------------------------------- faults
class TcpProxy:
    """A loopback TCP proxy: stop() refuses new connections and cuts live ones (an outage)."""

    def __init__(self, target: tuple[str, int], port: int = 0):
        self.target, self.port = target, port
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.port = ls.getsockname()[1]
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True, name="proxy-accept").start()
        return self

    def stop(self) -> None:
        with self._lock:
            ls, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            ls.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not ls:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _turn_loop(conv, stop: threading.Event, log_: list, *, frames: Sequence[bytes] = (),
               pause_s: float = 0.05, seed: int = 0) -> None:
    """Turns (and frames) until `stop`: each outcome appended to log_ as (t, kind, value)."""
    from tutor.session import StorageError

    rng = random.Random(seed)
    k = 0
    while not stop.is_set():
        k += 1
        try:
            if frames and k % 2 == 0:
                r = conv.observe_frame(frames[k % len(frames)])
                log_.append((time.monotonic(), "frame", None if r is None else r.degraded))
            else:
                r = conv.turn(next_message(conv, rng))
                log_.append((time.monotonic(), "ack", (r.turn_id, None if r.reading is None
                                                       else r.reading.degraded)))
        except StorageError:
            log_.append((time.monotonic(), "refused", None))
        except Exception as e:  # noqa: BLE001  a crash: the finding
            log_.append((time.monotonic(), "crash", f"{type(e).__name__}: {e}"))
            return
        stop.wait(pause_s)


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def serve_child(port: int, model: str) -> None:
    """Entry point of the service child process (service_restart)."""
    import uvicorn

    from cmt.serve.app import create_app
    from cmt.serve.limits import H11WithHeadTimeout
    from cmt.settings import Settings

    engine = make_engine(model)
    uvicorn.run(create_app(Settings(), engine_factory=lambda: engine), host="127.0.0.1", port=port,
                log_level="warning", http=H11WithHeadTimeout)


def _start_service_child(port: int, model: str, timeout_s: float = 180.0) -> subprocess.Popen:
    import httpx

    code = f"from tools.trust import serve_child; serve_child({port}, {model!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=_child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service child died: {proc.stderr.read().decode()[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the service child did not become ready")


def service_restart(*, model: str = "auto", before_s: float = 2.0, down_s: float = 3.0,
                    after_s: float = 3.0) -> dict:
    """SIGKILL the CMT service mid-session, bring it back: turns go on (degraded) and the
    circuit closes again."""
    from tutor.client import CircuitBreaker, EmbeddedCMT, FallbackCMT, RemoteCMT
    from tutor.db import init_db
    from tutor.session import Conversation

    if model == "auto":
        model = "real" if real_checkpoint().is_file() else "stand-in"
    engine = make_engine(model)
    port = free_port()
    proc = _start_service_child(port, model)
    events: list = []
    marks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="attune-svc-") as tmp:
        db = init_db(sqlite_url(tmp))
        remote = RemoteCMT(f"http://127.0.0.1:{port}", timeout_s=5.0, retries=0,
                           breaker=CircuitBreaker(failures=2, reset_s=0.5))
        conv = Conversation(db=db, cmt=FallbackCMT(remote, EmbeddedCMT(engine)), student_handle="svc")
        grant_media(db, conv.student_id)
        stop = threading.Event()
        th = threading.Thread(target=_turn_loop, args=(conv, stop, events),
                              kwargs={"frames": face_frames()}, daemon=True)
        th.start()
        try:
            time.sleep(before_s)
            marks["killed"] = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            time.sleep(down_s)
            marks["restarting"] = time.monotonic()
            proc = _start_service_child(port, model)
            marks["back"] = time.monotonic()
            time.sleep(after_s)
        finally:
            stop.set()
            th.join(60)
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        stored = count_db(db, [conv.session_id])["turn_ids"]
        breaker = remote.breaker.state
        db.kw["bind"].dispose()
    acks = [(t, v) for t, k, v in events if k == "ack"]
    during = [v for t, v in acks if marks["killed"] + 0.5 < t < marks["restarting"]]
    after = [v for t, v in acks if t > marks["back"] + 1.0]
    crashes = [v for _, k, v in events if k == "crash"]
    figures = {
        "model": engine.version, "turns_acked": len(acks),
        "turns_lost": len({v[0] for _, v in acks} - stored),
        "turns_refused": sum(k == "refused" for _, k, _ in events),
        "turns_while_down": len(during),
        "degraded_while_down": sum(v[1] is True for v in during),
        "turns_after_restart": len(after),
        "degraded_after_restart": sum(v[1] is True for v in after),
        "frames": sum(k == "frame" for _, k, _ in events), "breaker_at_end": breaker,
        "restart_s": round(marks["back"] - marks["restarting"], 1), "crashes": crashes,
    }
    figures["ok"] = (not crashes and figures["turns_lost"] == 0 and figures["turns_refused"] == 0
                     and len(during) > 0 and figures["degraded_while_down"] == len(during)
                     and len(after) > 0 and after[-1][1] is False and breaker == "closed")
    return figures


def postgres_admin(url: str = POSTGRES_URL):
    """An AUTOCOMMIT engine on PostgreSQL, or None with the reason."""
    from sqlalchemy import create_engine, text

    from tutor.db import shown_url

    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True,
                              connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            c.execute(text("SELECT 1"))
        return admin, None
    except Exception as e:  # noqa: BLE001  no server, no driver, no rights: "cannot check here"
        where = shown_url(url)
        return None, f"PostgreSQL not reachable at {where}: {type(e).__name__}: {e}".splitlines()[0]


def db_outage(*, postgres_url: str = POSTGRES_URL, before_s: float = 2.0, down_s: float = 3.0,
              after_s: float = 3.0) -> dict:
    """Cut PostgreSQL off (a TCP proxy in front of it stops) and bring it back: turns during the
    outage raise StorageError and are not acknowledged; turns after succeed; every acknowledged
    turn is in the database."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from tutor.client import EmbeddedCMT
    from tutor.db import init_db
    from tutor.session import Conversation

    admin, why = postgres_admin(postgres_url)
    if admin is None:
        return {"skipped": why, "ok": True}
    name = f"attune_trust_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    real = make_url(postgres_url).set(database=name)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432)).start()
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    events: list = []
    marks: dict[str, float] = {}
    try:
        db = init_db(via_proxy)
        db.kw["bind"].pool._timeout = 2  # no long waits for a pooled connection in an outage
        conv = Conversation(db=db, cmt=EmbeddedCMT(make_engine("stand-in")), student_handle="outage")
        grant_media(db, conv.student_id)
        stop = threading.Event()
        th = threading.Thread(target=_turn_loop, args=(conv, stop, events),
                              kwargs={"frames": face_frames()}, daemon=True)
        th.start()
        time.sleep(before_s)
        marks["down"] = time.monotonic()
        proxy.stop()
        time.sleep(down_s)
        proxy = TcpProxy(proxy.target, port=proxy.port).start()
        marks["up"] = time.monotonic()
        time.sleep(after_s)
        stop.set()
        th.join(60)
        db.kw["bind"].dispose()
        direct = init_db(real.render_as_string(hide_password=False))
        stored = count_db(direct, [conv.session_id])["turn_ids"]
        direct.kw["bind"].dispose()
    finally:
        proxy.stop()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    acks = [(t, v[0]) for t, k, v in events if k == "ack"]
    refused = [t for t, k, _ in events if k == "refused"]
    crashes = [v for _, k, v in events if k == "crash"]
    acked_ids = {i for _, i in acks}
    figures = {
        "turns_acked": len(acks), "turns_lost": len(acked_ids - stored),
        "turns_refused_during_outage": sum(marks["down"] <= t <= marks["up"] + 1 for t in refused),
        "turns_refused_otherwise": sum(not marks["down"] <= t <= marks["up"] + 1 for t in refused),
        "acked_during_outage": sum(marks["down"] + 0.5 < t < marks["up"] for t, _ in acks),
        "acked_after": sum(t > marks["up"] for t, _ in acks),
        "refused_but_stored": len(stored - acked_ids),
        "frames": sum(k == "frame" for _, k, _ in events), "crashes": crashes,
    }
    figures["ok"] = (not crashes and figures["turns_lost"] == 0
                     and figures["turns_refused_during_outage"] > 0
                     and figures["turns_refused_otherwise"] == 0
                     and figures["acked_during_outage"] == 0 and figures["acked_after"] > 0)
    return figures


def sigkill_child(url: str, handle: str) -> None:
    """Entry point of the writer child (sigkill): turns as fast as it can, one ACK line each."""
    from tutor.client import EmbeddedCMT
    from tutor.db import init_db
    from tutor.session import Conversation

    db = init_db(url)
    conv = Conversation(db=db, cmt=EmbeddedCMT(make_engine("stand-in")), student_handle=handle)
    print(f"READY {conv.session_id}", flush=True)
    rng = random.Random(conv.session_id)
    for _ in range(100_000):  # bounded: the parent kills it long before
        r = conv.turn(next_message(conv, rng))
        print(f"ACK {r.turn_id}", flush=True)


def sigkill(*, rounds: int = 3, min_acks: int = 20, seed: int = 0) -> dict:
    """SIGKILL the app mid-write, `rounds` times on one SQLite file: every printed
    (acknowledged) turn is stored, the file is intact, and the student resumes."""
    import sqlite3

    from tutor.client import EmbeddedCMT
    from tutor.db import crud, init_db
    from tutor.session import Conversation

    rng = random.Random(seed)
    acked: set[int] = set()
    figures: dict = {"rounds": rounds, "turns_acked": 0, "integrity": [], "resumed": []}
    handle = "sigkill"
    with tempfile.TemporaryDirectory(prefix="attune-kill-") as tmp:
        path = Path(tmp) / "attune.db"
        url = f"sqlite:///{path}"
        init_db(url).kw["bind"].dispose()
        for _ in range(rounds):
            code = f"from tools.trust import sigkill_child; sigkill_child({url!r}, {handle!r})"
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lines: list[str] = []
            reader = threading.Thread(target=lambda p=proc, out=lines: out.extend(iter(p.stdout.readline, "")),
                                      daemon=True)
            reader.start()
            target = min_acks + rng.randrange(min_acks)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if sum(ln.startswith("ACK") for ln in lines) >= target:
                    break
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            reader.join(10)
            if proc.returncode != -signal.SIGKILL:
                figures.setdefault("errors", []).append(proc.stderr.read()[-500:])
            acked |= {int(ln.split()[1]) for ln in lines if ln.startswith("ACK ")}
            con = sqlite3.connect(path)
            figures["integrity"].append(con.execute("PRAGMA integrity_check").fetchone()[0])
            con.close()
            db = init_db(url)
            conv = Conversation(db=db, cmt=EmbeddedCMT(make_engine("stand-in")), student_handle=handle)
            with db() as s:
                saved = crud.load_mastery(session=s, student_id=conv.student_id, lesson=conv.pack.id)
            reloaded = conv.dialogue.mastery.to_dict()
            r = conv.turn("hint please")  # the resumed session takes a turn
            acked.add(r.turn_id)
            figures["resumed"].append(bool(saved) and reloaded == saved
                                      and sum(reloaded.get("attempts", {}).values()) > 0)
            db.kw["bind"].dispose()
        from sqlalchemy import select

        from tutor.db.models import Turn

        db = init_db(url)
        with db() as s:
            stored = set(s.scalars(select(Turn.id)))
        db.kw["bind"].dispose()
    figures["turns_acked"] = len(acked)
    figures["turns_in_db"] = len(stored)
    figures["turns_lost"] = len(acked - stored)
    figures["ok"] = (figures["turns_lost"] == 0 and all(x == "ok" for x in figures["integrity"])
                     and all(figures["resumed"]) and not figures.get("errors") and len(acked) > 0)
    return figures


def faults(*, model: str = "auto", short: bool = False, postgres_url: str = POSTGRES_URL) -> dict:
    span = (1.5, 2.0, 2.0) if short else (3.0, 6.0, 5.0)
    out = {
        "service_restart": service_restart(model=model, before_s=span[0], down_s=span[1], after_s=span[2]),
        "db_outage": db_outage(postgres_url=postgres_url, before_s=span[0], down_s=span[1],
                               after_s=span[2]),
        "sigkill": sigkill(rounds=1 if short else 3),
    }
    out["ok"] = all(v["ok"] for v in out.values())
    return out


# ---------------------------------------------------------------- the command
CHECKS = ("fuzz", "load", "faults", "bombs", "mixed")


def run(*, short: bool = False, students: int | None = None, seconds: float | None = None,
        examples: int | None = None, model: str = "auto", db_url: str | None = None,
        postgres_url: str = POSTGRES_URL, only: Sequence[str] = CHECKS,
        progress: Callable[[str], None] = lambda s: None) -> dict:
    figures: dict = {}
    t0 = time.perf_counter()
    if "fuzz" in only:
        progress("fuzz ...")
        figures["fuzz"] = fuzz(examples=examples or (25 if short else 300), model=model,
                               huge=not short)
    if "load" in only:
        progress("load ...")
        figures["load"] = load(students=students or (4 if short else 30),
                               seconds=seconds or (5.0 if short else 180.0), model=model, db_url=db_url,
                               think_s=(0.5, 1.5) if short else (2.0, 6.0))
    if "faults" in only:
        progress("faults ...")
        figures["faults"] = faults(model=model, short=short, postgres_url=postgres_url)
    if "bombs" in only:
        progress("bombs ...")
        figures["bombs"] = audio_bombs(names=QUICK_AUDIO if short else None)
    if "mixed" in only:
        progress("mixed ...")
        figures["mixed"] = mixed(clients=8 if short else 32, seconds=5.0 if short else 60.0,
                                 period_s=0.5 if short else 3.0, model=model)
    figures["ok"] = all(v["ok"] for v in figures.values())
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    return figures


def format_table(figures: dict) -> str:
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, d: dict) -> None:
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and k not in ("status", "service_status", "hostile", "files"):
                walk(key, v)
            elif isinstance(v, list) and not v:
                continue
            else:
                text = json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
                rows.append((key, text))

    walk("", figures)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="attune trust", description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help="the quick version (CI): a few students, seconds")
    p.add_argument("--students", type=int, help="class size for the load check (default 30; short 4)")
    p.add_argument("--seconds", type=float, help="load duration (default 180; short 5)")
    p.add_argument("--examples", type=int, help="hypothesis examples per target (default 300; short 25)")
    p.add_argument("--model", choices=("auto", "real", "stand-in"), default="auto",
                   help="auto: the shipped checkpoint when present, else the stand-in")
    p.add_argument("--db-url", help="database for the load check (default: a temporary SQLite file)")
    p.add_argument("--postgres-url", default=POSTGRES_URL, help="PostgreSQL for the outage check")
    p.add_argument("--only", action="append", choices=CHECKS,
                   help="run only these checks (repeatable)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--verbose", action="store_true", help="show the tutor's warnings as they happen")
    args = p.parse_args(argv)
    if not args.verbose:
        for name in ("tutor", "uvicorn.error", "python_multipart"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # the figures count what they say
    progress = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    figures = run(short=args.short, students=args.students, seconds=args.seconds,
                  examples=args.examples, model=args.model, db_url=args.db_url,
                  postgres_url=args.postgres_url, only=tuple(args.only or CHECKS),
                  progress=progress)
    print(json.dumps(figures, indent=2, default=str) if args.json else format_table(figures))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
