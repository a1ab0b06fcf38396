from __future__ import annotations

import pytest

from cmt.contract import EMOTIONS, AnalyzeResponse, reading_from_probs
from tutor.policy import Evidence, Policy, load_policy_config, student_note, struggling


def probs(label: str, p: float = 0.8) -> dict[str, float]:
    return {e: (p if e == label else (1 - p) / 6) for e in EMOTIONS}


def reading(label: str, p: float = 0.8) -> AnalyzeResponse:
    """A fused reading that names no modality."""
    return AnalyzeResponse.from_probs(probs(label, p), model_version="t", latency_ms=1)


def read(p: float = 0.8, **modalities: str) -> AnalyzeResponse:
    """A reading per modality, e.g. read(face="joy", text="anger")."""
    mods = {m: reading_from_probs(probs(label, p)) for m, label in modalities.items()}
    fused = {e: sum(r.probs[e] for r in mods.values()) / len(mods) for e in EMOTIONS}
    return AnalyzeResponse.from_probs(fused, modalities=mods, model_version="t", latency_ms=1)


WRONG = Evidence(wrong_streak=1, correct=False, move="answer")
RIGHT = Evidence(correct=True, move="answer")


def frames(pol: Policy, label: str, start: float, seconds: float, per_s: float = 2.0) -> float:
    t = start
    for _ in range(int(seconds * per_s)):
        t += 1 / per_s
        pol.observe(read(face=label), now=t)
    return t


def test_one_frame_of_a_frown_does_not_move_the_state():
    pol = Policy(clock=lambda: 0.0)
    t = frames(pol, "neutral", 0.0, 5)
    pol.observe(read(0.95, face="anger"), now=t + 0.5)
    d = pol.decide(read(text="neutral"), RIGHT, now=t + 1)
    d = pol.decide(read(text="neutral"), RIGHT, now=t + 5)
    assert d.state == "engaged" and d.changes == {}


def test_face_evidence_counts_seconds_not_frames():
    """Ten frames a second for 3 s weigh what two a second for 3 s weigh."""
    a, b = Policy(clock=lambda: 0.0), Policy(clock=lambda: 0.0)
    frames(a, "anger", 0.0, 3, per_s=2)
    frames(b, "anger", 0.0, 3, per_s=10)
    assert a.scores["frustrated"] == pytest.approx(b.scores["frustrated"], abs=0.02)


def test_the_dialogue_outweighs_a_smiling_face():
    pol = Policy(clock=lambda: 0.0)
    t, states = 0.0, []
    for i, ev in enumerate([WRONG, Evidence(wrong_streak=2, correct=False, move="answer"),
                            Evidence(wrong_streak=2, typed_frustration=True, move="confused"),
                            Evidence(wrong_streak=3, correct=False, move="answer")]):
        t = frames(pol, "joy", t, 3)
        states.append(pol.decide(read(face="joy"), ev, now=t).state)
    assert states[-1] in ("frustrated", "confused") and "delighted" not in states
    assert pol.tone == "calm"


def test_turns_two_seconds_apart_still_adapt_and_say_why():
    pol = Policy(clock=lambda: 0.0)
    d1 = pol.decide(read(0.7, text="anger"), WRONG, now=2)
    assert d1.state == "engaged" and "rising" in d1.reason  # one turn: not yet
    d2 = pol.decide(read(0.8, text="anger"),
                    Evidence(wrong_streak=1, typed_frustration=True, move="confused"), now=4)
    assert d2.state == "frustrated" and d2.tone == "calm" and d2.pacing == "worked_example"
    assert d2.changes["tone"] == ["neutral", "calm"]
    assert "typed frustration" in d2.reason and "calmer tone, worked example first" in d2.reason


def test_the_services_per_modality_reliability_weighs_a_reading():
    sure, doubtful = read(0.8, text="anger"), read(0.8, text="anger")
    object.__setattr__(doubtful.modalities["text"], "reliability", 0.1)  # a newer service's field
    a, b = Policy(clock=lambda: 0.0), Policy(clock=lambda: 0.0)
    a.decide(sure, now=5)
    b.decide(doubtful, now=5)
    assert b.scores["frustrated"] < a.scores["frustrated"]


def test_recovery_leaves_the_slow_mode():
    pol = Policy(clock=lambda: 0.0)
    t = 0.0
    for n in (1, 2, 3):
        t += 20
        wrong = Evidence(wrong_streak=n, correct=False, move="answer")
        pol.decide(read(text="neutral"), wrong, now=t)
    assert pol.pacing in ("slower", "worked_example")
    for _ in range(5):
        t += 20
        d = pol.decide(read(text="neutral"), RIGHT, now=t)
    assert d.state == "engaged" and d.pacing == "normal"


def test_long_frustration_earns_a_break_offer():
    pol = Policy(clock=lambda: 0.0)
    for t in (10, 20, 30):
        angry = Evidence(wrong_streak=3, correct=False, typed_frustration=True)
        pol.decide(reading("anger"), angry, now=t)
    assert pol.state == "frustrated"
    assert not pol.decide(reading("anger"), now=60).offer_break
    d = pol.decide(reading("anger"), Evidence(typed_frustration=True), now=160)
    assert d.offer_break and "break" in d.reason and "break" in student_note(d)


def test_control_mode_never_adapts():
    pol = Policy(mode="control", clock=lambda: 0.0)
    for t in (10, 20, 30):
        pol.observe(read(face="anger"), now=t - 1)
        d = pol.decide(reading("anger", 0.99), Evidence(wrong_streak=3, correct=False), now=t)
    assert (d.state, d.tone, d.changes) == ("engaged", "neutral", {})
    assert d.reason == "control mode: no adaptation" and student_note(d) == ""


def test_unsure_readings_do_not_count():
    pol = Policy(clock=lambda: 0.0)
    for t in (10, 20, 30):
        d = pol.decide(reading("anger", 0.2), now=t)
    assert d.state == "engaged" and "too unsure" in d.reason


def test_the_student_note_is_plain_and_names_what_drove_it():
    pol = Policy(clock=lambda: 0.0)
    pol.decide(read(0.8, speech="fear"), now=5, source="spoken")
    d = pol.decide(read(0.85, speech="fear"), now=10, source="spoken")
    assert d.state == "anxious" and d.driver == "speech"
    note = student_note(d)
    assert "voice" in note and "wrote" not in note and not any(c.isdigit() for c in note)


def test_struggling_is_judged_per_turn():
    assert struggling(["engaged", "confused", "frustrated"])[0]
    assert struggling(["confused", "confused", "confused", "engaged"])[0]
    ok, why = struggling(["engaged", "confused", "engaged", "engaged"])
    assert not ok and why == ""
    assert struggling([]) == (False, "")


