"""What a teacher reads: class overviews, session timelines, CSV exports and timeline images.

Every query takes a Principal and checks it first (tutor.auth.require_*): a teacher reads only
their own classes, an admin every class. Periods are half-open, [since, until), in UTC; a
naive datetime is taken to be UTC; None leaves that end open.

The struggling rule (class_overview): a student is flagged when, in the period,
- at least MIN_READINGS emotion readings exist and at least STRUGGLING_SHARE of them have a
  fused label in NEGATIVE_EMOTIONS (anger, disgust, fear, sadness: the frustrated/anxious
  family), or
- the tutor's last adaptation in the period put them in a STRUGGLING_STATES state
  (frustrated or anxious): the policy's smoothed view of "now".
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
from tutor.auth import (Principal, current_principal, require_class_access,
                        require_session_access, require_student_access)
from tutor.db.models import Adaptation, EmotionReading, SchoolClass, Student, Turn, TutorSession

NEGATIVE_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "sadness")
STRUGGLING_SHARE = 0.5  # share of readings with a negative fused label
MIN_READINGS = 3  # fewer readings than this are too few to call a share
STRUGGLING_STATES: tuple[str, ...] = ("frustrated", "anxious")

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
    readings: int
    negative_share: float  # share of readings whose fused label is in NEGATIVE_EMOTIONS
    last_state: str | None  # the last adaptation's learning state in the period
    last_active: datetime | None
    struggling: bool
    why: str  # the rule that fired, in words; "" when not struggling


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


# ---------------------------------------------------------------- class overview
def class_overview(*, session: Session, principal: Principal | None, class_id: int,
                   since: datetime | None = None,
                   until: datetime | None = None) -> list[StudentStatus]:
    """Per student of the class: activity in [since, until) and whether they are struggling.

    Ordered struggling first, then by negative share (highest first), then by name.
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
        at = utc(at)
        if student_id not in last_active or at > last_active[student_id]:
            last_active[student_id] = at

    started = _within(select(TutorSession.id, TutorSession.student_id, TutorSession.started_at)
                      .where(TutorSession.student_id.in_(ids)),
                      TutorSession.started_at, since, until)
    for sid, stid, at in session.execute(started):
        active(stid, sid, at)

    turns: dict[int, int] = defaultdict(int)
    turn_q = _within(select(Turn.session_id, Turn.created_at).join(TutorSession)
                     .where(TutorSession.student_id.in_(ids)), Turn.created_at, since, until)
    for sid, at in session.execute(turn_q):
        turns[owner[sid]] += 1
        active(owner[sid], sid, at)

    readings: dict[int, int] = defaultdict(int)
    negative: dict[int, int] = defaultdict(int)
    reading_q = _within(select(EmotionReading.session_id, EmotionReading.label,
                               EmotionReading.created_at).join(TutorSession)
                        .where(TutorSession.student_id.in_(ids)),
                        EmotionReading.created_at, since, until)
    for sid, label, at in session.execute(reading_q):
        readings[owner[sid]] += 1
        negative[owner[sid]] += label in NEGATIVE_EMOTIONS
        active(owner[sid], sid, at)

    last_state: dict[int, str] = {}
    adapt_q = _within(select(Adaptation.session_id, Adaptation.state).join(TutorSession)
                      .where(TutorSession.student_id.in_(ids))
                      .order_by(Adaptation.created_at, Adaptation.id),
                      Adaptation.created_at, since, until)
    for sid, state in session.execute(adapt_q):
        last_state[owner[sid]] = state  # ordered by time: the last one wins

    out = []
    for s in students:
        n, neg = readings[s.id], negative[s.id]
        share = neg / n if n else 0.0
        state = last_state.get(s.id)
        why = []
        if n >= MIN_READINGS and share >= STRUGGLING_SHARE:
            why.append(f"{neg} of {n} readings anger/disgust/fear/sadness")
        if state in STRUGGLING_STATES:
            why.append(f"tutor last judged them {state}")
        out.append(StudentStatus(student_id=s.id, handle=s.handle, display_name=s.display_name,
                                 sessions=len(sessions[s.id]), turns=turns[s.id], readings=n,
                                 negative_share=share, last_state=state,
                                 last_active=last_active.get(s.id), struggling=bool(why),
                                 why="; ".join(why)))
    out.sort(key=lambda r: (not r.struggling, -r.negative_share, r.display_name.lower()))
    return out


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
CSV_COLUMNS: tuple[str, ...] = (
    "class_id", "student_handle", "student_name", "session_id", "lesson", "policy_mode",
    "turn_index", "turn_at", "input_source", "student_text", "tutor_text",
    "reading_at", "label", "confidence", *(f"p_{e}" for e in EMOTIONS),
    *(f"{m}_{k}" for m in MODALITIES for k in ("label", "confidence")),
    "model_version", "degraded",
    "adaptation_at", "state", "tone", "pacing", "hint_level", "changes", "reason",
)


