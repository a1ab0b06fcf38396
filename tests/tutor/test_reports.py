from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from cmt.contract import EMOTIONS, AnalyzeResponse, reading_from_probs
from tutor import reports
from tutor.auth import AccessDenied, Principal, create_teacher
from tutor.db import crud
from tutor.db.models import SchoolClass

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def reading(label: str, p: float = 0.7, *, face: str | None = None, version: str = "cmt-test-1"):
    probs = {e: (p if e == label else (1 - p) / 6) for e in EMOTIONS}
    modalities = {"text": reading_from_probs(probs)}
    if face is not None:
        fprobs = {e: (0.6 if e == face else 0.4 / 6) for e in EMOTIONS}
        modalities["face"] = reading_from_probs(fprobs)
    return AnalyzeResponse.from_probs(probs, modalities=modalities, model_version=version,
                                      latency_ms=20.0)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    """Cheap argon2 parameters: these tests are about reports, not about hashing cost."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("tutor.auth._hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                             parallelism=1))


@dataclass
class World:
    teacher_a: Principal
    teacher_b: Principal
    admin: Principal
    class_a: int
    class_b: int
    ana: int  # class A, mostly anger/fear
    ben: int  # class A, mostly joy
    cat: int  # class B
    ana_session: int
    ben_session: int
    cat_session: int


def add_session(s, student, labels, *, start, faces=None, adapt_at=None, lesson="fractions"):
    """A session of one turn per label, a minute apart, each with a reading and an adaptation."""
    ts = crud.start_session(session=s, student=student, lesson=lesson)
    ts.started_at = start
    for i, label in enumerate(labels):
        at = start + timedelta(minutes=i)
        turn = crud.add_turn(session=s, tutor_session_id=ts.id, student_text=f"msg {i} {label}",
                             tutor_text=f"reply {i}")
        turn.created_at = at
        r = crud.add_reading(session=s, tutor_session_id=ts.id, turn_id=turn.id,
                             reading=reading(label, face=(faces or {}).get(i)))
        r.created_at = at
        changed = adapt_at is not None and i == adapt_at
        a = crud.add_adaptation(
            session=s, tutor_session_id=ts.id, turn_id=turn.id,
            state="frustrated" if changed else "engaged",
            tone="calm" if changed else "neutral", pacing="slower" if changed else "normal",
            changes={"tone": ["neutral", "calm"]} if changed else {},
            reason="frustration 0.61 for 40 s; read anger 0.70 → calmer tone" if changed
            else "engagement 0.50; read " + label)
        a.created_at = at
    s.flush()
    return ts


def make_world(db) -> World:
    with db.begin() as s:
        a = create_teacher(session=s, name="Alice", email="alice@school.example",
                           password="alice-password")
        b = create_teacher(session=s, name="Bob", email="bob@school.example",
                           password="bob-password")
        root = create_teacher(session=s, name="Root", email="root@school.example",
                              password="root-password", role="admin")
        ca, cb = SchoolClass(name="7a", teacher_id=a.id), SchoolClass(name="7b", teacher_id=b.id)
        s.add_all([ca, cb])
        s.flush()
        ana = crud.get_or_create_student(session=s, handle="ana", display_name="Ana")
        ben = crud.get_or_create_student(session=s, handle="ben", display_name="Ben")
        cat = crud.get_or_create_student(session=s, handle="cat", display_name="Cat")
        ana.class_id, ben.class_id, cat.class_id = ca.id, ca.id, cb.id
        ana_s = add_session(s, ana, ["neutral", "anger", "fear", "anger", "sadness"], start=T0,
                            faces={1: "anger", 2: "fear"}, adapt_at=2)
        ben_s = add_session(s, ben, ["joy", "neutral", "joy", "anger"], start=T0)
        cat_s = add_session(s, cat, ["fear", "fear", "fear"], start=T0)
        return World(Principal.of(a), Principal.of(b), Principal.of(root), ca.id, cb.id,
                     ana.id, ben.id, cat.id, ana_s.id, ben_s.id, cat_s.id)


@pytest.fixture
def world(db) -> World:
    return make_world(db)


def test_visible_classes_are_the_teachers_own(db, world):
    with db() as s:
        assert [c.name for c in reports.visible_classes(session=s, principal=world.teacher_a)] == ["7a"]
        assert [c.students for c in reports.visible_classes(session=s, principal=world.teacher_a)] == [2]
        assert [c.name for c in reports.visible_classes(session=s, principal=world.admin)] == ["7a", "7b"]


def test_overview_flags_the_student_whose_readings_are_mostly_anger_and_fear(db, world):
    with db() as s:
        rows = reports.class_overview(session=s, principal=world.teacher_a, class_id=world.class_a)
    by = {r.handle: r for r in rows}
    assert set(by) == {"ana", "ben"}  # not cat: another teacher's class
    assert rows[0].handle == "ana"  # struggling first
    ana, ben = by["ana"], by["ben"]
    assert (ana.sessions, ana.turns, ana.readings) == (1, 5, 5)
    assert ana.negative_share == pytest.approx(4 / 5)
    assert ana.struggling and "4 of 5" in ana.why
    assert ana.last_state == "engaged"  # the state after the last turn
    assert ana.last_active == T0 + timedelta(minutes=4)
    assert ben.negative_share == pytest.approx(1 / 4) and not ben.struggling and ben.why == ""


def test_overview_period_limits_what_counts(db, world):
    with db() as s:
        # only ana's turn 2 (fear) and its "frustrated" adaptation fall in this window
        rows = reports.class_overview(session=s, principal=world.teacher_a, class_id=world.class_a,
                                      since=T0 + timedelta(minutes=2),
                                      until=T0 + timedelta(minutes=2, seconds=30))
        by = {r.handle: r for r in rows}
        assert (by["ana"].turns, by["ana"].readings, by["ana"].last_state) == (1, 1, "frustrated")
        assert by["ana"].struggling and "frustrated" in by["ana"].why  # state rule: too few readings
        assert by["ben"].turns == 1 and not by["ben"].struggling
        later = reports.class_overview(session=s, principal=world.teacher_a,
                                       class_id=world.class_a, since=T0 + timedelta(days=1))
        assert all(r.sessions == 0 and r.readings == 0 and not r.struggling for r in later)
        with pytest.raises(ValueError, match="period is empty"):
            reports.class_overview(session=s, principal=world.teacher_a, class_id=world.class_a,
                                   since=T0, until=T0)


def test_teacher_cannot_read_another_teachers_class_or_session(db, world):
    with db() as s:
        for call in (
            lambda: reports.class_overview(session=s, principal=world.teacher_a, class_id=world.class_b),
            lambda: reports.class_students(session=s, principal=world.teacher_a, class_id=world.class_b),
            lambda: reports.student_sessions(session=s, principal=world.teacher_a, student_id=world.cat),
            lambda: reports.session_timeline(session=s, principal=world.teacher_a,
                                             session_id=world.cat_session),
            lambda: reports.export_session_csv(session=s, principal=world.teacher_a,
                                               session_id=world.cat_session),
            lambda: reports.export_class_csv(session=s, principal=world.teacher_a,
                                             class_id=world.class_b),
            lambda: reports.session_timeline(session=s, principal=world.teacher_b,
                                             session_id=world.ana_session),
            lambda: reports.class_overview(session=s, principal=None, class_id=world.class_a),
        ):
            with pytest.raises(AccessDenied):
                call()
        # the admin reads both
        assert reports.class_overview(session=s, principal=world.admin, class_id=world.class_b)[0].handle == "cat"
        assert reports.session_timeline(session=s, principal=world.admin,
                                        session_id=world.ana_session).student_handle == "ana"


def test_timeline_has_readings_modalities_adaptations_and_turns(db, world):
    with db() as s:
        tl = reports.session_timeline(session=s, principal=world.teacher_a,
                                      session_id=world.ana_session)
        sessions = reports.student_sessions(session=s, principal=world.teacher_a, student_id=world.ana)
    assert [x.id for x in sessions] == [world.ana_session] and sessions[0].turns == 5
    assert [t.index for t in tl.turns] == [0, 1, 2, 3, 4]
    assert [r.label for r in tl.readings] == ["neutral", "anger", "fear", "anger", "sadness"]
    assert all(abs(sum(r.probs.values()) - 1) < 1e-6 for r in tl.readings)
    assert set(tl.readings[1].modality_probs) == {"text", "face"}
    assert max(tl.readings[2].modality_probs["face"].items(), key=lambda kv: kv[1])[0] == "fear"
    assert [r.at for r in tl.readings] == [T0 + timedelta(minutes=i) for i in range(5)]
    assert len(tl.adaptations) == 5 and len(tl.changes) == 1
    assert "calmer tone" in tl.changes[0].reason and tl.changes[0].at == T0 + timedelta(minutes=2)
    d = tl.turn_detail(2)
    assert d.turn.student_text == "msg 2 fear" and [r.label for r in d.readings] == ["fear"]
    assert [a.state for a in d.adaptations] == ["frustrated"]
    with pytest.raises(KeyError):
        tl.turn_detail(9)


def test_session_csv_has_header_rows_timestamps_and_model_version(db, world):
    with db() as s:
        text = reports.export_session_csv(session=s, principal=world.teacher_a,
                                          session_id=world.ana_session)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(csv.reader(io.StringIO(text)).__next__()) == reports.CSV_COLUMNS
    assert len(rows) == 5
    assert [r["turn_index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r["label"] for r in rows] == ["neutral", "anger", "fear", "anger", "sadness"]
    assert {r["model_version"] for r in rows} == {"cmt-test-1"}
    assert rows[2]["reading_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert datetime.fromisoformat(rows[0]["turn_at"]) == T0
    assert float(rows[1]["p_anger"]) == pytest.approx(0.7, abs=1e-4)
    assert rows[1]["face_label"] == "anger" and rows[0]["face_label"] == ""
    assert rows[2]["state"] == "frustrated" and rows[2]["changes"] == "tone: neutral -> calm"
    assert rows[0]["class_id"] == str(world.class_a) and rows[0]["student_handle"] == "ana"


def test_class_csv_covers_the_period_only(db, world):
    with db() as s:
        everything = reports.export_class_csv(session=s, principal=world.teacher_a,
                                              class_id=world.class_a)
        window = reports.export_class_csv(session=s, principal=world.teacher_a,
                                          class_id=world.class_a, since=T0 + timedelta(minutes=3),
                                          until=T0 + timedelta(hours=1))
    rows = list(csv.DictReader(io.StringIO(everything)))
    assert len(rows) == 9 and {r["student_handle"] for r in rows} == {"ana", "ben"}
    assert "cat" not in everything
    rows = list(csv.DictReader(io.StringIO(window)))
    assert sorted((r["student_handle"], r["turn_index"]) for r in rows) == [
        ("ana", "3"), ("ana", "4"), ("ben", "3")]
    assert all(datetime.fromisoformat(r["reading_at"]) >= T0 + timedelta(minutes=3) for r in rows)


def test_timeline_png_is_a_real_png(db, world):
    with db() as s:
        tl = reports.session_timeline(session=s, principal=world.teacher_a,
                                      session_id=world.ana_session)
    fig = reports.timeline_figure(tl)
    top, mid, low, side = fig.axes
    assert {p.get_label() for p in top.containers} >= set(EMOTIONS)  # a stacked bar per turn
    assert len(top.containers[0]) == 5  # one bar per turn
    assert [t.get_text() for t in mid.get_yticklabels()] == ["words", "camera"]
    assert [t.get_text() for t in low.get_yticklabels()] == ["engaged", "frustrated"]
    told = " ".join(t.get_text() for t in side.texts).replace("\n    ", " ")
    assert "1  09:02:00 · frustrated: frustration 0.61 for 40 s; read anger 0.70 → calmer tone" in told
    assert [t.get_text() for t in top.texts] == ["1"]  # the numbered marker
    assert "Session" in fig.get_suptitle() and "5 turns" in fig.get_suptitle()
    png = reports.timeline_png(tl)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_the_timeline_summarises_camera_frames_instead_of_plotting_each(db, world):
    with db.begin() as s:
        cam = crud.get_or_create_student(session=s, handle="cam", display_name="Cam")
        cam.class_id = world.class_a
        sid = _chat(s, cam, 29, {20, 21, 22}, frames_per_turn=13).id
    with db() as s:
        tl = reports.session_timeline(session=s, principal=world.teacher_a, session_id=sid)
    assert len(tl.readings) == 29 * 14
    _, mid, _, _ = reports.timeline_figure(tl).axes
    camera_row = [t.get_text() for t in mid.get_yticklabels()].index("camera")
    marks = [p for p in mid.patches if abs(p.get_y() + p.get_height() / 2 - camera_row) < 0.01]
    assert len(marks) <= 29 * 30 / reports.CAMERA_BIN_S + 2  # one per 10 s, not one per frame


def test_timeline_png_of_an_empty_session(db, world):
    with db.begin() as s:
        from tutor.db.models import Student

        ts = crud.start_session(session=s, student=s.get(Student, world.ben))
        sid = ts.id
    with db() as s:
        tl = reports.session_timeline(session=s, principal=world.teacher_a, session_id=sid)
    assert tl.readings == [] and tl.turns == []
    assert reports.timeline_png(tl)[:4] == b"\x89PNG"


def test_csv_defuses_spreadsheet_formulas_typed_by_a_student(db, world):
    with db.begin() as s:
        crud.add_turn(session=s, tutor_session_id=world.ana_session,
                      student_text='=HYPERLINK("http://evil.example","click")', tutor_text="-1 is right")
    with db() as s:
        text = reports.export_session_csv(session=s, principal=world.teacher_a,
                                          session_id=world.ana_session)
    last = list(csv.DictReader(io.StringIO(text)))[-1]
    assert last["student_text"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"
    assert last["tutor_text"] == "'-1 is right" and last["label"] == ""


# ---------------------------------------------------------------- per turn, not per reading
def _chat(s, student, n_turns, hard_at, *, frames_per_turn=0, start=T0, frame_label="joy"):
    """n_turns typed turns 30 s apart; those in hard_at typed in anger (the policy still
    judging them engaged, as a camera full of smiles would keep it); camera frames between."""
    ts = crud.start_session(session=s, student=student, lesson="fractions")
    ts.started_at = start
    for i in range(n_turns):
        at = start + timedelta(seconds=30 * i)
        for k in range(frames_per_turn):
            r = crud.add_reading(session=s, tutor_session_id=ts.id, reading=reading(frame_label))
            r.created_at = at - timedelta(seconds=30) + timedelta(seconds=30 * (k + 1) / (frames_per_turn + 1))
        word = "anger" if i in hard_at else "neutral"
        turn = crud.add_turn(session=s, tutor_session_id=ts.id, student_text=f"t{i}",
                             tutor_text="r")
        turn.created_at = at
        r = crud.add_reading(session=s, tutor_session_id=ts.id, turn_id=turn.id,
                             reading=reading("joy" if frames_per_turn else word, face=None))
        r.modality_probs = {"text": {e: (0.8 if e == word else 0.2 / 6) for e in EMOTIONS}}
        r.created_at = at
        a = crud.add_adaptation(session=s, tutor_session_id=ts.id, turn_id=turn.id,
                                state="engaged", tone="neutral", pacing="normal", changes={},
                                reason="engagement")
        a.created_at = at
    s.flush()
    return ts


def test_a_camera_student_with_three_angry_turns_is_flagged_like_a_text_only_one(db, world):
    with db.begin() as s:
        klass = SchoolClass(name="7c", teacher_id=world.teacher_a.id)
        s.add(klass)
        s.flush()
        cam = crud.get_or_create_student(session=s, handle="cam", display_name="Cam")
        txt = crud.get_or_create_student(session=s, handle="tex", display_name="Tex")
        calm = crud.get_or_create_student(session=s, handle="cal", display_name="Cal")
        cam.class_id = txt.class_id = calm.class_id = klass.id
        _chat(s, cam, 29, {20, 21, 22}, frames_per_turn=13)  # 377 joyful frames
        _chat(s, txt, 29, {20, 21, 22})
        _chat(s, calm, 29, {20})
        class_id = klass.id
    with db() as s:
        rows = {r.handle: r for r in reports.class_overview(
            session=s, principal=world.teacher_a, class_id=class_id,
            now=T0 + timedelta(minutes=15))}
    assert rows["cam"].readings > 380 and rows["cam"].turns == 29
    assert rows["cam"].struggling and rows["tex"].struggling and not rows["cal"].struggling
    assert "3 of 29 turns" in rows["cam"].why and "read anger" in rows["cam"].why
    assert rows["cam"].camera_minutes >= 14 and rows["cam"].hard_minutes == 0
    assert rows["cam"].hard_turns == 3 and rows["cam"].negative_share == pytest.approx(3 / 29)


def test_needs_help_now_reads_the_last_turns_near_now_in_words():
    at = [T0 + timedelta(minutes=i) for i in range(6)]
    calm = [reports.TurnSignal(index=i, at=t, state="engaged", label="neutral") for i, t in enumerate(at)]
    stuck = calm[:3] + [reports.TurnSignal(index=3, at=at[3], state="frustrated", label="neutral"),
                        reports.TurnSignal(index=4, at=at[4], state="confused", label="anger"),
                        reports.TurnSignal(index=5, at=at[5], state="engaged", label="neutral")]
    j = reports.judge(stuck, [], now=at[5] + timedelta(minutes=1))
    assert j.needs_help_now and "2 of the last 5 turns" in j.now_why
    assert "turn 3: frustrated" in j.now_why and "turn 4: confused, read anger" in j.now_why
    assert not reports.judge(stuck, [], now=at[5] + timedelta(hours=1)).needs_help_now  # long ago
    assert not reports.judge(calm, [], now=at[5]).needs_help_now
    sad = [reports.MinuteSignal(start=at[k], frames=100, negative=80, label="sadness") for k in (4, 5)]
    assert not reports.judge(calm, sad, now=at[5]).needs_help_now  # the camera alone: no
    j = reports.judge(stuck, sad, now=at[5] + timedelta(minutes=1))
    assert j.needs_help_now and "sadness for two minutes" in j.now_why  # said beside the turns
    one = reports.judge(calm[:1], [], now=at[0])
    assert "1 turn" not in one.why  # nothing to say; and plurals are right where said
    assert reports._n(1, "turn") == "1 turn" and reports._n(2, "turn") == "2 turns"


def test_a_camera_fooled_by_the_light_never_marks_a_student_struggling_alone():
    at = [T0 + timedelta(minutes=i) for i in range(8)]
    fine = [reports.TurnSignal(index=i, at=t, state="engaged", label="neutral")
            for i, t in enumerate(at)]
    glare = [reports.MinuteSignal(start=t, frames=120, negative=110, label="fear") for t in at]
    j = reports.judge(fine, glare, now=at[-1])
    assert not j.struggling and not j.needs_help_now and j.why == ""
    failing = fine[:5] + [reports.TurnSignal(index=i, at=at[i], state="confused", label="neutral")
                          for i in (5, 6, 7)]
    j = reports.judge(failing, glare, now=at[-1])
    assert j.struggling and "3 of 8 turns" in j.why and "camera: 8 of 8 minutes" in j.why


def test_a_teacher_adds_an_open_sign_in_student_but_cannot_take_anothers(db, world):
    with db.begin() as s:
        crud.get_or_create_student(session=s, handle="walk.in", display_name="Walk In")
    with db.begin() as s:
        assert [x.handle for x in reports.unassigned_students(session=s, principal=world.teacher_a)] == ["walk.in"]
        said = reports.add_to_class(session=s, principal=world.teacher_a, class_id=world.class_a,
                                    handle="Walk.In")
        assert said == "Added Walk In (walk.in) to 7a."
        assert "already in 7a" in reports.add_to_class(session=s, principal=world.teacher_a,
                                                       class_id=world.class_a, handle="walk.in")
        with pytest.raises(AccessDenied, match="another class"):
            reports.add_to_class(session=s, principal=world.teacher_a, class_id=world.class_a,
                                 handle="cat")
        with pytest.raises(KeyError, match="no student"):
            reports.add_to_class(session=s, principal=world.teacher_a, class_id=world.class_a,
                                 handle="nobody")
        with pytest.raises(AccessDenied):
            reports.add_to_class(session=s, principal=world.teacher_a, class_id=world.class_b,
                                 handle="walk.in")
        said = reports.add_to_class(session=s, principal=world.admin, class_id=world.class_b,
                                    handle="walk.in")
        assert said == "Added Walk In (walk.in) to 7b (moved from 7a)."


def test_session_csv_is_one_row_per_turn_and_the_readings_csv_has_every_reading(db, world):
    with db.begin() as s:
        cam = crud.get_or_create_student(session=s, handle="cam", display_name="Cam")
        cam.class_id = world.class_a
        sid = _chat(s, cam, 6, {3}, frames_per_turn=4).id
    with db() as s:
        per_turn = list(csv.DictReader(io.StringIO(reports.export_session_csv(
            session=s, principal=world.teacher_a, session_id=sid))))
        per_reading = list(csv.DictReader(io.StringIO(reports.export_session_csv(
            session=s, principal=world.teacher_a, session_id=sid, readings=True))))
        class_readings = reports.export_class_csv(session=s, principal=world.teacher_a,
                                                  class_id=world.class_a, readings=True)
    assert [r["turn_index"] for r in per_turn] == ["0", "1", "2", "3", "4", "5"]
    assert {r["camera_frames"] for r in per_turn} == {"4"}
    assert per_turn[3]["camera_label"] == "joy" and per_turn[3]["camera_negative_share"] == "0.00"
    assert per_turn[3]["text_label"] == "anger" and per_turn[3]["state"] == "engaged"
    assert len(per_reading) == 6 * 5
    assert sum(r["kind"] == "camera frame" for r in per_reading) == 24
    assert tuple(csv.reader(io.StringIO(class_readings)).__next__()) == reports.READINGS_CSV_COLUMNS
