"""Student view: chat with the tutor (typed or spoken), consent per modality, and a small,
hideable note of what the tutor noticed and why it changed its tone.

Who is chatting (`who`, every handler's second argument) depends on
settings.student_sign_in. In "code" mode it is the signed-in student's Principal, held in
a gr.State (so on the server) after `sign_in` checked their handle and code; a name typed
anywhere is refused, and a conversation is only ever continued by the student it belongs
to. In "open" mode (the single-laptop demo) it is the name typed in the name field.

Handlers are plain functions taking `deps` explicitly; `build_student` only wires them.
"""

from __future__ import annotations

import functools
import logging
import re

import gradio as gr
import numpy as np

from sqlalchemy import select

from tutor.auth import (AccessDenied, Principal, TooManyAttempts, authenticate_student,
                        current_principal)
from tutor.curriculum import Pack, load_packs
from tutor.db.models import Student
from tutor.privacy import NOTICES, current_consents, notice, record_consent
from tutor.session import (Conversation, MessageError, StorageError, clean_message, open_lesson,
                           stored_mastery)
from ui.deps import Deps
from ui.guard import client_address
from ui.media import AlreadyTaken, take_bytes

log = logging.getLogger("ui.student")
HANDLE_RE = re.compile(r"^[\w .'-]{1,60}$")
MAX_RECORDING_BYTES = 16 * 1024 * 1024
FRAME_EVERY_S = 0.5  # two camera frames a second are plenty
OOPS = "Something went wrong on our side; your message is still in the box."
SIGN_IN_FIRST = "Please sign in with your handle and code first."
SIGN_IN_FAILED = "That handle and code do not match. Check them, or ask your teacher for a new code."
NOT_SIGNED_IN = "Not signed in. Sign in with the handle and code your teacher gave you."
OPEN_NOTE = ("Open sign-in: a typed name is enough, so anyone at this computer can continue "
             "that name's lessons. A school server asks for sign-in codes instead.")


def start_camera_js(elem_id: str) -> str:
    """Browser code that starts the webcam component `elem_id` once a box is ticked, so
    allowing the camera is one click (no "Click to Access Webcam", no record button)."""
    return """(allowed) => {
  if (!allowed) return;
  let tries = 0;
  const go = () => {
    const root = document.querySelector('#%s');
    if (!root || tries++ > 80) return;
    const access = [...root.querySelectorAll('button')].find(
      (b) => /access webcam/i.test(b.textContent));
    const start = root.querySelector('button[aria-label="capture photo"]');
    if (access) access.click();
    else if (start) { start.click(); return; }
    setTimeout(go, 250);
  };
  setTimeout(go, 250);
}""" % elem_id


def media_heading(camera_on: bool, microphone_on: bool) -> str:
    """The heading over the consent boxes: what is on and what is off, as it is now."""
    if camera_on and microphone_on:
        return "**Camera and microphone are on.** Untick a box to turn it off at once."
    if camera_on or microphone_on:
        on, off = ("Camera", "microphone") if camera_on else ("Microphone", "camera")
        return f"**{on} is on, {off} is off.** Untick a box to turn it off at once."
    return "**Camera and microphone are off** until you allow them."


Shown = tuple[str, str] | None  # (lesson, question id) the greeting asked, for the conversation


def greeting(deps: Deps, lesson: str | None,
             who: Principal | str | None = None) -> tuple[list[dict], Shown]:
    """The tutor's first message, in the chat before anyone types: the lesson, then its step
    explained and its question asked, so the student's first message answers it.

    The question is where `who`'s stored mastery says they are (a new student: the first);
    looking them up creates no one. -> (chat, shown): `shown` goes to the conversation when
    it starts (Conversation(asked=...)). Where students sign in with codes, nobody is known
    before signing in, so the greeting asks them to sign in first and asks nothing yet.
    """
    pack = _packs(str(deps.settings.data_dir / "lessons")).get(lesson) if lesson else None
    if pack is None:
        return [_tutor("Hello! Pick a lesson above to begin.")], None
    hello = f"Hello! I'm your tutor for **{pack.title}**."
    code_mode = deps.settings.student_sign_in == "code"
    if code_mode and not isinstance(who, Principal):
        first = pack.steps[0].title
        return [_tutor(f"{hello}\n\nSign in above and we'll start with *{first}*.")], None
    mastery = None
    try:
        if isinstance(who, Principal):
            mastery = stored_mastery(deps.db, lesson=pack.id, student_id=who.id)
        elif (who or "").strip():
            mastery = stored_mastery(deps.db, lesson=pack.id, handle=who.strip().lower())
    except Exception:  # the database is down: start from the beginning, as for a new student
        log.exception("stored mastery not readable")
    opening = open_lesson(pack, mastery=mastery)
    how = ("Type your answer below" if code_mode or (who or "").strip()
           else "Type your name above (so your progress is kept) and your answer below")
    how += ". You can ask for a hint at any time, or tell me when something is confusing."
    shown = (pack.id, opening.question_id) if opening.question_id else None
    return [_tutor(f"{hello}\n\n{opening.text}\n\n*{how}*")], shown


