"""Bayesian knowledge tracing and choosing the next step, on the shipped fractions pack."""

from __future__ import annotations

import json

import pytest

from tutor.curriculum import LESSONS_DIR, load_pack
from tutor.mastery import BKTParams, Mastery, update


@pytest.fixture(scope="module")
def fractions():
    return load_pack(LESSONS_DIR / "fractions.yaml")


def test_update_matches_hand_computation():
    params = BKTParams(p_init=0.2, p_learn=0.2, p_slip=0.1, p_guess=0.2)
    # correct: posterior 0.2*0.9 / (0.2*0.9 + 0.8*0.2) = 0.18/0.34, then learning
    post = 0.18 / 0.34
    assert update(0.2, True, params) == pytest.approx(post + (1 - post) * 0.2)
    # wrong: 0.2*0.1 / (0.2*0.1 + 0.8*0.8) = 0.02/0.66
    post = 0.02 / 0.66
    assert update(0.2, False, params) == pytest.approx(post + (1 - post) * 0.2)


def test_rises_with_correct_and_falls_with_wrong():
    p, history = 0.2, []
    for _ in range(5):
        p = update(p, True)
        history.append(p)
    assert history == sorted(history) and history[-1] > 0.95
    assert update(0.8, False) < 0.8


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="probability"):
        BKTParams(p_learn=1.5)
    with pytest.raises(ValueError, match="p_slip \\+ p_guess"):
        BKTParams(p_slip=0.5, p_guess=0.5)


def test_starts_at_the_first_step(fractions):
    m = Mastery()
    assert m.next_step(fractions).id == "what_is_a_fraction"
    step, question = m.next_question(fractions)
    assert step.id == "what_is_a_fraction" and question.id == "pizza_slices"
    _, question = m.next_question(fractions, asked={"pizza_slices"})
    assert question.id == "weekend_days"


def test_moves_on_once_mastered_and_reviews_the_weakest(fractions):
    m = Mastery()
    for _ in range(3):
        m.observe("fraction_meaning", True)
    assert m.is_mastered("fraction_meaning")
    assert m.next_step(fractions).id == "equivalent_fractions"
    m.observe("equivalent_fractions", True)
    assert (
        m.next_step(fractions).id == "equivalent_fractions"
    )  # p ~ 0.62: the next step stays locked
    m.observe("equivalent_fractions", True)  # p ~ 0.9: opens the next step, not mastered yet
    assert not m.is_mastered("equivalent_fractions")
    assert m.next_step(fractions).id == "comparing_fractions"  # new skill, p_init 0.2, is weakest
    for _ in range(3):
        m.observe("comparing_fractions", True)
    assert m.next_step(fractions).id == "decimals_and_mixed"
    m.observe("equivalent_fractions", False)  # a slip on an earlier skill sends the student back
    assert m.p_known("equivalent_fractions") < m.unlock
    assert m.next_step(fractions).id == "equivalent_fractions"


def test_wrong_answers_keep_the_step(fractions):
    m = Mastery()
    for _ in range(4):
        m.observe("fraction_meaning", False)
    assert m.next_step(fractions).id == "what_is_a_fraction"


def test_exclude_and_too_easy(fractions):
    m = Mastery()
    assert m.next_step(fractions, exclude={"what_is_a_fraction"}).id == "equivalent_fractions"
    m.set_known(fractions.step("what_is_a_fraction").skills)
    assert m.next_step(fractions).id == "equivalent_fractions"


def test_all_mastered_gives_none(fractions):
    m = Mastery()
    m.set_known(fractions.skills)
    assert m.next_step(fractions) is None and m.next_question(fractions) is None


def test_observe_answer_uses_the_question_skills(fractions):
    m = Mastery()
    step, question = fractions.question("pizza_slices")
    new = m.observe_answer(step, question, True)
    assert set(new) == {"fraction_meaning"} and new["fraction_meaning"] > 0.2
    assert m.attempts == {"fraction_meaning": 1}


def test_round_trips_through_json(fractions):
    m = Mastery(params=BKTParams(p_learn=0.3), threshold=0.9)
    m.observe("fraction_meaning", True)
    m.observe("equivalent_fractions", False)
    back = Mastery.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m
    assert back.summary(fractions)["fraction_meaning"] == m.p["fraction_meaning"]
    with pytest.raises(ValueError, match="not a saved Mastery"):
        Mastery.from_dict({"params": {"nonsense": 1}})
