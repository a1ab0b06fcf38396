"""Speech emotion from the Whisper encoder: a small head over pooled encoder features.

The features come from the same encoder pass that gives the transcript
(cmt.model.encoders.speech.SpeechEncoder): every layer's frames are mean+std pooled over the
real (unpadded) frames, the layers are mixed with learned softmax weights (as SUPERB
does), and a two-layer MLP gives logits over EMOTIONS.

    python -m cmt.speech_head train --data-dir ../shared/datasets/ravdess
    python -m cmt.speech_head evaluate --data-dir ../shared/datasets/ravdess

Trained on RAVDESS (CC BY-NC-SA 4.0: the shipped head is for non-commercial use).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cmt.contract import EMOTIONS
from cmt.model.experts import Expert, ExpertConfig, pool
from cmt.training.experts import train_expert

CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "speech_head.pt"
DEV_ACTORS = (17, 18, 19, 20)  # 2 male, 2 female RAVDESS actors held out


@dataclass(frozen=True)
class SpeechHeadConfig(ExpertConfig):
    n_layers: int = 5  # pooled hidden states: embedding + 4 Whisper tiny blocks
    d_model: int = 384  # encoder width


SpeechEmotionHead = Expert  # the speech expert over pooled Whisper layers (cmt.model.experts)


def load_head(path: str | Path = CHECKPOINT, device: str = "cpu") -> SpeechEmotionHead:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no speech head at {path}: run `python -m cmt.speech_head train`")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    head = SpeechEmotionHead(SpeechHeadConfig(**ckpt["config"]))
    head.load_state_dict(ckpt["state_dict"])
    head.meta = ckpt.get("meta", {})
    return head.to(device).eval()


# ---------------------------------------------------------------- features, training


def extract_features(encoder, paths: list[Path], cache_dir: Path | None = None,
                     batch_size: int = 8) -> np.ndarray:
    """Audio files -> (N, L, 2d) float32 pooled encoder features, cached on disk per file."""
    from cmt.model.encoders.speech import load_audio

    known: dict[str, np.ndarray] = {}
    cache = None
    if cache_dir is not None:
        key = hashlib.sha1(f"{encoder.name}|{encoder.pad_multiple_s}|{encoder.min_pad_s}".encode())
        cache = Path(cache_dir) / f"speech-feats-{key.hexdigest()[:12]}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                known = {k: z[k] for k in z.files}
    keys = [str(Path(p).resolve()) for p in paths]
    todo = sorted({k for k in keys if k not in known}, key=lambda k: Path(k).stat().st_size)
    for s in range(0, len(todo), batch_size):
        batch = todo[s:s + batch_size]
        out = encoder.encode_batch([load_audio(k)[0] for k in batch], transcribe=False)
        pooled = pool(out.hidden_states[:-1] + (out.tokens,), out.mask).float().numpy()
        known.update(zip(batch, pooled))
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **known)
        tmp.replace(cache)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def train_head(x: np.ndarray, y: np.ndarray, config: SpeechHeadConfig, epochs: int = 300,
               lr: float = 2e-3, weight_decay: float = 0.05, batch_size: int = 64,
               seed: int = 0) -> SpeechEmotionHead:
    """x: (N, L, 2d) pooled features, y: (N,) class ids -> a trained head (eval mode), with
    class-balanced batches (neutral is calm + neutral)."""
    return train_expert(x, y, config, epochs=epochs, lr=lr, weight_decay=weight_decay,
                        batch_size=batch_size, seed=seed, balanced=True)


def _ravdess_features(data_dir: Path, encoder_name: str | None):
    """All RAVDESS examples and their (N, L, 2d) features (cached under Settings().home)."""
    from cmt.training.datasets.speech import load_ravdess
    from cmt.model.encoders.speech import SpeechEncoder
    from cmt.settings import get_settings

    examples = load_ravdess(data_dir)
    encoder = SpeechEncoder(encoder_name)
    t0 = time.perf_counter()
    x = extract_features(encoder, [e.audio_path for e in examples], get_settings().home / "cache")
    print(f"features {x.shape} in {time.perf_counter() - t0:.1f} s")
    return encoder, examples, x


def _evaluate(head: SpeechEmotionHead, x: np.ndarray, labels: list[str]) -> dict:
    from cmt.training.metrics import scores

    with torch.inference_mode():
        logits, _ = head(torch.from_numpy(x))
    probs = logits.double().softmax(-1).numpy()
    return scores(labels, probs / probs.sum(1, keepdims=True))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m cmt.speech_head", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("train", "evaluate", "crossval"),
                   help="crossval: train/evaluate on 5 folds of 4 held-out actors each")
    p.add_argument("--data-dir", type=Path, required=True, help="RAVDESS root (Actor_XX folders)")
    p.add_argument("--dev-actors", type=int, nargs="+", default=list(DEV_ACTORS))
    p.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    p.add_argument("--encoder", default=None, help="speech encoder name or path (default Whisper tiny.en)")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from cmt.training.datasets.speech import actor_split

    encoder, examples, x = _ravdess_features(args.data_dir, args.encoder)
    index = {id(e): i for i, e in enumerate(examples)}

    def split(dev_actors):
        train, dev = actor_split(examples, dev_actors=dev_actors)
        xtr, xdv = x[[index[id(e)] for e in train]], x[[index[id(e)] for e in dev]]
        return xtr, np.array([EMOTIONS.index(e.label) for e in train]), xdv, [e.label for e in dev]

    config = SpeechHeadConfig(n_layers=x.shape[1], d_model=x.shape[2] // 2)
    if args.command == "crossval":
        accs, f1s = [], []
        for k in range(5):
            actors = sorted({int(e.group) for e in examples})[4 * k: 4 * k + 4]
            xtr, ytr, xdv, ydv = split(actors)
            result = _evaluate(train_head(xtr, ytr, config, epochs=args.epochs, seed=args.seed), xdv, ydv)
            accs.append(result["accuracy"])
            f1s.append(result["macro_f1"])
            print(f"dev actors {actors}: accuracy {accs[-1]:.3f}, macro F1 {f1s[-1]:.3f}")
        print(f"mean over folds: accuracy {np.mean(accs):.3f} (sd {np.std(accs):.3f}), "
              f"macro F1 {np.mean(f1s):.3f} (sd {np.std(f1s):.3f})")
        return
    xtr, ytr, xdv, ydv = split(args.dev_actors)
    if args.command == "train":
        head = train_head(xtr, ytr, config, epochs=args.epochs, seed=args.seed)
        result = _evaluate(head, xdv, ydv)
        meta = {"encoder": encoder.name, "pad_multiple_s": encoder.pad_multiple_s,
                "trained_on": "RAVDESS speech (CC BY-NC-SA 4.0, non-commercial)",
                "dev_actors": args.dev_actors, "epochs": args.epochs, "seed": args.seed,
                "dev_accuracy": result["accuracy"], "dev_macro_f1": result["macro_f1"],
                "layer_weights": head.layer_logits.softmax(0).tolist()}
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in head.state_dict().items()}
        torch.save({"config": asdict(config), "state_dict": state, "meta": meta}, args.checkpoint)
        print(f"saved {args.checkpoint} ({args.checkpoint.stat().st_size / 1024:.0f} KiB)")
    else:
        head = load_head(args.checkpoint)
        result = _evaluate(head, xdv, ydv)
    print(json.dumps({k: result[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", "cross_entropy")}))
    print("per-class F1:", {e: round(v["f1"], 3) for e, v in result["per_class"].items()})

if __name__ == "__main__":
    main()
