from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from cmt.contract import EMOTIONS
from cmt.model.encoders.face import (
    FaceEncoder,
    ImageError,
    NoExpressionHead,
    decode_image,
    detect_face,
    probs_onto_emotions,
)

FACES = Path(__file__).resolve().parents[3] / "fixtures" / "faces"
HAPPY = FACES / "Tiger_Woods_0020.jpg"


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture(scope="module")
def happy_rgb() -> np.ndarray:
    return decode_image(HAPPY.read_bytes())


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# --- decoding -----------------------------------------------------------------


def test_decode_jpeg_and_png(happy_rgb):
    assert happy_rgb.dtype == np.uint8 and happy_rgb.shape == (350, 350, 3)
    again = decode_image(_png(happy_rgb))
    assert np.array_equal(again, happy_rgb)


def _encoded(image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def test_decode_gives_the_pixels_pillows_copying_path_gave():
    """decode_image turns the image upright in place and converts only what is not RGB; the
    pixels are those of exif_transpose(...).convert("RGB"), which copied every frame twice."""
    from PIL import Image, ImageOps

    rgb = Image.open(HAPPY).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    cases = [p.read_bytes() for p in sorted(FACES.glob("*.jpg"))] + [
        _encoded(rgb.crop((0, 0, 320, 240)), "JPEG", exif=exif.tobytes()),
        _encoded(rgb.convert("L"), "PNG"),
        _encoded(rgb.convert("RGBA"), "PNG"),
        _encoded(rgb.convert("P"), "PNG"),
    ]
    for data in cases:
        ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert np.array_equal(decode_image(data), ref)
    assert decode_image(cases[-4]).shape == (320, 240, 3)  # turned upright


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"hello, this is text not a picture", "not a JPEG or PNG"),
    (HAPPY.read_bytes()[:400], "could not be decoded"),  # truncated JPEG
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "could not be decoded"),  # header then garbage
])
def test_decode_rejects_bad_bytes(data, words):
    with pytest.raises(ImageError, match=words):
        decode_image(data)
    assert issubclass(ImageError, ValueError)


def test_decode_refuses_decompression_bomb():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (6000, 6000)).save(buf, format="PNG")  # 36 Mpx of zeros: tiny file
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(ImageError, match="pixels"):
        decode_image(buf.getvalue())


# --- detection -------------------------------------------------------------------


def test_detects_the_face_in_a_real_photo(happy_rgb):
    box = detect_face(happy_rgb)
    assert box is not None
    x, y, w, h = box
    assert 0 <= x and 0 <= y and x + w <= 350 and y + h <= 350
    assert w > 150 and h > 150  # the photo is mostly face


def test_no_face_in_a_plain_gradient():
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    assert detect_face(ramp) is None


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10), dtype=np.uint8),
    np.zeros((10, 10, 4), dtype=np.uint8),
    np.zeros((10, 10, 3), dtype=np.float32),
    np.zeros((0, 10, 3), dtype=np.uint8),
    "not an array",
])
def test_detect_validates_its_input(bad):
    with pytest.raises(ValueError, match="RGB uint8|empty|numpy"):
        detect_face(bad)


# --- the default (tuned) encoder -------------------------------------------------


def test_happy_face_reads_as_joy(encoder, happy_rgb):
    face, box = encoder.crop(happy_rgb)
    assert face is not None and face.shape[:2] == (box[3], box[2])
    probs = encoder.fer_probs([face])
    assert probs.shape == (1, len(EMOTIONS))
    assert np.isclose(probs.sum(), 1.0)
    assert EMOTIONS[int(probs.argmax())] == "joy"


def test_tokens_and_mask(encoder, happy_rgb):
    face, _ = encoder.crop(happy_rgb)
    other = decode_image((FACES / "Julian_Fantino_0001.jpg").read_bytes())
    hidden, mask = encoder.tokens([face, other])  # crops of any size batch together
    assert hidden.shape[0] == 2 and hidden.shape[2] == encoder.d_model == 1280
    assert mask.shape == hidden.shape[:2] and mask.dtype == torch.bool and bool(mask.all())
    assert not torch.allclose(hidden[0], hidden[1])


def test_a_frame_reads_no_label_file(encoder, happy_rgb, monkeypatch):
    """The label map is read when the encoder is made, not per frame (parsing its YAML cost
    about 5 ms of a 45 ms frame); the probabilities are the same."""
    import cmt.model.labels as labels

    face, _ = encoder.crop(happy_rgb)
    before = encoder.fer_probs([face])

    def refuse(*args, **kwargs):
        raise AssertionError("a label map was read while encoding a frame")

    monkeypatch.setattr(labels, "load_label_map", refuse)
    assert np.array_equal(encoder.fer_probs([face]), before)


def test_crop_without_a_face(encoder):
    grey = np.full((120, 160, 3), 128, dtype=np.uint8)
    assert encoder.crop(grey) == (None, None)


def test_encoder_validates_faces(encoder):
    with pytest.raises(ValueError, match="no faces"):
        encoder.tokens([])
    with pytest.raises(ValueError, match="face 1"):
        encoder.fer_probs([np.zeros((48, 48, 3), np.uint8), np.zeros((48, 48), np.uint8)])


def test_probs_onto_emotions_merges_and_drops():
    probs = np.array([[0.5, 0.2, 0.2, 0.1]])
    out = probs_onto_emotions(probs, ["happy", "contempt", "disgust", "other"])
    assert out.shape == (1, 7) and np.isclose(out.sum(), 1.0)
    assert np.isclose(out[0, EMOTIONS.index("joy")], 0.5 / 0.9)
    assert np.isclose(out[0, EMOTIONS.index("disgust")], 0.4 / 0.9)


# --- Hugging Face ViT, by path ---------------------------------------------------


def _tiny_vit(tmp_path: Path, labels: list[str] | None) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

    kw = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 64, "image_size": 32, "patch_size": 8}
    torch.manual_seed(0)
    if labels is None:
        model = ViTModel(ViTConfig(**kw))
    else:
        model = ViTForImageClassification(ViTConfig(
            **kw, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}))
    model.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    return tmp_path


def test_vit_by_path_gives_patch_tokens(tmp_path, happy_rgb):
    enc = FaceEncoder(str(_tiny_vit(tmp_path, labels=None)))
    hidden, mask = enc.tokens([happy_rgb, happy_rgb[:200, :100]])
    assert hidden.shape == (2, 1 + 16, 32) and enc.d_model == 32  # CLS + (32/8)^2 patches
    assert mask.shape == (2, 17) and bool(mask.all())
    with pytest.raises(NoExpressionHead, match="no facial-expression classifier"):
        enc.fer_probs([happy_rgb])


def test_vit_classifier_maps_its_labels(tmp_path, happy_rgb):
    labels = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise", "contempt"]
    enc = FaceEncoder(str(_tiny_vit(tmp_path, labels=labels)))
    hidden, _ = enc.tokens([happy_rgb])
    assert hidden.shape == (1, 17, 32)
    probs = enc.fer_probs([happy_rgb, happy_rgb])
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1.0)
    assert np.allclose(probs[0], probs[1])  # eval mode: deterministic


@pytest.mark.parametrize("shape", [(1, 5000, 3), (5000, 1, 3), (3, 3, 3), (19, 400, 3)])
def test_slivers_and_tiny_images_have_no_face_and_no_crash(shape):
    from cmt.model.encoders.face import detect_face

    assert detect_face(np.zeros(shape, np.uint8)) is None
