"""A small expression head on the frozen FER CNN's features, and its evaluation.

    python -m cmt.face_head train --data-dir ../shared/datasets/facial_expressions
    python -m cmt.face_head evaluate --data-dir ../shared/datasets/facial_expressions

Both split the corpus by identity (cmt.training.datasets.face.identity_split) and read cached
features (one pass of detector + CNN per image, kept under Settings().home/cache/face).
`train` fits the head on the train part and saves cmt/checkpoints/face_head.pt;
`evaluate` scores the CNN zero-shot and the head on the held-out identities.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import typer
from torch import nn

from cmt.contract import EMOTIONS

HEAD_PATH = Path(__file__).resolve().parent / "checkpoints" / "face_head.pt"

app = typer.Typer(add_completion=False, help=__doc__)


@dataclass(frozen=True)
class FaceHeadConfig:
    n_in: int = 512 + 7  # CNN hidden (256) + mean of its tokens (256) + its FER scores (7)
    n_hidden: int = 128
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.3


class FaceHead(nn.Module):
    def __init__(self, config: FaceHeadConfig):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.n_in))
        self.register_buffer("std", torch.ones(config.n_in))
        self.hidden = nn.Linear(config.n_in, config.n_hidden)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.n_hidden, config.n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None,
                class_weights: torch.Tensor | None = None):
        """x: (B, n_in) features -> logits (B, n_classes); loss if targets (B,) given."""
        x = (x - self.mean) / self.std
        logits = self.out(self.drop(F.gelu(self.hidden(x))))  # (B, n_classes)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, weight=class_weights)
        return logits, loss

    @torch.inference_mode()
    def probs(self, features: np.ndarray) -> np.ndarray:
        """(B, n_in) -> (B, 7) over EMOTIONS."""
        was = self.training
        self.eval()
        logits, _ = self(torch.as_tensor(features, dtype=torch.float32))
        self.train(was)
        return logits.softmax(-1).double().numpy()


def load_head(path: str | Path = HEAD_PATH) -> FaceHead:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    head = FaceHead(FaceHeadConfig(**blob["config"]))
    head.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return head.eval()


def head_features(encoding) -> np.ndarray:
    """A FaceEncoding from the CNN -> (B, 519) head inputs: hidden, mean token, FER scores."""
    pooled = encoding.pooled.cpu().numpy()  # (B, 256)
    mean_token = encoding.tokens.mean(1).cpu().numpy()  # (B, 256)
    logits = encoding.logits.cpu().numpy()  # (B, 7) FER2013 order, before any softmax
    return np.concatenate([pooled, mean_token, logits], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------
# Cached features of a corpus


def _cache_dir() -> Path:
    from cmt.settings import get_settings

    return get_settings().home / "cache" / "face"


def _digest(paths: list[Path]) -> str:
    return hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]


def corpus_boxes(paths: list[Path], log_every: int = 500) -> dict[str, np.ndarray]:
    """The detector over every image once (the slow part), cached: boxes (N, 4), -1 = no
    face found, -2 = the file is not a readable JPEG/PNG (it is then left out)."""
    from cmt.model.encoders.face import ImageError, decode_image, detect_face

    cache = _cache_dir() / f"haar-boxes-{_digest(paths)}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    boxes = np.full((len(paths), 4), -1, dtype=np.int32)
    seconds = 0.0
    for i, path in enumerate(paths):
        try:
            rgb = decode_image(Path(path).read_bytes())
        except ImageError as e:
            typer.echo(f"skipping {path}: {e}", err=True)
            boxes[i] = -2
            continue
        t0 = time.perf_counter()
        box = detect_face(rgb)
        seconds += time.perf_counter() - t0
        if box is not None:
            boxes[i] = box
        if log_every and (i + 1) % log_every == 0:
            typer.echo(f"detected faces in {i + 1}/{len(paths)} images", err=True)
    out = {"boxes": boxes, "ms_detect": np.array(1000 * seconds / max(len(paths), 1))}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def corpus_features(examples, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Detector + CNN over every example once (and its mirror image); cached to disk.

    A frame where no face is found is read whole (these corpora are face photos), and
    `detected` records which ones had a face; `readable` is False for files that are not
    JPEG/PNG images (their feature rows are zeros: leave them out).
    """
    from cmt.model.encoders.face import FaceEncoder, decode_image

    paths = [ex.image_path for ex in examples]
    cache = _cache_dir() / f"fer-cnn-{_digest(paths)}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    found = corpus_boxes(paths)
    readable = found["boxes"][:, 0] != -2
    encoder = FaceEncoder()
    feats, feats_flip = [], []
    seconds = 0.0
    for start in range(0, len(paths), batch_size):
        crops = []
        for path, (x, y, w, h) in zip(paths[start:start + batch_size],
                                      found["boxes"][start:start + batch_size]):
            if x == -2:
                crops.append(np.zeros((48, 48, 3), dtype=np.uint8))  # placeholder, left out
                continue
            rgb = decode_image(Path(path).read_bytes())
            crops.append(rgb if w < 0 else rgb[y:y + h, x:x + w])
        t0 = time.perf_counter()
        enc = encoder.encode(crops)
        seconds += time.perf_counter() - t0
        feats.append(head_features(enc))
        feats_flip.append(head_features(encoder.encode([c[:, ::-1].copy() for c in crops])))
    feats, feats_flip = np.concatenate(feats), np.concatenate(feats_flip)
    feats[~readable] = feats_flip[~readable] = 0.0
    out = {"features": feats, "features_flip": feats_flip,
           "detected": found["boxes"][:, 2] >= 0, "readable": readable,
           "ms_detect": found["ms_detect"],
           "ms_encode": np.array(1000 * seconds / len(paths))}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def zero_shot_probs(features: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """The FER CNN's own reading from cached head features: (N, 519) -> (N, 7) over EMOTIONS."""
    from cmt.model.encoders.face import FER2013_LABELS, FER_TEMPERATURE, probs_onto_emotions

    logits = torch.as_tensor(features[:, -len(FER2013_LABELS):], dtype=torch.float64)
    t = FER_TEMPERATURE if temperature is None else temperature
    return probs_onto_emotions((logits / t).softmax(-1).numpy(), FER2013_LABELS)


def fit_temperature(features: np.ndarray, labels: list[str]) -> float:
    """The softmax temperature (grid over 1..100) that minimises the zero-shot cross-entropy."""
    y = np.array([EMOTIONS.index(lab) for lab in labels])
    best = (np.inf, 1.0)
    for t in np.geomspace(1.0, 100.0, 61):
        p = zero_shot_probs(features, float(t))[np.arange(len(y)), y]
        best = min(best, (float(-np.log(np.clip(p, 1e-7, 1)).mean()), float(t)))
    return best[1]


def _split(data_dir: str, dev_fraction: float, seed: int):
    from cmt.training.datasets.face import identity_split, load_facial_expressions

    examples = load_facial_expressions(data_dir)
    train, dev = identity_split(examples, dev_fraction=dev_fraction, seed=seed)
    feats = corpus_features(examples)
    index = {id(ex): i for i, ex in enumerate(examples)}
    ok = feats["readable"]
    return (feats, [index[id(ex)] for ex in train if ok[index[id(ex)]]],
            [index[id(ex)] for ex in dev if ok[index[id(ex)]]], examples)


def class_weights(labels: torch.Tensor, n_classes: int = len(EMOTIONS)) -> torch.Tensor:
    """Inverse frequency, square-rooted, mean 1 over the classes present; absent classes 0."""
    counts = torch.bincount(labels, minlength=n_classes).float()
    w = torch.where(counts > 0, (counts.sum() / counts.clamp_min(1)).sqrt(), 0.0)
    return w / w[counts > 0].mean()


def fit_head(x: np.ndarray, y: np.ndarray, config: FaceHeadConfig = FaceHeadConfig(),
             epochs: int = 60, lr: float = 3e-3, weight_decay: float = 1e-2,
             seed: int = 0) -> FaceHead:
    """Full-batch AdamW on (N, n_in) features and (N,) class indices, classes weighted
    by inverse frequency (square-rooted) so the rare emotions count."""
    torch.manual_seed(seed)
    head = FaceHead(config)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    head.mean.copy_(xt.mean(0))
    head.std.copy_(xt.std(0).clamp_min(1e-4))
    weights = class_weights(yt, config.n_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()
    for _ in range(epochs):
        _, loss = head(xt, yt, class_weights=weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def _summary(name: str, s: dict) -> str:
    return (f"{name}: n={s['n']} macro_f1={s['macro_f1']:.3f} weighted_f1={s['weighted_f1']:.3f} "
            f"accuracy={s['accuracy']:.3f}")


@app.command()
def train(data_dir: str = typer.Option(..., help="facial_expressions corpus directory"),
          out: Path = typer.Option(HEAD_PATH, help="where to save the head"),
          dev_fraction: float = 0.2, seed: int = 0, epochs: int = 60) -> None:
    """Fit the head on the identity-split train part (mirror images included)."""
    feats, train_idx, _, examples = _split(data_dir, dev_fraction, seed)
    y = np.array([EMOTIONS.index(examples[i].label) for i in train_idx])
    x = np.concatenate([feats["features"][train_idx], feats["features_flip"][train_idx]])
    head = fit_head(x, np.concatenate([y, y]), epochs=epochs, seed=seed)
    temperature = fit_temperature(feats["features"][train_idx],
                                  [examples[i].label for i in train_idx])
    typer.echo(f"zero-shot temperature fitted on train: {temperature:.2f} "
               "(cmt.model.encoders.face.FER_TEMPERATURE)")
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in head.state_dict().items()}
    torch.save({"config": asdict(head.config), "state_dict": state,
                "trained_on": f"facial_expressions identity split (dev_fraction={dev_fraction}, "
                              f"seed={seed}), {len(train_idx)} train images + mirrors"}, out)
    typer.echo(f"saved {out} ({out.stat().st_size / 1024:.0f} KiB), trained on {len(train_idx)}")


@app.command()
def evaluate(data_dir: str = typer.Option(..., help="facial_expressions corpus directory"),
             head_path: Path = typer.Option(HEAD_PATH, help="the trained head"),
             dev_fraction: float = 0.2, seed: int = 0,
             report: Path | None = typer.Option(None, help="also write the scores as JSON"),
             ) -> None:
    """Score the CNN zero-shot and the head on the held-out identities."""
    from cmt.training.metrics import scores

    feats, _, dev_idx, examples = _split(data_dir, dev_fraction, seed)
    y = [examples[i].label for i in dev_idx]
    zero = scores(y, zero_shot_probs(feats["features"][dev_idx]))
    head = load_head(head_path)
    x, x_flip = feats["features"][dev_idx], feats["features_flip"][dev_idx]
    p = (head.probs(x) + head.probs(x_flip)) / 2  # the face and its mirror image
    tuned = scores(y, p)
    readable = feats["readable"]
    detected = float(feats["detected"][readable].mean())
    ms = float(feats["ms_detect"] + feats["ms_encode"])
    n_ids = len({examples[i].group for i in dev_idx})
    typer.echo(f"dev: {len(dev_idx)} images, {n_ids} identities")
    typer.echo(f"faces detected: {detected:.3f} of {int(readable.sum())} readable images "
               f"({len(examples) - int(readable.sum())} unreadable left out)")
    typer.echo(f"ms per face: detect {float(feats['ms_detect']):.1f} + encode "
               f"{float(feats['ms_encode']):.2f} (batched) = {ms:.1f}")
    typer.echo(_summary("zero-shot FER CNN", zero))
    typer.echo(_summary("head on CNN features", tuned))
    for name, s in (("zero-shot", zero), ("head", tuned)):
        typer.echo(f"  {name} per-class F1: " + " ".join(
            f"{e}={s['per_class'][e]['f1']:.2f}" for e in EMOTIONS))
    if report is not None:
        report.write_text(json.dumps({"zero_shot": zero, "head": tuned, "detected": detected,
                                      "ms_per_face": ms}, indent=2))


if __name__ == "__main__":
    app()
