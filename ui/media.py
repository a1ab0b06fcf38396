"""Media passes through the app without staying on disk.

Gradio hands a recording to its handler as a file in its cache folder (GRADIO_TEMP_DIR, by
default `gradio/` in the system temp folder) and keeps it there, where `GET
/gradio_api/file=...` would serve it. Here:

- `take_bytes` reads such a file into memory and deletes it, with the folder Gradio made for
  it, before anything else happens: a recording exists on disk only between its upload and
  its handler.
- `inline_image` makes a gr.Image whose pictures go to the browser inline (a data: URL) instead
  of being written to the cache as a file: the demo's framed face is never on disk.
- `export_file` writes a teacher's export into a private folder of Gradio's cache, so that
  Gradio serves it without copying it; the app's guard (ui.guard) deletes it once it has been
  downloaded, and Gradio's cache sweep (ui.app.CACHE_SWEEP) if it never is.

Camera frames streamed from the webcam already travel as data: URLs and are decoded in
memory; they never touch the disk.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.data_classes import ImageData
from gradio.utils import get_upload_folder

EXPORT_PREFIX = "attune-export-"
JPEG_QUALITY = 85


def cache_dir() -> Path:
    """Gradio's cache folder (GRADIO_TEMP_DIR), as Gradio resolves it."""
    return Path(get_upload_folder()).resolve()


def forget(path: str | Path) -> None:
    """Delete a file in Gradio's cache, and the folder Gradio made for it
    (`<cache>/<hash>/<name>`, which may also hold a converted copy). A path anywhere else is
    left alone: this deletes only what Gradio took in or made."""
    p = Path(path).resolve()
    cache = cache_dir()
    if not p.is_relative_to(cache) or p == cache:
        return
    p.unlink(missing_ok=True)
    if p.parent.parent == cache:
        shutil.rmtree(p.parent, ignore_errors=True)


class AlreadyTaken(FileNotFoundError):
    """The file was read (and deleted) by an earlier take_bytes: one upload delivered twice,
    as when a browser sends one recording's stop event more than once."""


_TAKEN: OrderedDict[str, None] = OrderedDict()  # the paths take_bytes read last, newest last
_TAKEN_KEPT = 256
_taken_lock = threading.Lock()


def take_bytes(path: str | Path, *, max_bytes: int) -> bytes | None:
    """The file's bytes, or None when it holds more than `max_bytes`; either way a file in
    Gradio's cache is deleted (with its folder) before this returns. A file that is not there
    raises AlreadyTaken when an earlier call read it, else FileNotFoundError."""
    key = str(Path(path).resolve())
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        with _taken_lock:
            if key in _TAKEN:
                raise AlreadyTaken(path) from None
        raise
    finally:
        forget(path)
    with _taken_lock:
        _TAKEN[key] = None
        _TAKEN.move_to_end(key)
        while len(_TAKEN) > _TAKEN_KEPT:
            _TAKEN.popitem(last=False)
    return data if len(data) <= max_bytes else None


def jpeg_data_url(frame: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """An RGB (or grey) uint8 frame as a data: URL holding a JPEG, made in memory."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB").save(
        buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def inline_image(**kwargs) -> gr.Image:
    """An output gr.Image (kwargs as gr.Image's) whose numpy frames and PIL images are sent
    to the browser inline, never written to Gradio's cache; other values as gr.Image does.

    (An instance's postprocess is replaced, not a subclass made: Gradio writes a .pyi stub
    beside the module of every component subclass.)
    """
    image = gr.Image(**kwargs)
    as_file = image.postprocess

    def postprocess(value):
        from PIL import Image

        if isinstance(value, Image.Image):
            value = np.asarray(value.convert("RGB"))
        if not isinstance(value, np.ndarray):
            return as_file(value)
        return ImageData(url=jpeg_data_url(value), mime_type="image/jpeg", orig_name="frame.jpg")

    image.postprocess = postprocess
    return image


def export_file(name: str, data: str | bytes) -> str:
    """Write an export for download into a private folder (mode 700) of Gradio's cache and
    return its path; Gradio serves it from there without keeping another copy."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX, dir=root))
    path = folder / re.sub(r"[^\w.-]+", "_", name)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", newline="")
    return str(path)


def is_export(path: str | Path) -> bool:
    """Whether `path` is an export written by `export_file`."""
    p = Path(path).resolve()
    return p.parent.parent == cache_dir() and p.parent.name.startswith(EXPORT_PREFIX)
