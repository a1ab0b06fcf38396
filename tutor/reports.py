"""What a teacher reads: class overviews, session timelines, CSV exports and timeline images.

Every query takes a Principal and checks it first (tutor.auth.require_*): a teacher reads only
their own classes, an admin every class. Periods are half-open, [since, until), in UTC; a
naive datetime is taken to be UTC; None leaves that end open.

The judgement (`judge`, one function so that it can be adjusted) is made per turn and per
minute, never per reading: camera frames arrive twice a second, so counting readings would
let 380 calm frames drown three frustrated typed turns. A turn is *hard* when the policy
judged the student frustrated, anxious or confused on it (the state stored with the turn), or
when the turn's reading (the student's own words where read, else the fused label) is anger,
disgust, fear or sadness. A student is *struggling* in a period with at least MIN_HARD_TURNS
hard turns, or 2 hard turns making at least HARD_SHARE of their turns, or a last turn judged
frustrated or anxious. They *need help now* when active within NOW_WINDOW and at least 2 of
their last RECENT_TURNS turns in it are hard, or the last one is judged frustrated or anxious.

Camera frames between turns are summarised per minute; a minute is hard when most of its
frames read one of those four. Hard camera minutes are said beside a judgement, never make
one alone: the tutor's state on each turn already weighs the camera with the words, answers
and voice, and a raw camera label is what glare, a dim room or a resting frown fool.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cmt.contract import EMOTIONS, MODALITIES
from tutor.auth import (AccessDenied, Principal, current_principal, require_class_access,
                        require_session_access, require_student_access)
from tutor.db.models import Adaptation, EmotionReading, SchoolClass, Student, Turn, TutorSession

NEGATIVE_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "sadness")
STRUGGLING_STATES: tuple[str, ...] = ("frustrated", "anxious")  # one such last turn is enough
HARD_STATES: tuple[str, ...] = ("frustrated", "anxious", "confused")
MIN_HARD_TURNS = 3  # this many hard turns in the period: struggling, however many turns
HARD_SHARE = 1 / 3  # or 2 hard turns that are at least this share of the turns
MIN_HARD_MINUTES = 3  # camera minutes (of frames between turns) mostly negative, said
# beside a judgement when they are most of the student's camera minutes
RECENT_TURNS = 5  # "now": the last this many turns...
NOW_WINDOW = timedelta(minutes=10)  # ...within this long before now

EMOTION_COLORS = {"neutral": "#7f7f7f", "joy": "#f2b701", "sadness": "#3969ac",
                  "anger": "#e73f74", "fear": "#7f3c8d", "disgust": "#11a579",
                  "surprise": "#f97b72"}


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    teacher_id: int | None
    students: int


@dataclass(frozen=True)
class SessionInfo:
    id: int
    student_id: int
    lesson: str | None
    policy_mode: str
    started_at: datetime
    ended_at: datetime | None
    turns: int


@dataclass(frozen=True)
class StudentStatus:
    student_id: int
    handle: str
    display_name: str
    sessions: int  # sessions with a turn or a reading in the period, or started in it
    turns: int
    readings: int  # every reading, camera frames included (for information only)
    negative_share: float  # share of turns that were hard (see `judge`)
    last_state: str | None  # the policy's learning state on the last turn in the period
    last_active: datetime | None
    struggling: bool
    why: str  # the rule that fired, in words; "" when not struggling
    hard_turns: int = 0
    camera_minutes: int = 0  # minutes with camera frames between turns
    hard_minutes: int = 0
    needs_help_now: bool = False
    now_why: str = ""  # why they need help now, in words


@dataclass(frozen=True)
class TurnSignal:
    """What `judge` reads of one turn."""
    index: int
    at: datetime
    state: str | None  # the policy's learning state stored with the turn
    label: str | None  # the turn's reading: the words' own label if read, else the fused one

    @property
    def hard(self) -> bool:
        return self.state in HARD_STATES or self.label in NEGATIVE_EMOTIONS


@dataclass(frozen=True)
class MinuteSignal:
    """Camera frames between turns, summarised per minute."""
    start: datetime
    frames: int
    negative: int  # frames whose fused label is in NEGATIVE_EMOTIONS
    label: str  # the minute's most frequent label

    @property
    def hard(self) -> bool:
        return self.negative * 2 > self.frames


@dataclass(frozen=True)
class Judgement:
    struggling: bool
    why: str
    needs_help_now: bool
    now_why: str


@dataclass(frozen=True)
class ReadingPoint:
    id: int
    at: datetime
    turn_id: int | None
    label: str
    confidence: float
    probs: dict[str, float]
    modality_probs: dict[str, dict[str, float]]
    model_version: str
    degraded: bool
    transcript: str | None = None


@dataclass(frozen=True)
class AdaptationMark:
    id: int
    at: datetime
    turn_id: int | None
    state: str
    tone: str
    pacing: str
    hint_level: int
    changes: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class TurnRow:
    id: int
    index: int
    at: datetime
    student_text: str
    tutor_text: str
    input_source: str


@dataclass(frozen=True)
class TurnDetail:
    turn: TurnRow
    readings: list[ReadingPoint]
    adaptations: list[AdaptationMark]


@dataclass(frozen=True)
class Timeline:
    session_id: int
    student_handle: str
    student_name: str
    lesson: str | None
    policy_mode: str
    started_at: datetime
    ended_at: datetime | None
    turns: list[TurnRow] = field(default_factory=list)
    readings: list[ReadingPoint] = field(default_factory=list)
    adaptations: list[AdaptationMark] = field(default_factory=list)

    def turn_detail(self, index: int) -> TurnDetail:
        """The turn with this index, with its readings and adaptations; KeyError if none."""
        turn = next((t for t in self.turns if t.index == index), None)
        if turn is None:
            raise KeyError(f"session {self.session_id} has no turn {index}")
        return TurnDetail(turn=turn,
                          readings=[r for r in self.readings if r.turn_id == turn.id],
                          adaptations=[a for a in self.adaptations if a.turn_id == turn.id])

    @property
    def changes(self) -> list[AdaptationMark]:
        """Adaptations that changed something (the policy stores one per turn)."""
        return [a for a in self.adaptations if a.changes]


# ---------------------------------------------------------------- time
def utc(dt: datetime | None) -> datetime | None:
    """Aware UTC; naive values (SQLite hands them back) are taken to be UTC already."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _check_period(since: datetime | None, until: datetime | None):
    since, until = utc(since), utc(until)
    if since is not None and until is not None and since >= until:
        raise ValueError(f"the period is empty: it starts at {since:%Y-%m-%d %H:%M} UTC "
                         f"and ends at {until:%Y-%m-%d %H:%M} UTC")
    return since, until


