from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cmt.contract import EMOTIONS
from cmt.face_head import (
    HEAD_PATH,
    FaceHead,
    FaceHeadConfig,
    app,
    fit_head,
    fit_temperature,
    head_features,
    load_head,
    zero_shot_probs,
)

FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"


def test_tiny_head_shapes_and_loss():
    head = FaceHead(FaceHeadConfig(n_in=10, n_hidden=4))
    logits, loss = head(torch.randn(5, 10), targets=torch.tensor([0, 1, 2, 3, 4]))
    assert logits.shape == (5, 7) and loss.ndim == 0
    probs = head.probs(np.random.randn(2, 10))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1.0)


def test_fit_head_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=300)
    x = rng.normal(size=(300, 12)) + 4 * np.eye(7, 12)[y]
    head = fit_head(x, y, FaceHeadConfig(n_in=12, n_hidden=16), epochs=100)
    assert (head.probs(x).argmax(1) == y).mean() > 0.95


def test_temperature_softens_the_cnn_scores():
    feats = np.zeros((4, 519), dtype=np.float32)
    feats[:, -7:] = [[0, 0, 0, 40, 0, 0, 20]] * 4  # FER order: happy 40, neutral 20
    sharp = zero_shot_probs(feats, temperature=1.0)
    soft = zero_shot_probs(feats, temperature=10.0)
    assert sharp[0, EMOTIONS.index("joy")] > 0.999
    assert 0.5 < soft[0, EMOTIONS.index("joy")] < 0.9
    # Half the faces are really neutral: a softer temperature fits better than the raw scores.
    assert fit_temperature(feats, ["joy", "neutral", "joy", "neutral"]) > 5


def test_head_features_from_a_real_face():
    from cmt.model.encoders.face import FaceEncoder, decode_image

    enc = FaceEncoder()
    rgb = decode_image((FACES / "Tiger_Woods_0020.jpg").read_bytes())
    feats = head_features(enc.encode([rgb]))
    assert feats.shape == (1, FaceHeadConfig().n_in) and feats.dtype == np.float32


def test_shipped_head_is_small_and_loads():
    if not HEAD_PATH.is_file():
        pytest.fail(f"{HEAD_PATH} is missing: run `python -m cmt.face_head train`")
    assert HEAD_PATH.stat().st_size < 1024 * 1024
    head = load_head()
    assert head.probs(np.zeros((1, head.config.n_in))).shape == (1, 7)


def test_cli_trains_and_evaluates_on_a_tiny_corpus(tmp_path, monkeypatch):
    from cmt.settings import get_settings

    root = tmp_path / "fe"
    (root / "data").mkdir(parents=True)
    (root / "images").mkdir()
    sources = {"happiness": "Tiger_Woods_0020.jpg", "neutral": "Julian_Fantino_0001.jpg",
               "surprise": "Dan_Monson_0001.jpg"}
    rows = ["user.id,image,emotion"]
    for person in range(6):
        for label, src in sources.items():
            name = f"Person_{person}_{label}_000{person}.jpg"
            shutil.copy(FACES / src, root / "images" / name)
            rows.append(f"302,{name},{label}")
    (root / "images" / "Webp_Face_0001.jpg").write_bytes(b"RIFFzq\x00\x00WEBPVP8 ")  # misnamed
    rows.append("302,Webp_Face_0001.jpg,neutral")
    (root / "data" / "legend.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = tmp_path / "head.pt"
        result = runner.invoke(app, ["train", "--data-dir", str(root), "--out", str(out),
                                     "--epochs", "5"])
        assert result.exit_code == 0, result.output
        assert out.is_file() and (tmp_path / "home" / "cache" / "face").is_dir()
        report = tmp_path / "scores.json"
        result = runner.invoke(app, ["evaluate", "--data-dir", str(root), "--head-path", str(out),
                                     "--report", str(report)])
        assert result.exit_code == 0, result.output
        assert "macro_f1" in result.output and "1 unreadable left out" in result.output
        scores = json.loads(report.read_text())
        assert scores["detected"] == 1.0 and scores["head"]["n"] > 0
    finally:
        get_settings.cache_clear()
