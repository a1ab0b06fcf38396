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


def test_run_loads_the_model_beside_the_page_and_turns_wait_for_it(monkeypatch, keyword_engine):
    import threading

    import tutor.cli as cli
    import tutor.client as client_module
    from cmt.contract import AnalyzeRequest
    from tutor.answers import lexical_similarity
    from tutor.settings import Settings

    page_up = threading.Event()

    def slow_client(settings):
        page_up.wait(10)  # the model loads until the page is up
        return client_module.EmbeddedCMT(keyword_engine)

    monkeypatch.setattr(client_module, "make_client", slow_client)
    cmt, similarity = cli._load_in_background(Settings())
    assert not cmt.future.done()  # returned while the model still loads
    page_up.set()
    assert cmt.analyze(AnalyzeRequest(text="so happy")).label == "joy"
    a, b = "the parts are equal", "equal parts"
    assert similarity(a, b) == lexical_similarity(a, b)  # this engine cannot compare: word overlap
