"""The generic label-folder layout: `DIR/<label>/*.jpg|png` or `DIR/<label>/*.wav|flac`.

Folder names are matched through data/labels/synonyms.yaml (angry, happy, sad, fearful,
surprised, calm, contempt, ...); a folder whose name maps to null is skipped. Files may sit
in subfolders of a label folder (`DIR/happy/alice/1.jpg`); the first subfolder is then
taken as the group (speaker / identity), otherwise the example has no group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cmt.model.labels import Example, load_label_map
from cmt.settings import REPO_DATA_DIR

EXTENSIONS = {
    "image": (".jpg", ".jpeg", ".png"),
    "audio": (".wav", ".flac", ".ogg", ".mp3"),
}


class FolderLayoutError(ValueError):
    """The directory is not a `DIR/<label>/<files>` layout Attune can read."""


def load_folder(data_dir: str | Path, modality: Literal["image", "audio"],
                labels_dir: Path = REPO_DATA_DIR) -> list[Example]:
    """`DIR/<label>/**/<file>` -> Examples with image_path or audio_path set, sorted by path."""
    if modality not in EXTENSIONS:
        raise ValueError(f"modality must be one of {sorted(EXTENSIONS)}, got {modality!r}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FolderLayoutError(f"{root} is not a directory")
    synonyms = load_label_map("synonyms", labels_dir)
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in label_dirs if p.name.strip().lower() not in synonyms.mapping]
    if unknown:
        raise FolderLayoutError(
            f"{root}: folder names {unknown} are not emotion names Attune knows; rename them "
            f"or add them to {labels_dir / 'labels' / 'synonyms.yaml'}")
    examples = []
    for label_dir in label_dirs:
        emotion = synonyms(label_dir.name)
        if emotion is None:
            continue
        for path in sorted(label_dir.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in EXTENSIONS[modality]:
                continue
            rel = path.relative_to(label_dir)
            group = rel.parts[0] if len(rel.parts) > 1 else None
            kw = {"image_path": path} if modality == "image" else {"audio_path": path}
            examples.append(Example(label=emotion, group=group,
                                    meta={"raw_label": label_dir.name}, **kw))
    if not examples:
        raise FolderLayoutError(
            f"no {modality} files ({', '.join(EXTENSIONS[modality])}) found in label folders "
            f"under {root}")
    return examples
