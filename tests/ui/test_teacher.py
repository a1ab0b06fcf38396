from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from tutor.settings import Settings
from tests.tutor.test_reports import T0, fast_hashing, make_world  # noqa: F401 (fixture)
from tutor import reports
from ui import teacher
from ui.deps import Deps

SKIP = {"__type__": "update"}


class NoCMT:
    def analyze(self, req):
        raise AssertionError("the teacher view never calls the model")


@pytest.fixture
def deps(db):
    return Deps(settings=Settings(), db=db, cmt=NoCMT())


@pytest.fixture
def world(db):
    return make_world(db)


def test_sign_in_lists_only_the_teachers_classes(deps, world):
    principal, status, classes, main = teacher.sign_in(deps, "alice@school.example", "alice-password")
    assert principal == world.teacher_a
    assert "Alice" in status and main["visible"] is True
    assert [v for _, v in classes["choices"]] == [world.class_a] and classes["value"] == world.class_a
    _, _, classes, _ = teacher.sign_in(deps, "root@school.example", "root-password")
    assert [v for _, v in classes["choices"]] == [world.class_a, world.class_b]


def test_wrong_password_and_unknown_email_read_the_same(deps, world):
    with pytest.warns(UserWarning) as w1:
        out1 = teacher.sign_in(deps, "alice@school.example", "wrong-password")
    with pytest.warns(UserWarning) as w2:
        out2 = teacher.sign_in(deps, "nobody@school.example", "wrong-password")
    assert out1[0] is None and out2[0] is None and out1[3]["visible"] is False
    assert [str(w.message) for w in w1] == [str(w.message) for w in w2] == [teacher.SIGN_IN_FAILED]
    with pytest.warns(UserWarning, match="e-mail and password"):
        assert teacher.sign_in(deps, "", "") == (SKIP,) * 4


def test_overview_handler_shows_the_struggling_student_first(deps, world):
    table, students, summary = teacher.load_overview(deps, world.teacher_a, world.class_a, "All time")
    assert isinstance(table, pd.DataFrame) and list(table.columns) == teacher.OVERVIEW_COLUMNS
    assert table.iloc[0]["Student"] == "Ana (ana)" and table.iloc[0]["Struggling"] == "yes"
    assert table.iloc[1]["Struggling"] == "no"
    assert [v for _, v in students["choices"]] == [world.ana, world.ben]
    assert "1 of 2" in summary
    assert teacher.pick_student([world.ben, "Ben (ben)"])["value"] == world.ben
    # a period with nothing in it
    table, _, summary = teacher.load_overview(deps, world.teacher_a, world.class_a, "Last hour",
                                              now=T0 + timedelta(days=3))
    assert (table["Turns"] == 0).all() and "0 of 2" in summary


def test_ui_handlers_refuse_another_teachers_class_and_session(deps, world):
    a = world.teacher_a
    calls = [
        (lambda: teacher.load_overview(deps, a, world.class_b, "All time"), 3),
        (lambda: teacher.load_sessions(deps, a, world.cat), 1),
        (lambda: teacher.load_timeline(deps, a, world.cat_session), 3),
        (lambda: teacher.select_turn(deps, a, world.cat_session, 0), 1),
        (lambda: teacher.export_session_csv(deps, a, world.cat_session), 1),
        (lambda: teacher.export_class_csv(deps, a, world.class_b, "All time"), 1),
        (lambda: teacher.export_timeline_png(deps, a, world.cat_session), 1),
        (lambda: teacher.load_timeline(deps, world.teacher_b, world.ana_session), 3),
    ]
    for call, n in calls:
        with pytest.warns(UserWarning, match="does not exist or is not"):
            out = call()
        assert out == (SKIP if n == 1 else (SKIP,) * n)  # nothing of theirs comes back
    with pytest.warns(UserWarning, match="sign in"):
        assert teacher.load_timeline(deps, None, world.ana_session) == (SKIP,) * 3
    # the admin gets through
    _, transcript, _ = teacher.load_timeline(deps, world.admin, world.cat_session)
    assert len(transcript) == 3