def _tutor(text: str) -> dict:
    return {"role": "assistant", "content": text}


def lesson_choices(deps: Deps) -> list[tuple[str, str]]:
    packs = _packs(str(deps.settings.data_dir / "lessons"))
    return [(p.title, pid) for pid, p in sorted(packs.items())]


@functools.lru_cache(maxsize=4)
def _packs(directory: str) -> dict[str, Pack]:
    """The lesson packs, read once (a greeting is made on every change of the name box, and
    reading and checking the files took 0.8 s on a loaded machine)."""
    return load_packs(directory)


def noticed(result) -> str:
    """One line in plain words: what the tutor noticed and what it does about it (the
    technical reason stays in the log and the teacher view)."""
    extra = f" *{result.notice}*" if result.notice else ""
    if not result.noticed:
        return extra.strip()
    return f"**Tutor noticed:** {result.noticed} · tone: **{result.decision.tone}**{extra}"


# ---------------------------------------------------------------- sign-in
def sign_in(deps: Deps, handle: str, code: str, conv: Conversation | None = None,
            client: str | None = None):
    """-> (principal, conversation, status, chat, camera consent, microphone consent).

    Never says whether the handle or the code was wrong. The chat starts empty, and the
    consent boxes show the student's own stored choices, not the previous student's.
    Failed attempts are throttled per handle and per `client` (deps.sign_in_throttle).
    """
    if not (handle or "").strip() or not (code or "").strip():
        gr.Warning("Please give your handle and code.")
        return (gr.skip(),) * 6
    _close(conv)
    try:
        with deps.db.begin() as s:
            student = authenticate_student(session=s, handle=handle, code=code,
                                           throttle=deps.sign_in_throttle, client=client)
            if student is None:
                log.info("failed student sign-in")
                gr.Warning(SIGN_IN_FAILED)
                return None, None, NOT_SIGNED_IN, [], False, False
            consent = current_consents(session=s, student_id=student.id)
            principal, name = Principal.of(student), student.display_name
    except TooManyAttempts as e:
        gr.Warning(str(e))
        return None, None, NOT_SIGNED_IN, [], False, False
    except Exception:
        log.exception("student sign-in failed")
        gr.Warning("Signing in did not work just now; please try again.")
        return None, None, NOT_SIGNED_IN, [], False, False
    return (principal, None, f"Signed in as **{name}**.", [],
            consent["camera"] and deps.settings.biometrics, consent["microphone"])


def sign_out(conv: Conversation | None = None):
    """-> (principal, conversation, status, chat, camera consent, microphone consent)."""
    _close(conv)
    return None, None, "Signed out. " + NOT_SIGNED_IN, [], False, False


def _close(conv: Conversation | None) -> None:
    if conv is None:
        return
    try:
        conv.close()
    except Exception:  # the session's end time is a nicety; signing in or out goes on
        log.warning("session %s not closed", conv.session_id)


