from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cmt.contract import EMOTIONS
from cmt.model.encoders.face import (
    FACE_TUNED_PATH,
    TUNED_FACE_ENCODER,
    EffNetFace,
    FaceEncoder,
    decode_image,
    face_fingerprint,
    load_face_tuned,
)
from cmt.training.face_tune import (Crops, FaceTuneConfig, augment, center, crop_with_margin,
                                   device_for, predict, tune)
from cmt.model.tokens import Encoders
from cmt.training.text_tune import save

HAPPY = Path(__file__).resolve().parents[2] / "fixtures" / "faces" / "Tiger_Woods_0020.jpg"
STILL = FaceTuneConfig(rotate=0.0, zoom=0.0, shift=0.0, light=0.0)


def test_crop_with_margin_keeps_the_box_in_the_middle():
    rgb = np.zeros((100, 120, 3), dtype=np.uint8)
    rgb[20:60, 30:70] = 255  # the "face": a 40 px white square
    side = 64  # the box becomes the middle 56 px
    crop = crop_with_margin(rgb, (30, 20, 40, 40), side, 8 / 7)
    assert crop.shape == (side, side, 3)
    assert crop[5:59, 5:59].min() == 255  # inside the box
    assert crop[:2].max() == 0 and crop[:, :2].max() == 0  # the margin shows what surrounds it

    edge = crop_with_margin(rgb, (0, 0, 40, 40), side, 8 / 7)  # the margin leaves the image
    assert edge.shape == (side, side, 3)
    whole = crop_with_margin(rgb, (-1, -1, -1, -1), side, 8 / 7)  # no face found: whole image
    assert whole.shape == (side, side, 3)


def test_without_augmentation_a_crop_is_its_box_or_its_mirror():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 128, 128), dtype=torch.uint8)
    out, want = augment(x, STILL, gen), center(x, STILL)
    assert out.shape == want.shape == (16, 3, 112, 112)
    same = [torch.allclose(o, w, atol=1e-4) for o, w in zip(out, want)]
    mirrored = [torch.allclose(o, w.flip(-1), atol=1e-4) for o, w in zip(out, want)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)


