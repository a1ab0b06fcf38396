"""The cmt command line, end to end on tiny corpora, and its errors: a message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmt.cli import app


@pytest.mark.parametrize("args, says", [
    (["train"], "corpus file not found"),
    (["tune-text"], "corpus file not found"),
    (["tune-face"], "is not a facial_expressions corpus"),
    (["evaluate", "--dataset", "meld"], "corpus file not found"),
])
def test_missing_corpus_is_a_usage_error(tmp_path, args, says):
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)  # a usage exit, not an uncaught error


@pytest.mark.parametrize("device, says", [("tpu9", "--device"), ("cuda", "torch sees no CUDA device")])
def test_tune_face_refuses_a_device_it_cannot_use(tmp_path, device, says):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = CliRunner().invoke(app, ["tune-face", "--data-dir", str(tmp_path), "--device", device])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())


def test_tune_text_keeps_the_shipped_recipe_unless_told(tmp_path, monkeypatch):
    import cmt.training.text_tune
    from cmt.training.text_tune import TuneConfig

    seen = []

    def run(config, data_dir, out, log):
        seen.append(config)
        return {"epoch": 1, "seconds": 0.0}

    monkeypatch.setattr(cmt.training.text_tune, "run", run)
    runner = CliRunner()
    assert runner.invoke(app, ["tune-text", "--data-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["tune-text", "--data-dir", str(tmp_path), "--layers", "4",
                               "--meld-times", "1"]).exit_code == 0
    assert seen[0] == TuneConfig()
    assert (seen[1].layers, seen[1].epochs, seen[1].oversample) == (4, TuneConfig().epochs,
                                                                    (("meld", 1),))


def test_calibrate_fits_only_the_modalities_named(tmp_path, monkeypatch):
    import cmt.training.train

    seen = []
    monkeypatch.setattr(cmt.training.train, "calibrate",
                        lambda config, checkpoint, out: seen.append(config) or {"ok": True})
    config = tmp_path / "cmt.yaml"
    config.write_text("calibration: 0.15\nexperts: {text: {}, speech: {}}\n"
                      "corpora: {text: [meld], speech: [ravdess]}\n"
                      "reliability: {text: {}, speech: {held_out: emodb}}\n")
    runner = CliRunner()
    base = ["calibrate", "--config", str(config), "--data-dir", str(tmp_path),
            "--out", str(tmp_path / "c.pt")]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--modality", "text"]).exit_code == 0
    assert set(seen[0].reliability) == {"speech", "text"}
    assert set(seen[1].reliability) == {"text"}
    result = runner.invoke(app, [*base, "--modality", "nose"])
    assert result.exit_code == 2 and "nose: not in" in said(result.output)


MELD_HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,"
               "Episode,StartTime,EndTime\n")
MELD_ROWS = [  # (utterance, emotion): a tiny MELD test file in the original layout
    ("I got the job! I can't believe it, this is the best day ever!", "joy"),
    ("Thank you so much, I love it!", "joy"),
    ("Get out of my apartment right now, I am so furious with you!", "anger"),
    ("My grandmother died last night.", "sadness"),
    ("Okay, the meeting is at three.", "neutral"),
    ("What? You're getting married?!", "surprise"),
]


def said(output: str) -> str:
    """The command's words, without the frame rich draws around an error or its line breaks."""
    return " ".join(output.replace("\u2502", " ").split())


def _write_meld(folder, split="test"):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'{i + 1},"{text}",Ross,{label},x,0,{i},1,1,"00:00:01,000","00:00:02,000"\n'
             for i, (text, label) in enumerate(MELD_ROWS)]
    (folder / f"{split}_sent_emo.csv").write_text(MELD_HEADER + "".join(lines))
    return folder