def switch_student(deps: Deps, name: str | None, lesson: str | None, conv: Conversation | None):
    """Open sign-in: the name box changed, so someone else may be at the keyboard.

    -> (conversation, chat, camera box, microphone box, camera, microphone, camera note,
    noticed line, heading, shown). The previous name's conversation is closed and its chat,
    notes and boxes go; the boxes show the new name's stored choices and the greeting asks
    where the new name's lessons stand (nobody is created by looking).
    """
    handle = (name or "").strip().lower() or "student"
    if conv is not None and conv.handle == handle:
        return (gr.skip(),) * 10
    _close(conv)
    consent = {"camera": False, "microphone": False}
    try:
        with deps.db() as s:
            sid = s.scalar(select(Student.id).where(Student.handle == handle))
            if sid is not None:
                consent = current_consents(session=s, student_id=sid)
    except Exception:
        log.exception("consent lookup failed")  # the boxes stay unticked: nothing is read
    cam = consent["camera"] and deps.settings.biometrics
    mic = consent["microphone"]
    chat, shown = greeting(deps, lesson, name)
    return (None, chat, cam, mic, gr.update(visible=cam), gr.update(visible=mic), "", "",
            media_heading(cam, mic), shown)


def _student(deps: Deps, who: Principal) -> Principal:
    """The signed-in student as the database sees it now; MessageError if not a student."""
    try:
        with deps.db() as s:
            p = current_principal(session=s, principal=who)
    except AccessDenied as e:
        raise MessageError(str(e).capitalize() + ".") from e
    if p.role != "student":
        raise MessageError(SIGN_IN_FIRST)
    return p


def _conversation(deps: Deps, who: Principal | str | None, lesson: str | None,
                  conv: Conversation | None, shown: Shown = None) -> Conversation:
    """`who`'s conversation: `conv` when it is theirs (and the lesson's), else a new one, which
    starts from the question the greeting asked (`shown`) when it asked one of this lesson."""
    asked = shown[1] if shown and lesson is not None and shown[0] == lesson else None
    if isinstance(who, Principal):
        p = _student(deps, who)
        if conv is not None and conv.student_id == p.id and (lesson is None or conv.pack.id == lesson):
            return conv
        return Conversation(db=deps.db, cmt=deps.cmt, student_id=p.id, lesson=lesson,
                            biometrics=deps.settings.biometrics, similarity=deps.similarity,
                            turn_limit=deps.turn_limit, phraser=deps.phraser, asked=asked)
    if deps.settings.student_sign_in != "open":
        raise MessageError(SIGN_IN_FIRST)
    name = (who or "").strip() or "student"
    if not HANDLE_RE.match(name):
        raise MessageError("Please use a name of letters, digits, spaces, dots or dashes (up to 60).")
    if conv is not None and conv.handle == name.lower() and (lesson is None or conv.pack.id == lesson):
        return conv
    return Conversation(db=deps.db, cmt=deps.cmt, student_handle=name.lower(), display_name=name,
                        lesson=lesson, biometrics=deps.settings.biometrics,
                        similarity=deps.similarity, turn_limit=deps.turn_limit,
                        phraser=deps.phraser, asked=asked)


def _owns(deps: Deps, who: Principal | str | None, conv: Conversation) -> bool:
    """Whether `conv` is `who`'s (a cheap check, for camera frames)."""
    if isinstance(who, Principal):
        return who.role == "student" and conv.student_id == who.id
    return (deps.settings.student_sign_in == "open"
            and conv.handle == ((who or "").strip() or "student").lower())


# ---------------------------------------------------------------- chat
# Sending, in the page. Enter (or Send) takes the box's text into the page's outbox and empties
# the box in the same keystroke (SEND_HEAD: Gradio's own submit read the box later, after the
# first letters of a fast typist's next message were in it), so what the student types next is
# never cut or joined to it. The messages go to `respond` one at a time, in order, each when the
# last is answered: TAKE_JS takes the next; NEXT_JS, run when a turn ends, starts the next if
# any wait. One turn at a time keeps the chat the page sends with each message whole, and the
# conversation's turns in the order they were typed.
_OUTBOX = "(window.attuneOutbox ??= {queue: [], busy: false})"
_SEND_NEXT = """if (!o.busy && o.queue.length) {
    o.busy = true;
    document.getElementById('student-pump')?.click();
  }"""
