"""Speech-emotion corpora in their own layouts: RAVDESS, EmoDB, IEMOCAP and MELD (raw clips).

Each loader returns a list of `Example` with `audio_path`, `label` (one of EMOTIONS, via
data/labels/<corpus>.yaml) and `group` (the speaker, for held-out-speaker splits).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from cmt.contract import EMOTIONS
from cmt.model.labels import CorpusFileMissing, Example, load_label_map

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")

EMODB_EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                  "T": "sadness", "N": "neutral"}
EMODB_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")

IEMOCAP_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\S+)\s+(\w+)\s+\[")
IEMOCAP_TRANSCRIPT = re.compile(r"^(Ses\S+)\s+\[[^\]]*\]:\s*(.*)$")

# MELD.Raw: where each split's clips and CSV live
MELD_CLIP_DIRS = {"train": ("train_splits", "train/train_splits"),
                  "dev": ("dev_splits_complete", "dev/dev_splits_complete", "dev_splits"),
                  "test": ("output_repeated_splits_test", "test/output_repeated_splits_test")}
MELD_CLIP_NAME = re.compile(r"^dia(\d+)_utt(\d+)$")


def _require_dir(data_dir: str | Path, corpus: str) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CorpusFileMissing(f"{corpus}: no folder at {data_dir}")
    return data_dir


def _audio_files(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load_ravdess(data_dir: str | Path, include_song: bool = False) -> list[Example]:
    """RAVDESS audio: Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,flac}; group = actor ("01".."24").

    MM modality (03 audio-only), VV vocal channel (01 speech, 02 song), EE emotion,
    II intensity, SS statement, RR repetition, AA actor (odd male, even female).
    """
    data_dir = _require_dir(data_dir, "RAVDESS")
    labels = load_label_map("ravdess")
    out = []
    for path in _audio_files(data_dir):
        m = RAVDESS_NAME.match(path.stem)
        if m is None:
            continue
        _modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
        if channel == "02" and not include_song:
            continue
        raw = RAVDESS_EMOTIONS.get(emotion)
        label = labels(raw) if raw else None
        if label is None:
            continue
        out.append(Example(label=label, audio_path=path, group=actor,
                           meta={"raw_label": raw, "intensity": int(intensity),
                                 "statement": int(statement), "repetition": int(repetition),
                                 "sex": "male" if int(actor) % 2 else "female",
                                 "song": channel == "02"}))
    if not out:
        raise CorpusFileMissing(f"RAVDESS: no Actor_XX/03-01-EE-II-SS-RR-AA audio under {data_dir}")
    return out


def load_emodb(data_dir: str | Path) -> list[Example]:
    """Berlin EmoDB: wav/SSTTTEV.wav (e.g. 03a01Fa.wav); group = speaker ("03", "08", ...)."""
    data_dir = _require_dir(data_dir, "EmoDB")
    labels = load_label_map("emodb")
    out = []
    for path in _audio_files(data_dir):
        m = EMODB_NAME.match(path.stem)
        if m is None:
            continue
        speaker, text_id, letter, version = m.groups()
        raw = EMODB_EMOTIONS[letter]
        label = labels(raw)
        if label is None:
            continue
        out.append(Example(label=label, audio_path=path, group=speaker,
                           meta={"raw_label": raw, "text_id": text_id, "version": version}))
    if not out:
        raise CorpusFileMissing(f"EmoDB: no files named like 03a01Fa.wav under {data_dir}")
    return out


def load_iemocap(data_dir: str | Path, sessions: Iterable[int] = (1, 2, 3, 4, 5)) -> list[Example]:
    """IEMOCAP: SessionN/dialog/EmoEvaluation/*.txt + SessionN/sentences/wav/<dialog>/<utt>.wav.

    group = speaker (e.g. "Ses01F": session and the speaker's sex); text from
    dialog/transcriptions when present.
    """
    data_dir = _require_dir(data_dir, "IEMOCAP")
    labels = load_label_map("iemocap")
    out = []
    for n in sessions:
        session = data_dir / f"Session{n}"
        if not session.is_dir():
            continue
        texts: dict[str, str] = {}
        for tfile in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in tfile.read_text(errors="replace").splitlines():
                m = IEMOCAP_TRANSCRIPT.match(line.strip())
                if m:
                    texts[m.group(1)] = m.group(2).strip()
        for efile in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            for line in efile.read_text(errors="replace").splitlines():
                m = IEMOCAP_LINE.match(line.strip())
                if m is None:
                    continue
                start, end, utt, raw = m.groups()
                label = labels(raw)
                if label is None:
                    continue
                dialog = utt.rsplit("_", 1)[0]
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    continue
                speaker = utt[:5] + utt.rsplit("_", 1)[1][0]  # Ses01 + F/M of the speaker
                out.append(Example(label=label, audio_path=wav, text=texts.get(utt), group=speaker,
                                   meta={"raw_label": raw, "dialog": dialog,
                                         "start_s": float(start), "end_s": float(end)}))
    if not out:
        raise CorpusFileMissing(f"IEMOCAP: no labelled utterances with audio under {data_dir} "
                                "(SessionN/dialog/EmoEvaluation, SessionN/sentences/wav)")
    return out


def _meld_csv(data_dir: Path, split: str) -> Path:
    names = {"train": ("train_sent_emo.csv",), "dev": ("dev_sent_emo.csv",),
             "test": ("test_sent_emo.csv",)}[split]
    for name in names:
        for cand in (data_dir / name, data_dir / split / name):
            if cand.is_file():
                return cand
    raise CorpusFileMissing(f"MELD: no {names[0]} in {data_dir} or {data_dir / split}")


def load_meld_clips(data_dir: str | Path, split: str = "train") -> list[Example]:
    """MELD.Raw: <split clips>/dia{D}_utt{U}.mp4 + {split}_sent_emo.csv; only rows whose clip exists.

    audio_path is the .mp4 (cmt.model.encoders.speech.load_audio reads it through PyAV);
    text is the utterance; group = "dia{D}"; context = the dialogue's earlier utterances.
    """
    if split not in MELD_CLIP_DIRS:
        raise ValueError(f"MELD split must be one of {tuple(MELD_CLIP_DIRS)}, got {split!r}")
    data_dir = _require_dir(data_dir, "MELD")
    clips: dict[tuple[int, int], Path] = {}
    for sub in MELD_CLIP_DIRS[split]:
        folder = data_dir / sub
        if folder.is_dir():
            for p in folder.iterdir():
                m = MELD_CLIP_NAME.match(p.stem)
                if m and p.suffix.lower() in (".mp4", ".wav", ".flac") and not p.name.startswith("."):
                    clips.setdefault((int(m.group(1)), int(m.group(2))), p)
    if not clips:
        raise CorpusFileMissing(f"MELD: no dia*_utt*.mp4 clips for {split!r} under {data_dir} "
                                f"(looked in {', '.join(MELD_CLIP_DIRS[split])})")
    with _meld_csv(data_dir, split).open(newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: (int(r["Dialogue_ID"]), int(r["Utterance_ID"])))
    out, history, last_dia = [], [], None
    for r in rows:
        dia, utt = int(r["Dialogue_ID"]), int(r["Utterance_ID"])
        if dia != last_dia:
            history, last_dia = [], dia
        text = r["Utterance"].replace("\u2019", "'").strip()
        label = r["Emotion"].strip().lower()
        if label not in EMOTIONS:
            raise ValueError(f"MELD: unknown emotion {r['Emotion']!r} in dialogue {dia}")
        path = clips.get((dia, utt))
        if path is not None:
            out.append(Example(label=label, text=text, audio_path=path, group=f"dia{dia}",
                               context=tuple(history),
                               meta={"speaker": r.get("Speaker"), "utterance_id": utt}))
        history.append(text)
    return out


def actor_split(examples: list[Example], dev_actors: Iterable[int | str] = (17, 18, 19, 20)
                ) -> tuple[list[Example], list[Example]]:
    """(train, dev) by speaker: examples whose group is in dev_actors go to dev.

    Groups compare as integers when both sides are numeric ("07" == 7), else as strings.
    """
    def key(g: int | str | None) -> int | str | None:
        return int(g) if isinstance(g, int) or (isinstance(g, str) and g.isdigit()) else g

    dev_keys = {key(a) for a in dev_actors}
    train = [e for e in examples if key(e.group) not in dev_keys]
    dev = [e for e in examples if key(e.group) in dev_keys]
    if not dev:
        raise ValueError(f"no examples belong to the dev speakers {sorted(map(str, dev_keys))}")
    return train, dev