def test_a_teacher_gives_new_codes_to_their_own_students_only(deps, world):
    from tutor.auth import authenticate_student

    text = teacher.new_student_code(deps, world.teacher_a, world.ana)
    code = re.search(r"code `([^`]+)`", text).group(1)
    assert "handle `ana`" in text
    with deps.db.begin() as s:
        assert authenticate_student(session=s, handle="ana", code=code).id == world.ana
    with pytest.warns(UserWarning, match="does not exist or is not"):
        assert teacher.new_student_code(deps, world.teacher_a, world.cat) == SKIP
    with pytest.warns(UserWarning, match="sign in"):
        assert teacher.new_student_code(deps, None, world.ana) == SKIP
    with pytest.warns(UserWarning, match="choose a student"):
        assert teacher.new_student_code(deps, world.teacher_a, None) == SKIP
    assert "handle `cat`" in teacher.new_student_code(deps, world.admin, world.cat)
    teacher.new_student_code(deps, world.admin, world.ana)
    with deps.db.begin() as s:  # a newer code replaces it
        assert authenticate_student(session=s, handle="ana", code=code) is None


def test_timeline_transcript_and_selecting_a_turn(deps, world):
    sessions = teacher.load_sessions(deps, world.teacher_a, world.ana)
    assert sessions["value"] == world.ana_session and "5 turns" in sessions["choices"][0][0]
    fig, transcript, _ = teacher.load_timeline(deps, world.teacher_a, world.ana_session)
    assert fig.axes and list(transcript.columns) == teacher.TRANSCRIPT_COLUMNS
    assert list(transcript["Turn"]) == [0, 1, 2, 3, 4]
    assert transcript.iloc[2]["Read"] == "fear 0.70"
    assert transcript.iloc[2]["State"] == "frustrated (change 1)"
    text = teacher.select_turn(deps, world.teacher_a, world.ana_session, 2)
    assert "msg 2 fear" in text and "fear (70%)" in text and "face: fear" in text
    assert "frustrated" in text and "calmer tone" in text and "tone neutral → calm" in text
    with pytest.warns(UserWarning, match="no turn 9"):
        teacher.select_turn(deps, world.teacher_a, world.ana_session, 9)


def test_exports_write_csv_and_png_files(deps, world):
    path = Path(teacher.export_session_csv(deps, world.teacher_a, world.ana_session))
    assert path.name == f"attune-session-{world.ana_session}.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 5 and rows[0]["model_version"] == "cmt-test-1"
    path = Path(teacher.export_class_csv(deps, world.teacher_a, world.class_a, "Custom",
                                         T0.timestamp(), (T0 + timedelta(minutes=2)).timestamp()))
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert sorted((r["student_handle"], r["turn_index"]) for r in rows) == [
        ("ana", "0"), ("ana", "1"), ("ben", "0"), ("ben", "1")]
    png = Path(teacher.export_timeline_png(deps, world.teacher_a, world.ana_session)).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_period_bounds():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert teacher.period_bounds("All time", now=now) == (None, None)
    assert teacher.period_bounds("Last 7 days", now=now) == (now - timedelta(days=7), None)
    assert teacher.period_bounds("Custom", "2026-11-20 09:00", None) == (
        datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc), None)
    with pytest.raises(ValueError, match="before its end"):
        teacher.period_bounds("Custom", now.timestamp(), now.timestamp() - 60)
    with pytest.raises(ValueError, match="not a date"):
        teacher.period_bounds("Custom", "yesterday-ish", None)
    with pytest.raises(ValueError, match="Unknown period"):
        teacher.period_bounds("Forever", now=now)


def test_unexpected_failures_become_a_calm_warning(deps, world, monkeypatch):
    def boom(**kw):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(reports, "session_timeline", boom)
    with pytest.warns(UserWarning, match="on our side") as w:
        teacher.load_timeline(deps, world.teacher_a, world.ana_session)
    assert all("on fire" not in str(x.message) for x in w)


def test_build_teacher_makes_a_blocks(deps):
    with gr.Blocks() as app:
        teacher.build_teacher(deps)
    kinds = {type(b).__name__ for b in app.blocks.values()}
    assert {"Plot", "Dataframe", "File", "Dropdown", "DateTime", "State"} <= kinds


