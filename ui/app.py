"""The Gradio app: one Blocks, one tab per view, and how it is served."""

from __future__ import annotations

import gradio as gr
from starlette.middleware import Middleware

from tutor.settings import Settings
from ui.demo import build_demo
from ui.deps import Deps
from ui.guard import ClientGuard
from ui.student import SEND_HEAD, build_student
from ui.teacher import build_teacher

TITLE = "Attune — adaptive tutor"
MAX_UPLOAD = "16mb"  # per file; a spoken turn (at most half a minute) is a few megabytes
# Gradio's sweep of its cache: every minute, the files this app made or took in more than
# five minutes ago go (an export nobody downloaded, an upload no handler took).
CACHE_SWEEP = (60, 300)  # (every s, older than s)
CONCURRENCY = 8
# Layout the components' own options cannot set. Tables are read as text, in the page's font
# (Gradio's monospace broke "Turn", "neutral" and times into pieces); the chat has no "clear"
# button (it would wipe the greeting's question from view while the lesson goes on).
CSS = """
#teacher-overview .table-container *, #teacher-transcript .table-container *,
#demo-table .table-container * {
  font-family: var(--font) !important; font-size: 13px; line-height: 1.35; }
#teacher-overview .cell-wrap, #teacher-transcript .cell-wrap, #demo-table .cell-wrap {
  padding: 4px 6px; }
#student-chat button[aria-label="Clear"] { display: none; }
"""


def build_app(deps: Deps) -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=CACHE_SWEEP) as app:
        gr.Markdown(f"## {TITLE}")
        with gr.Tab("Student"):
            build_student(deps)
        with gr.Tab("Teacher"):
            teacher = build_teacher(deps)
        with gr.Tab("Demo"):
            build_demo(deps, teacher)  # where students need codes, the demo needs a teacher
    return app


def launch(app: gr.Blocks, settings: Settings, **kwargs):
    """Serve `app` on settings.host:settings.port as Attune must be served: uploads bounded
    (MAX_UPLOAD), the cache swept (CACHE_SWEEP), the app's home never served, each session
    bound to its browser (ui.guard), and the student's messages sent by the page
    (ui.student.SEND_HEAD). `kwargs` go to gr.Blocks.launch (tests pass
    prevent_thread_lock, quiet)."""
    return app.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=settings.host, server_port=settings.port, show_error=False, css=CSS,
        head=SEND_HEAD,
        max_file_size=MAX_UPLOAD, blocked_paths=[str(settings.home.expanduser().resolve())],
        app_kwargs={"middleware": [Middleware(ClientGuard)]}, **kwargs)
