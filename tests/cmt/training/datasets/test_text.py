from __future__ import annotations

from collections import Counter

import pytest

from cmt.contract import EMOTIONS
from cmt.training.datasets.text import (
    CorpusError,
    CorpusFileMissing,
    clean_text,
    load_goemotions,
    load_meld,
    load_text_corpus,
)

MELD_HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
               "StartTime,EndTime\n")
# Rows out of order on purpose: context must follow Utterance_ID, not file order.
MELD_ROWS = [
    ('1,"Oh my God, he\u2019s lost it. He\u2019s totally lost it.",Phoebe,sadness,negative,0,0,4,7,'
    '"00:20:57,256","00:21:00,049"\n'),
    '3,You\u2019re a genius!,Chandler,joy,positive,1,1,4,4,"00:12:32,334","00:12:33,960"\n',
    '2,"Or! Or, we could go to the bank.",Ross,neutral,neutral,1,0,4,4,'
    '"00:12:24,660","00:12:30,915"\n',
    '4,Yeah?,Ross,surprise,positive,1,2,4,4,"00:12:34,000","00:12:35,000"\n',
]


def write_meld(d, split="dev", encoding="utf-8", rows=MELD_ROWS, header=MELD_HEADER):
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{split}_sent_emo.csv").write_bytes((header + "".join(rows)).encode(encoding))
    return d


def test_meld_fields_and_past_context(tmp_path):
    ex = load_meld(write_meld(tmp_path), "dev")
    assert [e.label for e in ex] == ["sadness", "joy", "neutral", "surprise"]
    assert ex[0].text == "Oh my God, he's lost it. He's totally lost it."
    assert ex[0].context == () and ex[0].group == "0"
    genius = ex[1]
    assert genius.context == ("Or! Or, we could go to the bank.",)  # past turns only
    assert ex[3].context == ("Or! Or, we could go to the bank.", "You're a genius!")
    assert ex[2].context == ()
    assert genius.meta["speaker"] == "Chandler" and genius.meta["utterance_id"] == 1


def test_meld_mojibake_cp1252_bytes_and_c1_characters(tmp_path):
    # The original MELD files carry cp1252 bytes (\x92 for an apostrophe, \x85 for ...).
    rows = ['1,Don\u2019t go\u2026,Ross,fear,negative,0,0,1,1,a,b\n']
    ex = load_meld(write_meld(tmp_path / "a", encoding="cp1252", rows=rows), "dev")
    assert ex[0].text == "Don't go..."
    # ... or the same bytes decoded as latin-1 and saved as UTF-8 (C1 control characters).
    rows = ['1,Don\x92t go\x85,Ross,fear,negative,0,0,1,1,a,b\n']
    ex = load_meld(write_meld(tmp_path / "b", rows=rows), "dev")
    assert ex[0].text == "Don't go..."


def test_clean_text_repairs_utf8_read_as_cp1252():
    broken = "It\u00e2\u20ac\u2122s  \u00c3\u00a9t\u00c3\u00a9 \u00e2\u20ac\u0153hi\u00e2\u20ac\x9d"
    assert clean_text(broken) == "It's \u00e9t\u00e9 \"hi\""
    assert clean_text("Caf\u00e9 na\u00efve") == "Caf\u00e9 na\u00efve"  # real accents untouched


def test_meld_errors(tmp_path):
    with pytest.raises(CorpusFileMissing, match="train_sent_emo.csv"):
        load_meld(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        load_meld(tmp_path, "validation")
    bad = write_meld(tmp_path / "nocol",
                     header="Sr No.,Utterance,Speaker,Sentiment,Dialogue_ID,Utterance_ID\n",
                     rows=['1,Hi,Ross,neutral,0,0\n'])
    with pytest.raises(CorpusError, match="missing column.*Emotion"):
        load_meld(bad, "dev")
    unk = write_meld(tmp_path / "unk", rows=['1,Hi,Ross,boredom,neutral,0,0,1,1,a,b\n'])
    with pytest.raises(CorpusError, match="unknown emotion 'boredom'"):
        load_meld(unk, "dev")


GO_LABELS = "anger\ndisgust\nfear\njoy\nneutral\nsadness\nsurprise"
GO_ROWS = [
    "I've never been this sad in my life!\t5\tedcu99z\n",
    'He said "wow" and left [NAME]\t6\tabc\n',
    "You know the answer man, don\u2019t avoid them!\t3,4\tee84bjg\n",
    "OMG!!!\t6,6\tdup\n",  # a repeated id is still one label
]


def write_goemotions(d, split="dev", rows=GO_ROWS, labels=GO_LABELS):
    d.mkdir(parents=True, exist_ok=True)
    (d / "labels.txt").write_text(labels)
    (d / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
    return d


def test_goemotions_single_label_rows_by_default(tmp_path):
    ex = load_goemotions(write_goemotions(tmp_path), "dev")
    assert [e.label for e in ex] == ["sadness", "surprise", "surprise"]
    assert ex[1].text == 'He said "wow" and left [NAME]'  # quotes kept (no CSV quoting in TSV)
    assert ex[0].meta["id"] == "edcu99z"
    first = load_goemotions(tmp_path, "dev", multi_label="first")
    assert [e.label for e in first] == ["sadness", "surprise", "joy", "surprise"]
    assert first[2].meta["labels"] == ("joy", "neutral")
    assert first[2].text == "You know the answer man, don't avoid them!"


def test_goemotions_errors(tmp_path):
    with pytest.raises(CorpusFileMissing, match="labels.txt"):
        load_goemotions(tmp_path, "dev")
    d = write_goemotions(tmp_path / "bad", rows=["text\t9\tx\n"])
    with pytest.raises(CorpusError, match="not ids into labels.txt"):
        load_goemotions(d, "dev")
    d = write_goemotions(tmp_path / "short", rows=["just text\n"])
    with pytest.raises(CorpusError, match="expected text<TAB>label ids"):
        load_goemotions(d, "dev")
    d = write_goemotions(tmp_path / "lab", labels="anger\nboredom\n")
    with pytest.raises(CorpusError, match="boredom"):
        load_goemotions(d, "dev")
    with pytest.raises(ValueError, match="unknown text corpus"):
        load_text_corpus("imdb", tmp_path, "dev")


@pytest.mark.shared
@pytest.mark.parametrize("split,n", [("train", 9989), ("dev", 1109)])
def test_real_meld(datasets_dir, split, n):
    ex = load_meld(datasets_dir / "meld", split)
    assert len(ex) == n  # row counts from the datasets README
    assert {e.label for e in ex} == set(EMOTIONS)
    assert all(e.text for e in ex)
    assert not any(ch in e.text for e in ex for ch in "\u2019\x92\ufffd")
    first_turns = [e for e in ex if e.meta["utterance_id"] == 0]
    assert all(e.context == () for e in first_turns)
    later = next(e for e in ex if e.meta["utterance_id"] == 3)
    assert len(later.context) == 3


@pytest.mark.shared
@pytest.mark.parametrize("split,n", [("train", 43410), ("dev", 5426)])
def test_real_goemotions(datasets_dir, split, n):
    d = datasets_dir / "goemotions" / "ekman"
    every = load_goemotions(d, split, multi_label="first")
    assert len(every) == n  # row counts from the datasets README
    single = load_goemotions(d, split)
    assert 0.85 * n < len(single) < n
    counts = Counter(e.label for e in single)
    assert set(counts) == set(EMOTIONS) and counts.most_common(1)[0][0] == "joy"