SEND_HEAD = f"""<script>
(() => {{
  const send = () => {{
    const o = {_OUTBOX};
    const box = document.querySelector('#student-message textarea');
    if (!box || !box.value.trim()) return;  // nothing typed: nothing to send, nothing to refuse
    o.queue.push(box.value);
    box.value = '';
    box.dispatchEvent(new Event('input', {{bubbles: true}}));
    {_SEND_NEXT}
  }};
  document.addEventListener('keydown', (e) => {{
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    if (!e.target.closest?.('#student-message')) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    send();
  }}, true);
  document.addEventListener('click', (e) => {{
    if (e.target.closest?.('#student-send')) send();
  }}, true);
}})();
</script>"""
TAKE_JS = f"""(...args) => {{
  const o = {_OUTBOX};
  args[2] = o.queue.length ? o.queue.shift() : null;  // the pump's third input: `outgoing`
  return args;
}}"""
# Another student at the keyboard (a new name, signing in or out): what the last one typed and
# has not yet sent is theirs, never sent as the next one's.
DROP_JS = f"""(...args) => {{
  {_OUTBOX}.queue.length = 0;
  return args;
}}"""
# A refused message (too long, say) comes back from `respond` in the hidden `#student-refused`
# box; NEXT_JS puts it back in the message box in the page, before whatever was typed while it
# was away (a key typed during the round trip is never overwritten), and empties `refused`.
NEXT_JS = f"""(refused) => {{
  const o = {_OUTBOX};
  const box = document.querySelector('#student-message textarea');
  if (refused && box) {{
    box.value = box.value ? refused + '\\n' + box.value : refused;
    box.dispatchEvent(new Event('input', {{bubbles: true}}));
  }}
  o.busy = false;
  {_SEND_NEXT}
  return '';
}}"""


def respond(deps: Deps, who: Principal | str | None, lesson: str | None, message: str,
            history: list, conv: Conversation | None, frame: np.ndarray | None = None,
            shown: Shown = None):
    """A typed message; yields (history, refused, conversation, indicator) as each part is ready.
    `shown`: the question the greeting asked (the first message answers it); `refused`: the
    message, when it is refused, for the page to put back in the box (NEXT_JS).

    The student's message shows at once; the reply follows, whole, the moment it exists (it is
    written in one piece: pausing to reveal it word by word would only delay it). On bad input
    the message goes back in the box, before whatever has been typed since, and a warning says
    why; nothing is lost.
    """
    history = list(history or [])
    try:
        text = clean_message(message)
        conv = _conversation(deps, who, lesson, conv, shown)
    except MessageError as e:
        gr.Warning(str(e))
        yield history, message, conv, gr.skip()
        return
    mine = {"role": "user", "content": text}
    # the page emptied the box as it sent (SEND_HEAD); emptying it from here, a moment later,
    # would cut the first letters of a fast typist's next message
    yield history + [mine, {"role": "assistant", "content": "…"}], gr.skip(), conv, gr.skip()
    try:
        result = conv.turn(text, image=encode_frame(frame) if frame is not None else None)
    except (MessageError, StorageError) as e:
        gr.Warning(str(e))
        yield history, message, conv, gr.skip()
        return
    except Exception:
        log.exception("turn failed")
        gr.Warning(OOPS)
        yield history, message, conv, gr.skip()
        return
    yield (history + [mine, {"role": "assistant", "content": result.reply}], gr.skip(), conv,
           noticed(result))


def respond_spoken(deps: Deps, who: Principal | str | None, lesson: str | None,
                   recording: str | None, history: list, conv: Conversation | None,
                   shown: Shown = None):
    """A finished microphone recording: its transcript becomes the student's message."""
    history = list(history or [])
    if not recording:
        return history, conv, gr.skip()
    try:
        audio = take_bytes(recording, max_bytes=MAX_RECORDING_BYTES)  # its file is gone now
        if audio is None:
            raise MessageError("That recording is too long; keep it under half a minute.")
        conv = _conversation(deps, who, lesson, conv, shown)
        result = conv.turn(None, audio=audio)
    except (MessageError, StorageError) as e:
        gr.Warning(str(e))
        return history, conv, gr.skip()
    except AlreadyTaken:  # the same recording's stop event again: it was answered once
        log.info("a recording delivered twice was answered once")
        return gr.skip(), gr.skip(), gr.skip()
    except FileNotFoundError:
        log.warning("a recording was gone before its turn could read it")
        gr.Warning("That recording did not reach the tutor; please say it again or type it.")
        return history, conv, gr.skip()
    except Exception:
        log.exception("spoken turn failed")
        gr.Warning("Something went wrong on our side; please say it again or type it.")
        return history, conv, gr.skip()
    history += [{"role": "user", "content": f"🎤 {result.message}"},
                {"role": "assistant", "content": result.reply}]
    return history, conv, noticed(result)


