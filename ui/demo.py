"""Demo view: the adaptive loop in one screen.

Live: the camera with the face box, fused and per-modality emotion bars, the cross-modal
attention weights, per-stage latency, and the tutor's current style with its reason.
Scripted: a scenario from tutor.simulate plays without a camera, for stage demos.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import gradio as gr
import numpy as np

from cmt.contract import AnalyzeRequest, AnalyzeResponse
from tutor.client import CMTError
from tutor.policy import Evidence, Policy
from ui.deps import Deps
from ui.media import inline_image
from ui.student import FRAME_EVERY_S, encode_frame

log = logging.getLogger("ui.demo")
SCENARIO_COLUMNS = ["#", "t (s)", "student", "emotion", "state", "tone", "pacing", "tutor did", "why"]


def draw_box(frame: np.ndarray, box, label: str) -> np.ndarray:
    import cv2

    out = frame.copy()
    if box:
        x, y, w, h = box
        cv2.rectangle(out, (x, y), (x + w, y + h), (46, 204, 113), 2)
        cv2.putText(out, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (46, 204, 113), 1, cv2.LINE_AA)
    return out


def attention_table(r: AnalyzeResponse) -> list[list]:
    if not r.attention:
        return []
    return [[m, *(f"{share:.2f}" for share in (row.get(o, 0.0) for o in ("none", "text", "face", "speech")))]
            for m, row in r.attention.items()]


def describe(r: AnalyzeResponse, policy: Policy) -> tuple:
    """A reading -> (fused, text, face, speech label dicts, attention rows, latency md, style md)."""
    per = {m: (r.modalities[m].probs if m in r.modalities else None) for m in ("text", "face", "speech")}
    stages = " · ".join(f"{k} {v:.0f} ms" for k, v in r.stage_ms.items())
    latency = f"**{r.latency_ms:.0f} ms** server-side ({stages}) · model `{r.model_version}`"
    d = policy.decide(r, Evidence(), turn=False)  # a live frame, not a turn
    style = f"Tutor style: **{d.tone}**, pacing **{d.pacing}** ({d.state}). *{d.reason}*"
    return (r.probs, per["text"], per["face"], per["speech"], attention_table(r), latency, style)


def analyze_live(deps: Deps, frame: np.ndarray | None, text: str, consent: bool,
                 policy: Policy | None):
    """One frame (and optionally a typed line) through the CMT. Returns the view's outputs."""
    policy = policy or Policy()
    if not consent:
        return (gr.skip(),) * 8 + (policy,)
    text = (text or "").strip() or None
    if frame is None and text is None:
        return (gr.skip(),) * 8 + (policy,)
    try:
        req = AnalyzeRequest(text=text,
                             image_b64=base64.b64encode(encode_frame(frame)).decode()
                             if frame is not None else None)
        r = deps.cmt.analyze(req)
    except (CMTError, ValueError) as e:
        return (gr.skip(),) * 6 + (f"*{e}*", gr.skip(), policy)
    annotated = draw_box(frame, r.face_box, r.label) if frame is not None else gr.skip()
    return (annotated, *describe(r, policy), policy)


def play_scenario(path: str | None, control: bool):
    """Run a scripted scenario; returns (table rows, summary)."""
    from tutor.simulate import ScenarioError, run_scenario

    if not path:
        gr.Warning("Pick a scenario first.")
        return gr.skip(), gr.skip()
    try:
        sim = run_scenario(Path(path), control=control)
    except (ScenarioError, ValueError, OSError) as e:
        gr.Warning(str(e))
        return gr.skip(), gr.skip()
    rows = [[r.index, f"{r.t:.0f}", r.said, r.emotion, r.state, r.tone, r.pacing, r.did, r.reason]
            for r in sim.rows]
    changed = sum(1 for a, b in zip(sim.rows, sim.rows[1:]) if (a.tone, a.pacing) != (b.tone, b.pacing))
    summary = (f"**{sim.scenario.name}** ({sim.mode}): {len(rows)} turns, the tutor changed its style "
               f"{changed} times. {sim.scenario.description}")
    return rows, summary


def scenario_choices(deps: Deps) -> list[tuple[str, str]]:
    folder = deps.settings.data_dir / "scenarios"
    return [(p.stem.replace("_", " "), str(p)) for p in sorted(folder.glob("*.yaml"))]


def build_demo(deps: Deps) -> None:
    policy = gr.State(None)
    with gr.Tab("Live"):
        consent = gr.Checkbox(label="Analyse my camera for this demo (frames stay in memory)",
                              value=False, elem_id="demo-consent")
        with gr.Row():
            with gr.Column(scale=2):
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                               elem_id="demo-camera")
                boxed = inline_image(label="What the CMT sees", interactive=False,
                                    elem_id="demo-boxed")  # never written to disk
                line = gr.Textbox(label="Say something (optional)", max_lines=2, elem_id="demo-text")
            with gr.Column(scale=3):
                fused = gr.Label(label="Fused emotion", num_top_classes=7, elem_id="demo-fused")
                with gr.Row():
                    text_l = gr.Label(label="Text", num_top_classes=3)
                    face_l = gr.Label(label="Face", num_top_classes=3)
                    speech_l = gr.Label(label="Speech", num_top_classes=3)
                attention = gr.Dataframe(headers=["modality", "→ none", "→ text", "→ face", "→ speech"],
                                         label="Cross-modal attention (share of each row's attention)",
                                         interactive=False)
                latency = gr.Markdown(elem_id="demo-latency")
                style = gr.Markdown(elem_id="demo-style")
        outputs = [boxed, fused, text_l, face_l, speech_l, attention, latency, style, policy]
        cam.stream(lambda f, t, c, p: analyze_live(deps, f, t, c, p), [cam, line, consent, policy],
                   outputs, stream_every=FRAME_EVERY_S, concurrency_limit=4, api_name=False)
        line.submit(lambda f, t, c, p: analyze_live(deps, f, t, True, p), [cam, line, consent, policy],
                    outputs, api_name=False)
    with gr.Tab("Scripted scenario"):
        choices = scenario_choices(deps)
        with gr.Row():
            pick = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None,
                               label="Scenario", elem_id="demo-scenario")
            control = gr.Checkbox(label="Control mode (no adaptation)", value=False)
            play = gr.Button("Play", variant="primary", elem_id="demo-play")
        summary = gr.Markdown()
        table = gr.Dataframe(headers=SCENARIO_COLUMNS, wrap=True, interactive=False,
                             elem_id="demo-table")
        play.click(play_scenario, [pick, control], [table, summary], api_name=False)
