from __future__ import annotations

import re
from itertools import pairwise

import pytest

from tutor.curriculum import PackError
from tutor.intents import Move, classify_move
from tutor.dialogue import Dialogue, Phrasebook, load_lesson
from tutor.policy import Decision

NORMAL = Decision("engaged", "neutral", "normal", 0, "r")
FRUSTRATED = Decision("frustrated", "calm", "worked_example", 1, "r")
CONFUSED = Decision("confused", "calm", "slower", 2, "r")
BORED = Decision("bored", "upbeat", "harder", 0, "r")


@pytest.fixture(scope="module")
def fractions():
    return load_lesson("fractions")


def turn(d: Dialogue, message: str, decision: Decision = NORMAL, now: float = 0.0):
    evidence = d.evidence(message, now=now)
    return evidence, d.respond(message, decision, now=now)


def started(pack, **kw) -> Dialogue:
    d = Dialogue(pack, seed=0, **kw)
    turn(d, "hi")
    return d


def test_first_turn_greets_explains_the_step_and_asks_its_first_question(fractions):
    d = Dialogue(fractions, seed=0)
    _, r = turn(d, "hello")
    step = fractions.steps[0]
    assert step.explanations.standard in r.text and step.questions[0].prompt in r.text
    assert r.move == "greeting" and r.question_id == step.questions[0].id and d.expecting_answer


def test_a_right_answer_is_checked_by_code_updates_mastery_and_moves_on(fractions):
    d = started(fractions)
    before = d.mastery.p_known("fraction_meaning")
    ev, r = turn(d, "I think it's 6/16", now=30.0)  # equal to 3/8
    assert r.correct is True and ev.wrong_streak == 0 and not ev.fast_correct
    assert d.mastery.p_known("fraction_meaning") > before
    assert r.question_id == "weekend_days" and "weekend" in r.text


def test_a_known_mistake_gets_its_feedback_and_builds_a_wrong_streak(fractions):
    d = started(fractions)
    ev1, r1 = turn(d, "3/5")
    ev2, r2 = turn(d, "5/8")
    assert (ev1.wrong_streak, ev2.wrong_streak) == (1, 2)
    assert r1.correct is False and "slices left" in r1.text and "is left" in r2.text
    assert d.mastery.p_known("fraction_meaning") < d.mastery.params.p_init + 0.1


def test_pacing_changes_what_is_said_after_a_wrong_answer(fractions):
    example = fractions.steps[0].examples[0]
    plain, adapted = started(fractions), started(fractions)
    _, r_plain = turn(plain, "3/5", NORMAL)
    _, r_adapted = turn(adapted, "3/5", FRUSTRATED)
    assert example.problem not in r_plain.text and "hint" not in r_plain.action
    assert example.problem in r_adapted.text and "worked example" in r_adapted.action
    assert fractions.steps[0].questions[0].prompt in r_adapted.text  # then asked again
    slow = started(fractions)
    _, r_slow = turn(slow, "3/5", CONFUSED)
    assert fractions.steps[0].explanations.detailed in r_slow.text
    assert fractions.steps[0].questions[0].hints[1] in r_slow.text  # hint level 2


def test_hint_requests_climb_the_hints_and_the_hint_level_raises_the_first(fractions):
    q = fractions.steps[0].questions[0]
    d = started(fractions)
    _, r1 = turn(d, "hint please")
    ev2, r2 = turn(d, "another hint")
    assert q.hints[0] in r1.text and q.hints[1] in r2.text and ev2.hint_requests == 2
    raised = started(fractions)
    _, r = turn(raised, "can I have a clue", CONFUSED)
    assert q.hints[1] in r.text and q.hints[0] not in r.text
    for _ in range(3):
        _, last = turn(d, "hint")
    assert "skip" in last.text and q.hints[-1] in last.text  # out of hints, never crashes