def test_a_bad_policy_file_names_the_problem(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text((load_policy_config.__globals__["DEFAULT_POLICY"]).read_text()
                   .replace("frustrated: {tone: calm", "frustratd: {tone: calm"))
    with pytest.raises(ValueError, match="unknown states.*frustratd"):
        load_policy_config(bad)
    with pytest.raises(ValueError, match="mode"):
        Policy(mode="sometimes")


def test_a_live_stream_deciding_on_every_frame_switches_by_time_not_by_frame_count():
    pol = Policy(clock=lambda: 0.0)
    t = 10.0
    for _ in range(4):  # two seconds of an angry face, decided frame by frame
        t += 0.5
        d = pol.decide(read(0.9, face="anger"), now=t, turn=False)
    assert d.state == "engaged"


def test_fast_right_answers_are_boredom_with_too_easy_and_not_under_a_smile():
    fast = Evidence(correct=True, fast_correct=True, move="answer")
    keen, bored = Policy(clock=lambda: 0.0), Policy(clock=lambda: 0.0)
    t = 0.0
    for i in range(6):
        t += 4
        d_keen = keen.decide(read(face="joy", text="neutral"), fast, now=t)
        said = Evidence(too_easy=True, move="too_easy") if i in (1, 3) else fast
        d_bored = bored.decide(read(text="neutral"), said, now=t)
    assert d_keen.state in ("engaged", "delighted")
    assert d_bored.state == "bored" and d_bored.pacing == "harder"


def _quick_right_answers(pattern: str) -> list[str]:
    """A student answering right under calm readings, 8 s apart: "f" a quick right answer,
    "s" a steady one, "w" a wrong one. The states after each turn."""
    fast = Evidence(correct=True, fast_correct=True, move="answer")
    turns = {"f": fast, "s": RIGHT, "w": WRONG}
    pol, t, states = Policy(clock=lambda: 0.0), 0.0, []
    for step in pattern:
        t += 8
        states.append(pol.decide(read(face="neutral", text="neutral"), turns[step], now=t).state)
    return states


def test_a_run_of_quick_right_answers_is_work_too_easy_and_one_or_two_are_not():
    """Nothing said, no look: answering right, quickly, again and again says the work is too
    easy (a tutor steps up). One or two quick ones, or quick ones broken by a steady answer or
    a slip, are a student doing well."""
    assert _quick_right_answers("ffffff")[-1] == "bored"
    assert "bored" not in _quick_right_answers("ff")
    assert "bored" not in _quick_right_answers("ffsffsffsffs")
    assert "bored" not in _quick_right_answers("ffwffwffwff")


def test_a_slow_slip_is_hesitation_only_against_the_students_own_pace():
    """A wrong answer after 45 s is hesitation for a student whose right answers take 15 s,
    not for one whose right answers take 45 s."""
    def slow_wrong_counts(right_s: float) -> float:
        pol = Policy(clock=lambda: 0.0)
        t = 0.0
        for _ in range(3):
            t += right_s
            pol.decide(None, Evidence(correct=True, response_s=right_s, move="answer"), now=t)
        assert pol.slow_s() == max(30.0, 1.5 * right_s)
        return Evidence(correct=False, wrong_streak=1, response_s=45.0,
                        move="answer").amounts(pol.slow_s())["slow_wrong"]

    assert slow_wrong_counts(15.0) == 1.0 and slow_wrong_counts(45.0) == 0.0
    assert Policy(clock=lambda: 0.0).slow_s() == 30.0  # no right answer yet: the config's


def test_asking_to_skip_after_right_answers_is_boredom_not_after_wrong_ones():
    def bored_after(correct: bool) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(correct=correct, wrong_streak=0 if correct else 1,
                                  response_s=20.0, move="answer"), now=20.0)
        before = pol.scores["bored"]
        pol.decide(None, Evidence(move="skip", wrong_streak=0 if correct else 1), now=25.0)
        return pol.scores["bored"] - before

    assert bored_after(True) > 0.1 and bored_after(False) <= 0.0


def test_asking_calmly_to_stop_after_a_right_answer_is_boredom_not_after_a_wrong_one():
    """"can i go now" just after a right answer: had enough (tired or bored), not stuck. Said
    after a wrong answer, or in anger, it is no boredom."""
    def bored_after(correct: bool, angry: bool = False) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(correct=correct, wrong_streak=0 if correct else 1,
                                  response_s=20.0, move="answer"), now=20.0)
        before = pol.scores["bored"]
        pol.decide(None, Evidence(move="break", wrong_streak=0 if correct else 1,
                                  typed_frustration=angry, frustration_p=0.9 * angry), now=25.0)
        return pol.scores["bored"] - before

    assert bored_after(True) > 0.1
    assert bored_after(False) <= 0.0 and bored_after(True, angry=True) <= 0.0


def test_chatting_off_topic_after_a_right_answer_is_boredom_unless_it_is_worry():
    """"how many more questions?", "did you watch the match" just after a right answer: a mind
    elsewhere. Not after a wrong answer, nor in anger, nor as far as the chat is worry ("will
    my teacher see this")."""
    def bored_after(correct: bool, *, angry: bool = False, worry: float = 0.0) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(correct=correct, wrong_streak=0 if correct else 1,
                                  response_s=20.0, move="answer"), now=20.0)
        before = pol.scores["bored"]
        d = pol.decide(None, Evidence(move="off_topic", wrong_streak=0 if correct else 1,
                                      typed_frustration=angry, frustration_p=0.9 * angry,
                                      feelings={"worry": worry, "glad": 1.0 - worry}), now=25.0)
        assert ("chatting while it goes well" in d.reason) == (correct and not angry
                                                             and worry < 0.5)
        return pol.scores["bored"] - before

    assert bored_after(True) > 0.1
    assert bored_after(False) <= 0.0 and bored_after(True, angry=True) <= 0.0
    assert bored_after(True, worry=0.97) < bored_after(True) / 4


def test_chat_after_chat_while_it_goes_well_is_a_mind_elsewhere_and_the_student_is_told_so():
    pol = Policy(clock=lambda: 0.0)
    pol.decide(None, Evidence(correct=True, move="answer", response_s=20.0), now=20.0)
    chat = Evidence(move="off_topic", feelings={"glad": 1.0}, response_s=8.0)
    states = [pol.decide(None, chat, now=20.0 + 8 * i) for i in (1, 2, 3)]
    assert [d.state for d in states] == ["engaged", "engaged", "bored"]
    assert student_note(states[-1]) == ("You seem a bit far away, so let's try something more "
                                        "of a challenge! I noticed it in what you wrote.")


