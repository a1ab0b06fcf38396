from __future__ import annotations

import numpy as np
import pytest

from cmt.settings import Settings
from tutor.client import EmbeddedCMT
from ui.deps import Deps
from ui.demo import analyze_live, draw_box, play_scenario, scenario_choices


@pytest.fixture
def deps(tmp_path, keyword_engine):
    from tutor.db import init_db

    return Deps(settings=Settings(), db=init_db(f"sqlite:///{tmp_path / 'd.db'}"),
                cmt=EmbeddedCMT(keyword_engine))


def test_nothing_is_analysed_without_consent(deps):
    out = analyze_live(deps, np.zeros((8, 8, 3), np.uint8), "I am happy", False, None)
    assert len(out) == 9 and out[-1].mode == "adaptive"


def test_a_typed_line_shows_fused_bars_latency_and_the_tutors_style(deps):
    boxed, fused, text, face, speech, attention, latency, style, policy = analyze_live(
        deps, None, "I am so happy", True, None)
    assert max(fused, key=fused.get) == "joy" and max(text, key=text.get) == "joy"
    assert face is None and speech is None
    assert "ms** server-side" in latency and "test-keyword-0" in latency
    assert "Tutor style" in style and policy.state in style


def test_face_box_is_drawn_on_a_copy():
    frame = np.zeros((60, 80, 3), np.uint8)
    out = draw_box(frame, (10, 10, 20, 20), "joy")
    assert out.sum() > 0 and frame.sum() == 0


def test_scripted_scenarios_play_without_a_camera(deps):
    choices = scenario_choices(deps)
    assert len(choices) >= 2
    path = next(p for name, p in choices if "struggling" in name)
    rows, summary = play_scenario(path, False)
    assert len(rows) == 12 and any(r[5] == "calm" for r in rows)
    control_rows, _ = play_scenario(path, True)
    assert all(r[5] == "neutral" for r in control_rows) and "changed its style" in summary