def _toy(n: int, size: int, seed: int) -> Crops:
    """Two made-up "expressions": a bright band across the face, or down it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 80, (2 * n, 3, size, size), generator=g, dtype=torch.uint8)
    mid = slice(size // 2 - 6, size // 2 + 6)
    x[:n, :, mid, :] = 230
    x[n:, :, :, mid] = 230
    y = torch.tensor([EMOTIONS.index("joy")] * n + [EMOTIONS.index("sadness")] * n)
    return Crops(x, y, [str(i) for i in range(2 * n)])


def test_tuning_learns_and_the_file_loads_into_the_encoder(tmp_path):
    config = replace(FaceTuneConfig(), image_size=64, epochs=6, batch_size=8, lr=3e-3, head_lr=3e-2,
                     rotate=5.0, light=0.0)
    side = 73  # 64 * 8/7
    torch.manual_seed(0)
    model = EffNetFace(dropout=0.0).load_imagenet()
    for m in model.modules():  # batch-norm statistics follow a dozen steps (not hundreds)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.3
    kept = []  # what a run cut short would have kept: each best so far, when it came
    blob = tune(config, _toy(12, side, 0), _toy(4, side, 1), model=model, log=lambda _: None,
                on_best=kept.append)
    assert [r["epoch"] for r in blob["history"]] == [1, 2, 3, 4, 5, 6]
    assert blob["history"][blob["epoch"] - 1]["calibration"]["accuracy"] == 1.0  # told apart
    assert kept[0]["epoch"] == 1 and kept[-1]["epoch"] == blob["epoch"]
    assert kept[-1]["digest"] == blob["digest"] and len(kept[0]["history"]) == 1
    f1 = [blob["history"][k["epoch"] - 1]["calibration"]["macro_f1"] for k in kept]
    assert f1 == sorted(f1) and len(set(f1)) == len(f1)  # each one better than the one before

    path = tmp_path / "face.pt"
    save(blob, path)
    enc = FaceEncoder(str(path))
    assert enc.kind == "tuned" and enc.d_model == 1280
    assert blob["mirror"] and enc.mirror
    assert face_fingerprint(str(path)) == f"{path}@{blob['digest']}+mirror"
    assert Encoders({"face": str(path)}).key("face").startswith(f"{path}@{blob['digest']}+mirror@haar")

    # the encoder, given the face box, reads what the tuner scored
    toy = _toy(4, side, 2)
    o = (side - 64) // 2
    boxes = [img.permute(1, 2, 0)[o:o + 64, o:o + 64].contiguous().numpy() for img in toy.images]
    got = enc.encode(boxes)
    assert got.tokens.shape == (8, 4, 1280) and got.mask.all()  # (64/32)^2 tokens
    np.testing.assert_allclose(got.probs, predict(enc.model, toy, config), atol=1e-4)
    # read with its mirror image, a face and its mirror image give the same answer
    flipped = enc.encode([b[:, ::-1].copy() for b in boxes])
    np.testing.assert_allclose(flipped.probs, got.probs, atol=1e-5)
    torch.testing.assert_close(flipped.tokens.mean(1), got.tokens.mean(1), atol=1e-5, rtol=1e-4)

    # a file written without it (or before it) reads each face once, as it was scored
    single = replace(config, mirror=False)
    torch.save({**blob, "mirror": False}, path)
    enc = FaceEncoder(str(path))
    assert not enc.mirror and face_fingerprint(str(path)) == f"{path}@{blob['digest']}"
    np.testing.assert_allclose(enc.encode(boxes).probs, predict(enc.model, toy, single), atol=1e-4)
    assert not np.allclose(enc.encode(boxes).probs, got.probs, atol=1e-4)


def test_tuning_refuses_a_device_it_cannot_use_before_any_work():
    crops = Crops(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="tpu9"):
        tune(FaceTuneConfig(epochs=1), crops, crops, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            device_for("cuda:0")
    assert device_for("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_file_that_is_not_a_tuned_face_encoder_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint.*a tuned face encoder file was expected"):
        FaceEncoder(str(bad))
    other = tmp_path / "other.pt"
    torch.save({"format": 99}, other)
    with pytest.raises(ValueError, match="not a tuned face encoder"):
        load_face_tuned(other)


def test_the_shipped_tuned_encoder_reads_a_real_smile():
    assert FACE_TUNED_PATH.is_file(), "run `cmt tune-face --data-dir ../shared/datasets`"
    enc = FaceEncoder(TUNED_FACE_ENCODER)
    assert enc.mirror  # tuned and shipped to read each face with its mirror image
    crop, box = enc.crop(decode_image(HAPPY.read_bytes()))
    assert box is not None
    probs = enc.fer_probs([crop])[0]
    assert probs.sum() == pytest.approx(1.0) and EMOTIONS[int(probs.argmax())] == "joy"
    assert load_face_tuned(FACE_TUNED_PATH)["state_dict"]["out.weight"].dtype == torch.float16


def test_a_face_crop_corpus_is_read_whole_without_detection(tmp_path):
    """FER2013's 48x48 crops (`meta["crop"]`) are the face: no detector, the whole image grown
    by the margin; an unreadable file is left out."""
    import cv2

    from cmt.model.labels import Example
    from cmt.training.face_tune import load_crops

    grey = np.zeros((48, 48), dtype=np.uint8)
    grey[:, 24:] = 255  # left half black, right half white
    good, bad = tmp_path / "0.png", tmp_path / "1.png"
    cv2.imwrite(str(good), grey)
    bad.write_bytes(b"not an image")
    examples = [Example(label=label, image_path=p, group=p.stem, meta={"crop": True})
                for label, p in (("joy", good), ("anger", bad))]
    crops = load_crops(examples, STILL)
    side = round(STILL.image_size * STILL.margin)
    assert crops.images.shape == (1, 3, side, side) and crops.labels.tolist() == [EMOTIONS.index("joy")]
    middle = crops.images[0, :, side // 2]  # one row across the middle: dark left, bright right
    assert middle[:, 5].max() < 30 and middle[:, -5].min() > 225
