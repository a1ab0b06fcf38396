"""Per-modality encoders behind one interface: text, face, speech.

Text and face encoders can carry weights tuned by Attune (cmt.training.text_tune, cmt.training.face_tune); their
files share the loading and the digest below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def load_tuned_file(path: Path, fmt: int, what: str, command: str) -> dict:
    """A tuned-weights file as a dict with the expected "format"; a clear ValueError for a
    missing, unreadable or foreign file."""
    import torch

    if not Path(path).is_file():
        raise ValueError(f"tuned {what} encoder {str(path)!r} not found ({command} writes it)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise ValueError(f"{path}: not a tuned {what} encoder file ({e})") from e
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"{path}: not a tuned {what} encoder file (format {fmt})")
    return blob


def state_digest(tensors) -> str:
    """16 hex digits of SHA-1 over the tensors' bytes, in the order given."""
    return hashlib.sha1(b"".join(t.numpy().tobytes() for t in tensors)).hexdigest()[:16]
