"""Tune the face encoder (`cmt tune-face --fer2013`) on a GPU machine that has neither the
corpora nor the weight packages, and a small transfer limit.

    # here: the training splits' crops, packed small (53 MiB)
    python tools/experiments/tune_face_remote.py pack --data-dir ../shared/datasets --out .gpu/faces
    # there (torch, OpenCV and scikit-learn installed; pydantic and efficientnet-lite-pytorch
    # carried as wheels): as many epochs as fit in --budget seconds
    python tools/experiments/tune_face_remote.py run --pack .gpu/faces --out $OUT --budget 400
    # here again: the file is cmt/checkpoints/face_tuned.pt's; then `cmt train`, as after tune-face
    cp $OUT/face_tuned.pt cmt/checkpoints/face_tuned.pt

The pack holds what `cmt.training.face_tune.load_splits` gives for fit and calibration (dev is
scored here afterwards, by `cmt evaluate`), as JPEG mosaics at quality 95: facial_expressions'
crops as cut here (the Haar detector runs here), FER2013's 48x48 images whole, cut there by the
same `crop_with_margin`. Tiles are multiples of JPEG's 16-pixel blocks, so no block spans two
faces. The ImageNet body is carried in float16.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cmt.training.face_tune import (Crops, FaceTuneConfig, concat, crop_with_margin,  # noqa: E402
                                    subset)

CORPORA = {"facial_expressions": 128, "fer2013": 48}  # tile side: the crop, or the image whole
PER_SIDE = {128: 16, 48: 40}  # tiles along a mosaic's side
QUALITY = 95


def _mosaics(tiles: np.ndarray, per_side: int) -> list[np.ndarray]:
    """(N, s, s, C) -> mosaics of per_side x per_side tiles (the last one padded)."""
    n, s = len(tiles), tiles.shape[1]
    per = per_side * per_side
    out = []
    for start in range(0, n, per):
        chunk = tiles[start:start + per]
        pad = np.zeros((per - len(chunk), *chunk.shape[1:]), dtype=np.uint8)
        grid = np.concatenate([chunk, pad]).reshape(per_side, per_side, s, s, -1)
        out.append(grid.transpose(0, 2, 1, 3, 4).reshape(per_side * s, per_side * s, -1))
    return out


def _tiles(mosaic: np.ndarray, s: int) -> np.ndarray:
    k = mosaic.shape[0] // s
    c = mosaic.shape[2] if mosaic.ndim == 3 else 1
    return mosaic.reshape(k, s, k, s, c).transpose(0, 2, 1, 3, 4).reshape(k * k, s, s, c)


def pack(data_dir: Path, out: Path) -> None:
    import cv2

    from cmt.contract import EMOTIONS
    from cmt.model.encoders.face import EffNetFace, decode_image
    from cmt.training.corpora import SUBDIR, calibration_mask, examples
    from cmt.training.face_tune import load_crops

    config = FaceTuneConfig()
    out.mkdir(parents=True, exist_ok=True)
    meta = {}
    for corpus, side in CORPORA.items():
        items = examples(corpus, data_dir / SUBDIR[corpus], "train")
        if corpus == "fer2013":  # whole 48x48 grey images, cut there
            images = np.stack([decode_image(Path(e.image_path).read_bytes())[..., :1]
                               for e in items])
            labels = [e.label for e in items]
            groups = [e.group or "" for e in items]
        else:
            crops = load_crops(items, config)
            images = crops.images.permute(0, 2, 3, 1).numpy()
            labels = [EMOTIONS[i] for i in crops.labels.tolist()]
            groups = crops.groups
        held = calibration_mask(groups, config.calibration, config.seed)
        files = []
        for i, m in enumerate(_mosaics(images, PER_SIDE[side])):
            name = f"{corpus}-{i:03d}.jpg"
            bgr = m[..., ::-1] if m.shape[2] == 3 else m[..., 0]
            cv2.imwrite(str(out / name), np.ascontiguousarray(bgr),
                        [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
            files.append(name)
        meta[corpus] = {"n": len(labels), "side": side, "channels": int(images.shape[3]),
                        "files": files, "labels": labels, "groups": groups, "held": held}
        print(f"{corpus}: {len(labels)} images, {sum(held)} held for calibration", flush=True)
    (out / "meta.json").write_text(json.dumps(meta))
    body = EffNetFace().load_imagenet().body.state_dict()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in body.items()},
               out / "imagenet-body.pt")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {size / 2**20:.1f} MiB into {out}")


def unpack(folder: Path) -> dict[str, Crops]:
    """{"fit", "calibration"} as load_splits makes them (facial_expressions first)."""
    import cv2

    from cmt.contract import EMOTIONS

    meta = json.loads((folder / "meta.json").read_text())
    config = FaceTuneConfig()
    side = int(round(config.image_size * config.margin))
    fit, calibration = [], []
    for corpus in CORPORA:
        m = meta[corpus]
        flag = cv2.IMREAD_COLOR if m["channels"] == 3 else cv2.IMREAD_GRAYSCALE
        tiles = []
        for name in m["files"]:
            mosaic = cv2.imread(str(folder / name), flag)
            mosaic = mosaic[..., ::-1] if m["channels"] == 3 else mosaic[..., None]
            tiles.append(_tiles(np.ascontiguousarray(mosaic), m["side"]))
        images = np.concatenate(tiles)[:m["n"]]
        if m["channels"] == 1:  # the image whole, cut as load_crops cuts an image that is a crop
            images = np.stack([crop_with_margin(np.repeat(t, 3, axis=2), None, side, config.margin)
                               for t in images])
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        crops = Crops(x, torch.tensor([EMOTIONS.index(label) for label in m["labels"]]), m["groups"])
        fit.append(subset(crops, [not h for h in m["held"]]))
        calibration.append(subset(crops, m["held"]))
    return {"fit": concat(fit), "calibration": concat(calibration)}


def _first(crops: Crops, n: int) -> Crops:
    return subset(crops, [i < n for i in range(len(crops.labels))])


def step_seconds(model, fit: Crops, config: FaceTuneConfig, device: str, steps: int = 30) -> float:
    """Seconds per training step: one epoch of `tune` on `steps` batches of `fit`, on a copy of
    the model (which is then dropped). The first epoch's few warm-up steps are counted too."""
    import copy

    from cmt.training.face_tune import tune

    blob = tune(replace(config, epochs=1), _first(fit, steps * config.batch_size),
                _first(fit, config.batch_size), None, model=copy.deepcopy(model),
                device=device, log=lambda _line: None)
    return blob["history"][0]["seconds"] / steps


