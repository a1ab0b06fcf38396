"""Demo view: the adaptive loop in one screen.

Live: the camera with the face box, the microphone, fused and per-modality emotion bars, the
cross-modal attention as a heat map, per-stage latency, and the tutor's current style with
its reason. Scripted: a scenario from tutor.simulate plays without a camera, for stage demos.

The live demo follows the same rules as the student view: with ATTUNE_BIOMETRICS=false no
face or voice emotion is read (the microphone dictates only); camera and microphone are read
only while the consent box is ticked; where students sign in with codes (a school server),
only a signed-in teacher or administrator (Teacher tab) can use it. The framed face goes back
to the page inline, never as a file.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import gradio as gr
import numpy as np

from tutor.auth import AccessDenied, Principal, current_principal
from tutor.client import AnalyzeRequest, AnalyzeResponse, CMTError
from tutor.policy import Evidence, Policy
from ui.deps import Deps
from ui.media import take_bytes
from ui.student import FRAME_EVERY_S, MAX_RECORDING_BYTES, encode_frame, start_camera_js

log = logging.getLogger("ui.demo")
SCENARIO_COLUMNS = ["#", "t (s)", "student said", "read", "learner state", "tone", "pacing",
                    "tutor said", "what the tutor did", "why"]
SCENARIO_WIDTHS = ["3%", "4%", "13%", "7%", "7%", "6%", "7%", "25%", "12%", "16%"]
ATTENTION_TARGETS = ("none", "text", "face", "speech")
SIGN_IN_FOR_DEMO = ("This installation asks students for sign-in codes, so the live demo is "
                    "for teachers: sign in on the Teacher tab first.")
N_OUTPUTS = 9  # boxed, fused, text, face, speech, attention, latency, style, policy


def words(identifier: str) -> str:
    """An id as words: "worked_example" -> "worked example"."""
    return str(identifier).replace("_", " ")


def draw_box(frame: np.ndarray, box, label: str) -> np.ndarray:
    """The face box with its label in large type on a filled band, on a copy of the frame."""
    import cv2

    out = frame.copy()
    if box:
        x, y, w, h = box
        green = (46, 204, 113)
        thick = max(2, frame.shape[1] // 240)
        cv2.rectangle(out, (x, y), (x + w, y + h), green, thick)
        scale = max(0.8, frame.shape[1] / 640)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = max(y - th - base - 8, 0)
        cv2.rectangle(out, (x, top), (x + tw + 10, top + th + base + 8), green, cv2.FILLED)
        cv2.putText(out, label, (x + 5, top + th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    return out


def inline_image(frame: np.ndarray) -> str:
    """The frame as an <img> with a data: URL: shown in the page, never written to a file."""
    data = base64.b64encode(encode_frame(frame)).decode()
    return (f'<img src="data:image/jpeg;base64,{data}" alt="What the model sees" '
            'style="max-width:100%;border-radius:6px">')


def attention_heatmap(attention: dict[str, dict[str, float]] | None) -> str:
    """Cross-modal attention as a heat map: a row per modality that attends, a column per
    modality attended to, each cell's colour its share of the row's attention."""
    if not attention:
        return ("<p style='color:#666'>Cross-modal attention appears when the model reads "
                "more than one modality (for example a face and a typed line).</p>")
    head = "".join(f"<th style='padding:6px 10px'>{html.escape(t)}</th>" for t in ATTENTION_TARGETS)
    rows = []
    for m, row in attention.items():
        cells = []
        for t in ATTENTION_TARGETS:
            share = float(row.get(t, 0.0))
            ink = "#fff" if share > 0.5 else "#222"
            cells.append(f"<td style='background:rgba(57,105,172,{share:.2f});color:{ink};"
                         f"padding:10px 14px;text-align:center'>{share:.2f}</td>")
        rows.append(f"<tr><th style='padding:6px 10px;text-align:right'>{html.escape(m)}</th>"
                    + "".join(cells) + "</tr>")
    return ("<div><b>Cross-modal attention</b>: where each modality (row) looked; darker is "
            "a larger share<table style='border-collapse:collapse;margin-top:6px'>"
            f"<tr><th></th>{head}</tr>{''.join(rows)}</table></div>")


def describe(r: AnalyzeResponse, policy: Policy) -> tuple:
    """A reading -> (fused, text, face, speech label dicts, attention, latency md, style md)."""
    per = {m: (r.modalities[m].probs if m in r.modalities else None) for m in ("text", "face", "speech")}
    stages = " · ".join(f"{words(k)} {v:.0f} ms" for k, v in r.stage_ms.items())
    latency = f"**{r.latency_ms:.0f} ms** server-side ({stages}) · model `{r.model_version}`"
    d = policy.decide(r, Evidence(), turn=False)  # a live frame, not a turn
    style = (f"This reading: **{r.label} {r.confidence:.2f}**. The tutor judges the learner "
             f"**{words(d.state)}** from the readings of the last few seconds together (one "
             f"reading alone does not switch it), so it would use a **{words(d.tone)}** tone "
             f"at **{words(d.pacing)}** pacing. *Why: {d.reason}*")
    return (r.probs, per["text"], per["face"], per["speech"], attention_heatmap(r.attention), latency, style)


def may_use_live_demo(deps: Deps, principal: Principal | None) -> bool:
    """Open sign-in (one laptop): anyone at it. Sign-in codes: a signed-in teacher or admin."""
    if deps.settings.student_sign_in == "open":
        return True
    try:
        with deps.db() as s:
            return current_principal(session=s, principal=principal).role != "student"
    except AccessDenied:
        return False


def analyze_live(deps: Deps, principal: Principal | None, frame: np.ndarray | None, text: str,
                 consent: bool, policy: Policy | None, audio: bytes | None = None, *,
                 warn: bool = True):
    """One frame, typed line or recording through the CMT. Returns the view's outputs.

    The frame and recording are sent only with `consent`, and with biometrics on (off: a
    recording is transcribed, its voice not read). A refusal warns unless `warn` is False
    (camera frames: one warning per frame would flood the page).
    """
    policy = policy or Policy()
    skip = (gr.skip(),) * (N_OUTPUTS - 1) + (policy,)
    if not may_use_live_demo(deps, principal):
        if warn:
            gr.Warning(SIGN_IN_FOR_DEMO)
        return skip
    biometrics = deps.settings.biometrics
    image = frame if consent and biometrics else None
    audio = audio if consent else None
    text = (text or "").strip() or None
    if image is None and text is None and audio is None:
        return skip
    try:
        req = AnalyzeRequest(text=text,
                             image_b64=base64.b64encode(encode_frame(image)).decode()
                             if image is not None else None,
                             audio_b64=base64.b64encode(audio).decode() if audio else None,
                             modalities=None if biometrics else ["text"])
        r = deps.cmt.analyze(req)
    except (CMTError, ValueError) as e:
        return (gr.skip(),) * 6 + (f"*{e}*", gr.skip(), policy)
    boxed = inline_image(draw_box(image, r.face_box, r.label)) if image is not None else gr.skip()
    fused, *per, attention, latency, style = describe(r, policy)
    # a modality this reading did not have keeps its last bars: two camera frames a second
    # must not wipe the voice's reading a moment after the recording was read
    per = [p if m in r.modalities else gr.skip() for m, p in zip(("text", "face", "speech"), per)]
    return (boxed, fused, *per, attention, latency, style, policy)


def analyze_recording(deps: Deps, principal: Principal | None, recording: str | None,
                      frame: np.ndarray | None, text: str, consent: bool, policy: Policy | None):
    """A finished microphone recording (with the current frame and line): read, then deleted."""
    if not recording:
        return (gr.skip(),) * (N_OUTPUTS - 1) + (policy or Policy(),)
    data = take_bytes(recording, max_bytes=MAX_RECORDING_BYTES)  # its file is gone now
    if data is None:
        gr.Warning("That recording is too long; keep it under half a minute.")
        return (gr.skip(),) * (N_OUTPUTS - 1) + (policy or Policy(),)
    return analyze_live(deps, principal, frame, text, consent, policy, audio=data)


def scenario_rows(sim) -> list[list]:
    """The scripted turns as the demo's table: ids as words, replies and reasons in full."""
    return [[r.index, f"{r.t:.0f}", r.said, r.emotion, words(r.state), words(r.tone),
             words(r.pacing), r.reply, words(r.did), r.reason] for r in sim.rows]


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
    rows = scenario_rows(sim)
    changed = sum(1 for a, b in zip(sim.rows, sim.rows[1:]) if (a.tone, a.pacing) != (b.tone, b.pacing))
    summary = (f"**{sim.scenario.name}** ({sim.mode}): {_n(len(rows), 'turn')}, the tutor "
               f"changed its style {_n(changed, 'time')}. {sim.scenario.description}")
    return rows, summary


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scenario_choices(deps: Deps) -> list[tuple[str, str]]:
    folder = deps.settings.data_dir / "scenarios"
    return [(p.stem.replace("_", " "), str(p)) for p in sorted(folder.glob("*.yaml"))]