def test_owning_a_first_slip_in_words_counts_towards_doing_fine_not_a_bare_ok():
    """"oh i added the bottoms. silly me" just after a first wrong answer: the slip is seen.
    "ok" says nothing of the kind, nor words owned after two wrong answers in a row."""
    def after(letters: int, *, streak: int = 1) -> tuple[float, str]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(correct=True, move="answer", response_s=20.0), now=20.0)
        for i in range(streak):
            pol.decide(None, Evidence(correct=False, wrong_streak=i + 1, move="answer",
                                      response_s=20.0), now=40.0 + 20 * i)
        d = pol.decide(None, Evidence(move="ack", wrong_streak=streak, letters=letters,
                                      response_s=8.0), now=48.0 + 20 * streak)
        return pol.scores["engaged"], d.reason

    owned, reason = after(25)
    assert "owned the slip" in reason
    bare, reason = after(2)
    assert "owned the slip" not in reason and owned > bare + 0.1
    assert "owned the slip" not in after(25, streak=2)[1]


def test_a_turn_that_owns_a_slip_does_not_confirm_a_struggle():
    """A wrong answer under a camera reading sadness starts a switch to struggling; the next
    turn, "ah i added the bottom numbers. gotta make em same first", says the student sees
    the slip, as a right answer would: it does not confirm the switch. A bare "ok" does."""
    def after(letters: int) -> list[str]:
        pol, t, states = Policy(clock=lambda: 0.0), 0.0, []
        turns = [(RIGHT, 40), (WRONG, 60),
                 (Evidence(move="ack", wrong_streak=1, letters=letters, response_s=20.0), 20)]
        for ev, seconds in turns:
            t = frames(pol, "sadness", t, seconds)
            states.append(pol.decide(read(0.7, face="sadness", text="neutral"), ev, now=t).state)
        return states

    assert after(45)[-1] == "engaged"
    assert after(2)[-1] in ("anxious", "confused", "frustrated")


def test_laughing_off_one_slip_is_not_failing_but_a_smile_through_two_is():
    """One wrong answer is a slip: joy in the voice and face still counts towards delight.
    From two wrong answers in a row, a smile counts little (`smile_while_failing`)."""
    def after(wrongs: int) -> dict[str, float]:
        pol = Policy(clock=lambda: 0.0)
        t = 0.0
        for n in range(1, wrongs + 1):
            t += 20
            pol.decide(None, Evidence(wrong_streak=n, correct=False, move="answer"), now=t)
        pol.decide(read(0.85, face="joy", speech="joy"), Evidence(move="vent"), now=t + 5)
        return pol.scores

    assert after(1)["delighted"] > 2 * after(2)["delighted"]


def test_a_switch_is_earned_by_the_family_that_leads_not_by_an_earlier_one():
    """Delight rising on one turn does not lend its turn count to confusion on the next:
    one wrong answer right after a cheerful greeting does not switch at once."""
    pol = Policy(clock=lambda: 0.0)
    pol.decide(read(0.9, face="joy", speech="joy", text="joy"), Evidence(move="greeting"), now=4)
    d = pol.decide(read(0.6, face="neutral"), WRONG, now=24)
    assert d.state in ("engaged", "delighted")


def test_no_switch_on_a_turn_whose_answer_says_otherwise():
    """A right answer is not the turn to conclude that a student struggles (a shadow read as
    fear over it), nor a wrong one that they are doing fine (a smile over it): the switch
    waits for a turn that does not contradict it."""
    pol = Policy(clock=lambda: 0.0)
    pol.decide(read(0.8, face="fear"), WRONG, now=30)
    d = pol.decide(read(0.8, face="fear"), RIGHT, now=60)
    assert pol.scores["anxious"] > pol.scores["engaged"] and d.state == "engaged"
    assert pol.decide(read(0.8, face="fear"), Evidence(move="ack"), now=70).state == "anxious"

    pol = Policy(clock=lambda: 0.0)
    pol.decide(read(0.6, face="neutral"), WRONG, now=20)
    pol.decide(read(0.6, face="neutral"), Evidence(wrong_streak=2, correct=False), now=40)
    assert pol.state == "confused"
    glad = read(0.9, face="joy", speech="joy", text="joy")
    pol.decide(glad, RIGHT, now=130)
    d = pol.decide(glad, WRONG, now=135)
    assert pol.scores["delighted"] > pol.scores["confused"] and d.state == "confused"
    assert pol.decide(glad, RIGHT, now=160).state == "engaged"  # out of struggling: relief


def test_typed_frustration_counts_as_surely_as_the_flag_is_sure():
    def frustration(p: float) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(typed_frustration=True, frustration_p=p, move="vent"), now=5)
        return pol.scores["frustrated"]

    assert frustration(0.55) < frustration(0.99)


def test_too_easy_counts_as_surely_as_the_classifier_heard_it():
    def boredom(p: float) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(too_easy=True, too_easy_p=p, move="too_easy"), now=5)
        return pol.scores["bored"]

    assert 0 < boredom(0.5) < boredom(1.0)


def test_a_worry_put_into_words_counts_as_said_not_guessed():
    """"i'm scared i'll get it wrong" (a vent the flag does not call frustration) is taken in
    by the dialogue in the direction its words read; the same reading on an "ok" (an ack)
    counts only as a text reading."""
    def anxiety(move: str) -> float:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(read(0.85, text="fear"), Evidence(move=move), now=5)
        return pol.scores["anxious"]

    assert anxiety("vent") > anxiety("ack") + 0.15


def test_the_feeling_a_vent_says_outweighs_the_words_emotion_reading():
    """The move classifier hears which feeling a vent says ("what if i blank in the exam":
    worry), and the dialogue takes that in, whatever the words' emotion reading says
    (surprise); without that reading it follows the words' emotion."""
    worry = {"worry": 0.8, "down": 0.1, "glad": 0.05, "bored": 0.03, "angry": 0.02}

    def scores(feelings) -> dict[str, float]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(read(0.6, text="surprise"), Evidence(move="vent", feelings=feelings), now=5)
        return pol.scores

    assert max(scores(worry), key=scores(worry).get) == "anxious"
    assert scores(worry)["anxious"] > scores(None)["anxious"] + 0.15
    glad = scores({"glad": 0.9, "worry": 0.1})
    assert glad["delighted"] > glad["anxious"]
    pol = Policy(clock=lambda: 0.0)
    d = pol.decide(read(0.6, face="joy"), Evidence(move="vent", feelings=worry), now=5)
    assert "said they're worried" in d.reason
    assert d.state == "anxious" and d.driver == "said"  # the words drove it, not the smile
    assert "in what you wrote" in student_note(d)