def _rows(timeline: Timeline, class_id: int | None) -> list[dict[str, Any]]:
    """One row per reading (with its turn and the turn's last adaptation); a turn without a
    reading still gets a row, and so do readings and adaptations without a turn."""
    base = {"class_id": "" if class_id is None else class_id,
            "student_handle": timeline.student_handle, "student_name": timeline.student_name,
            "session_id": timeline.session_id, "lesson": timeline.lesson or "",
            "policy_mode": timeline.policy_mode}

    def turn_cols(t: TurnRow) -> dict:
        return {"turn_index": t.index, "turn_at": iso(t.at), "input_source": t.input_source,
                "student_text": t.student_text, "tutor_text": t.tutor_text}

    def reading_cols(r: ReadingPoint) -> dict:
        cols = {"reading_at": iso(r.at), "label": r.label, "confidence": f"{r.confidence:.4f}",
                "model_version": r.model_version, "degraded": str(r.degraded).lower()}
        cols.update({f"p_{e}": f"{r.probs.get(e, 0.0):.4f}" for e in EMOTIONS})
        for m, probs in r.modality_probs.items():
            if m in MODALITIES and probs:
                top = max(probs, key=probs.get)
                cols[f"{m}_label"], cols[f"{m}_confidence"] = top, f"{probs[top]:.4f}"
        return cols

    def adaptation_cols(a: AdaptationMark) -> dict:
        return {"adaptation_at": iso(a.at), "state": a.state, "tone": a.tone,
                "pacing": a.pacing, "hint_level": a.hint_level,
                "changes": "; ".join(f"{k}: {v[0]} -> {v[1]}" if isinstance(v, list) and len(v) == 2
                                     else f"{k}: {v}" for k, v in a.changes.items()),
                "reason": a.reason}

    by_turn_r, by_turn_a = defaultdict(list), defaultdict(list)
    for r in timeline.readings:
        by_turn_r[r.turn_id].append(r)
    for a in timeline.adaptations:
        by_turn_a[a.turn_id].append(a)
    rows: list[tuple[datetime, dict]] = []
    for t in timeline.turns:
        a = by_turn_a[t.id][-1:]
        for r in by_turn_r[t.id] or [None]:
            row = {**base, **turn_cols(t)}
            if r is not None:
                row.update(reading_cols(r))
            if a:
                row.update(adaptation_cols(a[0]))
            rows.append((t.at, row))
    for r in by_turn_r[None]:
        rows.append((r.at, {**base, **reading_cols(r)}))
    for a in by_turn_a[None]:
        rows.append((a.at, {**base, **adaptation_cols(a)}))
    rows.sort(key=lambda x: x[0])
    return [row for _, row in rows]


FREE_TEXT_COLUMNS = frozenset({"student_handle", "student_name", "lesson", "student_text",
                               "tutor_text", "reason"})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _defuse(value: Any) -> Any:
    """Text a student typed must not run as a spreadsheet formula when the CSV is opened
    (OWASP "CSV injection"): such cells get a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _write_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (_defuse(v) if k in FREE_TEXT_COLUMNS else v) for k, v in row.items()}
                     for row in rows)
    return buf.getvalue()


def export_session_csv(*, session: Session, principal: Principal | None, session_id: int) -> str:
    """The session as CSV (CSV_COLUMNS): ISO-8601 UTC timestamps and each reading's model_version."""
    ts = require_session_access(session=session, principal=principal, session_id=session_id)
    return _write_csv(_rows(_timeline(session, ts), ts.student.class_id))


