"""The Gradio app: one Blocks, one tab per view."""

from __future__ import annotations

import gradio as gr

from ui.demo import build_demo
from ui.deps import Deps
from ui.student import build_student
from ui.teacher import build_teacher

TITLE = "Attune — adaptive tutor"


def build_app(deps: Deps) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"## {TITLE}")
        with gr.Tab("Student"):
            build_student(deps)
        with gr.Tab("Teacher"):
            teacher = build_teacher(deps)
        with gr.Tab("Demo"):
            build_demo(deps, teacher)  # where students need codes, the demo needs a teacher
    return app