def test_a_feeling_said_surely_switches_at_once_and_a_half_heard_one_waits():
    """A tutor answers "i'm on a roll!!" as it is said: a feeling heard at least
    `said_at_once` surely switches on its turn; one heard less surely waits for the usual
    confirmation (`confirm_s`, or a second turn)."""
    def states(p_glad: float) -> list[str]:
        pol = Policy(clock=lambda: 0.0)
        feelings = {"glad": p_glad, "worry": (1 - p_glad) / 2, "down": (1 - p_glad) / 2}
        return [pol.decide(read(0.6, text="joy"), Evidence(move="vent", feelings=feelings),
                           now=t).state for t in (5, 7)]

    assert load_policy_config().said_at_once == pytest.approx(0.8)
    assert states(0.9) == ["delighted", "delighted"]
    assert states(0.6) == ["engaged", "delighted"]


def test_too_easy_said_surely_switches_at_once_and_a_half_heard_one_waits():
    """ "too easy", said again after quick right answers, is a boredom put into words: heard
    at least `said_at_once` surely it switches on the turn boredom takes the lead, as a
    vent's feeling does; heard less surely it waits for the usual confirmation."""
    fast = Evidence(correct=True, fast_correct=True, move="answer")

    def states(p: float) -> list[str]:
        pol = Policy(clock=lambda: 0.0)
        for t in (6, 12):  # two quick right answers (a run of them would be boredom unsaid)
            pol.decide(None, fast, now=t)
        said = Evidence(move="too_easy", too_easy=True, too_easy_p=p)
        return [pol.decide(None, e, now=t).state
                for t, e in ((26, said), (28, said), (30, Evidence(move="ack")))]

    assert states(0.99) == ["bored", "bored", "bored"]
    assert states(0.7) == ["engaged", "bored", "bored"]


def test_harder_work_asked_for_keenly_is_gladness_and_a_complaint_is_boredom():
    """ "this is fun can i do a harder one" is a student enjoying the work; "boring. too easy"
    a complaint: the same move, said one way or the other (the classifier's keenness), after
    two quick right answers and before another, camera off."""
    fast = Evidence(correct=True, fast_correct=True, move="answer")

    def states(keen: float) -> list[str]:
        pol = Policy(clock=lambda: 0.0)
        for t in (6, 12):
            pol.decide(None, fast, now=t)
        said = Evidence(move="too_easy", too_easy=True, too_easy_p=0.99, too_easy_keen=keen)
        return [pol.decide(None, e, now=t).state for t, e in ((20, said), (26, fast))]

    assert states(0.95) == ["delighted", "delighted"]
    assert states(0.0) == ["bored", "bored"]
    assert "bored" not in states(0.5)  # half keen: no boredom said at once, nor borne out


def test_too_easy_before_any_right_answer_is_a_claim_to_test_not_boredom_at_once():
    """ "the others are already past this" heard surely as too easy, before the student has
    answered anything right, is not taken at once (the dialogue tests the claim with a hard
    question): it still counts, and a right answer bearing it out brings boredom on."""
    said = Evidence(move="too_easy", too_easy=True, too_easy_p=0.99)
    pol = Policy(clock=lambda: 0.0)
    assert pol.decide(None, said, now=6).state == "engaged"
    assert pol.scores["bored"] > 0
    wrong = Evidence(correct=False, wrong_streak=1, move="answer", response_s=60.0)
    assert pol.decide(None, wrong, now=66).state != "bored"  # not borne out

    pol = Policy(clock=lambda: 0.0)
    pol.decide(None, Evidence(correct=True, move="answer", response_s=20.0), now=20)
    assert pol.decide(None, said, now=26).state == "bored"  # after a right answer: at once


def test_a_few_letters_minutes_later_is_drifting_off_and_slow_right_answers_keep_it():
    """ "k" two minutes after the tutor's reply, while the answers go right, is a mind
    elsewhere (boredom), whatever the language; a long message after a long gap ("back, sorry
    my mum needed me"), a quick "k", or a "k" while failing is not; a right answer that again
    takes minutes goes on drifting rather than counting as doing fine."""
    def after(said: Evidence, *, first: Evidence = RIGHT, then: Evidence | None = None):
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(correct=True, move="answer", response_s=20), now=20)
        pol.decide(None, first, now=40)
        d = pol.decide(None, said, now=40 + (said.response_s or 0))
        if then is not None:
            d = pol.decide(None, then, now=40 + said.response_s + then.response_s)
        return pol, d

    k = Evidence(move="ack", letters=1, response_s=120)
    pol, d = after(k)
    assert "drifting off (120 s to reply)" in d.reason
    assert pol.scores["bored"] > pol.scores["engaged"] + 0.1
    for calm in (Evidence(move="off_topic", letters=24, response_s=240),
                 Evidence(move="ack", letters=1, response_s=20)):
        assert "drifting" not in after(calm)[1].reason
    failing = Evidence(wrong_streak=1, correct=False, move="answer", response_s=20)
    assert "drifting" not in after(k, first=failing)[1].reason
    slow_right = Evidence(correct=True, move="answer", response_s=150)
    pol, d = after(k, then=slow_right)
    assert "drifting off (150 s to reply)" in d.reason and d.state == "bored"
    assert d.drifting and "state" in d.changes
    assert student_note(d) == ("You seem a bit far away, so let's try something more of a "
                               "challenge! I noticed it from how long you take to reply.")
    assert "drifting" not in Policy(clock=lambda: 0.0).decide(None, slow_right, now=150).reason


def test_wrong_again_in_seconds_is_guessing_and_leans_to_frustration():
    """A second wrong answer in a row given fast (`fast_wrong`: guessing, giving up) leans the
    struggle towards frustration, as a slow one leans it to confusion; the reason says so."""
    def second(fast: bool):
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, Evidence(wrong_streak=1, correct=False, move="answer"), now=20)
        d = pol.decide(None, Evidence(wrong_streak=2, correct=False, move="answer",
                                      fast_wrong=fast, response_s=4), now=24)
        return pol.scores, d

    (guess, d), (plain, _) = second(True), second(False)
    assert guess["frustrated"] > plain["frustrated"] + 0.05
    assert guess["confused"] < plain["confused"] and "guessed fast" in d.reason