def test_confused_gets_the_detailed_explanation_and_why_explains_the_last_answer(fractions):
    d = started(fractions)
    ev, r = turn(d, "I don't get it")
    assert ev.typed_confused and fractions.steps[0].explanations.detailed in r.text
    turn(d, "3/8")
    _, why = turn(d, "why?")
    assert fractions.steps[0].questions[0].explanation in why.text


def test_bored_student_is_moved_ahead_and_control_tests_the_claim(fractions):
    fast = started(fractions)
    ev, r = turn(fast, "3/8", BORED, now=3.0)
    assert ev.fast_correct and r.step_id == fractions.steps[1].id  # a later step
    claim = started(fractions)
    ev, r = turn(claim, "too easy", NORMAL)
    assert ev.too_easy and r.step_id == fractions.steps[0].id
    assert r.question_id == fractions.steps[0].questions[-1].id  # the step's hardest
    skip = started(fractions)
    _, r = turn(skip, "skip")
    assert r.question_id != fractions.steps[0].questions[0].id


def test_three_wrong_answers_show_the_answer_and_move_on(fractions):
    d = started(fractions)
    for _ in range(3):
        _, r = turn(d, "3/5")
    assert "3/8" in r.text and "showed the answer" in r.action and r.question_id != "pizza_slices"


def test_unreadable_answers_and_form_slips_are_not_counted_wrong(fractions):
    d = Dialogue(fractions, seed=0, start_step="equivalent_fractions")
    turn(d, "hi")
    d._set_question(*fractions.question("simplify_6_8"))
    ev, r = turn(d, "6/8")
    assert ev.wrong_streak == 0 and "wrong form" in r.action and r.correct is None
    ev, r = turn(d, "3//4")  # neither right nor wrong: `attune simulate --json` says null
    assert ev.wrong_streak == 0 and "could not read" in r.action and r.correct is None
    ev, r = turn(d, "can i check my answer before i send it next time")
    assert ev.wrong_streak == 0 and r.correct is None


def test_off_topic_is_steered_back_and_a_break_is_offered_when_asked(fractions):
    d = started(fractions)
    _, r = turn(d, "what's your favourite game?",
                Decision("frustrated", "calm", "worked_example", 1, "r", offer_break=True))
    assert r.move == "off_topic" and "break" in r.text and "pizza" in r.text


def test_a_tone_never_repeats_the_same_line_twice_running(fractions):
    book = Phrasebook()
    for bank in ("right", "wrong", "hint", "break", "greet"):
        for tone in ("neutral", "calm", "upbeat", "encouraging"):
            lines = [book.say(bank, tone) for _ in range(40)]
            assert all(a != b for a, b in pairwise(lines))
    d = started(fractions)
    texts = [turn(d, "what's the weather like?")[1].text for _ in range(12)]
    assert all(a != b for a, b in pairwise(texts))
    assert len(set(texts)) >= 4


def test_tone_picks_the_tones_own_lines(fractions):
    from tutor.prompts import PHRASES

    d = started(fractions)
    _, r = turn(d, "3/8", Decision("delighted", "upbeat", "normal", 0, "r"))
    assert any(r.text.startswith(line) for line in PHRASES["right"]["upbeat"])


def test_a_tone_that_keeps_the_pace_never_promises_to_slow_down():
    """The policy pairs neutral and upbeat with normal or harder pacing, so their lines never
    say "slowly": the words the student reads agree with the pace shown beside them."""
    import re

    from tutor.policy import load_policy_config
    from tutor.prompts import PHRASES

    brisk = {a.tone for a in load_policy_config().adaptations.values()
             if a.pacing in ("normal", "harder")}
    assert brisk == {"neutral", "upbeat"}
    promises = [line for bank in PHRASES.values() for tone in brisk
                for line in bank.get(tone, ()) if re.search(r"\bslow", line, re.IGNORECASE)]
    assert promises == []


def test_a_finished_pack_says_so(fractions):
    d = started(fractions)
    for step in fractions.steps:
        d.mastery.set_known(step.skills, 0.99)
    _, r = turn(d, "3/8")
    assert r.question_id is None and "mastered" in r.text
    _, r = turn(d, "hello again")
    assert "mastered" in r.text


