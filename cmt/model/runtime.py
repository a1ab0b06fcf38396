"""Getting a served model ready before its first request: threads, and every lazy import
and first-call kernel that would otherwise fall on the first student's turn.

`ready_to_serve(model)` is called once where the engine is loaded (cmt.serve.engine.Engine.load),
before the model's own warm-up, so that the ONNX Runtime sessions made there take the thread
count set here.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np

log = logging.getLogger("cmt.model.runtime")

WARM_RATE = 48000  # Hz, what browsers record at: the resampler's path to 16 kHz


def set_threads(threads: int) -> int:
    """Threads per model pass (0: torch's default); returns the count in force."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def warm_inputs(model) -> None:
    """Decode a recording at a browser's rate (imports and plans the resampler) and a JPEG (the
    image decoder and the face detector's first search): what the first spoken turn and the
    first camera frame would pay."""
    import soundfile as sf
    from PIL import Image

    decoders = getattr(model, "decoders", {})
    if "audio" in decoders:
        t = np.arange(WARM_RATE // 2) / WARM_RATE
        buf = io.BytesIO()
        sf.write(buf, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), WARM_RATE,
                 format="WAV")
        decoders["audio"](buf.getvalue())
    if "image" in decoders:
        buf = io.BytesIO()
        Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(buf, format="JPEG")
        decoders["image"](buf.getvalue())


def ready_to_serve(model) -> None:
    """Threads from the settings, then the inputs' decoders warmed (the model's own warm_up
    runs its encoders)."""
    from cmt.settings import get_settings

    t = time.perf_counter()
    threads = set_threads(get_settings().serve_threads)
    warm_inputs(model)
    log.info("serving with %d thread(s); decoders warm in %.2f s", threads,
             time.perf_counter() - t)