def test_a_first_wrong_answer_given_in_seconds_is_a_rush_not_a_student_lost():
    """A first wrong answer given fast (`rushed`: "wait no", fixed seconds later) weighs less
    towards struggling than one thought over, by `rushed_wrong`; a slow one more."""
    def first(**kw) -> dict[str, float]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, RIGHT, now=20)
        pol.decide(None, Evidence(wrong_streak=1, correct=False, move="answer", **kw), now=40)
        return pol.scores

    rushed, plain = first(rushed=True, response_s=3), first(response_s=15)
    assert rushed["confused"] < plain["confused"] - 0.05
    assert rushed["engaged"] > plain["engaged"]


def test_right_answers_after_a_worry_put_into_words_are_still_worry():
    """Right answers say the student is not failing, not how they feel: after "sorry for
    being slow" (a vent heard as worry), right answers with calm words keep the worry; after
    an "ok" they are the student doing fine."""
    worry = {"worry": 0.8, "down": 0.1, "glad": 0.05, "bored": 0.03, "angry": 0.02}

    def after(said: Evidence) -> Policy:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(read(0.6, text="neutral"), RIGHT, now=30)
        pol.decide(read(0.6, text="sadness"), said, now=36)
        for t in (70, 105):
            pol.decide(read(0.6, text="neutral"), RIGHT, now=t)
        return pol

    worried, fine = after(Evidence(move="vent", feelings=worry)), after(Evidence(move="ack"))
    assert worried.state == "anxious"
    assert worried.scores["anxious"] > worried.scores["engaged"]
    assert fine.state == "engaged" and fine.scores["engaged"] > fine.scores["anxious"] + 0.2


def test_wrong_answers_with_a_fearful_voice_are_anxiety_not_only_confusion():
    """Wrong answers say the student struggles, not how: with a fearful voice the struggle
    leans to anxiety, with no reading it stays the dialogue's own (confusion)."""
    def after(voice: str | None) -> dict[str, float]:
        pol = Policy(clock=lambda: 0.0)
        for n in (1, 2):
            pol.decide(read(0.8, speech=voice) if voice else None,
                       Evidence(wrong_streak=n, correct=False, move="answer"), now=20.0 * n)
        return pol.scores

    assert after("fear")["anxious"] > after("fear")["confused"]
    assert after(None)["confused"] > after(None)["anxious"]


def test_a_calm_student_who_keeps_failing_is_confused_not_frustrated():
    """Neutral readings with a crumb of anger beside slow wrong answers: the calm counts
    towards confusion in the struggle's split (`calm_while_struggling`), so the crumb does
    not make him frustrated; without it, frustration leads."""
    calm = {e: 0.02 for e in EMOTIONS} | {"neutral": 0.80, "anger": 0.10}

    def quiet(calm_weight: float) -> Policy:
        config = load_policy_config().model_copy(update={"calm_while_struggling": calm_weight})
        pol = Policy(config, clock=lambda: 0.0)
        for n in (1, 2, 3):
            one = reading_from_probs(calm)  # the face and the words read alike
            pol.decide(AnalyzeResponse.from_probs(calm, modalities={"face": one, "text": one},
                                                  model_version="t", latency_ms=1),
                       Evidence(wrong_streak=n, correct=False, move="answer"), now=25.0 * n)
        return pol

    assert load_policy_config().calm_while_struggling > 0
    shipped, without = quiet(load_policy_config().calm_while_struggling), quiet(0.0)
    assert shipped.scores["confused"] > shipped.scores["frustrated"]
    assert shipped.state == "confused"
    assert without.scores["frustrated"] > without.scores["confused"]


def test_right_answers_after_too_easy_bear_it_out_unless_they_are_enjoyed():
    """After "too easy", a right answer bears the claim out: a quick one as said, a steady or
    slow one except as far as the readings feel delight; and the claim stands while right
    answers keep coming (here four, 100 s apart, past `too_easy_memory_s`). A flat student
    who said it is easy is bored; one grinning through the same answers is not."""
    def after(feel: str, seconds: float) -> Policy:
        pol = Policy(clock=lambda: 0.0)
        t = 0.0
        for _ in range(3):
            t += 15.0
            pol.decide(read(text=feel, face=feel),
                       Evidence(correct=True, move="answer", response_s=15.0), now=t)
        t += 5.0
        pol.decide(read(text="neutral"), Evidence(too_easy=True, move="too_easy"), now=t)
        for _ in range(4):
            t += seconds
            pol.decide(read(text=feel, face=feel),
                       Evidence(correct=True, move="answer", response_s=seconds), now=t)
        return pol

    assert 4 * 100.0 > load_policy_config().too_easy_memory_s
    for seconds in (15.0, 100.0):  # at their steady pace, and drifting off
        flat = after("neutral", seconds)
        assert flat.state == "bored", seconds
        enjoyed = after("joy", seconds)
        assert enjoyed.state in ("engaged", "delighted"), seconds
        assert enjoyed.scores["bored"] < flat.scores["bored"]


def test_a_run_of_right_answers_while_slowed_down_is_recovery():
    """Frustration typed twice over wrong answers, then right answers in a row: the run
    counts as recovery (`right_streak`), so doing fine leads sooner and the tutor leaves the
    slow mode. The same run from a student who is doing fine adds nothing (it would outvote
    a bored student's "too easy")."""
    def lead_of_fine(pol: Policy) -> float:
        fine = pol.scores["engaged"] + pol.scores["delighted"]
        return fine - sum(pol.scores[s] for s in ("frustrated", "anxious", "confused"))

    def with_streak(weight: float, *, struggling: bool) -> Policy:
        config = load_policy_config()
        weights = {**config.evidence_weights, "right_streak": {"engaged": weight}}
        pol = Policy(config.model_copy(update={"evidence_weights": weights}), clock=lambda: 0.0)
        t = 0.0
        for n in (1, 2) if struggling else ():
            t += 10.0
            pol.decide(read(text="anger"), Evidence(wrong_streak=n, correct=False, move="answer",
                                                    typed_frustration=True), now=t)
        assert pol.state == ("frustrated" if struggling else "engaged")
        for _ in range(4):
            t += 20.0
            pol.decide(read(text="neutral"), RIGHT, now=t)
        return pol

    shipped = load_policy_config().evidence_weights["right_streak"]["engaged"]
    assert shipped > 0
    recovered = with_streak(shipped, struggling=True)
    assert recovered.state in ("engaged", "delighted")
    assert lead_of_fine(recovered) > lead_of_fine(with_streak(0.0, struggling=True))
    assert with_streak(shipped, struggling=False).scores == \
        with_streak(0.0, struggling=False).scores