def test_unknown_lessons_are_named():
    with pytest.raises(PackError, match="no lesson pack 'knitting'.*fractions"):
        load_lesson("knitting")
    with pytest.raises(ValueError, match="expected_answer_s"):
        Dialogue(load_lesson(), expected_answer_s=0)


def test_typed_frustration_is_acknowledged_not_steered_away(fractions):
    """Before the first question and after it: 'it's so frustrating' is heard, then the lesson."""
    acknowledge = set(Phrasebook().phrases["acknowledge"]["calm"] + Phrasebook().phrases["acknowledge"]["neutral"])
    off_topic = {line for lines in Phrasebook().phrases["off_topic"].values() for line in lines}
    d = Dialogue(fractions, seed=0)
    _, first = turn(d, "I keep getting these wrong, it's so frustrating", FRUSTRATED)
    assert any(line in first.text for line in acknowledge)
    assert not any(line in first.text for line in off_topic)
    assert fractions.steps[0].questions[0].prompt in first.text  # and the lesson goes on
    _, later = turn(d, "ugh this is so annoying", FRUSTRATED, now=5.0)
    assert any(line in later.text for line in acknowledge) and "acknowledged" in later.action
    _, chat = turn(d, "what did you have for lunch?", NORMAL, now=9.0)
    assert any(line in chat.text for line in off_topic)


def test_an_answer_before_the_first_question_is_not_called_off_topic(fractions):
    off_topic = {line for lines in Phrasebook().phrases["off_topic"].values() for line in lines}
    early = {line for lines in Phrasebook().phrases["early"].values() for line in lines}
    d = Dialogue(fractions, seed=0)
    _, r = turn(d, "I think it's 3/4")
    assert not any(line in r.text for line in off_topic) and any(line in r.text for line in early)
    assert fractions.steps[0].questions[0].prompt in r.text


# ---------------------------------------------------------------- each student move


def _lines(bank: str) -> set[str]:
    from tutor.prompts import PHRASES

    return {line for lines in PHRASES[bank].values() for line in lines}


def test_an_example_request_gets_a_worked_example_then_the_question(fractions):
    d = started(fractions)
    _, r = turn(d, "can you show me an example?")
    step = fractions.steps[0]
    assert r.move == "example" and step.examples[0].problem in r.text
    assert step.questions[0].prompt in r.text and "I expected" not in r.text
    for _ in range(len(step.examples)):  # out of examples: the explanation, never a crash
        _, r = turn(d, "another example please")
    assert r.move == "example" and step.explanations.detailed in r.text


def test_a_break_is_taken_cleanly_and_the_student_comes_back_where_they_left(fractions):
    d = started(fractions)
    question = d.question
    _, r = turn(d, "I need a break")
    assert r.move == "break" and "took a break" in r.action and "I expected" not in r.text
    assert question.prompt not in r.text and d.on_break
    _, r = turn(d, "brb")
    assert "still on a break" in r.action
    _, r = turn(d, "ok im back", now=300.0)
    assert any(line in r.text for line in _lines("welcome_back"))
    assert question.prompt in r.text and d.question is question and not d.on_break
    _, r = turn(d, "3/8")
    assert r.correct is True


def test_an_answer_after_a_break_is_checked(fractions):
    d = started(fractions)
    turn(d, "can we take a break")
    _, r = turn(d, "3/8", now=200.0)
    assert r.correct is True and "back from the break" in r.action


def test_reveal_gives_a_hint_before_an_attempt_and_the_answer_after_one(fractions):
    d = started(fractions)
    q = d.question
    _, r = turn(d, "show me the answer")
    assert r.move == "reveal" and q.answer[0] not in r.text and q.hints[0] in r.text
    assert q.prompt in r.text
    turn(d, "3/5")
    _, r = turn(d, "just tell me the answer")
    assert q.answer[0] in r.text and "showed the answer" in r.action and d.question is not q


def test_repeat_restates_the_question(fractions):
    d = started(fractions)
    _, r = turn(d, "what was the question again?")
    assert r.move == "repeat" and d.question.prompt in r.text and r.correct is None