def set_consent(deps: Deps, who: Principal | str | None, lesson: str | None,
                conv: Conversation | None, modality: str, granted: bool, shown: Shown = None):
    """Record a yes or no for one modality (no takes effect at once).
    Returns (conv, camera/mic update, checkbox update)."""
    try:
        conv = _conversation(deps, who, lesson, conv, shown)
        with deps.db.begin() as s:
            record_consent(session=s, student_id=conv.student_id, modality=modality, granted=granted)
    except MessageError as e:
        gr.Warning(str(e))
        return conv, gr.update(visible=False), gr.update(value=False)
    except Exception:
        log.exception("consent not recorded")
        gr.Warning("Your choice could not be saved; nothing will be analysed until it is.")
        return conv, gr.update(visible=False), gr.update(value=False)
    return conv, gr.update(visible=granted), gr.skip()


def encode_frame(frame: np.ndarray) -> bytes:
    """RGB uint8 frame -> JPEG bytes for the wire."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("could not encode the camera frame")
    return buf.tobytes()


def on_frame(deps: Deps, who: Principal | str | None, frame: np.ndarray | None,
             conv: Conversation | None):
    """A webcam frame: analysed in memory (with consent), never stored. Returns the indicator."""
    if frame is None or conv is None or not _owns(deps, who, conv):
        return gr.skip()
    try:
        reading = conv.observe_frame(encode_frame(frame))
    except Exception:
        log.exception("frame failed")
        return gr.skip()
    if reading is None:
        return gr.skip()
    face = reading.modalities.get("face")
    if face is None:
        return "*Camera on: no face in view.*"
    return (f"Camera: **{face.label}** ({face.confidence:.0%}) · tutor's tone: "
            f"**{conv.policy.tone}** ({conv.policy.state})")


def build_student(deps: Deps) -> None:
    """The student tab's components and events (call inside a gr.Blocks)."""
    conv = gr.State(None)
    choices = lesson_choices(deps)
    code_mode = deps.settings.student_sign_in == "code"
    first_chat, first_shown = greeting(deps, choices[0][1] if choices else None)
    shown = gr.State(first_shown)  # the question the greeting asked: the first message answers it
    with gr.Row():
        if code_mode:
            who = gr.State(None)  # the signed-in student's Principal
            handle = gr.Textbox(label="Your handle", placeholder="e.g. sam.lee", scale=2,
                                max_lines=1, elem_id="student-handle")
            code = gr.Textbox(label="Sign-in code", type="password", scale=2, max_lines=1,
                              elem_id="student-code")
            with gr.Column(scale=1, min_width=120):
                sign_in_btn = gr.Button("Sign in", variant="primary", elem_id="student-sign-in")
                sign_out_btn = gr.Button("Sign out", size="sm", elem_id="student-sign-out")
        else:
            who = gr.Textbox(label="Your name", placeholder="e.g. Sam", scale=2, max_lines=1,
                             info=OPEN_NOTE, elem_id="student-name")
        lesson = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None,
                             label="Lesson", scale=2, elem_id="student-lesson")
    if code_mode:
        status = gr.Markdown(NOT_SIGNED_IN, elem_id="student-status")
    with gr.Row():
        with gr.Column(scale=3):
            chat = gr.Chatbot(value=first_chat, label="Tutor", show_label=False, height=420,
                              buttons=["copy"], elem_id="student-chat")
            with gr.Row():
                # read and written in the page only (SEND_HEAD, NEXT_JS)
                gr.Textbox(placeholder="Type your message and press Enter", show_label=False,
                           scale=5, max_lines=4, elem_id="student-message")
                gr.Button("Send", variant="primary", scale=1, elem_id="student-send")
                # the page's outbox hands each message to `respond` through these (SEND_HEAD)
                outgoing = gr.Textbox(visible="hidden", elem_id="student-outgoing")
                refused = gr.Textbox(visible="hidden", elem_id="student-refused")
                pump = gr.Button(visible="hidden", elem_id="student-pump")
            with gr.Row():
                show = gr.Checkbox(value=True, label="Show what the tutor noticed", scale=1)
            indicator = gr.Markdown(elem_id="student-noticed")
        with gr.Column(scale=2):
            biometrics = deps.settings.biometrics
            heading = gr.Markdown(media_heading(False, False), elem_id="student-media-heading")
            if not biometrics:
                gr.Markdown("This school runs Attune without face or voice emotion: the "
                            "microphone is used for dictation only.")
            cam_ok = gr.Checkbox(label="Allow camera", value=False, visible=biometrics,
                                 info=NOTICES["camera"], elem_id="consent-camera")
            mic_ok = gr.Checkbox(label="Allow microphone", value=False,
                                 info=notice("microphone", biometrics=biometrics),
                                 elem_id="consent-microphone")
            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", visible=False,
                           label="Camera", elem_id="student-camera")
            cam_note = gr.Markdown(elem_id="student-camera-note")
            mic = gr.Audio(sources=["microphone"], type="filepath", visible=False,
                           label="Speak, then stop", elem_id="student-mic")

    if code_mode:
        outputs = [who, conv, status, chat, cam_ok, mic_ok]
        def on_sign_in(h, c, cv, request: gr.Request):
            return sign_in(deps, h, c, cv, client=client_address(request))

        def greet_signed_in(w, c, m, les):
            return ("", gr.update(visible=c), gr.update(visible=m), "", "",
                    *greeting(deps, les, w), media_heading(c, m))

        gr.on([sign_in_btn.click, code.submit], on_sign_in,
              [handle, code, conv], outputs, api_name=False, js=DROP_JS).then(
                  greet_signed_in, [who, cam_ok, mic_ok, lesson],
                  [code, cam, mic, indicator, cam_note, chat, shown, heading], api_name=False)
        sign_out_btn.click(sign_out, [conv], outputs, api_name=False, js=DROP_JS).then(
            lambda les: (gr.update(visible=False), gr.update(visible=False), "", "",
                         *greeting(deps, les), media_heading(False, False)), [lesson],
            [cam, mic, indicator, cam_note, chat, shown, heading], api_name=False)
    else:  # a new name may be a new student at the keyboard: nothing of the last one stays
        who.change(lambda w, les, c: switch_student(deps, w, les, c), [who, lesson, conv],
                  [conv, chat, cam_ok, mic_ok, cam, mic, cam_note, indicator, heading, shown],
                  api_name=False, js=DROP_JS)
    lesson.input(lambda les, w: greeting(deps, les, w), [lesson, who], [chat, shown],
                 api_name=False)

    def send_msg(w, les, m, h, c, f, sh):
        if m is None:  # the page's outbox was empty: nothing to send
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from respond(deps, w, les, m, h, c, f, sh)

    # Enter and Send are heard in the page (SEND_HEAD, which ui.app puts in the page's head)
    sent = pump.click(send_msg, [who, lesson, outgoing, chat, conv, cam, shown],
                      [chat, refused, conv, indicator], js=TAKE_JS, trigger_mode="multiple",
                      api_name=False)
    sent.then(None, [refused], [refused], js=NEXT_JS, api_name=False)  # a turn that ends...
    sent.failure(None, [refused], [refused], js=NEXT_JS,  # ...or fails (.then skips those)
                 api_name=False)
    mic.stop_recording(lambda w, les, r, h, c, sh: respond_spoken(deps, w, les, r, h, c, sh),
                       [who, lesson, mic, chat, conv, shown], [chat, conv, indicator],
                       api_name=False)
    # .input, not .change: a box set by signing in or out records no choice
    cam_ok.input(lambda w, les, c, v, sh: set_consent(deps, w, les, c, "camera", v, sh),
                 [who, lesson, conv, cam_ok, shown], [conv, cam, cam_ok], api_name=False).then(
                     media_heading, [cam_ok, mic_ok], heading, api_name=False).then(
                     None, [cam_ok], None, js=start_camera_js("student-camera"), api_name=False)
    mic_ok.input(lambda w, les, c, v, sh: set_consent(deps, w, les, c, "microphone", v, sh),
                 [who, lesson, conv, mic_ok, shown], [conv, mic, mic_ok], api_name=False).then(
                     media_heading, [cam_ok, mic_ok], heading, api_name=False)
    cam.stream(lambda w, f, c: on_frame(deps, w, f, c), [who, cam, conv], [cam_note],
               stream_every=FRAME_EVERY_S, concurrency_limit=8, show_progress="hidden",
               api_name=False)
    show.change(lambda v: (gr.update(visible=v), gr.update(visible=v)), [show], [indicator, cam_note],
                api_name=False)
