"""The corpora registry and splits, and from corpora on disk to cached token features.

`examples(corpus, data_dir, split)` reads any supported corpus in its own layout;
`features(...)` turns examples into a cached FeatureSet through the frozen encoders
(cmt.model.tokens.Encoders, the same token preparation the served model runs).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from cmt.model.labels import Example
from cmt.model.tokens import MAX_TOKENS, Encoders, face_crop
from cmt.settings import Settings
from cmt.training.features import FeatureSet, cache_path, cached, pack

log = logging.getLogger("cmt.training.corpora")

MODALITY = {"meld": "text", "goemotions": "text", "facial_expressions": "face",
            "affectnet": "face", "fer2013": "face", "ravdess": "speech", "emodb": "speech", "iemocap": "speech",
            "meld_clips": "speech"}
# where each corpus sits under ../shared/datasets (or a user's datasets folder)
SUBDIR = {"meld": "meld", "goemotions": "goemotions/ekman", "facial_expressions": "facial_expressions",
          "ravdess": "ravdess", "emodb": "emodb", "fer2013": "fer2013", "iemocap": "iemocap", "affectnet": "affectnet",
          "meld_clips": "MELD.Raw"}
SPLITS = ("train", "dev", "test", "all")
SPLIT_SEED = 0
# corpora whose train and dev parts are split here and together make the whole corpus
HELD_OUT_SPLIT = ("facial_expressions", "ravdess", "emodb")
AUGMENT_VERSION = 1  # bump when cmt.training.datasets.augment changes: cached augmented features go stale


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
        from cmt.training.datasets.text import load_text_corpus

        return load_text_corpus(corpus, data_dir, "dev" if split == "all" else split)
    if corpus == "meld_clips":  # MELD.Raw's clips, heard: the speech of its own splits
        from cmt.training.datasets.speech import load_meld_clips

        return load_meld_clips(data_dir, "dev" if split == "all" else split)
    if corpus == "folder":
        from cmt.training.datasets.folder import load_folder

        if modality not in ("image", "audio"):
            raise ValueError("the folder layout needs a modality: image or audio")
        return load_folder(data_dir, modality)
    if corpus == "facial_expressions":
        from cmt.training.datasets.face import identity_split, load_facial_expressions

        items = load_facial_expressions(data_dir)
        return _split(items, split, lambda xs: identity_split(xs, dev_fraction=0.2, seed=SPLIT_SEED))
    if corpus == "fer2013":
        from cmt.training.datasets.face import load_fer2013

        if split == "all":
            return load_fer2013(data_dir, "train") + load_fer2013(data_dir, "val")
        return load_fer2013(data_dir, "train" if split == "train" else "val")
    if corpus == "affectnet":
        from cmt.training.datasets.face import load_affectnet

        return load_affectnet(data_dir, "val_set" if split in ("dev", "test") else "train_set")
    if corpus in ("ravdess", "emodb", "iemocap"):
        from cmt.training.datasets import speech

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


def calibration_mask(groups: list[str], fraction: float, seed: int = 0) -> list[bool]:
    """Which examples the calibration split holds: a `fraction` of the groups, drawn by seed
    (or of the examples, when there is only one group)."""
    groups = groups if len(set(groups)) > 1 else [str(i) for i in range(len(groups))]
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(names, max(1, round(len(names) * fraction)), replace=False).tolist())
    return [g in held for g in groups]


def _extract(modality: str, items: list[Example], enc: Encoders, batch_size: int):
    """Encoder tokens for items in batches; unreadable files are skipped (and logged).

    Returns (chunks [(tokens, mask)], the items kept)."""
    if modality == "text":
        return _text_chunks(items, enc, batch_size), list(items)
    chunks, kept = [], []
    for s in range(0, len(items), batch_size):
        part = items[s:s + batch_size]
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


def _text_chunks(items: list[Example], enc: Encoders, batch_size: int):
    """Text tokens in batches of texts of similar length (less padding), given back one
    example a chunk in the items' order."""
    texts = [e.text or "" for e in items]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rows: list = [None] * len(texts)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        tokens, mask = enc.text_tokens([texts[i] for i in idx])  # (b, T, d), (b, T)
        for r, i in enumerate(idx):
            rows[i] = (tokens[r:r + 1], mask[r:r + 1])
    return rows


def _read_media(modality: str, e: Example, enc: Encoders):
    if modality == "face":
        from cmt.model.encoders.face import decode_image

        return face_crop(enc, decode_image(Path(e.image_path).read_bytes()), e.meta.get("crop", False))
    from cmt.model.encoders.speech import load_audio

    clip = load_audio(e.audio_path)[0]
    if e.meta.get("augment_seed") is not None:
        from cmt.training.datasets.augment import augment_clip

        clip = augment_clip(clip, seed=e.meta["augment_seed"])
    return clip


def augmented(items: list[Example], copies: int) -> list[Example]:
    """`copies` augmented versions of each speech example (cmt.training.datasets.augment), each with its
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
    ident = f"{len(items)}:{items[0]}:{items[-1]}"
    if mod == "text":  # every text, not only the ends: a corpus file edited in place
        ident += ":" + hashlib.sha1("\x00".join(e.text or "" for e in items).encode()).hexdigest()
    path = cache_path(home or Settings().home, mod, corpus, split, enc.key(mod), str(Path(data_dir).resolve()), ident)
    batch = {"text": 64, "face": 64, "speech": 8}[mod]

    def build() -> FeatureSet:
        log.info("encoding %d %s examples of %s/%s", len(items), mod, corpus, split)
        chunks, kept = _extract(mod, items, enc, batch)
        return pack(mod, chunks, [e.label for e in kept], [e.group or "" for e in kept],
                    MAX_TOKENS[mod], meta={"corpus": corpus, "split": split, "encoder": enc.key(mod)})

    return cached(path, build)