def test_ok_and_thanks_carry_on(fractions):
    d = started(fractions)
    for message in ("ok", "thanks"):
        _, r = turn(d, message)
        assert r.move == "ack" and "carried on" in r.action and d.question.prompt in r.text
        assert not any(line in r.text for line in _lines("off_topic"))


def test_off_topic_gets_a_short_friendly_redirect(fractions):
    d = started(fractions)
    _, r = turn(d, "do you like minecraft")
    assert r.move == "off_topic" and any(line in r.text for line in _lines("off_topic"))
    assert d.question.prompt in r.text and len(r.text) < 300


def test_venting_is_acknowledged_then_helped(fractions):
    d = started(fractions)
    ev, r = turn(d, "I hate fractions")
    assert r.move == "vent" and ev.typed_frustration
    assert any(line in r.text for line in _lines("acknowledge"))
    assert d.question.hints[0] in r.text and d.question.prompt in r.text
    adapted = started(fractions)
    _, r = turn(adapted, "this is so stupid", FRUSTRATED)
    assert fractions.steps[0].examples[0].problem in r.text  # the pacing says: an example


@pytest.mark.parametrize("message, bank, helped", [
    ("yesss im on fire today 🔥", "share_joy", False),
    ("im scared ill get it wrong", "reassure", True),
    ("i always get fractions wrong", "cheer_up", True)])
def test_a_feeling_put_into_words_is_answered_as_that_feeling(fractions, message, bank, helped):
    """Gladness is shared and the lesson goes on (never "that sounds frustrating" and a hint);
    worry is reassured and feeling down cheered, both then helped with the question."""
    d = started(fractions)
    _, r = turn(d, message)
    assert r.move == "vent" and any(line in r.text for line in _lines(bank))
    assert not any(line in r.text for line in _lines("acknowledge"))
    assert (d.question.hints[0] in r.text) == helped and d.question.prompt in r.text
    before = Dialogue(fractions, seed=0)  # before the first question too
    _, r = turn(before, message)
    assert any(line in r.text for line in _lines(bank))
    assert not any(line in r.text for line in _lines("off_topic"))


def test_a_feeling_heard_unsurely_is_answered_as_heard_not_named(fractions, monkeypatch):
    """Where the classifier hears no feeling `FEELING_SURE` surely, the vent is thanked, not
    cheered ("love the attitude") nor consoled, and the lesson goes on while the pace is
    normal; a sure feeling is still named."""
    from tutor import dialogue as dialogue_module

    def heard(feelings):
        def classify(message, **kw):
            return Move("vent", message, None, False, 0.05, feelings=feelings)
        monkeypatch.setattr(dialogue_module, "classify_move", classify)
        d = started(fractions)
        return turn(d, "its not the maths. my mum had a bad night")[1], d

    unsure, d = heard({"glad": 0.5, "down": 0.3, "worry": 0.1, "angry": 0.05, "bored": 0.05})
    assert any(line in unsure.text for line in _lines("heard_feeling")), unsure.text
    assert not any(line in unsure.text for line in _lines("share_joy") | _lines("cheer_up"))
    assert d.question.prompt in unsure.text and d.question.hints[0] not in unsure.text
    sure, _ = heard({"glad": 0.8, "down": 0.1, "worry": 0.05, "angry": 0.03, "bored": 0.02})
    assert any(line in sure.text for line in _lines("share_joy")), sure.text


@pytest.mark.parametrize("message", ["is that right? i wasnt sure", "Is correct? I was not sure",
                                     "was that right?? im not sure if i did it properly",
                                     "ok. and this one is right also?", "did i get it right"])
def test_asking_if_the_last_answer_was_right_is_answered_yes(fractions, message):
    """Just after a right answer, "is that right?" gets "yes, it was" and the new question
    waits; never a hint for a question not yet tried, nor the step explained again."""
    d = started(fractions)
    turn(d, d.question.answer[0])
    _, r = turn(d, message)
    assert any(line in r.text for line in _lines("confirm_right")), r.text
    assert d.question.prompt in r.text and d.question.hints[0] not in r.text
    assert d.step.explanations.standard not in r.text