def _frowning_through(anger_at_rest: float | None, face_while_right: str) -> list[str]:
    """Three right answers 40 s apart with the camera reading `face_while_right`, then with it
    reading anger: a slip, a calm "let me think", a right answer and two wrong ones."""
    config = load_policy_config()
    if anger_at_rest is not None:
        config = config.model_copy(update={"anger_at_rest": anger_at_rest})
    pol, t, states = Policy(config, clock=lambda: 0.0), 0.0, []
    turns = [(face_while_right, RIGHT)] * 3 + [
        ("anger", WRONG), ("anger", Evidence(wrong_streak=1, move="ack")), ("anger", RIGHT),
        ("anger", WRONG), ("anger", Evidence(wrong_streak=2, correct=False, move="answer"))]
    for face, ev in turns:
        t = frames(pol, face, t, 40, per_s=0.5)
        states.append(pol.decide(read(0.6, face=face, text="neutral"), ev, now=t).state)
    return states


def test_a_camera_that_reads_anger_while_answers_go_right_is_the_students_usual_look():
    """A concentration frown or a gruff voice: anger read while the answers go right is taken
    off the sensor's later readings as calm (`anger_at_rest`), so a slip after it is not
    frustration; without the rule the frown made the first slip frustration."""
    assert load_policy_config().anger_at_rest > 0
    assert "frustrated" not in _frowning_through(None, "anger")
    assert _frowning_through(0.0, "anger")[4] == "frustrated"


def test_anger_that_comes_with_failing_is_kept():
    """The usual look is learned only while the answers go right: a camera calm then and
    angry as the answers go wrong still reads frustration."""
    assert _frowning_through(None, "neutral")[-1] == "frustrated"


def test_a_calm_cameras_crumbs_of_anger_are_not_a_usual_look():
    """A confident neutral reading spreads a little over every emotion (here 0.033 to anger and
    to disgust): under `at_rest_min` nothing is taken off, so a quiet student's slow
    slips weigh exactly as they would without the rule."""
    def scores(anger_at_rest: float) -> dict[str, float]:
        config = load_policy_config().model_copy(update={"anger_at_rest": anger_at_rest})
        pol, t = Policy(config, clock=lambda: 0.0), 0.0
        for ev in [RIGHT, RIGHT, WRONG, Evidence(wrong_streak=2, correct=False, move="answer")]:
            t = frames(pol, "neutral", t, 40, per_s=0.5)
            pol.decide(read(0.8, face="neutral"), ev, now=t)
        return pol.scores

    assert load_policy_config().at_rest_min > 2 * (1 - 0.8) / 6
    assert scores(load_policy_config().anger_at_rest) == scores(0.0)


def _glare_through(fear_at_rest: float | None, *, said_worry: bool = False) -> list[str]:
    """A camera reading fear (glare on glasses, a dim room) 40 s before each of five right
    answers and a calm "ok", the words calm; with `said_worry`, the student says a worry after
    the first."""
    config = load_policy_config()
    if fear_at_rest is not None:
        config = config.model_copy(update={"fear_at_rest": fear_at_rest})
    pol, t, states = Policy(config, clock=lambda: 0.0), 0.0, []
    turns = [RIGHT] * 5 + [Evidence(move="ack")]
    if said_worry:
        turns.insert(1, Evidence(move="vent", feelings={"worry": 0.9, "glad": 0.1}))
    for ev in turns:
        t = frames(pol, "fear", t, 40, per_s=0.5)
        states.append(pol.decide(read(0.6, face="fear", text="neutral"), ev, now=t).state)
    return states


def test_a_camera_that_reads_fear_while_answers_go_right_is_the_students_usual_look():
    """Glare or a dim room read as fear over right answers and calm words is how the camera
    sees this student (`fear_at_rest`), not worry: learned over the right answers, the tutor
    is back in its usual tone; without the rule it stayed anxious."""
    assert load_policy_config().fear_at_rest > 0
    assert _glare_through(None)[-2:] == ["engaged", "engaged"]
    assert _glare_through(0.0)[-1] == "anxious"


def test_a_fearful_look_beside_a_said_worry_is_believed():
    """Once the student puts a worry into words, the camera's fear is worry again."""
    assert _glare_through(None, said_worry=True)[-1] == "anxious"


def test_fear_that_comes_with_failing_is_kept():
    """Fear is taken off only while the answers go right: the same camera over two wrong
    answers after two right ones is anxiety, with the rule as without it."""
    def state(fear_at_rest: float) -> str:
        config = load_policy_config().model_copy(update={"fear_at_rest": fear_at_rest})
        pol, t = Policy(config, clock=lambda: 0.0), 0.0
        for ev in [RIGHT, RIGHT, WRONG, Evidence(wrong_streak=2, correct=False, move="answer")]:
            t = frames(pol, "fear", t, 40, per_s=0.5)
            decision = pol.decide(read(0.6, face="fear"), ev, now=t)
        return decision.state

    assert state(load_policy_config().fear_at_rest) == state(0.0) == "anxious"

def test_hesitating_under_a_frown_is_confusion_and_typed_anger_stays_frustration():
    """A camera reading anger (a concentration frown) while the student answers wrong after
    long thought and says they don't get it: the wrong answers may lean towards anger, but the
    hesitation and "i don't get it" say how they struggle (`struggle_how`), so confusion
    leads; with no `struggle_how`, the frown makes it frustration. Frustration typed under a
    fearful face stays frustration."""
    def frowning(how: dict[str, list[str]]) -> Policy:
        config = load_policy_config().model_copy(update={"struggle_how": how})
        pol = Policy(config, clock=lambda: 0.0)
        t = 0.0
        for n in (1, 2):
            for _ in range(100):  # 50 s of a frown read as anger, half sure
                t += 0.5
                pol.observe(read(0.5, face="anger"), now=t)
            pol.decide(None, Evidence(wrong_streak=n, correct=False, move="answer",
                                      response_s=50.0), now=t)
            t += 15.0
            pol.decide(None, Evidence(wrong_streak=n, typed_confused=True, move="confused"),
                       now=t)
        return pol

    shipped = frowning(load_policy_config().struggle_how)
    assert shipped.scores["confused"] > shipped.scores["frustrated"]
    without = frowning({})
    assert without.scores["frustrated"] > without.scores["confused"]

    def fearful(how: dict[str, list[str]]) -> Policy:
        config = load_policy_config().model_copy(update={"struggle_how": how})
        pol = Policy(config, clock=lambda: 0.0)
        t = frames(pol, "fear", 0.0, 20.0)
        pol.decide(None, Evidence(wrong_streak=1, correct=False, move="answer"), now=t)
        pol.decide(None, Evidence(wrong_streak=1, typed_frustration=True, move="vent"),
                   now=t + 5)
        return pol

    shipped = fearful(load_policy_config().struggle_how)
    assert shipped.scores["frustrated"] > shipped.scores["anxious"]
    without = fearful({})  # the fearful face would turn the typed anger into worry
    assert without.scores["anxious"] > without.scores["frustrated"]