def build_demo(deps: Deps, principal: gr.State | None = None) -> None:
    """The demo tab. `principal` is the Teacher tab's signed-in teacher (code mode needs one)."""
    principal = principal if principal is not None else gr.State(None)
    policy = gr.State(None)
    biometrics = deps.settings.biometrics
    with gr.Tab("Live"):
        if deps.settings.student_sign_in != "open":
            gr.Markdown(SIGN_IN_FOR_DEMO)
        consent = gr.Checkbox(
            label=("Analyse my camera and microphone for this demo (in memory; nothing is kept)"
                   if biometrics else "Use my microphone for this demo (dictation only: this "
                   "installation reads no face or voice emotion)"),
            value=False, elem_id="demo-consent")
        with gr.Row():
            with gr.Column(scale=2):
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                               visible=biometrics, elem_id="demo-camera")
                boxed = gr.HTML(label="What the model sees", elem_id="demo-boxed")
                line = gr.Textbox(label="Type something (optional, Enter to read it)",
                                  max_lines=2, elem_id="demo-text")
                mic = gr.Audio(sources=["microphone"], type="filepath", elem_id="demo-mic",
                               label="Say something (read when you stop)")
            with gr.Column(scale=3):
                fused = gr.Label(label="Fused emotion", num_top_classes=7, elem_id="demo-fused")
                with gr.Row():
                    text_l = gr.Label(label="Text", num_top_classes=3, elem_id="demo-text-bars")
                    face_l = gr.Label(label="Face", num_top_classes=3, visible=biometrics)
                    speech_l = gr.Label(label="Speech", num_top_classes=3, visible=biometrics,
                                        elem_id="demo-speech-bars")
                attention = gr.HTML(attention_heatmap(None),
                                    elem_id="demo-attention")
                latency = gr.Markdown(elem_id="demo-latency")
                style = gr.Markdown(elem_id="demo-style")
        outputs = [boxed, fused, text_l, face_l, speech_l, attention, latency, style, policy]
        consent.input(None, [consent], None, js=start_camera_js("demo-camera"), api_name=False)
        cam.stream(lambda p, f, t, c, po: analyze_live(deps, p, f, t, c, po, warn=False),
                   [principal, cam, line, consent, policy], outputs, stream_every=FRAME_EVERY_S,
                   concurrency_limit=4, show_progress="hidden", api_name=False)
        line.submit(lambda p, f, t, c, po: analyze_live(deps, p, f, t, c, po),
                    [principal, cam, line, consent, policy], outputs, show_progress="hidden",
                    api_name=False)
        mic.stop_recording(lambda p, r, f, t, c, po: analyze_recording(deps, p, r, f, t, c, po),
                           [principal, mic, cam, line, consent, policy], outputs,
                           show_progress="hidden", api_name=False)
    with gr.Tab("Scripted scenario"):
        choices = scenario_choices(deps)
        with gr.Row():
            pick = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None,
                               label="Scenario", elem_id="demo-scenario")
            control = gr.Checkbox(label="Control mode (no adaptation)", value=False)
            play = gr.Button("Play", variant="primary", elem_id="demo-play")
        summary = gr.Markdown()
        table = gr.Dataframe(headers=SCENARIO_COLUMNS, wrap=True, interactive=False,
                             column_widths=SCENARIO_WIDTHS, elem_id="demo-table")
        play.click(play_scenario, [pick, control], [table, summary], api_name=False)