@pytest.mark.parametrize("message", ["is right?", "is it correct? please tell"])
def test_asking_if_right_just_after_a_right_answer_is_not_saying_i_dont_get_it(fractions,
                                                                                 message):
    """Whatever move the classifier hears in it, asking whether a right answer was right
    asks to be told so, and the tutor answers it so: no "i don't get it" for the policy.
    Asked with no right answer just before, what the classifier hears counts."""
    d = started(fractions)
    turn(d, d.question.answer[0])
    assert not d.evidence(message).typed_confused
    heard = classify_move(message, expecting_answer=True).kind in ("confused", "why")
    assert started(fractions).evidence(message).typed_confused == heard


def test_asking_if_right_without_a_right_answer_before_is_not_confirmed(fractions):
    d = started(fractions)
    _, r = turn(d, "is that right?")  # nothing answered yet
    assert not any(line in r.text for line in _lines("confirm_right"))
    turn(d, "5/8")  # wrong
    _, r = turn(d, "is that right?")
    assert not any(line in r.text for line in _lines("confirm_right"))
    _, r = turn(d, "is it 3/8?")  # an answer, checked as one
    assert r.move == "answer" and r.correct is True


@pytest.mark.parametrize("message", ["was that right?", "is that right? i wasnt sure",
                                     "did i get it right"])
def test_asking_if_right_just_after_a_wrong_answer_is_told_no_and_the_question_waits(
        fractions, message):
    """The "not quite" may have been missed: "no, it wasn't", and the same question again;
    not the step explained as to "why?", and not "i don't get it" for the policy."""
    d = started(fractions)
    turn(d, "5/8")  # wrong
    evidence, r = turn(d, message)
    assert any(line in r.text for line in _lines("confirm_wrong")), r.text
    assert d.question.prompt in r.text and d.step.explanations.standard not in r.text
    assert not evidence.typed_confused and evidence.correct is None
    assert evidence.wrong_streak == 1


def test_a_feeling_said_while_the_tutor_steps_up_gets_no_unasked_help(fractions):
    """While the policy has the tutor step up (a bored student: harder questions), a vent is
    heard and the question follows; never "let's make it easier" and a hint nobody asked for
    ("wake me up when its actually hard" was heard as worry)."""
    d = started(fractions)
    harder = Decision("bored", "upbeat", "harder", 0, "r")
    _, r = turn(d, "im scared ill get it wrong", harder)
    assert r.move == "vent" and any(line in r.text for line in _lines("reassure"))
    assert d.question.prompt in r.text and d.question.hints[0] not in r.text
    assert not any(line in r.text for line in _lines("more_help"))


def test_the_redirect_from_chat_does_not_judge_what_was_said():
    """Off-topic is anything but the maths ("do my parents see these scores", "my english is
    not so good", "my dog is called biscuit"): the redirect must fit every one of them."""
    judging = re.compile(r"\b(nice|fun|love|good to hear|interesting|maybe later)\b", re.I)
    assert not [line for line in _lines("off_topic") if judging.search(line)]


def test_a_greeting_mid_lesson_greets_and_continues(fractions):
    d = started(fractions)
    _, r = turn(d, "hello again")
    assert r.move == "greeting" and any(line in r.text for line in _lines("greet"))
    assert d.question.prompt in r.text


@pytest.mark.parametrize("message", ["6/8 = 3/4", "three eighths", "3 eighths", "0.375",
                                     "37.5%", "i think its 3/8", "6/16 = 3/8"])
def test_answers_in_the_forms_students_write(fractions, message):
    d = started(fractions)  # the first question's answer is 3/8
    _, r = turn(d, message)
    if message == "6/8 = 3/4":
        assert r.move == "answer" and r.correct is False and "3/4" in (r.verdict.normalized)
    else:
        assert r.move == "answer" and r.correct is True, (message, r.text)


