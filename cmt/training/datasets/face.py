"""Face-expression corpora in their original layouts, and an identity-held-out split.

- muxspace/facial_expressions: `images/*.jpg` and `data/legend.csv` (user.id,image,emotion).
  The identity is the file name without its trailing `_NNNN` (LFW style: `AJ_Cook_0001.jpg`).
- AffectNet: `<split>/images/N.jpg` with `<split>/annotations/N_exp.npy` holding the
  expression code 0..10 (codes 8-10 are dropped; see data/labels/affectnet.yaml).
- FER2013 in the Kaggle folder layout: `train/<emotion>/*.png` and `val/<emotion>/*.png`,
  48x48 grey images that are already face crops (`meta["crop"]`: read without detection).
"""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from cmt.training.datasets.folder import load_folder
from cmt.model.labels import CorpusError, Example, load_label_map
from cmt.settings import REPO_DATA_DIR

_TRAILING_NUMBER = re.compile(r"_\d+$")
AFFECTNET_SPLITS = ("train_set", "val_set")


def identity_of(image_name: str) -> str:
    """`AJ_Cook_0001.jpg` -> `AJ_Cook`; a name without a trailing number is its own identity."""
    return _TRAILING_NUMBER.sub("", Path(image_name).stem)


def load_facial_expressions(data_dir: str | Path,
                            labels_dir: Path = REPO_DATA_DIR) -> list[Example]:
    """muxspace/facial_expressions -> Examples (image_path, label, group = identity)."""
    data_dir = Path(data_dir)
    legend = data_dir / "data" / "legend.csv"
    images = data_dir / "images"
    if not legend.is_file() or not images.is_dir():
        raise CorpusError(f"{data_dir} is not a facial_expressions corpus: "
                          "expected data/legend.csv and images/")
    label_map = load_label_map("facial_expressions", labels_dir)
    examples = []
    with legend.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["image"].strip()
            raw = row["emotion"].strip().lower()  # some rows say HAPPINESS, Neutral, ...
            emotion = label_map(raw)
            path = images / name
            if emotion is None or not path.is_file():
                continue
            examples.append(Example(label=emotion, image_path=path, group=identity_of(name),
                                    meta={"raw_label": raw, "annotator": row["user.id"].strip()}))
    if not examples:
        raise CorpusError(f"no labelled images found under {data_dir}")
    return examples


def load_affectnet(data_dir: str | Path, split: str = "train_set",
                   labels_dir: Path = REPO_DATA_DIR) -> list[Example]:
    """AffectNet's common layout `<split>/images/N.jpg` + `<split>/annotations/N_exp.npy`.

    AffectNet has no identity labels: each image is its own group.
    """
    root = Path(data_dir) / split
    images, annotations = root / "images", root / "annotations"
    if not images.is_dir() or not annotations.is_dir():
        raise CorpusError(f"{root} is not an AffectNet split: expected images/ and annotations/")
    label_map = load_label_map("affectnet", labels_dir)
    examples = []
    for path in sorted(images.iterdir(), key=lambda p: (len(p.stem), p.stem)):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        exp = annotations / f"{path.stem}_exp.npy"
        if not exp.is_file():
            continue
        try:
            code = int(np.asarray(np.load(exp, allow_pickle=False)).reshape(-1)[0])
        except (ValueError, OSError, IndexError) as e:
            raise CorpusError(f"{exp}: not a readable expression code: {e}") from e
        emotion = label_map(str(code))
        if emotion is not None:
            examples.append(Example(label=emotion, image_path=path, group=f"affectnet/{path.stem}",
                                    meta={"raw_label": str(code)}))
    if not examples:
        raise CorpusError(f"no labelled images found under {root}")
    return examples


def load_fer2013(data_dir: str | Path, split: str = "train") -> list[Example]:
    """FER2013's `train/` (Training) or `val/` (PublicTest) part; its PrivateTest is not read.

    The images are face crops: each Example's meta says so (`crop`), and readers take the whole
    image as the face. The corpus has no identities: each image is its own group."""
    if split not in ("train", "val"):
        raise ValueError(f"FER2013 split must be train or val, got {split!r}")
    root = Path(data_dir) / split
    if not root.is_dir():
        raise CorpusError(f"{data_dir} is not a FER2013 folder: expected {split}/<emotion>/*.png")
    return [replace(e, group=f"fer2013/{e.image_path.stem}", meta={**e.meta, "crop": True})
            for e in load_folder(root, "image")]


def identity_split(examples: list[Example], dev_fraction: float = 0.2,
                   seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, dev) with no group (identity) in both.

    Groups are dealt out so that, for each emotion, dev holds about `dev_fraction` of its
    examples and about `dev_fraction` of the identities that show it (rarest emotions first);
    an example without a group is its own group. Balancing images alone let one person with
    most of an emotion's images (in facial_expressions, 104 of 151 disgust photos are one
    actor's) keep that emotion's whole training side, every other identity going to dev.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    group_of = [ex.group if ex.group is not None else f"__item_{i}"
                for i, ex in enumerate(examples)]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(group_of):
        groups.setdefault(key, []).append(i)
    rng = random.Random(seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    images = Counter(ex.label for ex in examples)
    shown = {key: Counter(examples[i].label for i in idx) for key, idx in groups.items()}
    people = Counter(e for labels in shown.values() for e in labels)
    image_target = {e: dev_fraction * n for e, n in images.items()}
    people_target = {e: dev_fraction * n for e, n in people.items()}

    def miss(got: Counter, target: dict[str, float]) -> float:  # relative squared misses
        return sum(((got[e] - t) / max(t, 1.0)) ** 2 for e, t in target.items())

    def cost(dev_images: Counter, dev_people: Counter) -> float:
        return miss(dev_images, image_target) + miss(dev_people, people_target)

    # Greedy: visit groups rarest emotion first, then smallest first (the shuffle breaks
    # ties); a group goes to dev when that brings dev nearer both shares.
    keys.sort(key=lambda k: (min(images[e] for e in shown[k]), len(groups[k])))
    dev_images, dev_people, dev_keys = Counter(), Counter(), set()
    for key in keys:
        more_images, more_people = dev_images + shown[key], dev_people + Counter(set(shown[key]))
        if cost(more_images, more_people) < cost(dev_images, dev_people):
            dev_images, dev_people = more_images, more_people
            dev_keys.add(key)
    train = [ex for ex, key in zip(examples, group_of) if key not in dev_keys]
    dev = [ex for ex, key in zip(examples, group_of) if key in dev_keys]
    return train, dev