def test_struggle_how_names_known_evidence_and_struggling_states():
    config = load_policy_config()
    with pytest.raises(ValueError, match="unknown evidence"):
        config.model_validate(config.model_dump() | {"struggle_how": {"sighs": ["confused"]}})
    with pytest.raises(ValueError, match="must go to some of"):
        config.model_validate(config.model_dump() | {"struggle_how": {"slow_wrong": ["bored"]}})


def test_relief_after_worry_is_met_in_the_usual_tone_before_delight():
    """A worried student whose answers start going right, smiling (often a nervous smile),
    is relieved, not yet delighted: from anxiety the switch goes to engaged, and delight may
    follow from there. Without `relief_from` the smile made it delight at once. A gladness
    said then brings the usual tone on its turn."""
    worry = {"worry": 0.9, "down": 0.05, "glad": 0.05}

    def smiling(relief: list[str]) -> list[str]:
        config = load_policy_config().model_copy(update={"relief_from": relief})
        pol = Policy(config, clock=lambda: 0.0)
        states = [pol.decide(None, Evidence(move="vent", feelings=worry), now=5).state]
        t = 5.0
        for _ in range(4):
            t = frames(pol, "joy", t, 30.0)
            states.append(pol.decide(read(face="joy"), RIGHT, now=t).state)
        return states

    assert load_policy_config().relief_from == ["anxious"]
    shipped = smiling(["anxious"])
    assert shipped[0] == "anxious" and "engaged" in shipped
    assert shipped.index("engaged") < shipped.index("delighted")  # relief, then delight
    without = smiling([])
    assert "engaged" not in without and "delighted" in without

    def says_glad(relief: list[str]) -> list[str]:
        config = load_policy_config().model_copy(update={"relief_from": relief})
        pol = Policy(config, clock=lambda: 0.0)
        glad = Evidence(move="vent", feelings={"glad": 0.95, "worry": 0.05})
        return [pol.decide(None, e, now=t).state for t, e in
                ((5, Evidence(move="vent", feelings=worry)), (40, RIGHT), (80, RIGHT),
                 (85, glad))]

    assert says_glad(["anxious"]) == ["anxious", "anxious", "anxious", "engaged"]
    assert says_glad([]) == ["anxious", "anxious", "anxious", "delighted"]


def test_relief_from_names_struggling_states():
    config = load_policy_config()
    with pytest.raises(ValueError, match="relief_from"):
        config.model_validate(config.model_dump() | {"relief_from": ["delighted"]})


def test_calm_slow_failing_after_one_annoyed_word_turns_frustration_into_confusion_soon():
    """"yeah yeah makes sense" flagged frustrated after a wrong answer makes him frustrated;
    then slow wrong answers under a calm face and calm words say he is lost. Between two slow
    states (both calm, both slower) the tutor follows the lead at `switch_margin_slow`, so
    confusion takes over two turns sooner than at the margin between families."""
    def states(margin: float | None) -> list[str]:
        config = load_policy_config().model_copy(update={"switch_margin_slow": margin})
        pol = Policy(config, clock=lambda: 0.0)
        script = [(7, Evidence(move="ack"), "neutral", 0.85),
                  (70, Evidence(wrong_streak=1, correct=False, move="answer", response_s=70),
                   "neutral", 0.85),
                  (5, Evidence(wrong_streak=1, move="ack", typed_frustration=True,
                               frustration_p=0.87), "joy", 0.77),
                  (85, Evidence(wrong_streak=2, correct=False, move="answer", response_s=85),
                   "neutral", 0.85),
                  (8, Evidence(wrong_streak=2, move="answer", typed_frustration=True,
                               frustration_p=0.72), "anger", 0.35),
                  (90, Evidence(wrong_streak=3, correct=False, move="answer", response_s=90),
                   "neutral", 0.85),
                  (4, Evidence(wrong_streak=3, move="ack"), "neutral", 0.85),
                  (105, Evidence(wrong_streak=4, correct=False, move="answer", response_s=105),
                   "neutral", 0.85)]
        t, out = 0.0, []
        for seconds, evidence, words, p in script:
            for _ in range(int(seconds * 2)):  # a calm face at 2 frames a second
                t += 0.5
                pol.observe(read(0.6, face="neutral"), now=t)
            out.append(pol.decide(read(p, text=words), evidence, now=t).state)
        return out

    assert load_policy_config().switch_margin_slow < load_policy_config().switch_margin
    shipped, between_families = states(load_policy_config().switch_margin_slow), states(None)
    assert shipped[2:6] == ["frustrated"] * 4 and shipped[6:] == ["confused"] * 2
    assert between_families[2:] == ["frustrated"] * 6


def test_laughing_at_a_slip_just_made_is_not_delight():
    """"haha my brain is broken 🤪" just after a wrong answer, heard as gladness: laughing at
    the slip is a smile while failing, so it counts little towards delight and does not
    switch at once; the same words after a right answer are delight said."""
    glad = Evidence(move="vent", feelings={"glad": 0.95, "down": 0.05})

    def after(answer: Evidence) -> tuple[str, float]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(read(0.6, text="neutral"), Evidence(move="greeting"), now=5)
        pol.decide(read(0.6, text="neutral"), answer, now=70)
        d = pol.decide(read(0.84, text="joy"), glad, now=76)
        return d.state, pol.scores["delighted"]

    (slip, slip_glad), (right, right_glad) = after(WRONG), after(RIGHT)
    assert slip != "delighted" and right == "delighted"
    assert slip_glad < right_glad / 2


def test_a_worried_question_in_chat_is_a_worry_said():
    """"will my teacher see this" is chat (`off_topic`), but the classifier's feeling head
    hears worry in it: from `chat_worry_from` it counts as a worry put into words, as a vent's
    would; chat it hears little worry in counts nothing towards anxiety."""
    def anxious_after(worry: float) -> tuple[float, str]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(read(0.6, text="neutral"), Evidence(move="greeting"), now=5)
        d = pol.decide(read(0.6, text="neutral"),
                       Evidence(move="off_topic", feelings={"worry": worry, "bored": 1 - worry}),
                       now=20)
        return pol.scores["anxious"], d.reason

    shipped = load_policy_config().chat_worry_from
    assert 0.5 < shipped < 1.0
    (worried, why), (calm, calm_why) = anxious_after(0.9), anxious_after(0.3)
    assert worried > 3 * calm
    assert "asked a worried question" in why and "worried" not in calm_why
    pol = Policy(clock=lambda: 0.0)
    chat = Evidence(move="off_topic", feelings={"worry": 0.9, "bored": 0.1})
    assert pol.decide(read(0.6, text="neutral"), chat, now=20).worried_question
    assert not pol.decide(read(0.6, text="neutral"), Evidence(move="ack"), now=30).worried_question


