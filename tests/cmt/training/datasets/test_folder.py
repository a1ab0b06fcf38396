from __future__ import annotations

from pathlib import Path

import pytest

from cmt.training.datasets.folder import FolderLayoutError, load_folder


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_image_folders_with_synonyms(tmp_path):
    for rel in ["happy/a.jpg", "Angry/b.PNG", "fearful/c.jpeg", "calm/d.png", "contempt/e.jpg",
                "surprised/alice/f.jpg", "happy/notes.txt", "boredom/g.jpg", "frustration/i.jpg",
                "sad/h.wav"]:
        _touch(tmp_path / rel)
    examples = load_folder(tmp_path, "image")
    got = sorted((e.image_path.name, e.label, e.group) for e in examples)
    assert got == [("a.jpg", "joy", None), ("b.PNG", "anger", None), ("c.jpeg", "fear", None),
                   ("d.png", "neutral", None), ("e.jpg", "disgust", None),
                   ("f.jpg", "surprise", "alice"),
                   ("g.jpg", "neutral", None)]  # boredom as for EmoDB; frustration dropped,
    # and the .txt and .wav files ignored
    assert all(e.audio_path is None for e in examples)


def test_audio_folders(tmp_path):
    _touch(tmp_path / "sad" / "x.wav")
    _touch(tmp_path / "neutral" / "y.flac")
    _touch(tmp_path / "neutral" / "z.jpg")
    examples = load_folder(tmp_path, "audio")
    assert sorted((e.audio_path.name, e.label) for e in examples) == [
        ("x.wav", "sadness"), ("y.flac", "neutral")]


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="modality"):
        load_folder(tmp_path, "video")
    with pytest.raises(FolderLayoutError, match="not a directory"):
        load_folder(tmp_path / "missing", "image")
    _touch(tmp_path / "misc" / "a.jpg")
    with pytest.raises(FolderLayoutError, match="misc"):
        load_folder(tmp_path, "image")
    (tmp_path / "misc" / "a.jpg").unlink()
    (tmp_path / "misc").rmdir()
    _touch(tmp_path / "happy" / "a.txt")
    with pytest.raises(FolderLayoutError, match="no image files"):
        load_folder(tmp_path, "image")