def _within(stmt: Select, column, since: datetime | None, until: datetime | None) -> Select:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


def _in_period(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def iso(dt: datetime | None) -> str:
    return "" if dt is None else utc(dt).isoformat()


# ---------------------------------------------------------------- listings
def visible_classes(*, session: Session, principal: Principal | None) -> list[ClassInfo]:
    """The classes this principal may read: all for an admin, their own for a teacher."""
    p = current_principal(session=session, principal=principal)
    if p.role == "student":
        return []
    stmt = select(SchoolClass).order_by(SchoolClass.name, SchoolClass.id)
    if not p.is_admin:
        stmt = stmt.where(SchoolClass.teacher_id == p.id)
    classes = session.scalars(stmt).all()
    counts = dict(session.execute(
        select(Student.class_id, func.count(Student.id))
        .where(Student.class_id.in_([c.id for c in classes])).group_by(Student.class_id)).all())
    return [ClassInfo(id=c.id, name=c.name, teacher_id=c.teacher_id, students=counts.get(c.id, 0))
            for c in classes]


def class_students(*, session: Session, principal: Principal | None,
                   class_id: int) -> list[Student]:
    require_class_access(session=session, principal=principal, class_id=class_id)
    return list(session.scalars(select(Student).where(Student.class_id == class_id)
                                .order_by(Student.display_name, Student.id)))


def student_sessions(*, session: Session, principal: Principal | None,
                     student_id: int) -> list[SessionInfo]:
    """A student's sessions, newest first."""
    require_student_access(session=session, principal=principal, student_id=student_id)
    n_turns = (select(Turn.session_id, func.count(Turn.id).label("n"))
               .group_by(Turn.session_id).subquery())
    rows = session.execute(
        select(TutorSession, func.coalesce(n_turns.c.n, 0))
        .outerjoin(n_turns, n_turns.c.session_id == TutorSession.id)
        .where(TutorSession.student_id == student_id)
        .order_by(TutorSession.started_at.desc(), TutorSession.id.desc())).all()
    return [SessionInfo(id=ts.id, student_id=student_id, lesson=ts.lesson,
                        policy_mode=ts.policy_mode, started_at=utc(ts.started_at),
                        ended_at=utc(ts.ended_at), turns=n) for ts, n in rows]


# ---------------------------------------------------------------- the judgement
def _n(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 turn", "2 turns"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def _turn_words(t: TurnSignal) -> str:
    parts = [t.state] if t.state in HARD_STATES else []
    if t.label in NEGATIVE_EMOTIONS:
        parts.append(f"read {t.label}")
    return f"turn {t.index}: " + ", ".join(parts)


def judge(turns: list[TurnSignal], minutes: list[MinuteSignal], *,
          now: datetime | None = None) -> Judgement:
    """Struggling in the period, and needing help now, from per-turn states and readings and
    per-minute camera summaries (in time order). See the module docstring for the rule."""
    now = utc(now) if now is not None else datetime.now(timezone.utc)
    hard = [t for t in turns if t.hard]
    hard_min = [m for m in minutes if m.hard]
    why = []
    if len(hard) >= MIN_HARD_TURNS or (len(hard) >= 2 and len(hard) >= HARD_SHARE * len(turns)):
        why.append(f"{len(hard)} of {_n(len(turns), 'turn')} frustrated, anxious, confused or "
                   f"negative (latest {_turn_words(hard[-1])})")
    if turns and turns[-1].state in STRUGGLING_STATES:
        why.append(f"the tutor judged them {turns[-1].state} on their last turn")
    if why and len(hard_min) >= MIN_HARD_MINUTES and len(hard_min) * 2 > len(minutes):
        why.append(f"camera: {len(hard_min)} of {_n(len(minutes), 'minute')} mostly "
                   "anger, disgust, fear or sadness")

    since = now - NOW_WINDOW
    recent = [t for t in turns if t.at >= since][-RECENT_TURNS:]
    recent_hard = [t for t in recent if t.hard]
    recent_min = [m for m in minutes if m.start >= since - timedelta(minutes=1)][-2:]
    now_why = []
    if len(recent_hard) >= 2:
        now_why.append(f"{len(recent_hard)} of the last {_n(len(recent), 'turn')} hard "
                       f"({'; '.join(_turn_words(t) for t in recent_hard[-3:])})")
    elif recent and recent[-1].state in STRUGGLING_STATES:
        now_why.append(f"{recent[-1].state} on their last turn ({recent[-1].index})")
    if now_why and len(recent_min) == 2 and all(m.hard for m in recent_min):
        now_why.append(f"the camera has read mostly {recent_min[-1].label} for two minutes")
    return Judgement(struggling=bool(why), why="; ".join(why),
                     needs_help_now=bool(now_why), now_why="; ".join(now_why))


def _minutes(frames: list[tuple[datetime, str]]) -> list[MinuteSignal]:
    """Camera frames (time, fused label), in time order, summarised per clock minute."""
    by: dict[datetime, list[str]] = defaultdict(list)
    for at, label in frames:
        by[at.replace(second=0, microsecond=0)].append(label)
    out = []
    for start, labels in sorted(by.items()):
        top = max(set(labels), key=labels.count)
        out.append(MinuteSignal(start=start, frames=len(labels), label=top,
                                negative=sum(x in NEGATIVE_EMOTIONS for x in labels)))
    return out


def _turn_label(label: str, modality_probs: dict) -> str:
    words = (modality_probs or {}).get("text")
    return max(words, key=words.get) if words else label


# ---------------------------------------------------------------- class overview
def class_overview(*, session: Session, principal: Principal | None, class_id: int,
                   since: datetime | None = None, until: datetime | None = None,
                   now: datetime | None = None) -> list[StudentStatus]:
    """Per student of the class: activity in [since, until), whether they are struggling in
    it and whether they need help now (`judge`).

    Ordered: needing help now first, then struggling, then by share of hard turns, then name.
    """
    since, until = _check_period(since, until)
    students = class_students(session=session, principal=principal, class_id=class_id)
    ids = [s.id for s in students]
    if not ids:
        return []
    owner = dict(session.execute(select(TutorSession.id, TutorSession.student_id)
                                 .where(TutorSession.student_id.in_(ids))).all())
    sessions: dict[int, set[int]] = defaultdict(set)
    last_active: dict[int, datetime] = {}

    def active(student_id: int, session_id: int, at: datetime) -> None:
        sessions[student_id].add(session_id)
        if student_id not in last_active or at > last_active[student_id]:
            last_active[student_id] = at

    started = _within(select(TutorSession.id, TutorSession.student_id, TutorSession.started_at)
                      .where(TutorSession.student_id.in_(ids)),
                      TutorSession.started_at, since, until)
    for sid, stid, at in session.execute(started):
        active(stid, sid, utc(at))

    # the policy's state per turn (the last adaptation stored with it)
    state_of: dict[int, str] = {}
    adapt_q = _within(select(Adaptation.turn_id, Adaptation.state).join(TutorSession)
                      .where(TutorSession.student_id.in_(ids), Adaptation.turn_id.is_not(None))
                      .order_by(Adaptation.created_at, Adaptation.id),
                      Adaptation.created_at, since, until)
    for turn_id, state in session.execute(adapt_q):
        state_of[turn_id] = state

    readings: dict[int, int] = defaultdict(int)
    label_of: dict[int, str] = {}
    frames: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    reading_q = _within(select(EmotionReading.session_id, EmotionReading.turn_id,
                               EmotionReading.label, EmotionReading.modality_probs,
                               EmotionReading.created_at).join(TutorSession)
                        .where(TutorSession.student_id.in_(ids))
                        .order_by(EmotionReading.created_at, EmotionReading.id),
                        EmotionReading.created_at, since, until)
    for sid, turn_id, label, mprobs, at in session.execute(reading_q):
        at = utc(at)
        readings[owner[sid]] += 1
        active(owner[sid], sid, at)
        if turn_id is None:
            frames[owner[sid]].append((at, label))
        else:
            label_of[turn_id] = _turn_label(label, mprobs)

    turns: dict[int, list[TurnSignal]] = defaultdict(list)
    turn_q = _within(select(Turn.id, Turn.session_id, Turn.index, Turn.created_at)
                     .join(TutorSession).where(TutorSession.student_id.in_(ids))
                     .order_by(Turn.created_at, Turn.id), Turn.created_at, since, until)
    for tid, sid, index, at in session.execute(turn_q):
        at = utc(at)
        turns[owner[sid]].append(TurnSignal(index=index, at=at, state=state_of.get(tid),
                                            label=label_of.get(tid)))
        active(owner[sid], sid, at)

    out = []
    for s in students:
        ts, mins = turns[s.id], _minutes(frames[s.id])
        j = judge(ts, mins, now=now)
        n_hard = sum(t.hard for t in ts)
        out.append(StudentStatus(
            student_id=s.id, handle=s.handle, display_name=s.display_name,
            sessions=len(sessions[s.id]), turns=len(ts), readings=readings[s.id],
            negative_share=n_hard / len(ts) if ts else 0.0,
            last_state=next((t.state for t in reversed(ts) if t.state), None),
            last_active=last_active.get(s.id), struggling=j.struggling, why=j.why,
            hard_turns=n_hard, camera_minutes=len(mins), hard_minutes=sum(m.hard for m in mins),
            needs_help_now=j.needs_help_now, now_why=j.now_why))
    out.sort(key=lambda r: (not r.needs_help_now, not r.struggling, -r.negative_share,
                            r.display_name.lower()))
    return out


def unassigned_students(*, session: Session, principal: Principal | None) -> list[Student]:
    """Students in no class (those who chatted through open sign-in): for a teacher to add."""
    p = current_principal(session=session, principal=principal)
    if p.role == "student":
        return []
    return list(session.scalars(select(Student).where(Student.class_id.is_(None))
                                .order_by(Student.display_name, Student.id)))


def add_to_class(*, session: Session, principal: Principal | None, class_id: int,
                 handle: str) -> str:
    """Put the student with this handle into one of the principal's classes; says what it did.

    A student in no class (open sign-in) joins; one already in another class moves only when
    an administrator asks (a teacher cannot take another teacher's student).
    """
    require_class_access(session=session, principal=principal, class_id=class_id)
    p = current_principal(session=session, principal=principal)
    key = (handle or "").strip().lower()
    if not key:
        raise ValueError("Please give the student's handle (the name they signed in with).")
    student = session.scalar(select(Student).where(Student.handle == key))
    if student is None:
        raise KeyError(f"no student {key!r}: they appear once they have chatted, or an "
                       "administrator adds them with `attune admin add-student`")
    klass = session.get(SchoolClass, class_id)
    if student.class_id == class_id:
        return f"{student.display_name} ({key}) is already in {klass.name}."
    before = student.school_class
    if before is not None and not p.is_admin:
        raise AccessDenied(f"{key} is in another class; an administrator can move them")
    student.class_id = class_id
    session.flush()
    moved = f" (moved from {before.name})" if before is not None else ""
    return f"Added {student.display_name} ({key}) to {klass.name}{moved}."


# ---------------------------------------------------------------- one session
def session_timeline(*, session: Session, principal: Principal | None,
                     session_id: int) -> Timeline:
    """The session's readings, adaptations and turns, in time order."""
    ts = require_session_access(session=session, principal=principal, session_id=session_id)
    return _timeline(session, ts)


def _timeline(session: Session, ts: TutorSession, since: datetime | None = None,
              until: datetime | None = None) -> Timeline:
    turns = session.scalars(select(Turn).where(Turn.session_id == ts.id).order_by(Turn.index))
    readings = session.scalars(select(EmotionReading).where(EmotionReading.session_id == ts.id)
                               .order_by(EmotionReading.created_at, EmotionReading.id))
    adaptations = session.scalars(select(Adaptation).where(Adaptation.session_id == ts.id)
                                  .order_by(Adaptation.created_at, Adaptation.id))
    return Timeline(
        session_id=ts.id, student_handle=ts.student.handle, student_name=ts.student.display_name,
        lesson=ts.lesson, policy_mode=ts.policy_mode, started_at=utc(ts.started_at),
        ended_at=utc(ts.ended_at),
        turns=[TurnRow(id=t.id, index=t.index, at=utc(t.created_at), student_text=t.student_text,
                       tutor_text=t.tutor_text, input_source=t.input_source)
               for t in turns if _in_period(utc(t.created_at), since, until)],
        readings=[ReadingPoint(id=r.id, at=utc(r.created_at), turn_id=r.turn_id, label=r.label,
                               confidence=r.confidence, probs=dict(r.probs),
                               modality_probs={m: dict(p) for m, p in r.modality_probs.items()},
                               model_version=r.model_version, degraded=r.degraded,
                               transcript=r.transcript)
                  for r in readings if _in_period(utc(r.created_at), since, until)],
        adaptations=[AdaptationMark(id=a.id, at=utc(a.created_at), turn_id=a.turn_id,
                                    state=a.state, tone=a.tone, pacing=a.pacing,
                                    hint_level=a.hint_level, changes=dict(a.changes),
                                    reason=a.reason)
                     for a in adaptations if _in_period(utc(a.created_at), since, until)],
    )


# ---------------------------------------------------------------- CSV
_READING_COLUMNS: tuple[str, ...] = (
    "label", "confidence", *(f"p_{e}" for e in EMOTIONS),
    *(f"{m}_label" for m in MODALITIES), *(f"{m}_confidence" for m in MODALITIES),
    "model_version", "degraded")
CSV_COLUMNS: tuple[str, ...] = (  # one row per turn
    "class_id", "student_handle", "student_name", "session_id", "lesson", "policy_mode",
    "turn_index", "turn_at", "input_source", "student_text", "tutor_text",
    "reading_at", *_READING_COLUMNS,
    "camera_frames", "camera_label", "camera_negative_share",  # frames since the last turn
    "adaptation_at", "state", "tone", "pacing", "hint_level", "changes", "reason",
)
READINGS_CSV_COLUMNS: tuple[str, ...] = (  # one row per reading, camera frames included
    "class_id", "student_handle", "session_id", "reading_at", "kind", "turn_index",
    *_READING_COLUMNS, "transcript",
)


def _reading_cols(r: ReadingPoint) -> dict[str, Any]:
    cols = {"reading_at": iso(r.at), "label": r.label, "confidence": f"{r.confidence:.4f}",
            "model_version": r.model_version, "degraded": str(r.degraded).lower()}
    cols.update({f"p_{e}": f"{r.probs.get(e, 0.0):.4f}" for e in EMOTIONS})
    for m, probs in r.modality_probs.items():
        if m in MODALITIES and probs:
            top = max(probs, key=probs.get)
            cols[f"{m}_label"], cols[f"{m}_confidence"] = top, f"{probs[top]:.4f}"
    return cols


def camera_between_turns(timeline: Timeline) -> dict[int | None, list[ReadingPoint]]:
    """Camera frames (readings with no turn) by the turn that followed them (None: after the
    last turn)."""
    out: dict[int | None, list[ReadingPoint]] = defaultdict(list)
    turns = sorted(timeline.turns, key=lambda t: t.at)
    for r in timeline.readings:
        if r.turn_id is None:
            nxt = next((t.id for t in turns if t.at >= r.at), None)
            out[nxt].append(r)
    return out


def _rows(timeline: Timeline, class_id: int | None) -> list[dict[str, Any]]:
    """One row per turn: its reading, the camera frames since the turn before (summarised)
    and the tutor's adaptation on it."""
    base = {"class_id": "" if class_id is None else class_id,
            "student_handle": timeline.student_handle, "student_name": timeline.student_name,
            "session_id": timeline.session_id, "lesson": timeline.lesson or "",
            "policy_mode": timeline.policy_mode}

    def adaptation_cols(a: AdaptationMark) -> dict:
        return {"adaptation_at": iso(a.at), "state": a.state, "tone": a.tone,
                "pacing": a.pacing, "hint_level": a.hint_level,
                "changes": "; ".join(f"{k}: {v[0]} -> {v[1]}" if isinstance(v, list) and len(v) == 2
                                     else f"{k}: {v}" for k, v in a.changes.items()),
                "reason": a.reason}

    read = {r.turn_id: r for r in timeline.readings if r.turn_id is not None}
    adapted = {a.turn_id: a for a in timeline.adaptations if a.turn_id is not None}
    frames = camera_between_turns(timeline)
    rows = []
    for t in timeline.turns:
        row = {**base, "turn_index": t.index, "turn_at": iso(t.at),
               "input_source": t.input_source, "student_text": t.student_text,
               "tutor_text": t.tutor_text}
        if t.id in read:
            row.update(_reading_cols(read[t.id]))
        seen = frames.get(t.id, [])
        if seen:
            labels = [r.label for r in seen]
            row.update(camera_frames=len(seen), camera_label=max(set(labels), key=labels.count),
                       camera_negative_share=f"{sum(x in NEGATIVE_EMOTIONS for x in labels) / len(labels):.2f}")
        else:
            row["camera_frames"] = 0
        if t.id in adapted:
            row.update(adaptation_cols(adapted[t.id]))
        rows.append(row)
    return rows


def _reading_rows(timeline: Timeline, class_id: int | None) -> list[dict[str, Any]]:
    index = {t.id: t.index for t in timeline.turns}
    return [{"class_id": "" if class_id is None else class_id,
             "student_handle": timeline.student_handle, "session_id": timeline.session_id,
             "kind": "turn" if r.turn_id is not None else "camera frame",
             "turn_index": index.get(r.turn_id, ""), **_reading_cols(r),
             "transcript": r.transcript or ""} for r in timeline.readings]


FREE_TEXT_COLUMNS = frozenset({"student_handle", "student_name", "lesson", "student_text",
                               "tutor_text", "reason", "transcript"})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defuse(value: Any) -> Any:
    """Text a student typed must not run as a spreadsheet formula when the CSV is opened
    (OWASP "CSV injection"): such cells get a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (_defuse(v) if k in FREE_TEXT_COLUMNS else v) for k, v in row.items()}
                     for row in rows)
    return buf.getvalue()


def export_session_csv(*, session: Session, principal: Principal | None, session_id: int,
                       readings: bool = False) -> str:
    """The session as CSV, one row per turn (CSV_COLUMNS), or with `readings` one row per
    reading, camera frames included (READINGS_CSV_COLUMNS, for researchers). ISO-8601 UTC
    timestamps and each reading's model_version."""
    ts = require_session_access(session=session, principal=principal, session_id=session_id)
    tl = _timeline(session, ts)
    if readings:
        return _write_csv(_reading_rows(tl, ts.student.class_id), READINGS_CSV_COLUMNS)
    return _write_csv(_rows(tl, ts.student.class_id))


def export_class_csv(*, session: Session, principal: Principal | None, class_id: int,
                     since: datetime | None = None, until: datetime | None = None,
                     readings: bool = False) -> str:
    """Every session of the class's students with activity in [since, until), only that
    activity: one row per turn, or with `readings` one row per reading."""
    since, until = _check_period(since, until)
    students = class_students(session=session, principal=principal, class_id=class_id)
    rows = []
    for s in students:
        for ts in session.scalars(select(TutorSession).where(TutorSession.student_id == s.id)
                                  .order_by(TutorSession.started_at, TutorSession.id)):
            tl = _timeline(session, ts, since, until)
            rows += _reading_rows(tl, class_id) if readings else _rows(tl, class_id)
    return _write_csv(rows, READINGS_CSV_COLUMNS if readings else CSV_COLUMNS)


# ---------------------------------------------------------------- the picture
STATE_ORDER = ("delighted", "engaged", "bored", "confused", "anxious", "frustrated")
CAMERA_BIN_S = 10  # camera frames are drawn as one mark per this many seconds


def _camera_bins(timeline: Timeline) -> list[tuple[datetime, str, float, int]]:
    """Camera frames (readings with no turn) per CAMERA_BIN_S: (bin start, the face's most
    frequent label, its mean confidence, frames)."""
    bins: dict[datetime, list[tuple[str, float]]] = defaultdict(list)
    for r in timeline.readings:
        face = (r.modality_probs.get("face") or r.probs) if r.turn_id is None else None
        if face:
            label = max(face, key=face.get)
            start = r.at - timedelta(seconds=r.at.second % CAMERA_BIN_S,
                                     microseconds=r.at.microsecond)
            bins[start].append((label, face[label]))
    out = []
    for start, seen in sorted(bins.items()):
        labels = [x for x, _ in seen]
        top = max(set(labels), key=labels.count)
        out.append((start, top, sum(c for x, c in seen if x == top) / labels.count(top), len(seen)))
    return out


TIMELINE_SIZE_IN = (8.6, 7.0)  # inches: about 700 px wide on screen, the legend beside
LEGEND_CHARS = 40  # characters per line of the changes told beside the plot
LEGEND_LINES = 34  # lines of them that fit below the colours


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, subsequent_indent="    "))