def test_failing_after_a_worry_said_is_worry_not_only_confusion():
    """Two worried questions ("does this thing record my face", "can the teacher see what i
    type"), then a slow wrong answer with no camera: the worry said is how failing feels to
    him, so the struggle is worry; asked calmly about the weather instead, it is confusion."""
    def state_after(feeling: str) -> str:
        pol = Policy(clock=lambda: 0.0)
        chat = Evidence(move="off_topic", feelings={feeling: 0.9, "glad": 0.1})
        pol.decide(read(0.6, text="neutral"), chat, now=20)
        pol.decide(read(0.6, text="neutral"), chat, now=35)
        wrong = Evidence(wrong_streak=1, correct=False, move="answer", response_s=75)
        pol.decide(read(0.6, text="neutral"), wrong, now=110)
        return pol.decide(read(0.6, text="neutral"), Evidence(move="ack"), now=122).state

    assert state_after("worry") == "anxious"
    assert state_after("bored") == "confused"


def test_a_wrong_answer_never_brings_delight_even_under_laughter():
    """A student laughing at something in the room (face and voice read joy, strongly) who
    then gets one wrong: delight may lead the scores, but the wrong answer is not the turn it
    starts on; the switch waits for a turn that does not contradict it."""
    pol = Policy(clock=lambda: 0.0)
    pol.decide(read(0.6, face="neutral"), Evidence(move="greeting"), now=5)
    pol.decide(read(0.6, face="neutral"), RIGHT, now=35)
    pol.decide(read(0.9, face="joy", speech="joy"), Evidence(move="off_topic"), now=39)
    d = pol.decide(read(0.85, face="joy"), WRONG, now=59)
    assert pol._leader()[0] == "delighted"
    assert d.state == "engaged" and d.tone != "upbeat"


def test_too_easy_just_after_a_wrong_answer_is_no_boredom():
    """"too easy" said (or "these are getting hard" heard so) just after a wrong answer: the
    answer says otherwise, so it counts nothing towards boredom and switches nothing; after
    a right answer it is boredom said."""
    fast = Evidence(correct=True, fast_correct=True, move="answer")
    said = Evidence(move="too_easy", too_easy=True, too_easy_p=0.99)

    def after(answer: Evidence) -> tuple[str, float]:
        pol = Policy(clock=lambda: 0.0)
        pol.decide(None, fast, now=6)
        pol.decide(None, answer, now=12)
        d = pol.decide(None, said, now=20)
        return d.state, pol.scores["bored"]

    (missed, missed_bored), (right, right_bored) = after(WRONG), after(fast)
    assert missed != "bored" and right == "bored"
    assert missed_bored < right_bored / 2


def test_frustration_whose_words_say_boredom_is_boredom_from_a_student_who_can_do_it():
    """'whatever' flagged frustrated, its words heard as boredom: from a student who has
    answered right and missed at most one, it counts towards boredom; its anger, or the same
    words after a run of wrong answers or before any right one, is frustration."""
    bored = {"bored": 0.95, "angry": 0.05}

    def after(answers: list[Evidence], feelings: dict[str, float]) -> dict[str, float]:
        pol = Policy(clock=lambda: 0.0)
        t = 0.0
        for answer in answers:
            t += 20
            pol.decide(None, answer, now=t)
        streak = next((a.wrong_streak for a in reversed(answers) if a.correct is not None), 0)
        pol.decide(None, Evidence(move="vent", typed_frustration=True, frustration_p=0.99,
                                  wrong_streak=streak, feelings=feelings), now=t + 15)
        return pol.scores

    wrong = [Evidence(wrong_streak=n, correct=False, move="answer") for n in (1, 2, 3)]
    shrug = after([RIGHT, RIGHT, WRONG], bored)
    assert shrug["bored"] > shrug["frustrated"]
    angry = after([RIGHT, RIGHT, WRONG], {"bored": 0.05, "angry": 0.95})
    assert angry["frustrated"] > angry["bored"]
    failing = after([RIGHT, *wrong], bored)
    assert failing["frustrated"] > failing["bored"]
    first = after([], bored)
    assert first["frustrated"] > first["bored"]


def test_faint_camera_frames_between_turns_do_not_cancel_what_the_turns_earn():
    """A switch is earned on turns: between them the evidence only fades. A drifting student
    on camera (frames too unsure to count while they take minutes) is seen drifting off as
    one with the camera off is."""
    def state(camera: bool) -> str:
        pol = Policy(clock=lambda: 0.0)
        turns = [(20, Evidence(correct=True, move="answer", response_s=20)), (40, RIGHT),
                 (160, Evidence(move="ack", letters=1, response_s=120)),
                 (310, Evidence(correct=True, move="answer", response_s=150))]
        t = 0.0
        for at, evidence in turns:
            while camera and t + 0.5 < at:
                t += 0.5
                pol.observe(read(0.3, face="neutral"), now=t)
            d = pol.decide(read(0.3, face="neutral") if camera else None, evidence, now=at)
            t = at
        return d.state

    assert state(camera=False) == "bored"
    assert state(camera=True) == "bored"


def test_out_of_struggling_one_right_answer_is_relief_and_two_in_a_row_bring_delight():
    """A lost student who smiles over a first right answer (a friend giggling in frame, a
    polite "ok thank you") is relieved, not delighted: the tutor returns to its usual tone.
    Delight waits for the recovery to hold, two right answers in a row."""
    def states(rights: int) -> list[str]:
        pol = Policy(clock=lambda: 0.0)
        calm, glad = read(0.6, face="neutral"), read(0.7, face="joy")
        pol.decide(calm, WRONG, now=30)
        pol.decide(calm, Evidence(wrong_streak=2, correct=False, move="answer"), now=60)
        assert pol.state == "confused"
        out, t = [], 60
        for _ in range(rights):
            t += 30
            out.append(pol.decide(glad, RIGHT, now=t).state)
            t += 8
            out.append(pol.decide(glad, Evidence(move="ack"), now=t).state)
        return out

    once = states(1)
    assert "delighted" not in once and once[-1] == "engaged"
    assert states(2)[-1] == "delighted"