@pytest.mark.parametrize("message", ["I need a break", "can you show me an example?",
                                     "show me the answer", "ok", "thanks", "what was the question",
                                     "i hate this", "can we stop", "idk", "why"])
def test_no_request_is_read_as_an_answer(fractions, message):
    d = started(fractions)
    _, r = turn(d, message)
    assert r.move != "answer" and r.correct is None
    assert "I expected a number" not in r.text and "couldn't find a number" not in r.text


@pytest.mark.parametrize("typed, correct", [
    ("How many parts we have", False), ("how many part we have.", False),
    ("how many equal parts the whole is cut into", True), ("b", False)])
def test_a_choice_typed_out_is_an_answer(fractions, typed, correct):
    """An option's text, typed with a slip or not, answers a choice question: it is never
    read as chat ("Thanks for telling me. Let's get back to the question.")."""
    d = Dialogue(fractions, seed=0)
    d.resume("denominator_meaning")
    ev, r = turn(d, typed)
    assert r.move == "answer" and r.correct is correct and ev.correct is correct


@pytest.mark.parametrize("heard", ["vent", "ack", "off_topic"])
def test_an_explanation_the_checker_accepts_is_an_answer_whatever_the_classifier_hears(
        fractions, monkeypatch, heard):
    """A free-text question's answer is a long sentence; when the classifier hears a feeling
    or chat in it but it asks for nothing, calmly, and the checker accepts it, it is the
    answer. A request or a frustrated message keeps its kind, and a sentence the checker does
    not accept stays what was heard."""
    import tutor.dialogue as dialogue_module
    from tutor.intents import Move

    monkeypatch.setattr(dialogue_module, "classify_move",
                        lambda text, expecting_answer: Move(heard, text))
    right = ("the parts must be the same size so that every part is the same fraction of "
             "the whole")
    d = Dialogue(fractions, seed=0)
    d.resume("why_equal_parts")
    ev, r = turn(d, right)
    assert r.move == "answer" and r.correct is True and ev.correct is True
    d = Dialogue(fractions, seed=0)
    d.resume("why_equal_parts")
    _, r = turn(d, "i had pizza for lunch today")
    assert r.move == heard and r.correct is None
    for kind, frustrated in (("why", False), (heard, True)):
        monkeypatch.setattr(dialogue_module, "classify_move",
                            lambda text, expecting_answer: Move(kind, text, frustrated=frustrated))
        d = Dialogue(fractions, seed=0)
        d.resume("why_equal_parts")
        _, r = turn(d, right)
        assert r.move == kind and r.correct is None


@pytest.mark.parametrize("heard", ["vent", "ack", "off_topic"])
def test_a_wrong_explanation_is_a_wrong_answer_not_a_feeling(fractions, monkeypatch, heard):
    """A calm sentence that tries to answer a free-text question and misses ("because the
    numbers are like that", or one halfway to the idea) is a wrong answer with a hint, whatever
    the classifier heard in it: never "Glad to hear it"."""
    import tutor.dialogue as dialogue_module
    from tutor.intents import Move

    monkeypatch.setattr(dialogue_module, "classify_move",
                        lambda text, expecting_answer: Move(heard, text))
    for attempt in ("because the numbers are like that", "cuz its fair",
                    "porque tienen que ser iguales", "the parts have to be fair"):
        d = Dialogue(fractions, seed=0)
        d.resume("why_equal_parts")
        ev, r = turn(d, attempt)
        assert (r.move, r.correct, ev.correct, ev.wrong_streak) == ("answer", False, False, 1)
    d = Dialogue(fractions, seed=0)
    d.resume("why_equal_parts")
    _, r = turn(d, "ok")
    assert r.move == heard and r.correct is None


