"""Label maps: a corpus's own labels onto Attune's seven emotions.

A map lives in data/labels/<name>.yaml as `{raw_label: emotion or null}`; null drops
the example. `synonyms.yaml` covers the generic label-folder layout (angry, happy, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cmt.contract import EMOTIONS
from cmt.settings import REPO_DATA_DIR


class CorpusError(ValueError):
    """A corpus is malformed or not laid out as expected: a missing column, an unknown label."""


class CorpusFileMissing(CorpusError, FileNotFoundError):
    """An expected corpus file or folder is not there."""


@dataclass(frozen=True)
class Example:
    """One labelled item of a corpus. Exactly the fields its modality needs are set."""

    label: str  # one of EMOTIONS
    text: str | None = None
    image_path: Path | None = None
    audio_path: Path | None = None
    group: str | None = None  # speaker / identity / dialogue, for held-out splits
    context: tuple[str, ...] = ()  # past turns, oldest first
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class LabelMap:
    name: str
    mapping: dict[str, str | None]

    def __call__(self, raw: str) -> str | None:
        """The emotion for a raw label, None when the map drops it; KeyError if unknown."""
        key = raw.strip().lower()
        if key not in self.mapping:
            raise KeyError(f"label {raw!r} is not in the {self.name!r} label map")
        return self.mapping[key]


def load_label_map(name: str, data_dir: Path = REPO_DATA_DIR) -> LabelMap:
    path = data_dir / "labels" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    mapping = {str(k).lower(): v for k, v in raw["map"].items()}
    bad = {k: v for k, v in mapping.items() if v is not None and v not in EMOTIONS}
    if bad:
        raise ValueError(f"{path}: targets must be one of {EMOTIONS} or null, got {bad}")
    return LabelMap(name=name, mapping=mapping)