def export_class_csv(*, session: Session, principal: Principal | None, class_id: int,
                     since: datetime | None = None, until: datetime | None = None) -> str:
    """Every session of the class's students with activity in [since, until), only that activity."""
    since, until = _check_period(since, until)
    students = class_students(session=session, principal=principal, class_id=class_id)
    rows = []
    for s in students:
        for ts in session.scalars(select(TutorSession).where(TutorSession.student_id == s.id)
                                  .order_by(TutorSession.started_at, TutorSession.id)):
            tl = _timeline(session, ts, since, until)
            rows += _rows(tl, class_id)
    return _write_csv(rows)


# ---------------------------------------------------------------- the picture
def timeline_figure(timeline: Timeline):
    """A matplotlib Figure: fused probabilities per emotion over time (top), each modality's
    own label as a track with its confidence as opacity (bottom), and a dashed line at each
    adaptation that changed something, labelled with its reason.

    Uses matplotlib's object API (no pyplot), so it is safe in a threaded web server.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(11, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    who = timeline.student_name or timeline.student_handle
    lesson = f" · {timeline.lesson}" if timeline.lesson else ""
    top.set_title(f"Session {timeline.session_id} · {who}{lesson} · {timeline.policy_mode}",
                  loc="left", fontsize=11)
    top.set_ylabel("fused probability")
    top.set_ylim(0, 1.02)
    top.grid(alpha=0.3)

    times = [r.at for r in timeline.readings]
    if not times:
        top.text(0.5, 0.5, "no emotion readings in this session", transform=top.transAxes,
                 ha="center", va="center", color="0.4")
    for e in EMOTIONS:
        if times:
            top.plot(times, [r.probs.get(e, 0.0) for r in timeline.readings], marker="o",
                     markersize=3, linewidth=1.6, color=EMOTION_COLORS[e], label=e)
    if times:
        top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)

    # per-modality tracks: one row per modality; colour = that modality's label
    mods = [m for m in MODALITIES if any(m in r.modality_probs for r in timeline.readings)]
    for row, m in enumerate(mods):
        for r in timeline.readings:
            probs = r.modality_probs.get(m)
            if not probs:
                continue
            label = max(probs, key=probs.get)
            bottom.scatter([r.at], [row], s=90, marker="s", color=EMOTION_COLORS.get(label, "k"),
                           alpha=max(0.25, min(1.0, probs[label])), edgecolors="none")
    bottom.set_yticks(range(len(mods)), mods)
    bottom.set_ylim(-0.6, max(len(mods), 1) - 0.4)
    bottom.set_ylabel("modality")
    bottom.grid(axis="x", alpha=0.3)
    if mods:
        handles = [Line2D([], [], marker="s", linestyle="", color=EMOTION_COLORS[e], label=e)
                   for e in EMOTIONS]
        bottom.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                      frameon=False, title="label (opacity = confidence)", title_fontsize=7)

    for a in timeline.changes:
        for ax in (top, bottom):
            ax.axvline(a.at, color="0.25", linestyle="--", linewidth=0.9, alpha=0.8)
        text = a.reason if len(a.reason) <= 70 else a.reason[:67] + "..."
        top.annotate(f"{a.state}: {text}", xy=(a.at, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(3, -4), textcoords="offset points", rotation=90, va="top",
                     ha="left", fontsize=7, color="0.2",
                     bbox=dict(facecolor="white", alpha=0.75, edgecolor="none", pad=1))

    every = times + [a.at for a in timeline.changes] + [t.at for t in timeline.turns]
    if every:
        lo, hi = min(every), max(every)
        pad = max((hi - lo) * 0.03, timedelta(seconds=5))
        bottom.set_xlim(lo - pad, hi + pad)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    bottom.set_xlabel("time (UTC)")
    return fig


def timeline_png(timeline: Timeline, *, dpi: int = 110) -> bytes:
    fig = timeline_figure(timeline)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