# ---------------------------------------------------------------- issue 19, item 9
def test_student_text_in_a_turn_is_shown_as_text_never_as_markup(deps, world):
    from tutor.db import crud

    typed = "![t](http://attacker.example/x.png) [click](http://evil.example) <script>steal()</script> *a* <b>b</b>"
    with deps.db.begin() as s:
        crud.add_turn(session=s, tutor_session_id=world.ana_session, student_text=typed,
                      tutor_text="You wrote <i>that</i>")
    shown = teacher.select_turn(deps, world.teacher_a, world.ana_session, 5)
    assert "&lt;script&gt;steal()&lt;/script&gt;" in shown  # the whole text, visible
    assert "<script" not in shown and "<b>b" not in shown and "<i>that" not in shown
    assert "![t](http://attacker.example/x.png)" in shown  # as typed: inert in an HTML panel
    with gr.Blocks() as app:
        teacher.build_teacher(deps)
    panel = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "teacher-turn")
    assert isinstance(panel, gr.HTML)  # not Markdown: no image fetched, no link made


def test_the_live_panel_names_who_needs_help_now_with_the_reason(deps, world):
    shown = teacher.needs_help(deps, world.teacher_a, world.class_a, now=T0 + timedelta(minutes=5))
    assert "Ana</b> (ana)" in shown and "of the last" in shown and "Ben" not in shown
    calm = teacher.needs_help(deps, world.teacher_a, world.class_a, now=T0 + timedelta(hours=2))
    assert "nobody" in calm
    assert teacher.needs_help(deps, world.teacher_a, world.class_b) == ""  # not theirs: nothing
    with gr.Blocks() as app:
        teacher.build_teacher(deps)
    assert any(isinstance(b, gr.Timer) for b in app.blocks.values())


def test_class_list_refreshes_with_new_classes_and_right_plurals(deps, world):
    from tutor.db import crud

    with deps.db.begin() as s:
        k = crud.create_class(session=s, name="8a", teacher_id=world.teacher_a.id)
        crud.enrol(session=s, student=crud.get_or_create_student(session=s, handle="dee"),
                   class_id=k.id)
        new_id = k.id
    picker = teacher.refresh_classes(deps, world.teacher_a, world.class_a)
    assert picker["value"] == world.class_a  # the picked class stays picked
    assert ("8a (1 student)", new_id) in picker["choices"]
    assert ("7a (2 students)", world.class_a) in picker["choices"]


def test_a_teacher_adds_a_walk_in_student_from_the_page(deps, world):
    from tutor.db import crud

    with deps.db.begin() as s:
        crud.get_or_create_student(session=s, handle="walk.in", display_name="Walk In")
    assert [v for _, v in teacher.unassigned_choices(deps, world.teacher_a)["choices"]] == ["walk.in"]
    said, picker = teacher.add_student(deps, world.teacher_a, world.class_a, "walk.in")
    assert said == "Added Walk In (walk.in) to 7a." and picker["choices"] == []
    table, _, _ = teacher.load_overview(deps, world.teacher_a, world.class_a, "All time")
    assert "Walk In (walk.in)" in list(table["Student"])
    with pytest.warns(UserWarning, match="another class"):
        teacher.add_student(deps, world.teacher_a, world.class_a, "cat")


def test_the_readings_export_is_its_own_file(deps, world):
    path = Path(teacher.export_session_csv(deps, world.teacher_a, world.ana_session, readings=True))
    assert path.name == f"attune-session-{world.ana_session}-readings.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 5 and rows[0]["kind"] == "turn"


def test_the_download_box_is_hidden_while_empty_and_emptied_on_another_pick():
    """Issue 20: an empty download box took the page, and kept the previous class's file."""
    assert teacher.shown_if_full(None) == {"__type__": "update", "visible": False}
    assert teacher.shown_if_full("/tmp/attune-export-x/a.csv")["visible"] is True
    assert teacher.no_download() == {"__type__": "update", "value": None, "visible": False}
