"""Teacher view: sign in, a class overview of who is struggling, a session's timeline, exports,
new sign-in codes for the teacher's own students.

The handlers are plain functions taking `deps` and the signed-in Principal (held in a
gr.State, so on the server); each one re-checks access through tutor.reports, which
re-reads the principal's role from the database. Refusals and bad input become gr.Warning
messages; the outputs are then left as they were (gr.skip()).
"""

from __future__ import annotations

import functools
import html
import logging
from datetime import datetime, timedelta, timezone

import gradio as gr
import pandas as pd

from tutor import reports
from tutor.auth import AccessDenied, Principal, authenticate, reset_student_code
from tutor.db.models import Student
from ui.deps import Deps
from ui.guard import client_address
from ui.media import export_file

log = logging.getLogger("ui.teacher")

PERIODS: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All time": None,
    "Custom": None,
}
DEFAULT_PERIOD = "Last 7 days"
OVERVIEW_COLUMNS = ["Id", "Student", "Needs help now", "Struggling", "Why", "Hard turns",
                    "Turns", "Camera minutes", "Sessions", "Last state", "Last active (UTC)"]
OVERVIEW_WIDTHS = ["4%", "11%", "20%", "8%", "20%", "6%", "5%", "6%", "7%", "6%", "7%"]
HELP_EVERY_S = 10  # the "needs help now" panel refreshes this often
TRANSCRIPT_COLUMNS = ["Turn", "Time", "Student", "Tutor", "Read", "State"]
TRANSCRIPT_WIDTHS = ["9%", "14%", "21%", "30%", "12%", "14%"]
SIGN_IN_FAILED = "That e-mail and password do not match an account."


class InputError(ValueError):
    """Something the teacher picked or typed cannot be used (no class chosen, bad dates)."""


def _guard(n_outputs: int):
    """Turn refusals and bad input into a gr.Warning, other failures into a calm one; either
    way every output is left as it was."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (AccessDenied, ValueError) as e:
                gr.Warning(str(e))
            except KeyError as e:
                gr.Warning(str(e.args[0]) if e.args else "not found")
            except Exception:
                log.exception("%s failed", fn.__name__)
                gr.Warning("Something went wrong on our side; please try again.")
            skipped = tuple(gr.skip() for _ in range(n_outputs))
            return skipped[0] if n_outputs == 1 else skipped
        return inner
    return wrap


def _id(value, what: str) -> int:
    """A picked id from a dropdown (int, or its text); InputError when nothing is picked."""
    if value is None or value == "":
        raise InputError(f"Please choose a {what} first.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a {what} id.") from None


def _when(value) -> datetime | None:
    """gr.DateTime gives a timestamp (float), a string or a datetime; all become aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return reports.utc(value)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    try:
        return reports.utc(datetime.fromisoformat(str(value).strip()))
    except ValueError:
        raise InputError(f"{value!r} is not a date and time (use e.g. 2026-11-20 09:00).") from None


