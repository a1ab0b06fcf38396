"""Student view: chat with the tutor, and a small note of what it noticed."""

from __future__ import annotations

import logging
import re

import gradio as gr

from tutor.session import Conversation, MessageError, StorageError
from ui.deps import Deps

log = logging.getLogger("ui.student")
HANDLE_RE = re.compile(r"^[\w .'-]{1,60}$")


def noticed(result) -> str:
    """One calm line: what the tutor noticed and why its tone is what it is."""
    if result.reading is None:
        return f"*{result.notice or 'No emotion reading this turn.'}*"
    r = result.reading
    degraded = " (backup model)" if r.degraded else ""
    return (f"Tutor noticed **{r.label}** ({r.confidence:.0%}){degraded} · "
            f"tone: **{result.decision.tone}** · {result.decision.reason}")


def respond(deps: Deps, name: str, message: str, history: list, conv: Conversation | None):
    """Handle one typed message. Returns (history, textbox, conversation, indicator).

    On bad input the message stays in the box and a warning says why; nothing is lost.
    """
    history = list(history or [])
    name = (name or "").strip() or "student"
    if not HANDLE_RE.match(name):
        gr.Warning("Please use a name of letters, digits, spaces, dots or dashes (up to 60).")
        return history, message, conv, gr.skip()
    try:
        if conv is None:
            conv = Conversation(db=deps.db, cmt=deps.cmt, student_handle=name.lower(),
                                display_name=name)
        result = conv.turn(message)
    except (MessageError, StorageError) as e:
        gr.Warning(str(e))
        return history, message, conv, gr.skip()
    except Exception:
        log.exception("turn failed")
        gr.Warning("Something went wrong on our side; your message is still in the box.")
        return history, message, conv, gr.skip()
    history += [{"role": "user", "content": message.strip()},
                {"role": "assistant", "content": result.reply}]
    return history, "", conv, noticed(result)


def build_student(deps: Deps) -> None:
    """The student tab's components and events (call inside a gr.Blocks)."""
    conv = gr.State(None)
    with gr.Row():
        name = gr.Textbox(label="Your name", placeholder="e.g. Sam", scale=1, max_lines=1)
    chat = gr.Chatbot(label="Tutor", height=420, elem_id="student-chat")
    with gr.Row():
        box = gr.Textbox(placeholder="Type your message and press Enter", show_label=False,
                         scale=5, max_lines=4, elem_id="student-message")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="student-send")
    indicator = gr.Markdown(elem_id="student-noticed")

    def handler(n, m, h, c):
        return respond(deps, n, m, h, c)

    for trigger in (box.submit, send.click):
        trigger(handler, [name, box, chat, conv], [chat, box, conv, indicator])
