"""`attune`: the tutoring app (UI + CMT + database)."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future
from pathlib import Path

import typer

log = logging.getLogger("tutor.cli")
app = typer.Typer(help="Attune: an adaptive tutor that reads emotion from face, voice and words.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
admin_app = typer.Typer(help="Accounts and classes.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
privacy_app = typer.Typer(help="Retention, export and erasure of student data.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


def _student_id(s, handle: str) -> int:
    from sqlalchemy import select

    from tutor.db.models import Student

    sid = s.scalar(select(Student.id).where(Student.handle == handle.strip().lower()))
    if sid is None:
        raise typer.BadParameter(f"no student {handle!r}", param_hint="--student")
    return sid


def _scrub(db) -> None:
    """Deleted rows leave no bytes behind in the database's files (tutor.db.scrub)."""
    from tutor.db import scrub

    if not scrub(db.kw["bind"]):
        typer.echo("warning: the database was busy, so its log still holds the deleted rows "
                   "until its next checkpoint; run `attune privacy purge` again when it is idle",
                   err=True)


@privacy_app.command("purge")
def privacy_purge(days: int = typer.Option(None, help="keep this many days (default: settings.retention_days)")):
    """Delete emotion readings older than the retention period (run it from cron)."""
    from tutor.settings import Settings
    from tutor.db import init_db
    from tutor.privacy import purge_readings

    settings = Settings()
    days = settings.retention_days if days is None else days
    db = init_db(settings.database_url)
    with db.begin() as s:
        n = purge_readings(session=s, older_than_days=days)
    _scrub(db)
    typer.echo(f"deleted {n} readings older than {days} days")


@privacy_app.command("export")
def privacy_export(student: str = typer.Option(..., help="the student's handle"),
                   out: Path = typer.Option(None, help="file to write (default: stdout)")):
    """Everything held about a student, as JSON."""
    import json

    from tutor.settings import Settings
    from tutor.db import init_db
    from tutor.privacy import export_student

    with init_db(Settings().database_url)() as s:
        data = json.dumps(export_student(session=s, student_id=_student_id(s, student)), indent=2)
    if out:
        out.write_text(data)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(data)


