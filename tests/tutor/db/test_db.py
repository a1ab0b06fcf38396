from __future__ import annotations

from sqlalchemy import inspect, select, text

from cmt.contract import AnalyzeResponse, EMOTIONS, reading_from_probs
from tutor.db import crud, init_db
from tutor.db.models import Adaptation, EmotionReading, Student, Turn, TutorSession

TABLES = {"teachers", "classes", "students", "sessions", "turns", "emotion_readings", "adaptations",
          "consents", "mastery"}


def _reading(label="joy", p=0.7):
    probs = {e: (p if e == label else (1 - p) / 6) for e in EMOTIONS}
    return AnalyzeResponse.from_probs(probs, modalities={"text": reading_from_probs(probs)},
                                      model_version="m1", latency_ms=12.5)


def test_migrations_create_every_table_and_are_idempotent(db_url):
    factory = init_db(db_url)
    engine = factory.kw["bind"]
    assert TABLES <= set(inspect(engine).get_table_names())
    init_db(db_url)  # a second upgrade is a no-op
    with engine.connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar() == "0003"
    engine.dispose()


def test_a_database_at_head_is_opened_without_alembic(db_url, monkeypatch):
    import tutor.db
    from alembic.script import ScriptDirectory

    from tutor.db import SCHEMA_HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config(db_url)).get_heads() == [SCHEMA_HEAD]
    init_db(db_url).kw["bind"].dispose()  # a new database: migrated

    def no_upgrade(engine, revision="head"):
        raise AssertionError("migrated again")

    monkeypatch.setattr(tutor.db, "upgrade", no_upgrade)
    engine = init_db(db_url).kw["bind"]
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_turn_reading_and_adaptation_round_trip(db):
    with db.begin() as s:
        student = crud.get_or_create_student(session=s, handle="sam", display_name="Sam")
        ts = crud.start_session(session=s, student=student, lesson="fractions")
        t0 = crud.add_turn(session=s, tutor_session_id=ts.id, student_text="hi", tutor_text="hello")
        t1 = crud.add_turn(session=s, tutor_session_id=ts.id, student_text="1/2", tutor_text="yes")
        crud.add_reading(session=s, tutor_session_id=ts.id, reading=_reading(), turn_id=t1.id)
        crud.add_adaptation(session=s, tutor_session_id=ts.id, turn_id=t1.id, state="delighted",
                            tone="upbeat", pacing="normal", reason="joy 0.70 → upbeat",
                            changes={"tone": ["neutral", "upbeat"]})
        sid = ts.id
    assert (t0.index, t1.index) == (0, 1)
    with db() as s:
        assert crud.get_or_create_student(session=s, handle="sam").id == student.id
        turns = crud.session_turns(session=s, tutor_session_id=sid)
        assert [t.student_text for t in turns] == ["hi", "1/2"]
        (r,) = crud.session_readings(session=s, tutor_session_id=sid)
        assert r.label == "joy" and r.turn_id == t1.id and r.model_version == "m1"
        assert abs(sum(r.probs.values()) - 1) < 1e-6 and set(r.modality_probs) == {"text"}
        assert r.created_at.tzinfo is not None or db.kw["bind"].dialect.name == "sqlite"
        (a,) = crud.session_adaptations(session=s, tutor_session_id=sid)
        assert a.changes == {"tone": ["neutral", "upbeat"]} and "upbeat" in a.reason


def test_deleting_a_student_removes_their_sessions_turns_and_readings(db):
    with db.begin() as s:
        student = crud.get_or_create_student(session=s, handle="del")
        ts = crud.start_session(session=s, student=student)
        t = crud.add_turn(session=s, tutor_session_id=ts.id, student_text="x", tutor_text="y")
        crud.add_reading(session=s, tutor_session_id=ts.id, reading=_reading(), turn_id=t.id)
        crud.add_adaptation(session=s, tutor_session_id=ts.id, turn_id=t.id, state="engaged",
                            tone="neutral", pacing="normal", reason="r")
    with db.begin() as s:
        s.execute(Student.__table__.delete().where(Student.id == student.id))
    with db() as s:
        for model in (TutorSession, Turn, EmotionReading, Adaptation):
            assert s.scalars(select(model)).all() == []


def test_sqlite_runs_in_wal_mode(tmp_path):
    factory = init_db(f"sqlite:///{tmp_path / 'nested' / 'a.db'}")
    with factory() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_migrations_match_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tutor.db.models import Base

    engine = init_db(db_url).kw["bind"]
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    engine.dispose()


def test_urls_are_printed_without_their_password():
    from tutor.db import shown_url

    shown = shown_url("postgresql+psycopg://attune:s3cret@db.school:5432/attune")
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://attune:***@db.school")
    assert shown_url("sqlite:///x/attune.db") == "sqlite:///x/attune.db"
