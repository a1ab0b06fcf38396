from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tutor.auth import authenticate_student
from tutor.cli import app
from tutor.db import init_db


@pytest.fixture
def attune(tmp_path):
    """`attune ...` against a fresh SQLite database: (run, database)."""
    url = f"sqlite:///{tmp_path / 'attune.db'}"
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env={"ATTUNE_DATABASE_URL": url})

    return run, init_db(url)


def test_admin_adds_a_student_with_a_code_and_resets_it(attune):
    run, db = attune
    r = run("admin", "create", "--email", "t@school.example", "--name", "T", input="password-t\n" * 2)
    assert r.exit_code == 0, r.output
    r = run("admin", "add-class", "--name", "7a", "--teacher-email", "t@school.example")
    class_id = re.search(r"\(id (\d+)\)", r.output).group(1)
    r = run("admin", "add-student", "--class", class_id, "--name", "Sam Lee")
    assert r.exit_code == 0, r.output
    handle, code = re.search(r"sign in as (\S+) with code (\S+)", r.output).groups()
    assert handle == "sam.lee"
    with db.begin() as s:
        assert authenticate_student(session=s, handle=handle, code=code).class_id == int(class_id)
    r = run("admin", "reset-code", "--student", "sam.lee")
    assert r.exit_code == 0, r.output
    new = re.search(r"new code for sam.lee: (\S+)", r.output).group(1)
    with db.begin() as s:
        assert authenticate_student(session=s, handle=handle, code=code) is None
        assert authenticate_student(session=s, handle=handle, code=new) is not None


def test_add_student_refuses_a_taken_handle_or_a_missing_class_in_words(attune):
    run, _ = attune
    r = run("admin", "add-student", "--class", "1", "--name", "Kim")
    assert r.exit_code == 2 and "no class 1" in r.output
    run("admin", "create", "--email", "t@school.example", "--name", "T", input="password-t\n" * 2)
    run("admin", "add-class", "--name", "7a", "--teacher-email", "t@school.example",
        "--student", "kim", "--create")
    r = run("admin", "add-student", "--class", "1", "--name", "Kim")
    assert r.exit_code == 2 and "exists already" in r.output and "reset-code" in r.output
    r = run("admin", "reset-code", "--student", "nobody")
    assert r.exit_code == 2 and "no student" in r.output


def test_add_class_refuses_unknown_handles_unless_asked_and_says_who_moves(attune):
    from tutor.db.models import SchoolClass, Student

    run, db = attune
    run("admin", "create", "--email", "t@school.example", "--name", "T", input="password-t\n" * 2)
    r = run("admin", "add-class", "--name", "7a", "--teacher-email", "t@school.example",
            "--student", "nobody")
    assert r.exit_code == 2 and "no student nobody" in r.output and "--create" in r.output
    with db() as s:
        assert s.query(Student).count() == 0 and s.query(SchoolClass).count() == 0
    r = run("admin", "add-class", "--name", "7a", "--teacher-email", "t@school.example",
            "--student", "kim", "--create")
    assert r.exit_code == 0 and "created student kim" in r.output
    assert "with 1 student" in r.output and "1 students" not in r.output
    r = run("admin", "add-class", "--name", "7b", "--teacher-email", "t@school.example",
            "--student", "Kim")
    assert r.exit_code == 0, r.output
    assert "moved kim from class '7a' (id 1) to '7b'" in r.output


def test_run_on_a_port_in_use_says_so_before_loading_anything(tmp_path, monkeypatch):
    import socket

    import tutor.db

    def no_db(url):  # the check comes first: no database, no model
        raise AssertionError("init_db was reached")

    monkeypatch.setattr(tutor.db, "init_db", no_db)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["run", "--port", str(port)],
                                    env={"ATTUNE_HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("\u2502", " ").split())
    assert f"127.0.0.1:{port} is in use (is Attune already running there?)" in said
    assert isinstance(result.exception, SystemExit)


def test_run_serves_the_page_before_the_model_loads_and_answers_an_early_turn(tmp_path,
                                                                              monkeypatch,
                                                                              keyword_engine):
    """`attune run` answers before it asks for the model; a typed turn sent meanwhile is
    answered at once (without an emotion reading), with no error."""
    import json
    import threading

    import gradio as gr
    import httpx

    import tutor.client as client_module
    from tests.ui.test_served import browser, call, fn_index
    from tools.trust import free_port

    asked, loaded = threading.Event(), threading.Event()
    port = free_port()
    seen: dict = {}

    def slow_client(settings):  # the model, loading until the test lets it finish
        seen["page_up_when_asked"] = httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        asked.set()
        assert loaded.wait(60)
        return client_module.EmbeddedCMT(keyword_engine)

    def a_student_meanwhile(page: gr.Blocks) -> None:  # instead of serving until Ctrl-C
        try:
            http = browser(f"http://127.0.0.1:{port}")  # GET / answered 200
            assert asked.wait(30) and not loaded.is_set()  # the model is being made only now
            # the page sends each message through its hidden pump (ui.student.SEND_HEAD)
            turn = fn_index(http, elem_id="student-pump", event="click")
            sent = threading.Thread(target=lambda: seen.update(done=call(
                http, turn, ["Ida", "fractions", "so happy, is it 3/4?", [], None, None, True],
                "early-tab")))
            sent.start()
            sent.join(30)
            seen["answered_while_loading"] = not sent.is_alive() and not loaded.is_set()
            loaded.set()
        finally:
            loaded.set()
            page.close()

    monkeypatch.setattr(client_module, "make_client", slow_client)
    monkeypatch.setattr(gr.Blocks, "block_thread", a_student_meanwhile)
    result = CliRunner().invoke(app, ["run", "--port", str(port)],
                                env={"ATTUNE_HOME": str(tmp_path), "ATTUNE_CMT_URL": "embedded"})
    assert result.exit_code == 0, (result.output, result.exception)
    assert seen["page_up_when_asked"] and seen["answered_while_loading"]
    done = seen["done"]
    assert done["success"], done
    chat = done["output"]["data"][0]
    assert [m["role"] for m in chat[-2:]] == ["user", "assistant"], chat
    assert "3/4" in json.dumps(chat[-2]) and chat[-1]["content"]