def timeline_figure(timeline: Timeline):
    """A matplotlib Figure a teacher reads in seconds, time running left to right:

    - top: each turn's fused reading as a stacked bar of its emotions;
    - middle: one track per modality (the words and voice per turn, the camera summarised per
      CAMERA_BIN_S seconds), colour = that modality's label, opacity = its confidence;
    - bottom: the tutor's judgement of the learner on each turn;
    - the adaptations that changed something as numbered markers on every panel, told in full
      words in a legend beside the plot.

    Uses matplotlib's object API (no pyplot), so it is safe in a threaded web server.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    # sized to be read at about 700 px wide: beside the transcript in the teacher view
    fig = Figure(figsize=TIMELINE_SIZE_IN, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[1.75, 1], height_ratios=[2.2, 1.3, 1.1])
    top = fig.add_subplot(grid[0, 0])
    mid = fig.add_subplot(grid[1, 0], sharex=top)
    low = fig.add_subplot(grid[2, 0], sharex=top)
    side = fig.add_subplot(grid[:, 1])
    side.axis("off")
    who = timeline.student_name or timeline.student_handle
    lesson = f" · {timeline.lesson.replace('_', ' ')}" if timeline.lesson else ""
    fig.suptitle(f"Session {timeline.session_id} · {who}{lesson} · {timeline.policy_mode} · "
                 f"{len(timeline.turns)} turn{'' if len(timeline.turns) == 1 else 's'}",
                 x=0.01, ha="left", fontsize=12)

    turns = sorted(timeline.turns, key=lambda t: t.at)
    read = {r.turn_id: r for r in timeline.readings if r.turn_id is not None}
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(turns, turns[1:]) if b.at > a.at]
    width_s = max(2.0, min([20.0, *gaps]) * 0.7)
    width = width_s / 86400  # in days, matplotlib's date unit

    # top: each turn's fused reading
    top.set_title("What each turn read (fused emotion)", loc="left", fontsize=10,
                  pad=16)  # above the numbered markers
    top.set_ylabel("share")
    top.set_ylim(0, 1.0)
    top.grid(axis="y", alpha=0.3)
    xs = [date2num(t.at) for t in turns if t.id in read]
    if not xs:
        top.text(0.5, 0.5, "no turns with an emotion reading", transform=top.transAxes,
                 ha="center", va="center", color="0.4")
    bottom = [0.0] * len(xs)
    for e in EMOTIONS:
        heights = [read[t.id].probs.get(e, 0.0) for t in turns if t.id in read]
        if xs:
            top.bar(xs, heights, width=width, bottom=bottom, color=EMOTION_COLORS[e], label=e,
                    align="center", edgecolor="white", linewidth=0.3)
        bottom = [b + h for b, h in zip(bottom, heights)]

    # middle: per-modality tracks
    mid.set_title("Per modality (camera: one mark per 10 s of frames)", loc="left", fontsize=10)
    tracks = []
    for m in ("text", "speech"):
        pts = [(t.at, read[t.id].modality_probs[m]) for t in turns
               if t.id in read and read[t.id].modality_probs.get(m)]
        if pts:
            tracks.append((m, [(at, max(p, key=p.get), max(p.values()), width) for at, p in pts]))
    camera = [(at, label, conf, CAMERA_BIN_S / 86400) for at, label, conf, _ in _camera_bins(timeline)]
    camera += [(t.at, max(p, key=p.get), max(p.values()), width) for t in turns
               if t.id in read and (p := read[t.id].modality_probs.get("face"))]
    if camera:
        tracks.insert(1 if tracks else 0, ("face", camera))
    names = {"text": "words", "face": "camera", "speech": "voice"}
    for row, (m, marks) in enumerate(tracks):
        for at, label, conf, w in marks:
            x = date2num(at) + (w / 2 if m == "face" and w == CAMERA_BIN_S / 86400 else 0)
            mid.barh(row, w, left=x - w / 2, height=0.7, color=EMOTION_COLORS.get(label, "k"),
                     alpha=max(0.3, min(1.0, conf)), edgecolor="none")
    mid.set_yticks(range(len(tracks)), [names.get(m, m) for m, _ in tracks])
    mid.set_ylim(-0.6, max(len(tracks), 1) - 0.4)
    mid.grid(axis="x", alpha=0.3)
    if not tracks:
        mid.text(0.5, 0.5, "no per-modality readings", transform=mid.transAxes, ha="center",
                 va="center", color="0.4")

    # bottom: the tutor's judgement per turn
    low.set_title("The tutor's judgement of the learner, per turn", loc="left", fontsize=10)
    state_of = {a.turn_id: a.state for a in timeline.adaptations if a.turn_id is not None}
    judged = [(t.at, state_of[t.id]) for t in turns if t.id in state_of]
    order = [st for st in STATE_ORDER if st in {x for _, x in judged}] or ["engaged"]
    order += sorted({x for _, x in judged} - set(order))
    if judged:
        ys = [order.index(x) for _, x in judged]
        low.step([date2num(at) for at, _ in judged], ys, where="mid", color="0.35", linewidth=1.2)
        low.scatter([date2num(at) for at, _ in judged], ys, s=36, zorder=3,
                    color=["#e73f74" if x in STRUGGLING_STATES else "#f97b72" if x in HARD_STATES
                           else "#11a579" for _, x in judged])
    low.set_yticks(range(len(order)), order)
    low.set_ylim(-0.6, len(order) - 0.4)
    low.grid(axis="x", alpha=0.3)

    # adaptations: numbered markers, told in full beside the plot
    lines, used = [], 0
    for k, a in enumerate(timeline.changes, start=1):
        x = date2num(a.at)
        for ax in (top, mid, low):
            ax.axvline(x, color="0.2", linewidth=0.9, alpha=0.7, zorder=0)
        top.annotate(str(k), xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                     textcoords="offset points", ha="center", va="bottom", fontsize=9,
                     fontweight="bold", color="white",
                     bbox=dict(boxstyle="circle,pad=0.25", facecolor="0.15", edgecolor="none"))
        told = _wrap(f"{k}  {a.at:%H:%M:%S} · {a.state}: {a.reason}", LEGEND_CHARS)
        if used + told.count("\n") + 2 > LEGEND_LINES:  # the rest would run off the picture
            more = len(timeline.changes) - k + 1
            lines.append(_wrap(f"… and {more} more change{'s' * (more > 1)}: the transcript "
                               "marks each turn where one was made", LEGEND_CHARS))
            break
        lines.append(told)
        used += told.count("\n") + 2

    legend = [Patch(color=EMOTION_COLORS[e], label=e) for e in EMOTIONS]
    side.legend(handles=legend, loc="upper left", ncol=2, fontsize=9, frameon=False,
                title="Colours (opacity = confidence)", title_fontsize=9, alignment="left")
    text = ("What the tutor changed, and why\n\n" + "\n\n".join(lines)) if lines else \
        "The tutor did not change its approach in this session."
    side.text(0.0, 0.76, text, transform=side.transAxes, va="top", ha="left", fontsize=8.5,
              linespacing=1.3)

    every = [t.at for t in turns] + [a.at for a in timeline.changes] + \
        [r.at for r in timeline.readings]
    if every:
        lo, hi = min(every), max(every)
        pad = max((hi - lo) * 0.03, timedelta(seconds=CAMERA_BIN_S))
        low.set_xlim(lo - pad, hi + pad)
    locator = AutoDateLocator()
    low.xaxis.set_major_locator(locator)
    low.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    low.set_xlabel("time (UTC)")
    for ax in (top, mid):
        ax.tick_params(labelbottom=False)
    return fig


def timeline_png(timeline: Timeline, *, dpi: int = 110) -> bytes:
    fig = timeline_figure(timeline)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