def test_evaluate_reads_the_test_split_and_writes_json_and_a_plot(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    data = _write_meld(tmp_path / "meld")
    plot = tmp_path / "plots" / "new" / "meld.png"  # its folder does not exist yet
    result = CliRunner().invoke(app, ["evaluate", "--dataset", "meld", "--data-dir", str(data),
                                      "--split", "test", "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert (res["n"], res["split"], res["modality"]) == (len(MELD_ROWS), "test", "text")
    matrix = res["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == len(MELD_ROWS)
    truth = {e: sum(1 for _, label in MELD_ROWS if label == e) for e in res["per_class"]}
    assert {e: c["support"] for e, c in res["per_class"].items()} == truth
    assert 0.0 <= res["macro_f1"] <= res["accuracy"] + 1.0 and res["cross_entropy"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, says", [
    (["--dataset", "meldd"], "unknown corpus 'meldd'"),
    (["--dataset", "folder"], "needs a modality: image or audio"),
    (["--dataset", "folder", "--modality", "video"], "needs a modality: image or audio"),
])
def test_evaluate_refuses_a_bad_dataset_with_a_message(tmp_path, args, says):
    result = CliRunner().invoke(app, ["evaluate", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("content, says", [
    (b"this is not a checkpoint at all", "is not a readable checkpoint: not a torch file"),
    (b"garbage\n", "is not a readable checkpoint: not a torch file"),
    ("truncated", "is not a readable checkpoint: not a torch file"),  # a real one, cut short
    (None, "is not an Attune fusion checkpoint"),  # a real torch file of another kind
])
def test_evaluate_and_load_model_refuse_a_file_that_is_not_a_fusion_checkpoint(tmp_path, content, says):
    import torch

    import cmt

    path = tmp_path / "model.pt"
    if content is None:
        torch.save({"layers": {"5": {"w": torch.zeros(2)}}, "digest": "x"}, path)
    elif content == "truncated":
        torch.save({"dims": {}, "state_dict": {}, "config": {}}, path)
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.write_bytes(content)
    data = _write_meld(tmp_path / "meld", split="dev")
    result = CliRunner().invoke(app, ["evaluate", "--dataset", "meld", "--data-dir", str(data),
                                      "--checkpoint", str(path)])
    assert result.exit_code == 2, result.output
    assert says in said(result.output)
    with pytest.raises(ValueError, match=says):
        cmt.load_model(path)


def test_a_checkpoint_that_would_run_code_when_unpickled_is_refused(tmp_path):
    import pickle

    import torch

    from cmt.model.fusion import read_checkpoint

    class Payload:  # what a malicious file carries: unpickling it would call os.system
        def __reduce__(self):
            import os
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "evil.pt"
    torch.save({"dims": {}, "state_dict": {}, "config": Payload()}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        read_checkpoint(path)
    assert not (tmp_path / "ran").exists()


def test_evaluate_hears_melds_raw_clips(tmp_path, monkeypatch):
    """MELD.Raw's layout (dev clips in dev_splits_complete/, the CSV beside them) is a speech corpus."""
    import json
    import shutil

    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    raw = tmp_path / "MELD.Raw"
    clip = Path(__file__).resolve().parents[1] / "fixtures" / "audio" / "so_frustrating_16k.flac"
    (raw / "dev_splits_complete").mkdir(parents=True)
    shutil.copy(clip, raw / "dev_splits_complete" / "dia0_utt1.flac")
    (raw / "dev_sent_emo.csv").write_text(
        MELD_HEADER + '1,"Hello.",Ross,neutral,x,0,0,1,1,a,b\n'
        '2,"This is so frustrating.",Ross,anger,x,0,1,1,1,a,b\n')  # utterance 0 has no clip
    result = CliRunner().invoke(app, ["evaluate", "--dataset", "meld_clips", "--data-dir", str(raw),
                                      "--json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert (res["n"], res["modality"], res["per_class"]["anger"]["support"]) == (1, "speech", 1)


def test_a_full_disk_ends_training_with_a_message(tmp_path, monkeypatch):
    import errno

    import cmt.training.train

    def run(config, resume=False):
        raise OSError(errno.ENOSPC, "No space left on device", str(config.out))

    monkeypatch.setattr(cmt.training.train, "run", run)
    result = CliRunner().invoke(app, ["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 1
    assert f"Error: No space left on device: {tmp_path / 'm.pt'}" in result.stderr
    assert isinstance(result.exception, SystemExit)


TINY_CONFIG = """\
name: tiny
d_model: 32
n_head: 2
n_layer: 1
epochs: 2
batch_size: 16
calibration: 0.15
speech_summary: true
experts:
  text: {epochs: 3, n_hidden: 16, balanced: false}
  face: {epochs: 3, n_hidden: 16}
  speech: {epochs: 3, n_hidden: 16, summary_layers: 5}
corpora: {text: [meld], face: [facial_expressions], speech: [ravdess]}
encoders: {text: attune-minilm-emotion, face: attune-face-emotion, speech: null}
"""


def _tiny_corpora(root):
    """MELD, facial_expressions and RAVDESS in their original layouts, a few rows each: real
    sentences, the three real face fixtures under many names, the real speech fixture."""
    import shutil

    from cmt.contract import EMOTIONS

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    sentences = [text for text, _ in MELD_ROWS]
    for split, dialogues in (("train", 12), ("dev", 3)):
        rows = [f'{k + 1},"{sentences[k % len(sentences)]}",Ross,{EMOTIONS[k % 7]},x,'
                f"{k // 3},{k % 3},1,1,a,b\n" for k in range(3 * dialogues)]
        (root / "meld").mkdir(parents=True, exist_ok=True)
        (root / "meld" / f"{split}_sent_emo.csv").write_text(MELD_HEADER + "".join(rows))
    faces = sorted((fixtures / "faces").glob("*.jpg"))
    fe = root / "facial_expressions"
    (fe / "data").mkdir(parents=True)
    (fe / "images").mkdir()
    legend = ["user.id,image,emotion"]
    names = ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise"]
    for k in range(28):
        name = f"Person_{k // 2:02d}_{k % 2 + 1:04d}.jpg"
        shutil.copy(faces[k % len(faces)], fe / "images" / name)
        legend.append(f"1,{name},{names[k % 7]}")
    (fe / "data" / "legend.csv").write_text("\n".join(legend) + "\n")
    for actor in range(1, 21):
        folder = root / "ravdess" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for emotion in (1, 3, 5) if actor % 2 else (4, 6, 7, 8):
            shutil.copy(fixtures / "audio" / "so_frustrating_16k.flac",
                        folder / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.flac")
    return root


def test_train_then_evaluate_then_load_the_model_end_to_end(tmp_path, monkeypatch):
    """The documented path on tiny corpora and the real encoders: `cmt train` writes a checkpoint
    with its stack and experts, `cmt evaluate` scores it, and the front door answers with it."""
    import json

    import numpy as np
    import soundfile as sf
    from PIL import Image

    import cmt
    from cmt.contract import EMOTIONS

    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    data = _tiny_corpora(tmp_path / "datasets")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    out = tmp_path / "tiny.pt"
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--config", str(config), "--data-dir", str(data),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert set(report["per_corpus"]) == set(report["calibration_per_corpus"]) == {
        "meld", "facial_expressions", "ravdess"}
    assert report["stack"] and out.is_file()

    result = runner.invoke(app, ["evaluate", "--dataset", "ravdess", "--data-dir", str(data / "ravdess"),
                                 "--checkpoint", str(out), "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert res["n"] == 3 + 4 + 3 + 4  # the held-out actors 17 to 20
    assert "no test split of its own" in res["note"]  # and it says so

    model = cmt.load_model(out)
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    audio, sr = sf.read(fixtures / "audio" / "so_frustrating_16k.flac", dtype="float32")
    face = np.asarray(Image.open(fixtures / "faces" / "Tiger_Woods_0020.jpg").convert("RGB"))
    p = model.predict(text="This is so frustrating.", face=face, audio=audio, sample_rate=sr)
    assert p.label in EMOTIONS and abs(sum(p.probs.values()) - 1) < 1e-4
    assert set(p.modalities) == {"text", "face", "speech"}
    assert "frustrating" in p.transcript.lower()