def test_the_right_explanation_half_heard_as_a_request_is_the_answer(fractions, monkeypatch):
    """A stated explanation the checker accepts, which the classifier hears as a request only
    half surely, is the answer; heard surely, or asked with "?", it stays the request."""
    import tutor.dialogue as dialogue_module
    from tutor.intents import Move

    right = ("the parts have to be the same size so each one is the same fraction of the "
             "whole")
    for kind, p, text, taken in (("confused", 0.51, right, True),
                                 ("why", 0.9, right, False),
                                 ("confused", 0.51, right + "?", False)):
        monkeypatch.setattr(dialogue_module, "classify_move",
                            lambda t, expecting_answer, kind=kind, p=p: Move(kind, t, p_kind=p))
        d = Dialogue(fractions, seed=0)
        d.resume("why_equal_parts")
        _, r = turn(d, text)
        assert (r.move, r.correct) == (("answer", True) if taken else (kind, None)), (kind, p)


def test_a_feeling_said_beside_a_free_text_question_stays_a_feeling(fractions, monkeypatch):
    """What the classifier hears as worry, feeling down or anger stays that feeling even where
    it shares words with the idea; and a sentence embedding's loose closeness ("i hate
    fractions" comes a quarter of the way to any sentence about fractions) makes no attempt."""
    import tutor.dialogue as dialogue_module
    from tutor.intents import Move

    down = {"down": 0.8, "glad": 0.1, "worry": 0.1}
    monkeypatch.setattr(dialogue_module, "classify_move",
                        lambda text, expecting_answer: Move("vent", text, feelings=down))
    d = Dialogue(fractions, seed=0)
    d.resume("why_equal_parts")
    _, r = turn(d, "im rubbish at the parts and sizes stuff")
    assert r.move == "vent" and r.correct is None
    monkeypatch.setattr(dialogue_module, "classify_move",
                        lambda text, expecting_answer: Move("vent", text))
    d = Dialogue(fractions, seed=0, similarity=lambda a, b: 0.3)
    d.resume("why_equal_parts")
    _, r = turn(d, "i hate fractions")
    assert r.move == "vent" and r.correct is None


def test_evidence_counts_the_letters_of_a_reply_in_any_script(fractions):
    """The policy reads a reply of a few letters minutes later as drifting off: the dialogue
    counts letters and digits, not bytes or punctuation, in whatever script."""
    d = started(fractions)
    assert [d.evidence(m, now=60.0).letters for m in ("k", "mm...", "好的", "ok, back now")] == [
        1, 2, 2, 9]


def test_a_second_wrong_answer_in_seconds_is_a_fast_guess(fractions):
    """`fast_wrong`: wrong again, in under half the expected time; the first slip is not, it
    is `rushed`."""
    d = started(fractions)
    first = d.evidence("99/100", now=3.0)
    d.respond("99/100", NORMAL, now=3.0)
    again = d.evidence("98/100", now=6.0)
    d.respond("98/100", NORMAL, now=6.0)
    slow = d.evidence("97/100", now=60.0)
    assert (first.correct, first.fast_wrong, first.rushed) == (False, False, True)
    assert (again.wrong_streak, again.fast_wrong, again.rushed) == (2, True, False)
    assert (slow.wrong_streak, slow.fast_wrong, slow.rushed) == (3, False, False)


def test_a_time_or_temperature_said_to_a_fractions_question_is_no_wrong_answer(fractions):
    d = started(fractions)
    for message in ("wait 5 minutes", "2 mins", "she say 12 oclock ok",
                    "its like 30 degrees in here"):
        evidence, reply = turn(d, message)
        assert reply.move != "answer" and reply.correct is None, message
        assert evidence.wrong_streak == 0 and evidence.correct is None, message
    evidence, reply = turn(d, "wait 5 minutes")
    assert reply.move == "break"


