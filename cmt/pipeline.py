"""From corpora on disk to cached token features, for every modality.

`examples(corpus, data_dir, split)` reads any supported corpus in its own layout;
`Encoders` holds the frozen encoders; `features(...)` turns examples into a cached
FeatureSet. Training (cmt.train), evaluation (cmt.evaluate) and the front door
(cmt.model) share the per-modality token preparation defined here.
"""

from __future__ import annotations

import logging
from functools import cached_property
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cmt.datasets.labels import Example
from cmt.features import FeatureSet, cache_path, cached, pack
from cmt.settings import Settings

log = logging.getLogger("cmt.pipeline")

MODALITY = {"meld": "text", "goemotions": "text", "facial_expressions": "face",
            "affectnet": "face", "fer2013": "face", "ravdess": "speech", "emodb": "speech", "iemocap": "speech",
            "meld_clips": "speech"}
# where each corpus sits under ../shared/datasets (or a user's datasets folder)
SUBDIR = {"meld": "meld", "goemotions": "goemotions/ekman", "facial_expressions": "facial_expressions",
          "ravdess": "ravdess", "emodb": "emodb", "fer2013": "fer2013", "iemocap": "iemocap", "affectnet": "affectnet",
          "meld_clips": "MELD.Raw"}
SPLITS = ("train", "dev", "test", "all")
SPEECH_POOL = 4  # Whisper frames (50/s) averaged per token: 12.5 tokens/s
# Speech summary tokens: the mean and the standard deviation over real frames of each of the
# encoder's last SPEECH_SUMMARY_LAYERS hidden states (for Whisper tiny: its input embedding
# and four blocks), put before the frame tokens. Emotion lives in the middle layers as much
# as in the last (SUPERB); the standalone speech head (cmt.speech_head) and the speech expert (cmt.experts) read these too.
SPEECH_SUMMARY_LAYERS = 5
# Tokens kept per example, the same in training and in the front door. Text keeps every word
# piece the encoder gives (its max_length, 128): the cached text features were built that way.
MAX_TOKENS = {"text": 128, "face": 64, "speech": 80}
SPLIT_SEED = 0
# corpora whose train and dev parts are split here and together make the whole corpus
HELD_OUT_SPLIT = ("facial_expressions", "ravdess", "emodb")
AUGMENT_VERSION = 1  # bump when cmt.datasets.augment changes: cached augmented features go stale


