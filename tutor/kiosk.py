"""Local capture mode: the tutor on a kiosk or demo laptop, without a browser.

The microphone is read with sounddevice and cut into utterances by energy; each utterance
is a spoken turn (its transcript is the message). The local camera (OpenCV), when allowed,
sends a frame every half second between turns. Everything stays in memory.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

log = logging.getLogger("tutor.kiosk")
SAMPLE_RATE = 16000  # Hz
BLOCK_S = 0.1  # s per microphone block
SPEECH_RMS = 0.01  # linear; a block louder than this is speech
END_SILENCE_S = 0.8  # s of quiet that ends an utterance
MIN_SPEECH_S = 0.4  # s; shorter bursts (a cough, a click) are ignored
MAX_UTTERANCE_S = 20.0  # s; cut here even without a pause
FRAME_EVERY_S = 0.5  # s between camera frames


def utterances(blocks: Iterable[np.ndarray], sr: int = SAMPLE_RATE, *, speech_rms: float = SPEECH_RMS,
               end_silence_s: float = END_SILENCE_S, min_speech_s: float = MIN_SPEECH_S,
               max_s: float = MAX_UTTERANCE_S) -> Iterator[np.ndarray]:
    """Mono float32 blocks -> utterances (speech plus its trailing pause, float32)."""
    end_quiet, min_speech, max_len = (round(x * sr) for x in (end_silence_s, min_speech_s, max_s))
    current: list[np.ndarray] = []
    speech = quiet = total = 0  # samples
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        loud = float(np.sqrt(np.mean(block ** 2))) >= speech_rms if block.size else False
        if not current and not loud:
            continue  # waiting for speech
        current.append(block)
        total += block.size
        speech, quiet = (speech + block.size, 0) if loud else (speech, quiet + block.size)
        if quiet >= end_quiet or total >= max_len:
            if speech >= min_speech:
                yield np.concatenate(current)
            current, speech, quiet, total = [], 0, 0, 0
    if current and speech >= min_speech:
        yield np.concatenate(current)


def wav_bytes(audio: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def microphone_blocks(stop: threading.Event, device=None) -> Iterator[np.ndarray]:
    """Blocks from the default (or given) input device until `stop` is set."""
    try:
        import sounddevice as sd
    except ImportError as e:  # installed without the kiosk extra
        raise RuntimeError("the kiosk's microphone needs sounddevice: pip install -e '.[kiosk]'") from e
    except OSError as e:  # PortAudio missing
        raise RuntimeError(f"no audio input available: {e} (install PortAudio, e.g. libportaudio2)") from e
    q: queue.Queue[np.ndarray] = queue.Queue(maxsize=200)

    def callback(indata, _frames, _time, status):
        if status:
            log.debug("input status: %s", status)
        try:
            q.put_nowait(indata[:, 0].copy())
        except queue.Full:
            pass  # drop rather than grow without bound

    with sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                        blocksize=int(SAMPLE_RATE * BLOCK_S), device=device, callback=callback):
        while not stop.is_set():
            try:
                yield q.get(timeout=0.5)
            except queue.Empty:
                continue


def camera_loop(conv, stop: threading.Event, index: int = 0, every_s: float = FRAME_EVERY_S,
                on_reading: Callable | None = None) -> None:
    """Send a local camera frame to the conversation every `every_s` until `stop`."""
    import cv2

    cam = cv2.VideoCapture(index)
    if not cam.isOpened():
        log.warning("no camera at index %d; continuing with the microphone only", index)
        return
    try:
        while not stop.is_set():
            ok, bgr = cam.read()
            if ok:
                ok, jpg = cv2.imencode(".jpg", bgr)
                reading = conv.observe_frame(jpg.tobytes()) if ok else None
                if reading is not None and on_reading:
                    on_reading(reading)
            stop.wait(every_s)
    finally:
        cam.release()


def run(conv, *, blocks: Iterable[np.ndarray], say: Callable[[str], None] = print) -> int:
    """Turn every utterance into a spoken turn and say the reply. Returns the turns taken."""
    from tutor.session import MessageError, StorageError

    n = 0
    for utterance in utterances(blocks):
        t = time.perf_counter()
        try:
            result = conv.turn(None, audio=wav_bytes(utterance))
        except (MessageError, StorageError) as e:
            say(f"(tutor) {e}")
            continue
        n += 1
        say(f"you: {result.message}")
        say(f"tutor: {result.reply}")
        if result.reading is not None:
            say(f"      [{result.reading.label} {result.reading.confidence:.0%} → "
                f"{result.decision.tone}; {(time.perf_counter() - t) * 1e3:.0f} ms]")
    return n
