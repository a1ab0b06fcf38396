"""Student moves in chat, from real-looking messages (case, punctuation, typos)."""

from __future__ import annotations

import pytest

from tutor.intents import MOVE_KINDS, classify_move

CASES = {
    "answer": [
        "3/4",
        "I think it's 3/4",
        "is it 3/4?",
        "x = 3",
        "b",
        "B)",
        "-3",
        "2x+1",
        "seven",
        "three quarters",
        "Um, 12",
    ],
    "confused": [
        "I don't get it",
        "dont get it",
        "i dont understand",
        "I DON'T UNDERSTAND!!",
        "idk",
        "im lost",
        "huh?",
        "whaaat?",
        "what does that mean",
        "this makes no sense",
        "can you explain it again",
        "confsued",
        "?",
    ],
    "hint": [
        "give me a hint",
        "Hint please",
        "hint pls",
        "hnit",
        "help!",
        "can I have a clue",
        "im stuck",
        "how do i start",
    ],
    "why": [
        "why?",
        "Why is it 3/4?",
        "how come?",
        "but why",
        "why do we need a common denominator when adding",
    ],
    "skip": ["skip", "next", "next question please", "can we move on", "I give up", "another one"],
    "too_easy": [
        "too easy",
        "to easy lol",
        "this is sooo easy",
        "boring",
        "give me something harder",
        "i already know this",
    ],
    "greeting": ["hi", "Hiii", "hello there", "good morning", "hey"],
    "off_topic": [
        "can we talk about minecraft",
        "what's for lunch?",
        "ok",
        "do you like football",
        "",
    ],
}


@pytest.mark.parametrize("kind,text", [(k, t) for k, ts in CASES.items() for t in ts])
def test_moves_while_a_question_is_open(kind, text):
    assert classify_move(text, expecting_answer=True).kind == kind


def test_answer_part_drops_lead_ins():
    assert classify_move("I think it's 3/4", expecting_answer=True).answer == "3/4"
    assert classify_move("The answer is x = 3.", expecting_answer=True).answer == "x = 3"
    assert classify_move("hint", expecting_answer=True).answer is None


def test_long_explanation_is_an_answer():
    text = "Because the bottom number tells you how many equal parts the whole is split into"
    move = classify_move(text, expecting_answer=True)
    assert move.kind == "answer" and move.answer == text


def test_without_an_open_question_nothing_is_an_answer():
    assert classify_move("3/4", expecting_answer=False).kind == "off_topic"
    assert classify_move("give me a hint", expecting_answer=False).kind == "hint"
    assert classify_move("hello", expecting_answer=False).kind == "greeting"


@pytest.mark.parametrize(
    "text",
    [
        "ugh I don't get it",
        "this is stupid, skip",
        "I hate fractions",
        "this is too hard!!!",
        "I give up",
    ],
)
def test_frustration_flag(text):
    assert classify_move(text, expecting_answer=True).frustrated


@pytest.mark.parametrize("text", ["3/4", "give me a hint", "too easy", "why?"])
def test_calm_messages_are_not_frustrated(text):
    assert not classify_move(text, expecting_answer=True).frustrated


def test_kinds_are_known_and_odd_input_is_safe():
    for text in ["", "   ", "!!!", "🙂", "\x00", "a" * 10_000, "¿qué?"]:
        for expecting in (True, False):
            assert classify_move(text, expecting_answer=expecting).kind in MOVE_KINDS
