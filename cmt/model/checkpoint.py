"""The one place weight files are written and read.

    save(blob, path)                      # torch format, whole or not at all
    atomic_write(path, lambda tmp: ...)   # any writer (ONNX export, safetensors, npz)
    load(path, what="fusion checkpoint", command="cmt train", keys=("dims", "state_dict"))

`load` unpickles without running code (torch's `weights_only`) and turns every way a file can
be wrong into one short error that names the file, what was expected and the command that
writes one: `CheckpointMissing` (also a FileNotFoundError) when there is no file,
`CheckpointError` (a ValueError) for a truncated file, a foreign one, or one of another format.
The shipped files are in CHECKPOINT_DIR (cmt/checkpoints), in torch's zip format.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"  # cmt/checkpoints


class CheckpointError(ValueError):
    """A weight file that cannot be used: unreadable, foreign, or of another format."""


class CheckpointMissing(CheckpointError, FileNotFoundError):
    """No file where a weight file was expected."""


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call write(tmp) on a temporary file beside `path`, then move it into place: readers
    see the old file or the new one, never half of one, and a write that fails (a full disk)
    leaves the old file and no temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # beside the target (os.replace cannot cross file systems), named for this writer alone;
    # created as any new file is (not mkstemp's owner-only mode: weight files are shared)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save(blob: dict, path: str | os.PathLike) -> Path:
    """A dict of tensors and plain values, in torch's format, written atomically."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(blob, tmp))


def state_digest(tensors) -> str:
    """16 hex digits of SHA-1 over the tensors' bytes, in the order given (a tuned file's
    digest, which cache keys carry)."""
    return hashlib.sha1(b"".join(t.numpy().tobytes() for t in tensors)).hexdigest()[:16]


def load(path: str | os.PathLike, *, what: str, command: str | None = None,
         keys: Iterable[str] = (), fmt: int | None = None) -> dict:
    """A torch file's dict, read without running code; a clear CheckpointError (or
    CheckpointMissing) otherwise. keys: entries it must have; fmt: its "format" entry."""
    import torch

    path = Path(path)
    writes = f"; `{command}` writes one" if command else ""
    a = "an" if what[:1].lower() in "aeiou" else "a"
    if not path.is_file():
        raise CheckpointMissing(f"no {what} at {path}{writes}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch's own words run to pages and some advise
        # loading unsafely: one line says what is wrong instead
        raise CheckpointError(f"{path} is not a readable checkpoint: not a torch file, a "
                              "truncated one, or one holding objects that would run code when "
                              f"loaded ({type(e).__name__}); {a} {what} was expected") from e
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path} is not {a} {what}{writes}")
    if fmt is not None and blob.get("format") != fmt:
        raise CheckpointError(f"{path} is not {a} {what} of format {fmt} "
                              f"(its format: {blob.get('format')!r}){writes}")
    missing = [k for k in keys if k not in blob]
    if missing:
        raise CheckpointError(f"{path} is not {a} {what} (it has no {', '.join(missing)}){writes}")
    return blob
