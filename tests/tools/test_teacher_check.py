"""The teacher's judgement replayed on scripted students (tools/teacher_check.py)."""

from __future__ import annotations

from tools.teacher_check import judged, wanted
from tutor.simulate import SCENARIOS_DIR, load_scenario, run_scenario


def test_a_writer_who_has_the_student_struggle_wants_them_marked_and_one_who_rules_it_out_not(
        tmp_path):
    assert wanted(load_scenario(SCENARIOS_DIR / "smiling_while_failing.yaml")) is True
    assert wanted(load_scenario(SCENARIOS_DIR / "one_frown.yaml")) is False
    unsaid = tmp_path / "unsaid.yaml"  # bored, and nothing said of struggling on the way
    unsaid.write_text("name: u\nlesson: fractions\nturns: [{say: hi, after_s: 5}]\n"
                      "expect: {reach: [bored], never: [frustrated]}\n")
    assert wanted(load_scenario(unsaid)) is None


def test_the_overview_marks_the_failing_student_and_not_the_one_who_frowned_once():
    failing = judged(run_scenario(SCENARIOS_DIR / "smiling_while_failing.yaml"))
    assert failing.struggling and "turns frustrated, anxious, confused" in failing.why
    frown = judged(run_scenario(SCENARIOS_DIR / "one_frown.yaml"))
    assert not frown.struggling and frown.why == ""