def examples(corpus: str, data_dir: Path, split: str = "dev", modality: str | None = None) -> list[Example]:
    """A corpus split. MELD (its text, or its raw clips' speech as "meld_clips") and GoEmotions
    have their own files (train, dev, test); FER2013 has train and val (dev and test: val).
    The corpora Attune trains on without official splits get a held-out one, used for dev and
    test: by identity (facial_expressions), by actor (RAVDESS, EmoDB: 2 of its 10 speakers).
    Corpora it never trains on (IEMOCAP, a label folder) are read whole; "all" reads
    everything (the whole corpus, to score a model that was not trained on it)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    data_dir = Path(data_dir)
    if corpus in ("meld", "goemotions"):
        from cmt.datasets.text import load_text_corpus

        return load_text_corpus(corpus, data_dir, "dev" if split == "all" else split)
    if corpus == "meld_clips":  # MELD.Raw's clips, heard: the speech of its own splits
        from cmt.datasets.speech import load_meld_clips

        return load_meld_clips(data_dir, "dev" if split == "all" else split)
    if corpus == "folder":
        from cmt.datasets.folder import load_folder

        if modality not in ("image", "audio"):
            raise ValueError("the folder layout needs a modality: image or audio")
        return load_folder(data_dir, modality)
    if corpus == "facial_expressions":
        from cmt.datasets.face import identity_split, load_facial_expressions

        items = load_facial_expressions(data_dir)
        return _split(items, split, lambda xs: identity_split(xs, dev_fraction=0.2, seed=SPLIT_SEED))
    if corpus == "fer2013":
        from cmt.datasets.face import load_fer2013

        if split == "all":
            return load_fer2013(data_dir, "train") + load_fer2013(data_dir, "val")
        return load_fer2013(data_dir, "train" if split == "train" else "val")
    if corpus == "affectnet":
        from cmt.datasets.face import load_affectnet

        return load_affectnet(data_dir, "val_set" if split in ("dev", "test") else "train_set")
    if corpus in ("ravdess", "emodb", "iemocap"):
        from cmt.datasets import speech

        items = getattr(speech, f"load_{corpus}")(data_dir)
        if corpus == "ravdess":  # trained on: its held-out actors are dev (and test)
            return _split(items, split, speech.actor_split)
        if corpus == "emodb":  # trained on: its held-out speakers are dev (and test)
            return _split(items, split, _group_split)
        return _split(items, split, _group_split) if split == "train" else items  # unseen: whole
    raise ValueError(f"unknown corpus {corpus!r}; known: {sorted(MODALITY) + ['folder']}")


def _split(items, split, splitter):
    if split == "all":
        return items
    train, dev = splitter(items)
    return train if split == "train" else dev  # "test": corpora here have no test set of their own


def _group_split(items: list[Example], dev_fraction: float = 0.2) -> tuple[list, list]:
    groups = sorted({e.group or "" for e in items})
    rng = np.random.default_rng(SPLIT_SEED)
    dev_groups = set(rng.choice(groups, max(1, int(len(groups) * dev_fraction)), replace=False))
    return ([e for e in items if e.group not in dev_groups], [e for e in items if e.group in dev_groups])


def pool_time(tokens: torch.Tensor, mask: torch.Tensor, factor: int = SPEECH_POOL):
    """Average every `factor` frames: tokens (B,T,d), mask (B,T) -> (B,T/factor,d), mask."""
    B, T, d = tokens.shape
    pad = (-T) % factor
    m = torch.nn.functional.pad(mask, (0, pad)).view(B, -1, factor).to(tokens.dtype)  # (B,T',f)
    x = torch.nn.functional.pad(tokens, (0, 0, 0, pad)).view(B, -1, factor, d)
    summed = (x * m.unsqueeze(-1)).sum(2)
    count = m.sum(2)
    return summed / count.clamp(min=1).unsqueeze(-1), count > 0


def layer_summary(hidden_states, last: torch.Tensor, mask: torch.Tensor,
                  layers: int = SPEECH_SUMMARY_LAYERS) -> torch.Tensor:
    """Per hidden state (B,T,d), the final output `last` (B,T,d), frames mask (B,T) ->
    (B, 2*layers, d): the mean and the std over real frames of the last `layers` states
    (the final one after the encoder's closing layer norm), as the speech head pools them."""
    from cmt.experts import pool

    states = list(hidden_states[:-1])[-(layers - 1):] + [last]
    pooled = pool(states, mask)  # (B, layers, 2d): [mean, std] per state
    B, L, d2 = pooled.shape
    return pooled.reshape(B, 2 * L, d2 // 2)  # mean, std, mean, std, ... as tokens


class Encoders:
    """The frozen encoders, each loaded on first use."""

    def __init__(self, names: dict[str, str | None] | None = None, device: str = "cpu", *,
                 speech_summary: bool = False, speech_loudness: float | None = None):
        self.names = {"text": Settings().text_encoder, "face": None, "speech": None, **(names or {})}
        self.device = device
        self.speech_summary = speech_summary  # layer-summary tokens before the speech frames
        # dBFS every clip is brought to before the speech encoder (None: as recorded)
        self.speech_loudness = speech_loudness

    @cached_property
    def text(self):
        from cmt.encoders.text import TextEncoder

        return TextEncoder(self.names["text"], device=self.device)

    @cached_property
    def face(self):
        from cmt.encoders.face import FaceEncoder

        return FaceEncoder(self.names["face"], device=self.device)

    @cached_property
    def speech(self):
        from cmt.encoders.speech import SpeechEncoder

        return SpeechEncoder(self.names["speech"], device=self.device)

    def key(self, modality: str) -> str:
        key = str(self.names[modality] or f"default-{modality}")
        if modality == "text":  # a tuned encoder's name stays; its weights may change
            from cmt.encoders.text import fingerprint

            key = fingerprint(key)
        if modality == "face":  # a tuned encoder's weights, and the crops the detector gives
            from cmt.encoders.face import CASCADE_WINDOW, MIN_FACE_FRACTION, face_fingerprint

            key = face_fingerprint(self.names["face"]) or key
            key += f"@haar-{MIN_FACE_FRACTION}-{CASCADE_WINDOW}"
        if modality == "speech" and self.speech_summary:
            key += f"+summary{SPEECH_SUMMARY_LAYERS}"
        if modality == "speech" and self.speech_loudness is not None:
            key += f"+loud{self.speech_loudness:g}"
        return key

    # -- per-modality tokens, the same for training and for the front door
    def text_tokens(self, texts: list[str]):
        return self.text.tokens(texts)  # (B,T,d), (B,T)

    def face_tokens(self, crops: list[np.ndarray]):
        enc = self.face.encode(crops)
        return enc.tokens, enc.mask

    def speech_tokens(self, clips: list[np.ndarray], transcribe: bool = False):
        if self.speech_loudness is not None:
            from cmt.encoders.speech import normalise_loudness

            clips = [normalise_loudness(c, self.speech_loudness) for c in clips]
        out = self.speech.encode_batch(clips, transcribe=transcribe)
        tokens, mask = pool_time(out.tokens, out.mask)  # (B,T',d), (B,T')
        if self.speech_summary and out.hidden_states:
            summary = layer_summary(out.hidden_states, out.tokens, out.mask)  # (B,2L,d)
            tokens = torch.cat([summary, tokens], 1)
            mask = torch.cat([torch.ones(summary.shape[:2], dtype=torch.bool, device=mask.device), mask], 1)
        return tokens, mask, out.transcripts


def face_crop(encoders: Encoders, rgb: np.ndarray, is_crop: bool = False) -> np.ndarray:
    """The detected face, or the whole image when no face is found (corpus photos are framed)
    or when the image is already a face crop (FER2013's 48x48 faces: no detection)."""
    if is_crop:
        return rgb
    crop, _box = encoders.face.crop(rgb)
    return rgb if crop is None else crop


def _extract(modality: str, items: list[Example], enc: Encoders, batch_size: int):
    """Encoder tokens for items in batches; unreadable files are skipped (and logged).

    Returns (chunks [(tokens, mask)], the items kept)."""
    chunks, kept = [], []
    for s in range(0, len(items), batch_size):
        part = items[s:s + batch_size]
        if modality == "text":
            chunks.append(enc.text_tokens([e.text or "" for e in part]))
            kept += part
            continue
        inputs, ok = [], []
        for e in part:
            try:
                inputs.append(_read_media(modality, e, enc))
                ok.append(e)
            except ValueError as err:  # ImageError, AudioError: a bad file, not a bad run
                log.warning("skipping %s: %s", e.image_path or e.audio_path, err)
        if not inputs:
            continue
        if modality == "face":
            chunks.append(enc.face_tokens(inputs))
        else:
            tokens, mask, _ = enc.speech_tokens(inputs)
            chunks.append((tokens, mask))
        kept += ok
    return chunks, kept


def _read_media(modality: str, e: Example, enc: Encoders):
    if modality == "face":
        from cmt.encoders.face import decode_image

        return face_crop(enc, decode_image(Path(e.image_path).read_bytes()), e.meta.get("crop", False))
    from cmt.encoders.speech import load_audio

    clip = load_audio(e.audio_path)[0]
    if e.meta.get("augment_seed") is not None:
        from cmt.datasets.augment import augment_clip

        clip = augment_clip(clip, seed=e.meta["augment_seed"])
    return clip


def augmented(items: list[Example], copies: int) -> list[Example]:
    """`copies` augmented versions of each speech example (cmt.datasets.augment), each with its
    own seed, derived from the file's name so that a cache can be rebuilt identically."""
    import zlib

    return [replace(e, meta={**e.meta, "augment_seed": zlib.crc32(f"{Path(e.audio_path).name}:{k}".encode())})
            for k in range(copies) for e in items]


def limited(items: list[Example], limit: int, seed: int = SPLIT_SEED) -> list[Example]:
    """At most `limit` examples, drawn at random within each label in proportion to its count
    (a large corpus cut to a CPU's budget keeps its label mix), in their original order."""
    if len(items) <= limit:
        return items
    rng = np.random.default_rng(seed)
    labels = np.array([e.label for e in items])
    keep = []
    for y in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == y)
        keep += rng.choice(idx, max(1, round(limit * len(idx) / len(items))), replace=False).tolist()
    return [items[i] for i in sorted(keep)]


def features(corpus: str, data_dir: Path, split: str, enc: Encoders, *,
             home: Path | None = None, modality: str | None = None, augment: int = 0,
             limit: int | None = None) -> FeatureSet:
    """Cached token features of one corpus split; with augment=k (speech), of k augmented
    copies of each of its clips instead (AUGMENT_VERSION names the recipe in the cache key);
    with limit, of at most that many of its examples (limited())."""
    if split == "all" and corpus in HELD_OUT_SPLIT and not (augment or limit):
        # the whole corpus is its two parts: their caches serve, nothing is encoded twice
        parts = [features(corpus, data_dir, s, enc, home=home) for s in ("train", "dev")]
        return FeatureSet.concat(parts)
    items = examples(corpus, data_dir, split, modality=modality)  # refuses unknown corpora
    if limit:
        items = limited(items, limit)
    mod = MODALITY.get(corpus) or {"image": "face", "audio": "speech"}[modality]
    if not items:
        raise ValueError(f"{corpus} {split} at {data_dir}: no examples")
    if augment:
        if mod != "speech":
            raise ValueError(f"augmentation is for speech corpora, not {corpus} ({mod})")
        items = augmented(items, augment)
        split = f"{split}+aug{augment}-v{AUGMENT_VERSION}"
    if mod == "text":  # one cache for text features, shared with the text head
        from cmt.text_head import cached_features

        f = cached_features(enc.text, corpus, split, items)
        return FeatureSet("text", f.tokens, f.lengths, f.labels, [e.group or "" for e in items],
                          {"corpus": corpus, "split": split, "encoder": enc.text.fingerprint})
    ident = f"{len(items)}:{items[0]}:{items[-1]}"
    path = cache_path(home or Settings().home, mod, corpus, split, enc.key(mod), str(Path(data_dir).resolve()), ident)
    batch = {"text": 64, "face": 64, "speech": 8}[mod]

    def build() -> FeatureSet:
        log.info("encoding %d %s examples of %s/%s", len(items), mod, corpus, split)
        chunks, kept = _extract(mod, items, enc, batch)
        return pack(mod, chunks, [e.label for e in kept], [e.group or "" for e in kept],
                    MAX_TOKENS[mod], meta={"corpus": corpus, "split": split, "encoder": enc.key(mod)})

    return cached(path, build)
