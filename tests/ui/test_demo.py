from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from tutor.settings import Settings
from tutor.client import EmbeddedCMT
from ui.deps import Deps
from ui.demo import analyze_live, build_demo, draw_box, play_scenario, scenario_choices


@pytest.fixture
def deps(tmp_path, keyword_engine):
    from tutor.db import init_db

    return Deps(settings=Settings(), db=init_db(f"sqlite:///{tmp_path / 'd.db'}"),
                cmt=EmbeddedCMT(keyword_engine))


def test_no_frame_is_analysed_without_consent(deps):
    out = analyze_live(deps, None, np.zeros((8, 8, 3), np.uint8), "", False, None)
    assert len(out) == 9 and out[-1].mode == "adaptive"
    assert all(isinstance(o, dict) and o.get("__type__") == "update" for o in out[:-1])


def test_a_typed_line_shows_fused_bars_latency_and_the_tutors_style(deps):
    boxed, fused, text, face, speech, attention, latency, style, policy = analyze_live(
        deps, None, None, "I am so happy", True, None)
    assert max(fused, key=fused.get) == "joy" and max(text, key=text.get) == "joy"
    skipped = {"__type__": "update"}  # a modality not in this reading keeps its last bars
    assert face == skipped and speech == skipped
    assert "ms** server-side" in latency and "test-keyword-0" in latency
    assert "The tutor judges the learner" in style and policy.state in style
    assert "joy" in style and "_" not in style.split("Why:")[0]


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


def test_the_scripted_table_shows_the_tutors_replies_in_words_and_full_reasons(deps):
    from tutor.simulate import run_scenario
    from ui.demo import SCENARIO_COLUMNS

    path = next(p for name, p in scenario_choices(deps) if "struggling" in name)
    rows, _ = play_scenario(path, False)
    sim = run_scenario(path)
    col = {c: i for i, c in enumerate(SCENARIO_COLUMNS)}
    assert [r[col["tutor said"]] for r in rows] == [r.reply for r in sim.rows]
    assert [r[col["why"]] for r in rows] == [r.reason for r in sim.rows]  # not cut
    shown = " ".join(str(r[col[c]]) for r in rows for c in ("learner state", "tone", "pacing",
                                                              "what the tutor did"))
    assert "_" not in shown  # "worked example", not "worked_example"


def test_attention_is_drawn_as_a_heat_map():
    from ui.demo import attention_heatmap

    picture = attention_heatmap({"text": {"none": 0.1, "face": 0.9}, "face": {"text": 1.0}})
    assert picture.count("<tr>") == 3 and "rgba(57,105,172,0.90)" in picture
    assert "appears when" in attention_heatmap(None)


# ---------------------------------------------------------------- issue 19, item 5
class Recorder:
    """A CMT double that answers like the keyword model and keeps every request it is sent."""

    def __init__(self, engine):
        self.inner, self.requests = EmbeddedCMT(engine), []

    def analyze(self, req):
        self.requests.append(req)
        if req.image_b64 is None:
            return self.inner.analyze(req)
        from cmt.contract import EMOTIONS, AnalyzeResponse

        probs = {e: (0.85 if e == "surprise" else 0.025) for e in EMOTIONS}
        return AnalyzeResponse.from_probs(probs, model_version="face-double", latency_ms=1.0,
                                          face_box=(8, 8, 24, 24))


def _recording_deps(tmp_path, keyword_engine, **settings):
    from tutor.db import init_db

    return Deps(settings=Settings(**settings), db=init_db(f"sqlite:///{tmp_path / 'r.db'}"),
                cmt=Recorder(keyword_engine))


def _demo_handler(deps, elem_id: str, event: str):
    """The function the built demo runs for `event` on the component `elem_id`."""
    with gr.Blocks() as app:
        build_demo(deps)
    target = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    for fn in app.fns.values():
        if any(t[0] == target._id and t[1] == event for t in fn.targets):
            return fn.fn
    raise AssertionError(f"no {event} on {elem_id}")


def test_a_typed_line_with_the_camera_box_unticked_sends_no_face(tmp_path, keyword_engine):
    deps = _recording_deps(tmp_path, keyword_engine)
    submit = _demo_handler(deps, "demo-text", "submit")
    submit(None, np.zeros((48, 64, 3), np.uint8), "I am happy", False, None)
    (req,) = deps.cmt.requests
    assert req.text == "I am happy" and req.image_b64 is None


def test_with_biometrics_off_the_demo_reads_no_face_even_with_the_box_ticked(tmp_path,
                                                                             keyword_engine):
    deps = _recording_deps(tmp_path, keyword_engine, biometrics=False)
    frame = np.zeros((48, 64, 3), np.uint8)
    out = analyze_live(deps, None, frame, "I am happy", True, None)
    assert all(r.image_b64 is None and r.audio_b64 is None for r in deps.cmt.requests)
    assert all(r.modalities == ["text"] for r in deps.cmt.requests)
    assert out[2]["joy"] > 0.5  # the typed line is still read
    analyze_live(deps, None, frame, "", True, None)  # a frame alone: nothing to send
    assert len(deps.cmt.requests) == 1


def test_in_code_mode_the_live_demo_needs_a_signed_in_teacher(tmp_path, keyword_engine, db):
    from tests.tutor.test_reports import make_world

    deps = _recording_deps(tmp_path, keyword_engine, student_sign_in="code")
    deps = Deps(settings=deps.settings, db=db, cmt=deps.cmt)
    world = make_world(db)
    with pytest.warns(UserWarning, match="[Ss]ign in"):
        analyze_live(deps, None, np.zeros((48, 64, 3), np.uint8), "I am happy", True, None)
    assert deps.cmt.requests == []
    analyze_live(deps, world.teacher_a, None, "I am happy", True, None)
    assert len(deps.cmt.requests) == 1


def test_the_framed_face_is_sent_inline_never_as_a_file(tmp_path, keyword_engine):
    deps = _recording_deps(tmp_path, keyword_engine)
    boxed = analyze_live(deps, None, np.zeros((48, 64, 3), np.uint8), "I am happy", True, None)[0]
    assert isinstance(boxed, str) and boxed.startswith('<img src="data:image/jpeg;base64,')
    with gr.Blocks() as app:
        build_demo(deps)
    shown = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "demo-boxed")
    assert isinstance(shown, gr.HTML)  # an Image output would be written to Gradio's cache
