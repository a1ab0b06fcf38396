"""Text emotion corpora in their original layouts: MELD and GoEmotions (Ekman grouping).

MELD: `<data_dir>/{train,dev,test}_sent_emo.csv`, one utterance of a Friends dialogue per
row. Each Example carries the earlier utterances of its dialogue as `context` (past turns
only, oldest first) and the dialogue as `group`.

GoEmotions (Ekman): `<data_dir>/{train,dev,test}.tsv` with rows
`text<TAB>label ids, comma-separated<TAB>comment id` and `labels.txt` giving the id order.
About 9 % of rows carry several labels. Those rows are dropped by default
(`multi_label="drop"`), so that every example has one unambiguous label to train and
score against; `multi_label="first"` keeps them under their first listed label.
Either way `meta["labels"]` holds every label of the row.

Both corpora go through `clean_text`, which repairs the mojibake of the original MELD
files (cp1252 bytes such as \\x92 for a quote, or UTF-8 read as cp1252: "â€™") and
folds typographic punctuation to ASCII. The model applies the same cleaning at inference.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cmt.model.encoders.text import clean_text
from cmt.model.labels import CorpusError, CorpusFileMissing, Example, load_label_map

SPLITS = ("train", "dev", "test")
MELD_FILES = {s: f"{s}_sent_emo.csv" for s in SPLITS}
MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
GOEMOTIONS_FILES = {s: f"{s}.tsv" for s in SPLITS}


def _read_text(path: Path) -> str:
    """A file's text: UTF-8 (BOM tolerated), else cp1252, else latin-1."""
    if not path.is_file():
        raise CorpusFileMissing(f"corpus file not found: {path}")
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


# --- MELD -----------------------------------------------------------------------------


def load_meld(data_dir: Path, split: str) -> list[Example]:
    """MELD utterances of one split, in file order, with their dialogue's past turns."""
    path = Path(data_dir) / MELD_FILES[_check_split(split)]
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in MELD_COLUMNS if c not in header]
    if missing:
        raise CorpusError(f"{path}: missing column(s) {missing}; MELD needs {list(MELD_COLUMNS)}")
    reader.fieldnames = header
    label_map = load_label_map("meld")

    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            dia, utt = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
        except (TypeError, ValueError) as e:
            msg = f"{path}, row {line}: Dialogue_ID/Utterance_ID must be integers"
            raise CorpusError(msg) from e
        raw = (row["Emotion"] or "").strip()
        try:
            label = label_map(raw)
        except KeyError as e:
            raise CorpusError(f"{path}, row {line}: unknown emotion {raw!r}") from e
        rows.append((dia, utt, clean_text(row["Utterance"] or ""), label, row))

    by_dialogue: dict[int, list[tuple[int, str]]] = {}
    for dia, utt, text, _, _ in rows:
        by_dialogue.setdefault(dia, []).append((utt, text))
    for turns in by_dialogue.values():
        turns.sort(key=lambda t: t[0])

    out = []
    for dia, utt, text, label, row in rows:
        if label is None:
            continue
        context = tuple(t for u, t in by_dialogue[dia] if u < utt)
        out.append(Example(
            label=label, text=text, group=str(dia), context=context,
            meta={"corpus": "meld", "split": split, "dialogue_id": dia, "utterance_id": utt,
                  "speaker": clean_text(row["Speaker"] or ""),
                  "sentiment": (row.get("Sentiment") or "").strip()},
        ))
    return out


# --- GoEmotions (Ekman) -----------------------------------------------------------------


def load_goemotions(data_dir: Path, split: str, multi_label: str = "drop") -> list[Example]:
    """GoEmotions (Ekman grouping) comments of one split; see the module doc on multi-label."""
    if multi_label not in ("drop", "first"):
        raise ValueError(f"multi_label must be 'drop' or 'first', got {multi_label!r}")
    data_dir = Path(data_dir)
    names = [n.strip() for n in _read_text(data_dir / "labels.txt").splitlines() if n.strip()]
    if not names:
        raise CorpusError(f"{data_dir / 'labels.txt'} is empty; it should list one label a line")
    label_map = load_label_map("goemotions")
    try:
        id_to_emotion = [label_map(n) for n in names]
    except KeyError as e:
        raise CorpusError(f"{data_dir / 'labels.txt'}: {e.args[0]}") from e

    path = data_dir / GOEMOTIONS_FILES[_check_split(split)]
    out = []
    for line, fields in enumerate(csv.reader(io.StringIO(_read_text(path), newline=""),
                                             delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
        if not fields or fields == [""]:
            continue
        if len(fields) < 2:
            raise CorpusError(f"{path}, line {line}: expected text<TAB>label ids<TAB>id, "
                              f"got {len(fields)} column(s)")
        try:
            ids = [int(i) for i in fields[1].split(",") if i.strip()]
            labels = [id_to_emotion[i] for i in ids]
        except (ValueError, IndexError) as e:
            raise CorpusError(f"{path}, line {line}: label ids {fields[1]!r} are not ids into "
                              f"labels.txt ({len(names)} labels)") from e
        if not labels or (len(set(ids)) > 1 and multi_label == "drop"):
            continue
        if labels[0] is None:
            continue
        out.append(Example(
            label=labels[0], text=clean_text(fields[0]), group=None,
            meta={"corpus": "goemotions", "split": split, "labels": tuple(labels),
                  "id": fields[2].strip() if len(fields) > 2 else None},
        ))
    return out


def load_text_corpus(corpus: str, data_dir: Path, split: str) -> list[Example]:
    """Dispatch by corpus name: "meld" or "goemotions"."""
    loaders = {"meld": load_meld, "goemotions": load_goemotions}
    if corpus not in loaders:
        raise ValueError(f"unknown text corpus {corpus!r}; known: {sorted(loaders)}")
    return loaders[corpus](data_dir, split)

