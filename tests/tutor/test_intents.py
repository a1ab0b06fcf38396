"""Student moves in chat, from real-looking messages (case, punctuation, typos, slang).

These messages are not in data/moves/messages.txt: they check that the classifier reads
kinds of message, not its training lines. The dev split's score is `tools/eval_moves.py`."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from tutor.intents import MOVE_KINDS, classify_move, looks_like_answer
from tutor.moves import MODEL_PATH, MOVES_DIR, features, glad, load_model

CASES = {
    "answer": ["3/4", "I think it's 3/4", "is it 3/4?", "x = 3", "b", "B)", "-3", "2x+1",
               "seven", "three quarters", "Um, 12", "6/8 = 3/4", "three eighths", "x=5",
               "5 cm", "75%", "1 1/2"],
    "hint": ["give me a hint", "Hint please", "hint pls", "help!", "can I have a clue",
             "im stuck", "how do i start"],
    "confused": ["I don't get it", "i dont understand", "idk", "im lost", "huh?",
                 "what does that mean", "this makes no sense", "i dont get it at all"],
    "example": ["can you show me an example?", "show me an example pls",
                "can you do one for me first"],
    "why": ["why?", "Why is it 3/4?", "how come?", "but why",
            "why do we need a common denominator when adding"],
    "skip": ["skip", "next question please", "can we move on", "another one"],
    "too_easy": ["too easy", "to easy lol", "this is sooo easy", "give me something harder"],
    "break": ["I need a break", "can we take a break", "brb", "can we stop for now"],
    "reveal": ["show me the answer", "just tell me the answer", "whats the answer"],
    "repeat": ["what was the question", "can you repeat the question", "say that again"],
    "greeting": ["hi", "Hiii", "hello there", "good morning", "hey"],
    "ack": ["ok", "thanks", "thank you", "got it", "okay cool"],
    "off_topic": ["can we talk about minecraft", "do you like football", "are you a robot"],
    "vent": ["I hate fractions", "this is stupid", "im so bad at this"],
}


@pytest.mark.parametrize("kind,text", [(k, t) for k, ts in CASES.items() for t in ts])
def test_moves_while_a_question_is_open(kind, text):
    assert classify_move(text, expecting_answer=True).kind == kind


def test_every_kind_is_covered_and_known():
    assert set(CASES) == set(MOVE_KINDS) == set(load_model().kinds)


@pytest.mark.parametrize("text,answer", [
    ("I think it's 3/4", "3/4"), ("The answer is x = 3.", "x = 3"), ("6/8 = 3/4", "3/4"),
    ("three eighths", "3/8"), ("x equals five", "x = 5"), ("5 cm", "5"), ("B)", "b"),
])
def test_answer_part_drops_lead_ins(text, answer):
    assert classify_move(text, expecting_answer=True).answer == answer


def test_requests_carry_no_answer():
    for text in ("hint", "I need a break", "can you show me an example?", "ok"):
        assert classify_move(text, expecting_answer=True).answer is None


def test_long_explanation_is_an_answer():
    text = "Because the bottom number tells you how many equal parts the whole is split into"
    move = classify_move(text, expecting_answer=True)
    assert move.kind == "answer" and move.answer == text


@pytest.mark.parametrize("text,feeling", [
    ("im really scared about the test tomorrow", "worry"),
    ("im just so bad at maths", "down"),
    ("YESSS im so proud of myself", "glad")])
def test_a_vent_says_which_feeling(text, feeling):
    move = classify_move(text, expecting_answer=True)
    assert move.kind == "vent" and max(move.feelings, key=move.feelings.get) == feeling
    assert abs(sum(move.feelings.values()) - 1) < 1e-6
    assert classify_move("give me a hint", expecting_answer=True).feelings is None


def test_frustration_in_any_move_says_which_feeling():
    move = classify_move("k whatever", expecting_answer=True)
    assert move.kind == "ack" and move.frustrated
    assert max(move.feelings, key=move.feelings.get) == "bored"


def test_without_an_open_question_requests_keep_their_kind():
    assert classify_move("give me a hint", expecting_answer=False).kind == "hint"
    assert classify_move("hello", expecting_answer=False).kind == "greeting"
    assert classify_move("ok", expecting_answer=False).kind == "ack"
    assert classify_move("I need a break", expecting_answer=False).kind == "break"


@pytest.mark.parametrize("text", [
    "ugh I don't get it", "this is stupid, skip", "I hate fractions", "this is too hard!!!",
    "I give up", "JUST TELL ME THE ANSWER", "omg just give me a hint already",
])
def test_frustration_flag(text):
    assert classify_move(text, expecting_answer=True).frustrated is True


@pytest.mark.parametrize("text", ["3/4", "give me a hint", "too easy", "why?", "ok thanks",
                                  "can you show me an example?", "I need a break"])
def test_calm_messages_are_not_frustrated(text):
    assert classify_move(text, expecting_answer=True).frustrated is False


def test_kinds_are_known_and_odd_input_is_safe():
    for text in ["", "   ", "!!!", "🙂", "\x00", "a" * 10_000, "¿qué?", "1" * 5000, "=" * 300]:
        for expecting in (True, False):
            move = classify_move(text, expecting_answer=expecting)
            assert move.kind in MOVE_KINDS and isinstance(move.frustrated, bool)
            assert 0 < move.p_kind <= 1


def test_the_move_says_how_sure_the_classifier_is_of_its_kind():
    sure = classify_move("this is too easy", expecting_answer=True)
    unsure = classify_move("these are alright actually", expecting_answer=True)
    assert sure.kind == "too_easy" and sure.p_kind > 0.9
    assert unsure.p_kind < sure.p_kind


def test_looks_like_answer():
    assert looks_like_answer("is it five?") and not looks_like_answer("give me a hint")


def test_features_read_case_typos_and_numbers_alike():
    assert "w:dont" in features("DON'T", True) and "w:soo" in features("sooooo", True)
    assert "m:only_answer_q" in features("3/4", True)
    assert "m:only_answer_noq" in features("3/4", False)


def test_numpy_inference_matches_scikit_learn():
    """The shipped arrays, read with numpy, give what a scikit-learn pipeline gives."""
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = replace(load_model(MODEL_PATH), sentence_heads={})  # the n-gram heads alone
    vec = TfidfVectorizer(analyzer=lambda d: features(*d), sublinear_tf=True)
    vec.vocabulary_, vec.idf_ = model.vocab, model.idf
    texts = [("can u show me 1 example", True), ("ugh 3/4???", True), ("hola", False)]
    x = vec.transform(texts)
    for row, (text, waiting) in zip(x, texts, strict=True):
        logits = row.toarray()[0] @ model.move_coef + model.move_bias
        probs, _ = model.predict(text, waiting)
        assert model.kinds[int(np.argmax(logits))] == max(probs, key=probs.get)
        read = model.vector(text, waiting)
        dense = np.zeros(len(model.vocab))
        dense[read.idx] = read.values
        assert np.allclose(dense, row.toarray()[0])


def test_the_labelled_set_is_large_varied_and_split():
    rows = {name: [json.loads(line) for line in (MOVES_DIR / f"{name}.jsonl").open()]
            for name in ("train", "dev")}
    assert len(rows["train"]) + len(rows["dev"]) >= 1500
    for split in rows.values():
        assert {r["move"] for r in split} == set(MOVE_KINDS)
        assert any(r["frustrated"] for r in split) and any(not r["question_waiting"]
                                                           for r in split)

    def same(text: str) -> str:  # case, punctuation and spacing aside
        return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split()) or text.strip()

    train = {same(r["text"]) for r in rows["train"]}
    assert not [r["text"] for r in rows["dev"] if same(r["text"]) in train]


def test_attune_moves_prints_one_json_line_per_message():
    from typer.testing import CliRunner

    from tutor.cli import app

    messages = ["I need a break", "6/8 = 3/4", "three eighths", "ok", "ugh I HATE this!!",
                "what if i fail the test tomorrow im so scared", ""]
    r = CliRunner().invoke(app, ["moves"], input="\n".join(messages) + "\n")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [row["text"] for row in rows] == messages
    assert all(set(row) == {"text", "move", "frustrated", "answer", "feeling"} for row in rows)
    assert [row["move"] for row in rows[:4]] == ["break", "answer", "answer", "ack"]
    assert [row["answer"] for row in rows[:4]] == [None, "3/4", "3/8", None]
    assert rows[4]["frustrated"] is True and rows[0]["frustrated"] is False
    assert rows[5]["move"] == "vent" and rows[5]["feeling"] == "worry"  # the feeling a vent says
    assert [row["feeling"] for row in rows[:4]] == [None] * 4
    r = CliRunner().invoke(app, ["moves", "--no-question"], input="hi\ncan we start\n")
    assert [json.loads(line)["move"] for line in r.output.splitlines()] == ["greeting", "ack"]


def test_a_line_of_bytes_that_are_not_text_is_not_a_feeling():
    """`attune moves` turns bytes that are not UTF-8 into U+FFFD: nothing was said, so the
    line is off_topic (a short redirect), not vent, and not frustrated."""
    from typer.testing import CliRunner

    from tutor.cli import app

    r = CliRunner().invoke(app, ["moves"], input=b"\xff\xfe\x80\x81\n\x00\x01\n...\n")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [row["move"] for row in rows[:2]] == ["off_topic", "off_topic"]
    assert not any(row["frustrated"] for row in rows[:2])
    assert rows[2]["move"] != "vent"  # punctuation alone states no feeling


def test_a_line_mostly_of_bytes_that_are_not_text_is_not_read_for_the_letters_left():
    """Random bytes decode to U+FFFD with a few letters between: those letters are chance, so
    the line is nothing readable; one word spoiled in a readable line is still read."""
    noise = "\ufffd\ufffda\ufffd\u0101\ufffdm\ufffd\ufffd\u0638n\ufffd\ufffd\ufffdu\ufffdwhy"
    move = classify_move(noise, expecting_answer=True)
    assert (move.kind, move.frustrated) == ("off_topic", False)
    assert classify_move("no entiendo qu\ufffd hacer", expecting_answer=True).kind == "confused"
    assert classify_move("ugh i hate this \ufffd\ufffd", expecting_answer=True).frustrated


def test_emoji_are_read_by_what_they_show():
    """An emoji is a token with the words of its Unicode name, so faces never seen in
    training are read by their kin; emoji joiners and skin tones are dropped."""
    assert "e:#pouting" in features("😡", True) and "e:👍" in features("👍🏽", True)
    assert classify_move("😡", expecting_answer=True).frustrated is True
    assert classify_move("👍", expecting_answer=True).kind == "ack"


def test_a_message_in_another_script_is_also_read_in_latin_letters():
    """A romanised line and its native-script twin share features, so one teaches the other."""
    from tutor.moves import features, latin

    assert latin("не понимаю") == "ne ponimayu" and latin("não entendo") == "nao entendo"
    assert latin("i dont get it 😡") is None
    shared = set(features("не понимаю", True)) & set(features("ne ponimayu", True))
    assert {"w:ne", "w:ponimayu", "c: pon"} <= shared


@pytest.mark.parametrize("text", ["one sec", "one second", "1 sec", "two mins pls", "one moment"])
def test_a_number_with_a_time_unit_is_not_certainly_an_answer(text):
    """"one sec" is how students ask to wait, "45 minutes" may answer a question: the rule
    that makes a bare number an answer leaves both to the classifier."""
    from tutor.answers import is_only_an_answer

    assert not is_only_an_answer(text)


@pytest.mark.parametrize("text", ["one sec", "one moment", "give me 5 mins"])
def test_asking_to_wait_is_not_an_answer(text):
    assert classify_move(text, expecting_answer=True).kind != "answer"


@pytest.mark.parametrize("text", ["なんで4をかけるの？", "왜 4를 곱해요?", "а звідки взялося 8?",
                                  "ليش قسمنا على ٤؟", "το 10 από πού το έβγαλες;"])
def test_words_of_another_script_around_a_number_are_not_certainly_an_answer(text):
    """"Why multiply by 4?" in Japanese holds a 4 but is not an answer: words in any script
    count as words, so the classifier reads the message, not the rule."""
    from tutor.answers import is_only_an_answer

    assert not is_only_an_answer(text)
    assert is_only_an_answer("3/4") and is_only_an_answer("x = 5 i think")


@pytest.mark.parametrize("text", ["lol i forgot the minus", "jajaja otra vez", "NOOO my crown 😂",
                                  "YESSS 🎉", "kkkkk errei", "5555 ผิดอีกแล้ว", "哈哈哈 又错了"])
def test_laughter_and_cheering_mark_the_shouting_as_glad(text):
    assert glad(text)
    names = features(text, True)
    assert "m:glad" in names
    assert not {"m:caps", "m:shout", "m:marks"} & set(names)  # their glad kin instead


@pytest.mark.parametrize("text", ["I HATE THIS 😡", "hello", "the lolly costs 5", "WHY!!"])
def test_anger_and_plain_words_are_not_glad(text):
    assert not glad(text)
    assert "m:glad" not in features(text, True)


def test_a_request_for_harder_work_says_how_keenly_it_is_made():
    """The same move, `too_easy`, made keenly or as a complaint: the keenness the policy
    takes for gladness; nothing for any other move, or when the flag hears anger."""
    keen = classify_move("i love these! harder pls", expecting_answer=True)
    bored = classify_move("so boring can u give me harder", expecting_answer=True)
    assert keen.kind == bored.kind == "too_easy"
    assert keen.keen > 0.5 > 0.1 > bored.keen
    assert classify_move("give me a hint", expecting_answer=True).keen == 0.0
    angry = classify_move("UGH THESE ARE SO EASY WHY ARE WE DOING THIS", expecting_answer=True)
    assert angry.frustrated and angry.keen == 0.0


def test_a_request_for_harder_work_heard_surely_as_worry_is_a_worry_said():
    """"what if theres a harder one on the test": the words of a request, heard by the
    feeling head at least `TOO_EASY_WORRY` surely as worry, are a worry put into words (a
    `vent`, reassured), not boredom; a plain or bored request stays `too_easy`."""
    from tutor.intents import TOO_EASY_WORRY

    worry = classify_move("what if theres a harder one on the test", expecting_answer=True)
    assert worry.kind == "vent" and worry.feelings["worry"] >= TOO_EASY_WORRY
    assert worry.p_kind == worry.feelings["worry"]
    for request in ("give me a harder one", "these are too easy", "can we do harder ones"):
        assert classify_move(request, expecting_answer=True).kind == "too_easy", request