def period_bounds(period: str, start=None, end=None, *,
                  now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """(since, until) for a period choice; "Custom" uses start/end (either may be empty)."""
    if period not in PERIODS:
        raise InputError(f"Unknown period {period!r}; choose one of {', '.join(PERIODS)}.")
    if period == "Custom":
        since, until = _when(start), _when(end)
        if since is not None and until is not None and since >= until:
            raise InputError("The period's start must come before its end.")
        return since, until
    span = PERIODS[period]
    if span is None:
        return None, None
    now = reports.utc(now) if now is not None else datetime.now(timezone.utc)
    return now - span, None


def _fmt(dt: datetime | None) -> str:
    return "" if dt is None else reports.utc(dt).strftime("%Y-%m-%d %H:%M:%S")


def _export_path(name: str, data: str | bytes) -> str:
    return export_file(name, data)  # deleted once downloaded (ui.media, ui.guard)


# ---------------------------------------------------------------- handlers
@_guard(4)
def sign_in(deps: Deps, email: str, password: str, client: str | None = None):
    """-> (principal, status, class picker, main area). Never says which of the two was wrong;
    failed attempts are throttled per e-mail and per `client` (deps.sign_in_throttle)."""
    if not (email or "").strip() or not password:
        raise InputError("Please give your e-mail and password.")
    with deps.db.begin() as s:
        teacher = authenticate(session=s, email=email, password=password,
                               throttle=deps.sign_in_throttle, client=client)
        if teacher is None:
            log.info("failed sign-in")
            gr.Warning(SIGN_IN_FAILED)
            return None, "Not signed in.", gr.update(choices=[], value=None), gr.update(visible=False)
        principal = Principal.of(teacher)
        classes = reports.visible_classes(session=s, principal=principal)
        status = f"Signed in as **{teacher.name}** ({teacher.role})."
    choices = class_choices(classes)
    if not choices:
        status += " You have no classes yet."
    return (principal, status, gr.update(choices=choices, value=choices[0][1] if choices else None),
            gr.update(visible=True))


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def class_choices(classes: list[reports.ClassInfo]) -> list[tuple[str, int]]:
    return [(f"{c.name} ({_n(c.students, 'student')})", c.id) for c in classes]


@_guard(1)
def refresh_classes(deps: Deps, principal: Principal | None, class_id):
    """-> the class picker with current names and counts, keeping the picked class."""
    if principal is None:
        return gr.skip()
    with deps.db() as s:
        choices = class_choices(reports.visible_classes(session=s, principal=principal))
    keep = class_id if any(v == class_id for _, v in choices) else (choices[0][1] if choices else None)
    return gr.update(choices=choices, value=keep)


def sign_out():
    """-> (principal, status, class picker, main area)."""
    return None, "Signed out.", gr.update(choices=[], value=None), gr.update(visible=False)


@_guard(3)
def load_overview(deps: Deps, principal: Principal | None, class_id, period: str = DEFAULT_PERIOD,
                  start=None, end=None, *, now: datetime | None = None):
    """-> (overview table, student picker, summary line)."""
    if class_id is None or class_id == "":  # e.g. the picker was cleared on sign-out
        return pd.DataFrame(columns=OVERVIEW_COLUMNS), gr.update(choices=[], value=None), ""
    cid = _id(class_id, "class")
    since, until = period_bounds(period, start, end, now=now)
    with deps.db() as s:
        rows = reports.class_overview(session=s, principal=principal, class_id=cid,
                                      since=since, until=until, now=now)
    table = pd.DataFrame([[r.student_id, f"{r.display_name} ({r.handle})",
                           r.now_why if r.needs_help_now else "",
                           "yes" if r.struggling else "no", r.why, r.hard_turns, r.turns,
                           r.camera_minutes, r.sessions, r.last_state or "",
                           _fmt(r.last_active)[5:16]] for r in rows], columns=OVERVIEW_COLUMNS)
    choices = [(f"{r.display_name} ({r.handle})", r.student_id)
               for r in sorted(rows, key=lambda r: r.display_name.lower())]
    n = sum(r.struggling for r in rows)
    span = "all time" if since is None and until is None else \
        f"{_fmt(since) or 'the start'} to {_fmt(until) or 'now'} UTC"
    summary = (f"**{n} of {_n(len(rows), 'student')}** struggling, {span}. Judged per turn "
               "(the tutor's state on it and what the student's words read) and per minute of "
               "camera, never per camera frame.")
    return table, gr.update(choices=choices, value=None), summary


def needs_help(deps: Deps, principal: Principal | None, class_id, *,
               now: datetime | None = None) -> str:
    """The live panel: who in the picked class needs help now, and why, in words (HTML, with
    every stored name escaped)."""
    if principal is None or class_id is None or class_id == "":
        return ""
    try:
        with deps.db() as s:
            rows = reports.class_overview(session=s, principal=principal,
                                          class_id=_id(class_id, "class"),
                                          since=(now or datetime.now(timezone.utc))
                                          - reports.NOW_WINDOW, now=now)
    except (AccessDenied, ValueError):
        return ""
    except Exception:
        log.exception("needs-help panel failed")
        return "<p><i>Could not check just now; trying again shortly.</i></p>"
    stamp = (now or datetime.now(timezone.utc)).strftime("%H:%M:%S")
    urgent = [r for r in rows if r.needs_help_now]
    if not urgent:
        return (f"<p><b>Needs help now:</b> nobody in the last "
                f"{int(reports.NOW_WINDOW.total_seconds() // 60)} minutes "
                f"<span style='color:#777'>(checked {stamp} UTC)</span></p>")
    items = "".join(f"<li><b>{html.escape(r.display_name)}</b> ({html.escape(r.handle)}): "
                    f"{html.escape(r.now_why)}</li>" for r in urgent)
    return (f"<div style='border-left:4px solid #e73f74;padding-left:10px'><b>Needs help now"
            f"</b> <span style='color:#777'>(checked {stamp} UTC)</span><ul>{items}</ul></div>")


@_guard(2)
def add_student(deps: Deps, principal: Principal | None, class_id, handle):
    """-> (message, the add picker refreshed): an open sign-in student joins the picked class."""
    cid = _id(class_id, "class")
    with deps.db.begin() as s:
        said = reports.add_to_class(session=s, principal=principal, class_id=cid,
                                    handle=handle or "")
    return said, unassigned_choices(deps, principal)


def unassigned_choices(deps: Deps, principal: Principal | None):
    """-> the add picker's choices: students in no class (open sign-in)."""
    if principal is None:
        return gr.update(choices=[], value=None)
    with deps.db() as s:
        rows = reports.unassigned_students(session=s, principal=principal)
        choices = [(f"{r.display_name} ({r.handle})", r.handle) for r in rows]
    return gr.update(choices=choices, value=None)


@_guard(1)
def pick_student(row_value):
    """An overview row was selected -> that student in the student picker."""
    if not row_value:
        return gr.skip()
    return gr.update(value=_id(row_value[0], "student"))


@_guard(1)
def load_sessions(deps: Deps, principal: Principal | None, student_id):
    """-> session picker (newest first)."""
    if student_id is None or student_id == "":
        return gr.update(choices=[], value=None)
    with deps.db() as s:
        sessions = reports.student_sessions(session=s, principal=principal,
                                            student_id=_id(student_id, "student"))
    choices = [(f"#{x.id} · {_fmt(x.started_at)} · {x.lesson or 'no lesson'} · "
                f"{_n(x.turns, 'turn')}", x.id) for x in sessions]
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


TUTOR_CHARS = 90  # the transcript shows the start of a long reply; the turn view all of it


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _transcript(tl: reports.Timeline) -> pd.DataFrame:
    """A row per turn; a tutor change is named by its number on the timeline."""
    read = {r.turn_id: r for r in tl.readings if r.turn_id is not None}
    state = {a.turn_id: a for a in tl.adaptations if a.turn_id is not None}
    number = {a.id: k for k, a in enumerate(tl.changes, start=1)}

    def judged(t) -> str:
        a = state.get(t.id)
        if a is None:
            return ""
        return a.state + (f" (change {number[a.id]})" if a.id in number else "")

    return pd.DataFrame(
        [[t.index, reports.utc(t.at).strftime("%H:%M:%S"), t.student_text,
          _short(t.tutor_text, TUTOR_CHARS),
          f"{read[t.id].label} {read[t.id].confidence:.2f}" if t.id in read else "", judged(t)]
         for t in tl.turns], columns=TRANSCRIPT_COLUMNS)


@_guard(3)
def load_timeline(deps: Deps, principal: Principal | None, session_id):
    """-> (figure, transcript table, turn detail)."""
    if session_id is None or session_id == "":
        return None, pd.DataFrame(columns=TRANSCRIPT_COLUMNS), ""
    with deps.db() as s:
        tl = reports.session_timeline(session=s, principal=principal,
                                      session_id=_id(session_id, "session"))
    hint = ("<p>Select a row of the transcript to see that turn in full. \"(change 2)\" marks "
            "the turn where the tutor made change 2, numbered as on the timeline.</p>")
    return reports.timeline_figure(tl), _transcript(tl), hint


def describe_turn(d: reports.TurnDetail) -> str:
    """The turn as HTML in which every stored text (the student's above all) is escaped: shown
    exactly as typed, never run as Markdown or HTML (no image fetched, no link, no script)."""
    t, e = d.turn, html.escape
    lines = [f"<h3>Turn {t.index} · {_fmt(t.at)} UTC · {e(t.input_source)}</h3>",
             f"<p><b>Student:</b> <span class='attune-said'>{e(t.student_text)}</span></p>",
             f"<p><b>Tutor:</b> <span class='attune-said'>{e(t.tutor_text)}</span></p>"]
    for r in d.readings:
        top = sorted(r.probs.items(), key=lambda kv: -kv[1])[:3]
        items = "".join(f"<li>{e(m)}: {e(max(p, key=p.get))} {p[max(p, key=p.get)]:.2f}</li>"
                        for m, p in r.modality_probs.items() if p)
        lines.append(f"<p><b>Reading:</b> {e(r.label)} ({r.confidence:.0%}) · "
                     + ", ".join(f"{e(k)} {p:.2f}" for k, p in top)
                     + f" · model <code>{e(r.model_version)}</code>"
                     + (" (backup model)" if r.degraded else "") + "</p>"
                     + (f"<ul>{items}</ul>" if items else ""))
    if not d.readings:
        lines.append("<p><i>No emotion reading this turn.</i></p>")
    for a in d.adaptations:
        changed = ", ".join(f"{k} {v[0]} → {v[1]}" if isinstance(v, list) and len(v) == 2
                            else f"{k} {v}" for k, v in a.changes.items()) or "no change"
        lines += [f"<p><b>Tutor state:</b> {e(a.state)} · tone {e(a.tone)} · pacing "
                  f"{e(a.pacing)} · hint level {a.hint_level} · {e(changed)}</p>",
                  f"<p><b>Why:</b> {e(a.reason)}</p>"]
    return "<div class='attune-turn' style='white-space:pre-wrap'>" + "\n".join(lines) + "</div>"


@_guard(1)
def select_turn(deps: Deps, principal: Principal | None, session_id, turn_index):
    """-> that turn with its reading and adaptation, as Markdown."""
    sid = _id(session_id, "session")
    with deps.db() as s:
        tl = reports.session_timeline(session=s, principal=principal, session_id=sid)
    return describe_turn(tl.turn_detail(_id(turn_index, "turn")))


@_guard(1)
def export_session_csv(deps: Deps, principal: Principal | None, session_id,
                       readings: bool = False):
    """-> path of attune-session-<id>.csv (a row per turn), or with `readings`
    attune-session-<id>-readings.csv (a row per reading, camera frames included)."""
    sid = _id(session_id, "session")
    with deps.db() as s:
        text = reports.export_session_csv(session=s, principal=principal, session_id=sid,
                                          readings=readings)
    return _export_path(f"attune-session-{sid}{'-readings' if readings else ''}.csv", text)


@_guard(1)
def export_class_csv(deps: Deps, principal: Principal | None, class_id,
                     period: str = DEFAULT_PERIOD, start=None, end=None, *,
                     now: datetime | None = None):
    """-> path of class-<id>_<from>_<to>.csv for the chosen period."""
    cid = _id(class_id, "class")
    since, until = period_bounds(period, start, end, now=now)
    with deps.db() as s:
        text = reports.export_class_csv(session=s, principal=principal, class_id=cid,
                                        since=since, until=until)
    span = f"{since:%Y%m%dT%H%M}" if since else "start"
    span += f"_{until:%Y%m%dT%H%M}" if until else "_now"
    return _export_path(f"attune-class-{cid}_{span}.csv", text)


@_guard(1)
def export_timeline_png(deps: Deps, principal: Principal | None, session_id):
    """-> path of session-<id>-timeline.png."""
    sid = _id(session_id, "session")
    with deps.db() as s:
        tl = reports.session_timeline(session=s, principal=principal, session_id=sid)
    return _export_path(f"attune-session-{sid}-timeline.png", reports.timeline_png(tl))


def shown_if_full(file):
    """-> the download box shown while it holds a file (an export's), hidden while empty."""
    return gr.update(visible=file is not None)


def no_download():
    """-> the download box emptied and hidden (another class or session was picked)."""
    return gr.update(value=None, visible=False)


@_guard(1)
def new_student_code(deps: Deps, principal: Principal | None, student_id):
    """-> a new sign-in code for the picked student (theirs to hand out; the old one stops)."""
    sid = _id(student_id, "student")
    with deps.db.begin() as s:
        code = reset_student_code(session=s, principal=principal, student_id=sid)
        student = s.get(Student, sid)
        name, handle = student.display_name, student.handle
    return (f"New sign-in code for **{name}**: handle `{handle}`, code `{code}`. It is shown "
            "only now; their old code no longer works.")


# ---------------------------------------------------------------- the tab
def build_teacher(deps: Deps) -> gr.State:
    """The teacher tab's components and events (call inside a gr.Blocks); returns the
    signed-in teacher's state (the demo tab asks for it where students sign in with codes)."""
    principal = gr.State(None)
    with gr.Row():
        email = gr.Textbox(label="E-mail", max_lines=1, scale=2, elem_id="teacher-email")
        password = gr.Textbox(label="Password", type="password", max_lines=1, scale=2,
                              elem_id="teacher-password")
        with gr.Column(scale=1, min_width=120):
            sign_in_btn = gr.Button("Sign in", variant="primary", elem_id="teacher-sign-in")
            sign_out_btn = gr.Button("Sign out", size="sm")
    status = gr.Markdown("Not signed in.", elem_id="teacher-status")

    with gr.Column(visible=False) as main:
        with gr.Row():
            class_pick = gr.Dropdown(label="Class", choices=[], scale=2, elem_id="teacher-class")
            period = gr.Dropdown(label="Period", choices=list(PERIODS), value=DEFAULT_PERIOD,
                                 scale=1)
            start = gr.DateTime(label="From (Custom)", type="timestamp", timezone="UTC", scale=1)
            end = gr.DateTime(label="To (Custom)", type="timestamp", timezone="UTC", scale=1)
            refresh = gr.Button("Show overview", scale=1)
        help_now = gr.HTML(elem_id="teacher-help-now")
        summary = gr.Markdown()
        overview = gr.Dataframe(headers=OVERVIEW_COLUMNS, interactive=False, wrap=True,
                                label="Class overview (who needs help first; select a row)",
                                column_widths=OVERVIEW_WIDTHS, elem_id="teacher-overview")
        with gr.Row():
            add_pick = gr.Dropdown(label="Add a student who chatted with open sign-in (or type "
                                   "their name)", choices=[], allow_custom_value=True, scale=3,
                                   elem_id="teacher-add-student")
            add_btn = gr.Button("Add to this class", scale=1, elem_id="teacher-add")
        add_note = gr.Markdown(elem_id="teacher-add-note")
        with gr.Row():
            student_pick = gr.Dropdown(label="Student", choices=[], scale=1)
            session_pick = gr.Dropdown(label="Session", choices=[], scale=2)
            code_btn = gr.Button("New sign-in code", scale=0, min_width=160)
        code_view = gr.Markdown(elem_id="teacher-student-code")
        with gr.Row(equal_height=False, elem_id="teacher-session-view"):  # side by side
            with gr.Column(scale=5, min_width=560):
                plot = gr.Plot(label="Timeline", show_label=False, elem_id="teacher-timeline")
            with gr.Column(scale=4, min_width=420):
                transcript = gr.Dataframe(headers=TRANSCRIPT_COLUMNS, interactive=False,
                                          wrap=True, max_height=560,
                                          label="Transcript (times in UTC; select a row)",
                                          column_widths=TRANSCRIPT_WIDTHS,
                                          elem_id="teacher-transcript")
        turn_view = gr.HTML(elem_id="teacher-turn")
        with gr.Row():
            csv_session_btn = gr.Button("Export session CSV (a row per turn)")
            csv_readings_btn = gr.Button("Export session readings CSV (for research)")
            csv_class_btn = gr.Button("Export class CSV (period)")
            png_btn = gr.Button("Export timeline PNG")
        # shown only while it holds a file, so no empty box takes the page
        download = gr.File(label="Download", interactive=False, visible=False,
                           elem_id="teacher-download")

    sign_outputs = [principal, status, class_pick, main]
    def on_sign_in(e, p, request: gr.Request):
        return sign_in(deps, e, p, client=client_address(request))

    gr.on([sign_in_btn.click, password.submit], on_sign_in,
          [email, password], sign_outputs, api_name="teacher_sign_in").then(
              lambda p: ("", unassigned_choices(deps, p)), [principal], [password, add_pick],
              api_name=False)
    sign_out_btn.click(sign_out, None, sign_outputs, api_name="teacher_sign_out").then(
        lambda: "", None, code_view, api_name=False)

    overview_inputs = [principal, class_pick, period, start, end]
    gr.on([class_pick.change, period.change], lambda *a: load_overview(deps, *a),
          overview_inputs, [overview, student_pick, summary], api_name="teacher_overview")
    # "Show overview" also brings the class list up to date (new classes, counts)
    refresh.click(lambda p, c: (refresh_classes(deps, p, c), unassigned_choices(deps, p)),
                  [principal, class_pick], [class_pick, add_pick], api_name=False).then(
        lambda *a: load_overview(deps, *a), overview_inputs, [overview, student_pick, summary],
        api_name=False)
    gr.on([class_pick.change, session_pick.change, sign_out_btn.click], no_download, None,
          download, api_name=False)  # no file of another class or session stays offered
    timer = gr.Timer(HELP_EVERY_S)
    gr.on([timer.tick, class_pick.change], lambda p, c: needs_help(deps, p, c),
          [principal, class_pick], help_now, show_progress="hidden", api_name=False)
    add_btn.click(lambda p, c, h: add_student(deps, p, c, h), [principal, class_pick, add_pick],
                  [add_note, add_pick], api_name=False).then(
        lambda p, c: refresh_classes(deps, p, c), [principal, class_pick], class_pick,
        api_name=False).then(lambda *a: load_overview(deps, *a), overview_inputs,
                             [overview, student_pick, summary], api_name=False)

    def on_overview_select(evt: gr.SelectData):
        return pick_student(evt.row_value)

    overview.select(on_overview_select, None, student_pick, api_name=False)
    student_pick.change(lambda p, sid: load_sessions(deps, p, sid), [principal, student_pick],
                        session_pick, api_name="teacher_sessions")
    student_pick.change(lambda: "", None, code_view, api_name=False)
    code_btn.click(lambda p, sid: new_student_code(deps, p, sid), [principal, student_pick],
                   code_view, api_name=False)
    session_pick.change(lambda p, sid: load_timeline(deps, p, sid), [principal, session_pick],
                        [plot, transcript, turn_view], api_name="teacher_timeline")

    def on_turn_select(p, sid, evt: gr.SelectData):
        return select_turn(deps, p, sid, evt.row_value[0] if evt.row_value else None)

    transcript.select(on_turn_select, [principal, session_pick], turn_view, api_name=False)
    exports = [
        csv_session_btn.click(lambda p, sid: export_session_csv(deps, p, sid),
                              [principal, session_pick], download, api_name="teacher_session_csv"),
        csv_readings_btn.click(lambda p, sid: export_session_csv(deps, p, sid, readings=True),
                               [principal, session_pick], download, api_name=False),
        csv_class_btn.click(lambda *a: export_class_csv(deps, *a), overview_inputs, download,
                            api_name="teacher_class_csv"),
        png_btn.click(lambda p, sid: export_timeline_png(deps, p, sid), [principal, session_pick],
                      download, api_name="teacher_timeline_png")]
    for export in exports:
        export.then(shown_if_full, download, download, api_name=False)
    return principal