def test_the_answer_just_got_right_said_again_is_no_wrong_answer_to_the_next(fractions):
    """Just after a right answer the tutor has moved on; "3/4 obviously. give me something
    harder", or the same answer sent twice over a slow link, is about the last question: no
    wrong answer to this one. The next question's own answer still counts."""
    for remark in ("{a} obviously. give me something harder", "yesss {a}!!", "{a}"):
        d = started(fractions)
        right = d.question.answer[0]
        _, reply = turn(d, right)
        assert reply.correct is True
        assert d.question.answer[0] != right  # a question with another answer waits
        message = remark.format(a=right)
        evidence, reply = turn(d, message)
        assert reply.correct is None and reply.move != "answer", message
        assert evidence.wrong_streak == 0 and evidence.correct is None, message
        if remark == "{a}":  # nothing asked: yes, that was right, and on with this one
            assert "confirmed the last answer was right" in reply.action
        _, reply = turn(d, d.question.answer[0])
        assert reply.correct is True


def test_the_last_answer_again_is_an_attempt_when_the_lesson_knows_it_as_a_wrong_one():
    """When the waiting question's known wrong answers hold the last one's answer, saying it
    again is that mistake, not a remark about the last question: it counts, with its
    feedback."""
    from tutor.curriculum import Pack

    def q(qid: str, prompt: str, answer: str, wrong: str | None = None) -> dict:
        out = {"id": qid, "prompt": prompt, "kind": "number", "answer": answer,
               "hints": ["Work it out step by step."]}
        if wrong:
            out["misconceptions"] = [{"answer": wrong, "name": "added",
                                      "feedback": "Multiply before you add."}]
        return out

    pack = Pack.model_validate({
        "id": "values", "title": "Values", "description": "Substitution.",
        "topics": [{"id": "t", "title": "T", "steps": [{
            "id": "s", "title": "S", "skills": ["substitution"],
            "explanations": {"standard": "Put the number in place of the letter."},
            "questions": [q("q1", "Find x + 2 when x = 5.", "7"),
                          q("q2", "Find 3x + 2 when x = 5.", "17", wrong="7")]}]}]})
    d = started(pack)
    assert turn(d, "7")[1].correct is True
    evidence, reply = turn(d, "7")
    assert reply.move == "answer" and reply.correct is False
    assert evidence.wrong_streak == 1 and "Multiply before you add." in reply.text


def test_a_time_is_the_answer_to_a_question_that_asks_for_one():
    from tutor.curriculum import Pack

    question = {"id": "q", "prompt": "How many minutes is 3/4 of an hour?", "kind": "number",
                "answer": 45, "hints": ["An hour is 60 minutes."]}
    pack = Pack.model_validate({
        "id": "time", "title": "Time", "description": "Minutes.",
        "topics": [{"id": "t", "title": "T", "steps": [{
            "id": "s", "title": "S", "skills": ["time"],
            "explanations": {"standard": "An hour has 60 minutes."},
            "questions": [question]}]}]})
    d = started(pack)
    evidence, reply = turn(d, "45 minutes")
    assert reply.move == "answer" and reply.correct is True


def test_a_worried_question_is_answered_with_reassurance_then_the_question(fractions):
    """When the policy hears chat as a worry said ("will my teacher see this"), the tutor
    reassures before asking again; other chat is only steered back to the lesson."""
    from dataclasses import replace

    from tutor.prompts import PHRASES

    worried = replace(NORMAL, worried_question=True)
    d = started(fractions)
    _, r = turn(d, "will my teacher see this", worried)
    assert any(line in r.text for line in PHRASES["worried_question"]["neutral"])
    assert d.question.prompt in r.text
    _, r = turn(d, "did you watch the match", NORMAL)
    assert not any(line in r.text for line in PHRASES["worried_question"]["neutral"])
    assert any(line in r.text for line in PHRASES["off_topic"]["neutral"])


def test_too_easy_just_after_missing_the_question_keeps_the_question(fractions):
    """"too easy" (or "these are getting hard", which the classifier often hears so) just
    after a wrong answer to this question: no harder one and no step ahead; this one first."""
    d = started(fractions)
    turn(d, "3/5")
    for decision in (NORMAL, BORED):
        ev, r = turn(d, "too easy", decision)
        assert ev.too_easy and "just missed" in r.action
        assert r.question_id == fractions.steps[0].questions[0].id
    _, r = turn(d, "3/8")
    assert r.question_id != fractions.steps[0].questions[0].id  # answered: on as usual
