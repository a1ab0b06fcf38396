from __future__ import annotations

import pytest

from cmt.contract import EMOTIONS, AnalyzeResponse
from tutor.policy import Evidence, Policy, load_policy_config


def reading(label: str, p: float = 0.8) -> AnalyzeResponse:
    probs = {e: (p if e == label else (1 - p) / 6) for e in EMOTIONS}
    return AnalyzeResponse.from_probs(probs, model_version="t", latency_ms=1)


def test_one_frame_of_a_frown_does_not_flip_the_tutor():
    pol = Policy(clock=lambda: 0.0)
    t = 0.0
    for _ in range(10):
        t += 0.5
        pol.observe(reading("neutral"), now=t)
    pol.observe(reading("anger", 0.95), now=t + 0.5)
    d = pol.decide(reading("neutral"), now=t + 1.0)
    assert d.state == "engaged" and d.tone == "neutral" and d.changes == {}


def test_sustained_frustration_with_wrong_answers_calms_the_tutor_and_says_why():
    pol = Policy(clock=lambda: 0.0)
    d1 = pol.decide(reading("anger", 0.7), Evidence(wrong_streak=1), now=10)
    assert d1.state == "engaged" and "frustration rising" in d1.reason  # not yet: hysteresis
    d2 = pol.decide(reading("anger", 0.71), Evidence(wrong_streak=2), now=40)
    assert d2.state == "frustrated" and d2.tone == "calm" and d2.pacing == "worked_example"
    assert d2.changes["tone"] == ["neutral", "calm"]
    assert "two wrong answers" in d2.reason and "calmer tone, worked example first" in d2.reason


def test_long_frustration_earns_a_break_offer():
    pol = Policy(clock=lambda: 0.0)
    for t in (10, 20, 30):
        pol.decide(reading("anger"), Evidence(wrong_streak=3), now=t)
    assert not pol.decide(reading("anger"), now=60).offer_break
    d = pol.decide(reading("anger"), Evidence(typed_frustration=True), now=160)
    assert d.offer_break and "break" in d.reason


@pytest.mark.parametrize("label, evidence, state, tone, pacing", [
    ("joy", Evidence(), "delighted", "upbeat", "normal"),
    ("fear", Evidence(), "anxious", "encouraging", "slower"),
    ("neutral", Evidence(too_easy=True, fast_correct=True), "bored", "upbeat", "harder"),
    ("surprise", Evidence(typed_confused=True, hint_requests=2), "confused", "calm", "slower"),
])
def test_each_state_has_its_adaptation(label, evidence, state, tone, pacing):
    pol = Policy(clock=lambda: 0.0)
    for t in (20, 40, 60):  # three turns, 20 s apart
        d = pol.decide(reading(label), evidence, now=t)
    assert (d.state, d.tone, d.pacing) == (state, tone, pacing)


def test_control_mode_never_adapts():
    pol = Policy(mode="control", clock=lambda: 0.0)
    for t in (10, 20, 30):
        d = pol.decide(reading("anger", 0.99), Evidence(wrong_streak=3), now=t)
    assert (d.state, d.tone, d.changes) == ("engaged", "neutral", {})
    assert d.reason == "control mode: no adaptation"


def test_unsure_readings_do_not_count():
    pol = Policy(clock=lambda: 0.0)
    for t in (10, 20, 30):
        d = pol.decide(reading("anger", 0.2), now=t)
    assert d.state == "engaged" and "too unsure" in d.reason


def test_a_bad_policy_file_names_the_problem(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text((load_policy_config.__globals__["DEFAULT_POLICY"]).read_text()
                   .replace("frustrated: {tone: calm", "frustratd: {tone: calm"))
    with pytest.raises(ValueError, match="unknown states.*frustratd"):
        load_policy_config(bad)
    with pytest.raises(ValueError, match="mode"):
        Policy(mode="sometimes")