def run(folder: Path, out: Path, budget: float, device: str, max_epochs: int,
        limit: int | None = None, start: Path | None = None, lr_scale: float = 1.0) -> None:
    """start: a tuned file to go on from (a second one-cycle, its peak rates times lr_scale),
    instead of the ImageNet body."""
    from cmt.model.encoders.face import EffNetFace
    from cmt.model.checkpoint import save
    from cmt.training.face_tune import predict, tune

    t0 = time.perf_counter()
    torch.backends.cudnn.benchmark = True
    splits = unpack(folder)
    if limit:  # a smoke test: the first `limit` of each split
        splits = {k: _first(c, limit) for k, c in splits.items()}
    print(f"unpacked fit {len(splits['fit'].labels)}, "
          f"calibration {len(splits['calibration'].labels)} "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    config = FaceTuneConfig()
    model = EffNetFace(config.arch, dropout=config.dropout)
    if start is not None:
        first = torch.load(start, weights_only=False)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in first["state_dict"].items()})
    else:
        state = torch.load(folder / "imagenet-body.pt")
        model.body.load_state_dict({k: v.float() if v.is_floating_point() else v
                                    for k, v in state.items()})
    per_step = step_seconds(model, splits["fit"], config, device)
    model.to(device)
    t1 = time.perf_counter()
    predict(model, splits["calibration"], config)
    per_score = 2 * (time.perf_counter() - t1)  # each epoch reads calibration both ways
    per_epoch = math.ceil(len(splits["fit"].labels) / config.batch_size) * per_step + per_score
    epochs = max(2, min(max_epochs, int(budget / per_epoch)))
    print(f"{per_step * 1e3:.1f} ms a step, {per_epoch:.0f} s an epoch: {epochs} epochs in "
          f"{budget:.0f} s", flush=True)
    config = FaceTuneConfig(epochs=epochs, lr=config.lr * lr_scale,
                            head_lr=config.head_lr * lr_scale)
    out.mkdir(parents=True, exist_ok=True)

    def keep(blob: dict) -> None:
        save(blob, out / "face_tuned.pt")
        print(f"kept epoch {blob['epoch']}", flush=True)

    blob = tune(config, splits["fit"], splits["calibration"], None, model=model, device=device,
                log=lambda line: print(line, flush=True), on_best=keep)
    blob["seconds"] = round(time.perf_counter() - t0, 1)
    if start is not None:
        blob["continued_from"] = {"epoch": first["epoch"], "config": first["config"],
                                  "history": first["history"]}
    keep(blob)
    (out / "history.json").write_text(json.dumps(blob["history"], indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget", type=float, default=400.0, help="seconds of training")
    r.add_argument("--device", default="cuda")
    r.add_argument("--max-epochs", type=int, default=40)
    r.add_argument("--start", type=Path, default=None, help="a tuned file to go on from")
    r.add_argument("--lr-scale", type=float, default=1.0,
                   help="with --start: the peak rates times this")
    r.add_argument("--limit", type=int, default=None,
                   help="a smoke test: the first N crops of each split")
    args = ap.parse_args()
    if args.verb == "pack":
        pack(args.data_dir, args.out)
    else:
        run(args.pack, args.out, args.budget, args.device, args.max_epochs, args.limit, args.start,
            args.lr_scale)


if __name__ == "__main__":
    main()