@privacy_app.command("erase")
def privacy_erase(student: str = typer.Option(..., help="the student's handle"),
                  yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation")):
    """Delete a student and all of their data."""
    from tutor.settings import Settings
    from tutor.db import init_db
    from tutor.privacy import count_rows_of, erase_student

    if not yes:
        typer.confirm(f"Erase {student!r} and all their sessions, readings and consents?", abort=True)
    db = init_db(Settings().database_url)
    with db.begin() as s:
        sid = _student_id(s, student)
        counts = erase_student(session=s, student_id=sid)
    _scrub(db)
    with db() as s:
        left = count_rows_of(session=s, student_id=sid)
    typer.echo(f"erased {student}: {counts}; rows left: {left}")


@app.command()
def run(host: str = typer.Option(None, help="interface to listen on (default: settings.host)"),
        port: int = typer.Option(None, help="port (default: settings.port, 7860)"),
        cmt_url: str = typer.Option(None, help='"local", "embedded" or the CMT service URL')):
    """Start the web app: student view, CMT (local service by default) and SQLite by default.

    Beyond localhost (--host 0.0.0.0) students sign in with codes unless
    ATTUNE_STUDENT_SIGN_IN says otherwise."""
    from tutor.settings import LOOPBACK_HOSTS, Settings
    from tutor.db import init_db, shown_url
    from tutor.llm import LLMConfigError, phraser_from_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in {"host": host, "port": port, "cmt_url": cmt_url}.items() if v}
    settings = Settings(**overrides)
    typer.echo(f"database: {shown_url(settings.database_url)}")
    typer.echo(f"student sign-in: {settings.student_sign_in}"
               + (" (students need a code from `attune admin add-student`)"
                  if settings.student_sign_in == "code" else " (a typed name is enough)"))
    if settings.student_sign_in == "open" and settings.host not in LOOPBACK_HOSTS:
        typer.secho(f"warning: open sign-in on {settings.host}: anyone who can reach this "
                    "address can continue any student's lessons by typing their name",
                    fg="yellow", err=True)
    if not _port_free(settings.host, settings.port):  # before the model loads, not after
        raise typer.BadParameter(f"{settings.host}:{settings.port} is in use (is Attune already "
                                 "running there?); choose another port", param_hint="--port")
    try:
        phraser = phraser_from_settings(settings)
    except LLMConfigError as e:
        raise typer.BadParameter(str(e), param_hint="ATTUNE_LLM") from e
    if phraser is not None:
        typer.echo(f"LLM: {settings.llm} phrases the replies (the template reply after "
                   f"{settings.llm_timeout_s:g} s or on any error)")
    db = init_db(settings.database_url)
    from tutor.client import PendingCMT, answer_similarity
    from ui.app import build_app, launch
    from ui.deps import Deps

    cmt = PendingCMT()  # the model loads once the page answers; a turn sent before waits for it
    deps = Deps(settings=settings, db=db, cmt=cmt, similarity=answer_similarity(cmt),
                phraser=phraser)
    page = build_app(deps)
    try:
        launch(page, settings, prevent_thread_lock=True)
    except OSError as e:  # the port was taken while the page was built, say
        typer.echo(f"Error: could not serve on {settings.host}:{settings.port}: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"CMT: {settings.cmt_url} (loading the model...)")
    _load_in_background(settings, cmt.future)
    page.block_thread()


def _port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (as uvicorn binds: SO_REUSEADDR)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True  # an unknown host: let the server say so
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def _load_in_background(settings, into: Future) -> None:
    """Make the CMT client in a thread and hand it to `into` (the page's PendingCMT), then warm
    what the first turns would otherwise pay for (sympy, the sign-in hasher's dummy hash).

    It starts once the page answers, not beside its build: the load and Gradio's import are
    both Python holding the GIL, so side by side each took about twice as long. A model that
    cannot load ends the app with its reason, as it did when it loaded first."""
    import threading

    from tutor import answers, auth
    from tutor.client import make_client

    def load() -> None:
        started = time.perf_counter()
        try:
            into.set_result(make_client(settings))
        except Exception as e:  # noqa: BLE001 - the app cannot run without it; said, then ended
            into.set_exception(e)
            typer.echo(f"Error: the emotion model could not load: {e}", err=True)
            os._exit(1)  # the page is up in other threads: end them all
        log.info("the emotion model is ready (%.1f s)", time.perf_counter() - started)
        answers.warm()  # sympy, left out of the page's imports
        auth.warm()

    threading.Thread(target=load, name="load-model", daemon=True).start()


@db_app.command("upgrade")
def db_upgrade(url: str = typer.Option(None, help="database URL (default: settings)")):
    """Create or migrate the database schema to the newest revision."""
    from tutor.settings import Settings
    from tutor.db import init_db, shown_url

    url = url or Settings().database_url
    init_db(url)
    typer.echo(f"database at head: {shown_url(url)}")


@app.command()
def simulate(scenario: Path = typer.Argument(..., help="a scenario file, e.g. data/scenarios/bored_fast_student.yaml"),
             control: bool = typer.Option(False, help="no adaptation (the comparison arm)"),
             replies: bool = typer.Option(False, help="also print the tutor's replies"),
             json_lines: bool = typer.Option(False, "--json", help="one JSON object per turn"),
             no_model: bool = typer.Option(False, "--no-model",
                                           help="do not read the words with the shipped model"),
             check: bool = typer.Option(False, "--check",
                                        help="check the scenario's expect; exit 1 when unmet")):
    """Play a scripted student (answers, camera, voice, words) and show, turn by turn, what the tutor did and why."""
    from tutor.simulate import main

    raise typer.Exit(main([str(scenario)] + ["--control"] * control + ["--replies"] * replies
                          + ["--json"] * json_lines + ["--no-model"] * no_model
                          + ["--check"] * check))


@app.command()
def moves(no_question: bool = typer.Option(False, "--no-question",
                                         help="no question is waiting for an answer yet")):
    """Read student messages, one per line on stdin; print each one's move as a JSON line:
    {"text", "move", "frustrated", "answer", "feeling"} (answer: the answer found in it, or
    null; feeling: for a vent, the feeling it says (worry, down, glad, bored, angry), or null)."""
    import json
    import sys

    from tutor.intents import classify_move

    stdin = getattr(sys.stdin, "buffer", None)
    lines = (b.decode("utf-8", errors="replace") for b in stdin) if stdin else sys.stdin
    for line in lines:  # bytes that are not UTF-8 become U+FFFD, never a traceback
        text = line.rstrip("\r\n")
        move = classify_move(text, expecting_answer=not no_question)
        feeling = (max(move.feelings, key=move.feelings.get)
                   if move.kind == "vent" and move.feelings else None)
        typer.echo(json.dumps({"text": text, "move": move.kind, "frustrated": move.frustrated,
                               "answer": move.answer, "feeling": feeling}, ensure_ascii=False))


@app.command()
def kiosk(name: str = typer.Option(..., help="the student's name"),
          lesson: str = typer.Option(None, help="lesson pack id (default: fractions)"),
          camera: bool = typer.Option(False, help="also read the local camera (asks for consent)"),
          device: str = typer.Option(None, help="sounddevice input device (default: system default)")):
    """Local capture mode: talk to the tutor through this computer's microphone (and camera)."""
    import threading

    from tutor.settings import Settings
    from tutor import kiosk as k
    from tutor.client import make_client
    from tutor.db import init_db
    from tutor.llm import LLMConfigError, phraser_from_settings
    from tutor.privacy import notice, record_consent
    from tutor.session import Conversation

    settings = Settings()
    try:
        phraser = phraser_from_settings(settings)
    except LLMConfigError as e:
        raise typer.BadParameter(str(e), param_hint="ATTUNE_LLM") from e
    db = init_db(settings.database_url)
    conv = Conversation(db=db, cmt=make_client(settings), student_handle=name.lower(),
                        display_name=name, lesson=lesson, biometrics=settings.biometrics,
                        phraser=phraser)
    wanted = ["microphone"] + (["camera"] if camera and settings.biometrics else [])
    with db.begin() as s:
        for modality in wanted:
            typer.echo(notice(modality, biometrics=settings.biometrics))
            record_consent(session=s, student_id=conv.student_id, modality=modality,
                           granted=typer.confirm(f"Allow the {modality}?", default=False))
    stop = threading.Event()
    if "camera" in wanted:
        threading.Thread(target=k.camera_loop, args=(conv, stop), daemon=True).start()
    typer.echo("Listening. Speak to the tutor; Ctrl+C to stop.")
    try:
        k.run(conv, blocks=k.microphone_blocks(stop, device=device), say=typer.echo)
    except RuntimeError as e:
        raise typer.BadParameter(str(e)) from e
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        conv.close()


def checkout_tool(name: str):
    """tools/<name>.py of the clone this package runs from, imported; on an install without the
    clone's tools/ (a wheel), a one-line message and exit code 1."""
    import importlib
    import sys

    root = Path(__file__).resolve().parent.parent
    if not (root / "tools" / f"{name}.py").is_file() or not (root / "tests").is_dir():
        typer.echo(f"this command runs from a clone of the Attune repository (it needs "
                   f"tools/{name}.py and tests/); there is none at {root}", err=True)
        raise typer.Exit(1)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"tools.{name}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def trust(ctx: typer.Context):
    """Reliability checks with figures: fuzzing, a class-sized load, service/database/app faults.

    Options pass through: --short, --students N, --seconds S, --only fuzz|load|faults, --json, ...
    (see `python -m tools.trust --help`). Runs from a clone (tools/trust.py, the test tools)."""
    raise typer.Exit(checkout_tool("trust").main(list(ctx.args)))


@admin_app.command("create")
def admin_create(email: str = typer.Option(..., help="sign-in e-mail"),
                 name: str = typer.Option(..., help="display name"),
                 role: str = typer.Option("teacher", help="teacher or admin"),
                 password: str = typer.Option(..., prompt=True, hide_input=True,
                                              confirmation_prompt=True, help="at least 8 characters")):
    """Create a teacher or administrator account."""
    from tutor.settings import Settings
    from tutor.auth import AuthError, create_teacher
    from tutor.db import init_db

    db = init_db(Settings().database_url)
    try:
        with db.begin() as s:
            t = create_teacher(session=s, name=name, email=email, password=password, role=role)
            typer.echo(f"created {t.role} {t.email} (id {t.id})")
    except AuthError as e:
        raise typer.BadParameter(str(e)) from e


@admin_app.command("add-class")
def admin_add_class(name: str = typer.Option(..., help="class name"),
                    teacher_email: str = typer.Option(..., help="the teacher's e-mail"),
                    students: list[str] = typer.Option([], "--student", help="student handle (repeat)"),
                    create: bool = typer.Option(False, "--create", help="create students whose "
                                                "handle is unknown (default: refuse)")):
    """Create a class for a teacher and enrol students by handle (a student in another class
    moves to this one, and is named)."""
    from sqlalchemy import select

    from tutor.settings import Settings
    from tutor.auth import normalize_email, normalize_handle
    from tutor.db import crud, init_db
    from tutor.db.models import Student, Teacher

    db = init_db(Settings().database_url)
    with db.begin() as s:
        teacher = s.scalar(select(Teacher).where(Teacher.email == normalize_email(teacher_email)))
        if teacher is None:
            raise typer.BadParameter(f"no teacher {teacher_email}", param_hint="--teacher-email")
        handles = list(dict.fromkeys(normalize_handle(h) for h in students))
        known = {st.handle: st for st in s.scalars(select(Student).where(Student.handle.in_(handles)))}
        unknown = [h for h in handles if h not in known]
        if unknown and not create:
            raise typer.BadParameter(
                f"no student {', '.join(unknown)}; add them with `attune admin add-student` "
                "(which gives a sign-in code), or pass --create to make them here",
                param_hint="--student")
        klass = crud.create_class(session=s, name=name, teacher_id=teacher.id)
        for handle in handles:
            student = known.get(handle)
            if student is None:
                student = crud.get_or_create_student(session=s, handle=handle, display_name=handle)
                typer.echo(f"created student {handle} (no sign-in code yet: "
                           f"`attune admin reset-code --student {handle}`)")
            elif student.school_class is not None:
                typer.echo(f"moved {handle} from class {student.school_class.name!r} "
                           f"(id {student.class_id}) to {name!r}")
            crud.enrol(session=s, student=student, class_id=klass.id)
        n = len(handles)
        typer.echo(f"class {klass.name!r} (id {klass.id}) with {n} student{'' if n == 1 else 's'}")


@admin_app.command("add-student")
def admin_add_student(class_id: int = typer.Option(..., "--class", help="the class id (from add-class)"),
                      name: str = typer.Option(..., help='display name, e.g. "Sam Lee"'),
                      handle: str = typer.Option(None, help='what they sign in as (default: from '
                                                 'the name, "sam.lee")')):
    """Create a student in a class and print their sign-in code (shown once, stored hashed)."""
    from tutor.settings import Settings
    from tutor.auth import AuthError, create_student
    from tutor.db import init_db

    db = init_db(Settings().database_url)
    try:
        with db.begin() as s:
            student, code = create_student(session=s, name=name, handle=handle, class_id=class_id)
            handle = student.handle
    except AuthError as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(f"student {name!r} in class {class_id}: sign in as {handle} with code {code}")


@admin_app.command("reset-code")
def admin_reset_code(student: str = typer.Option(..., help="the student's handle")):
    """Give a student a new sign-in code (the old one stops working) and print it."""
    from tutor.settings import Settings
    from tutor.auth import issue_sign_in_code
    from tutor.db import init_db
    from tutor.db.models import Student

    db = init_db(Settings().database_url)
    with db.begin() as s:
        row = s.get(Student, _student_id(s, student))
        code = issue_sign_in_code(session=s, student=row)
        handle = row.handle
    typer.echo(f"new code for {handle}: {code}")


if __name__ == "__main__":
    app()
