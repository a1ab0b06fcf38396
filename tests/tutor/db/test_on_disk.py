"""What the SQLite files hold after erasure, and how hard a commit is pushed to disk."""

from __future__ import annotations

from sqlalchemy import text

from tutor.db import crud, init_db, scrub
from tutor.privacy import erase_student, purge_readings
from tests.tutor.db.test_db import _reading

SECRETS = [f"zebrafinch{i} said quietly" for i in range(12)]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("attune.db")}


def test_erased_words_are_in_no_sqlite_file(tmp_path):
    db = init_db(f"sqlite:///{tmp_path / 'attune.db'}")
    with db.begin() as s:
        keep = crud.get_or_create_student(session=s, handle="kim", display_name="Kim")
        crud.add_turn(session=s, tutor_session_id=crud.start_session(session=s, student=keep).id,
                      student_text="the kept line", tutor_text="fine")
        eve = crud.get_or_create_student(session=s, handle="eve", display_name="Eve")
        ts = crud.start_session(session=s, student=eve, lesson="fractions")
        eve_id, ts_id = eve.id, ts.id
    for line in SECRETS:  # one commit a turn, as the app writes them
        with db.begin() as s:
            turn = crud.add_turn(session=s, tutor_session_id=ts_id, student_text=line,
                                 tutor_text="noted")
            crud.add_reading(session=s, tutor_session_id=ts_id, reading=_reading(), turn_id=turn.id)
    assert any(b"zebrafinch" in data for data in _files(tmp_path).values())  # the test can see them
    with db.begin() as s:
        erase_student(session=s, student_id=eve_id)
    scrub(db.kw["bind"])
    for name, data in _files(tmp_path).items():
        assert b"zebrafinch" not in data, name
    with db() as s:  # the rest is intact
        kept = s.execute(text("select student_text from turns")).scalars().all()
        assert kept == ["the kept line"]
    db.kw["bind"].dispose()


def test_purged_readings_are_scrubbed_too(tmp_path):
    db = init_db(f"sqlite:///{tmp_path / 'attune.db'}")
    with db.begin() as s:
        eve = crud.get_or_create_student(session=s, handle="eve", display_name="Eve")
        ts = crud.start_session(session=s, student=eve)
        reading = _reading().model_copy(update={"transcript": "wallaby transcript"})
        crud.add_reading(session=s, tutor_session_id=ts.id, reading=reading)
    with db.begin() as s:
        assert purge_readings(session=s, older_than_days=0) == 1
    scrub(db.kw["bind"])
    assert all(b"wallaby" not in data for data in _files(tmp_path).values())
    db.kw["bind"].dispose()


def test_sqlite_commits_are_synced_and_deletes_overwritten(tmp_path):
    db = init_db(f"sqlite:///{tmp_path / 'attune.db'}")
    with db() as s:
        # FULL: an acknowledged commit survives a power loss
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2
        assert s.execute(text("PRAGMA secure_delete")).scalar() == 1
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.kw["bind"].dispose()


def test_scrub_is_harmless_on_other_databases(db):
    scrub(db.kw["bind"])  # PostgreSQL: VACUUM outside a transaction; SQLite: checkpoint + VACUUM
    with db() as s:
        assert s.execute(text("select count(*) from students")).scalar() == 0


def test_attune_privacy_erase_leaves_no_words_in_the_files(tmp_path):
    from typer.testing import CliRunner

    from tutor.cli import app

    url = f"sqlite:///{tmp_path / 'attune.db'}"
    db = init_db(url)
    with db.begin() as s:
        eve = crud.get_or_create_student(session=s, handle="eve", display_name="Eve")
        ts_id = crud.start_session(session=s, student=eve).id
    for line in SECRETS:
        with db.begin() as s:
            crud.add_turn(session=s, tutor_session_id=ts_id, student_text=line, tutor_text="ok")
    db.kw["bind"].dispose()
    r = CliRunner().invoke(app, ["privacy", "erase", "--student", "eve", "--yes"],
                           env={"ATTUNE_DATABASE_URL": url})
    assert r.exit_code == 0 and "rows left: 0" in r.output, r.output
    assert "warning" not in r.output
    for name, data in _files(tmp_path).items():
        assert b"zebrafinch" not in data, name
