from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cmt.contract import EMOTIONS
from cmt.training.datasets.face import (
    CorpusError,
    identity_of,
    identity_split,
    load_affectnet,
    load_facial_expressions,
)
from cmt.model.labels import Example, load_label_map


def _write_facial_expressions(root: Path, rows: list[tuple[str, str]]) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "images").mkdir()
    lines = ["user.id,image,emotion"] + [f"302,{name},{label}" for name, label in rows]
    (root / "data" / "legend.csv").write_text("\n".join(lines) + "\n")
    for name, _ in rows:
        (root / "images" / name).write_bytes(b"\xff\xd8\xff")
    return root


def test_identity_of():
    assert identity_of("AJ_Cook_0001.jpg") == "AJ_Cook"
    assert identity_of("Dwarakish_157.jpg") == "Dwarakish"
    assert identity_of("facial-expressions_2868582k.jpg") == "facial-expressions_2868582k"


def test_facial_expressions_maps_and_normalises_labels(tmp_path):
    root = _write_facial_expressions(tmp_path / "fe", [
        ("Ann_Lee_0001.jpg", "happiness"), ("Ann_Lee_0002.jpg", "HAPPINESS"),
        ("Bo_Chan_0001.jpg", "Neutral"), ("Bo_Chan_0002.jpg", "contempt "),
        ("Cy_Dee_0001.jpg", "sadness"),
    ])
    examples = load_facial_expressions(root)
    assert [(e.label, e.group) for e in examples] == [
        ("joy", "Ann_Lee"), ("joy", "Ann_Lee"), ("neutral", "Bo_Chan"),
        ("disgust", "Bo_Chan"), ("sadness", "Cy_Dee")]
    assert examples[0].image_path == root / "images" / "Ann_Lee_0001.jpg"


def test_facial_expressions_unknown_label_and_missing_layout(tmp_path):
    with pytest.raises(CorpusError, match="legend.csv"):
        load_facial_expressions(tmp_path)
    root = _write_facial_expressions(tmp_path / "fe", [("A_0001.jpg", "bliss")])
    with pytest.raises(KeyError, match="bliss"):
        load_facial_expressions(root)


def test_affectnet_layout(tmp_path):
    root = tmp_path / "affectnet"
    (root / "train_set" / "images").mkdir(parents=True)
    (root / "train_set" / "annotations").mkdir()
    for n, code in [(0, 1), (1, 7), (2, 9), (10, 6)]:
        (root / "train_set" / "images" / f"{n}.jpg").write_bytes(b"\xff\xd8\xff")
        np.save(root / "train_set" / "annotations" / f"{n}_exp.npy", np.array(str(code)))
    (root / "train_set" / "images" / "3.jpg").write_bytes(b"\xff\xd8\xff")  # no annotation
    examples = load_affectnet(root)
    assert [(e.image_path.name, e.label) for e in examples] == [
        ("0.jpg", "joy"), ("1.jpg", "disgust"), ("10.jpg", "anger")]  # 9 (uncertain) dropped
    with pytest.raises(CorpusError, match="val_set"):
        load_affectnet(root, split="val_set")


def test_label_maps_cover_every_emotion():
    for name in ("facial_expressions", "affectnet", "synonyms"):
        targets = {v for v in load_label_map(name).mapping.values() if v is not None}
        assert targets == set(EMOTIONS), name


def test_identity_split_holds_identities_out():
    examples = [Example(label=EMOTIONS[(i + j) % 7], group=f"person{i}")
                for i in range(60) for j in range(i % 4 + 1)]
    examples += [Example(label="fear") for _ in range(10)]  # no group: each its own
    train, dev = identity_split(examples, dev_fraction=0.2, seed=0)
    assert len(train) + len(dev) == len(examples)
    named = lambda part: {e.group for e in part if e.group is not None}
    assert not named(train) & named(dev)
    assert 0.1 < len(dev) / len(examples) < 0.3
    assert set(Counter(e.label for e in dev)) == set(EMOTIONS)  # every emotion in dev
    assert identity_split(examples, seed=0) == (train, dev)  # deterministic
    with pytest.raises(ValueError, match="dev_fraction"):
        identity_split(examples, dev_fraction=1.5)


def test_identity_split_shares_identities_not_only_images():
    # One person holds most of an emotion's images: dev must not take every other identity
    # that shows it (the training side would hold that emotion as one face only).
    examples = [Example(label="disgust", group="prolific") for _ in range(50)]
    examples += [Example(label="disgust", group=f"d{i}") for i in range(10)]
    examples += [Example(label=EMOTIONS[i % 2], group=f"p{i}") for i in range(200)]
    train, dev = identity_split(examples, dev_fraction=0.2, seed=0)
    people = lambda part: {e.group for e in part if e.label == "disgust"}
    assert "prolific" in people(train)
    assert 1 <= len(people(dev)) <= 4  # about a fifth of the 11 people showing disgust
    assert len(people(train) - {"prolific"}) >= 6


@pytest.mark.shared
def test_real_facial_expressions(datasets_dir):
    examples = load_facial_expressions(datasets_dir / "facial_expressions")
    assert len(examples) > 3000
    assert {e.label for e in examples} == set(EMOTIONS)
    train, dev = identity_split(examples)
    assert not {e.group for e in train} & {e.group for e in dev}
    assert 0.15 < len(dev) / len(examples) < 0.3


def test_fer2013_folders_are_face_crops(tmp_path):
    import cv2

    from cmt.training.datasets.face import load_fer2013
    from cmt.training.corpora import limited

    for split, label, n in (("train", "happy", 3), ("train", "angry", 2), ("val", "sad", 1)):
        (tmp_path / split / label).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(tmp_path / split / label / f"Training_{label}{i}.png"), np.zeros((48, 48), np.uint8))
    train = load_fer2013(tmp_path, "train")
    assert sorted(e.label for e in train) == ["anger"] * 2 + ["joy"] * 3
    assert all(e.meta["crop"] for e in train) and len({e.group for e in train}) == 5
    assert [e.label for e in load_fer2013(tmp_path, "val")] == ["sadness"]
    assert sorted(e.label for e in limited(train, 3)) == ["anger", "joy", "joy"]  # the mix kept
