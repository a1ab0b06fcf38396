from __future__ import annotations

import pytest

from tutor.db import crud
from tutor.simulate import SCENARIOS_DIR, ScenarioError, load_scenario, main, run_scenario

STRUGGLING = SCENARIOS_DIR / "struggling_then_recovering.yaml"
BORED = SCENARIOS_DIR / "bored_fast_student.yaml"


def logged(sim):
    with sim.db() as s:
        sid = sim.session_id
        return (crud.session_turns(session=s, tutor_session_id=sid),
                crud.session_readings(session=s, tutor_session_id=sid),
                crud.session_adaptations(session=s, tutor_session_id=sid))


def test_struggling_student_gets_a_calm_tutor_with_a_worked_example_and_reasons_logged():
    sim = run_scenario(STRUGGLING)
    turns, readings, adaptations = logged(sim)
    n = len(load_scenario(STRUGGLING).turns)
    assert len(turns) == len(readings) == len(adaptations) == len(sim.rows) == n
    calm = [a for a in adaptations if a.tone == "calm"]
    assert calm and calm[0].changes["tone"] == ["neutral", "calm"] and "calmer tone" in calm[0].reason
    worked = [a for a in adaptations if a.pacing == "worked_example"]
    assert worked and "frustration" in worked[0].reason and "worked example first" in worked[0].reason
    after = [t for t in turns if t.id >= worked[0].turn_id]
    assert any("Example:" in t.tutor_text for t in after[:2])  # it changed what was said
    assert any(a.tone == "upbeat" for a in adaptations[worked[0].id:])  # and it recovers
    assert [r.turn_id for r in readings] == [t.id for t in turns]


def test_control_mode_never_adapts_on_the_same_script():
    sim = run_scenario(STRUGGLING, control=True)
    turns, readings, adaptations = logged(sim)
    assert len(turns) == len(readings) == len(adaptations) == len(sim.rows)
    assert {(a.tone, a.pacing) for a in adaptations} == {("neutral", "normal")}
    assert all(a.reason == "control mode: no adaptation" for a in adaptations)
    assert not any("Example:" in t.tutor_text for t in turns)


def test_bored_fast_student_is_moved_ahead_only_by_the_adaptive_tutor():
    adaptive, control = run_scenario(BORED), run_scenario(BORED, control=True)
    assert any(r.state == "bored" and r.pacing == "harder" for r in adaptive.rows)
    assert any("harder question" in r.did for r in adaptive.rows)
    assert not any("harder question" in r.did for r in control.rows)


def test_the_command_line_prints_the_turn_by_turn_table(capsys):
    assert main([str(STRUGGLING), "--replies"]) == 0
    out = capsys.readouterr().out
    assert "struggling then recovering [adaptive]" in out and "calmer tone" in out
    assert "worked example" in out and "| " in out
    assert main([str(STRUGGLING), "--control"]) == 0
    assert "control mode: no adaptation" in capsys.readouterr().out


def test_a_bad_scenario_names_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nturns:\n  - {say: hi, answer: right}\n  - {say: hi, emotion: glee}\n")
    with pytest.raises(ScenarioError, match=r"turns\.0.*exactly one of.*\n.*turns\.1.*glee"):
        load_scenario(bad)
    assert main([str(bad)]) == 2 and "turns.0" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario(tmp_path / "missing.yaml")


def test_the_readmes_json_example_is_what_the_command_prints(capsys):
    """The README shows one scenario's `--json` output; it is the output of today's code."""
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```console\n\$ attune simulate (\S+) --json --no-model\n(.*?)```",
                      readme, re.S)
    assert block, "the README's --json example is gone"
    path, shown = block.group(1), [json.loads(line) for line in block.group(2).splitlines()]
    assert main([str(Path(__file__).resolve().parents[2] / path), "--json", "--no-model"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == shown
