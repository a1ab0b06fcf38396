"""The student-move data in data/moves: the shipped splits are what `tools/train_moves.py`
builds from messages.txt, they share no message, the held-out writer's set reads, and the
second reader's labels are of messages in the splits."""

from __future__ import annotations

import json

import pytest

from tools.train_moves import MOVES_DIR, build, near_copy_key, read_messages
from tutor.intents import MOVE_KINDS


def test_the_shipped_splits_rebuild_from_the_messages(tmp_path):
    build(MOVES_DIR / "messages.txt", tmp_path)
    for name in ("train.jsonl", "dev.jsonl"):
        assert (tmp_path / name).read_bytes() == (MOVES_DIR / name).read_bytes(), name


def test_train_and_dev_share_no_near_copy():
    def keys(name):
        lines = (MOVES_DIR / name).read_text(encoding="utf-8").splitlines()
        return {near_copy_key(json.loads(line)["text"]) for line in lines}

    train, dev = keys("train.jsonl"), keys("dev.jsonl")
    assert len(train) > 5000 and len(dev) > 1000
    assert not train & dev


def test_the_held_out_set_reads_and_covers_every_move():
    rows = read_messages(MOVES_DIR / "heldout.txt")
    counts = {k: sum(r["move"] == k for r in rows) for k in MOVE_KINDS}
    assert set(counts) == set(MOVE_KINDS) and min(counts.values()) >= 30
    assert all(r["answer"] for r in rows if r["move"] == "answer")
    assert len({(r["text"], r["question_waiting"]) for r in rows}) == len(rows)


def test_the_hard_set_reads_and_is_never_trained_on():
    """`hard_heldout.txt`: difficulty said with "hard" against requests for harder work, kept
    apart from messages.txt so that it measures messages the classifier never learned."""
    rows = read_messages(MOVES_DIR / "hard_heldout.txt")
    kinds = {r["move"] for r in rows}
    assert len(rows) >= 400 and {"vent", "confused", "too_easy"} <= kinds <= set(MOVE_KINDS)
    trained = {(r["text"], r["question_waiting"])
               for r in read_messages(MOVES_DIR / "messages.txt")}
    assert not trained & {(r["text"], r["question_waiting"]) for r in rows}


def test_every_second_reader_label_is_of_a_message_in_the_splits():
    """`tools/eval_moves.py --second-reader` compares these labels with the splits' own."""
    def rows(name):
        return [json.loads(line) for line in
                (MOVES_DIR / name).read_text(encoding="utf-8").splitlines()]

    labelled = {(r["text"], r["question_waiting"]) for name in ("train.jsonl", "dev.jsonl")
                for r in rows(name)}
    second = rows("second_reader.jsonl")
    assert len(second) >= 300
    assert all((r["text"], r["question_waiting"]) in labelled for r in second)
    assert all(r["move"] in MOVE_KINDS and isinstance(r["frustrated"], bool) for r in second)


def test_second_reader_agreement_counts_moves_and_flags_apart(tmp_path, capsys):
    from tools.eval_moves import second_reader

    split = MOVES_DIR / "dev.jsonl"
    rows = [json.loads(line) for line in split.read_text(encoding="utf-8").splitlines()[:4]]
    other = next(k for k in MOVE_KINDS if k != rows[0]["move"])
    labels = [dict(rows[0], move=other), dict(rows[1], frustrated=not rows[1]["frustrated"]),
              rows[2], rows[3], {"text": "not in any split \u2603", "question_waiting": True,
                                 "move": "ack", "frustrated": False}]
    path = tmp_path / "second.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in labels), encoding="utf-8")
    second_reader(path, [split])
    out = capsys.readouterr().out
    assert "4 messages labelled by a second reader (of 5)" in out
    assert "move 0.750 (3/4), frustration flag 0.750 (3/4)" in out


def test_same_value_compares_values_not_spelling():
    from tools.eval_moves import same_value

    assert same_value("3/2", "1 1/2") and same_value("x=5", "x = 5")
    assert same_value("5n", "5n") and same_value("2a+3b", "2a + 3b")  # letters, not units
    assert same_value("450", "450g") and same_value("1.40", "£1.40")  # units and currency aside
    assert not same_value("1 98", "198") and not same_value("3", "3/4")


def test_the_feelings_are_of_vent_messages_and_read_as_documented(tmp_path):
    from tools.train_moves import FEELINGS, read_feelings

    feelings = read_feelings(MOVES_DIR / "feelings.txt")
    vents = {r["text"] for r in read_messages(MOVES_DIR / "messages.txt") if r["move"] == "vent"}
    assert len(feelings) >= 2000 and set(feelings) <= vents
    assert set(feelings.values()) == set(FEELINGS)
    f = tmp_path / "feelings.txt"
    f.write_text("tired\tso sleepy\nother\tmeh\nworry\tscared\n", encoding="utf-8")
    assert read_feelings(f) == {"so sleepy": "bored", "scared": "worry"}
    f.write_text("sleepy so sleepy\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="feelings.txt:1"):
        read_feelings(f)


def test_the_keenness_is_of_every_too_easy_message_and_read_as_documented(tmp_path):
    from tools.train_moves import KEENNESS, read_tags

    keenness = read_tags(MOVES_DIR / "keenness.txt", KEENNESS)
    asked = {r["text"] for r in read_messages(MOVES_DIR / "messages.txt")
             if r["move"] == "too_easy"}
    assert set(keenness) == asked and set(keenness.values()) == set(KEENNESS)
    f = tmp_path / "keenness.txt"
    f.write_text("eager\tmore pls\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="keenness.txt:1"):
        read_tags(f, KEENNESS)
