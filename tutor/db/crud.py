"""Small query functions with keyword-only arguments. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cmt.contract import AnalyzeResponse
from tutor.db.models import (Adaptation, EmotionReading, MasteryState, SchoolClass, Student, Turn,
                              TutorSession, utcnow)


def get_or_create_student(*, session: Session, handle: str, display_name: str | None = None) -> Student:
    student = session.scalar(select(Student).where(Student.handle == handle))
    if student is None:
        student = Student(handle=handle, display_name=display_name or handle)
        session.add(student)
        session.flush()
    return student


def start_session(*, session: Session, student: Student, lesson: str | None = None,
                  policy_mode: str = "adaptive") -> TutorSession:
    ts = TutorSession(student_id=student.id, lesson=lesson, policy_mode=policy_mode)
    session.add(ts)
    session.flush()
    return ts


def end_session(*, session: Session, tutor_session_id: int) -> None:
    ts = session.get(TutorSession, tutor_session_id)
    if ts is not None and ts.ended_at is None:
        ts.ended_at = utcnow()


def next_turn_index(*, session: Session, tutor_session_id: int) -> int:
    last = session.scalar(select(func.max(Turn.index)).where(Turn.session_id == tutor_session_id))
    return 0 if last is None else last + 1


def add_turn(*, session: Session, tutor_session_id: int, student_text: str, tutor_text: str,
             input_source: str = "typed", latency_ms: float | None = None) -> Turn:
    turn = Turn(session_id=tutor_session_id,
                index=next_turn_index(session=session, tutor_session_id=tutor_session_id),
                student_text=student_text, tutor_text=tutor_text, input_source=input_source,
                latency_ms=latency_ms)
    session.add(turn)
    session.flush()
    return turn


def add_reading(*, session: Session, tutor_session_id: int, reading: AnalyzeResponse,
                turn_id: int | None = None) -> EmotionReading:
    row = EmotionReading(
        session_id=tutor_session_id, turn_id=turn_id, label=reading.label,
        confidence=reading.confidence, probs=reading.probs,
        modality_probs={m: r.probs for m, r in reading.modalities.items()},
        transcript=reading.transcript, latency_ms=reading.latency_ms,
        model_version=reading.model_version, degraded=reading.degraded,
    )
    session.add(row)
    session.flush()
    return row


def add_adaptation(*, session: Session, tutor_session_id: int, state: str, tone: str, pacing: str,
                   reason: str, hint_level: int = 0, changes: dict | None = None,
                   turn_id: int | None = None) -> Adaptation:
    row = Adaptation(session_id=tutor_session_id, turn_id=turn_id, state=state, tone=tone,
                     pacing=pacing, hint_level=hint_level, changes=changes or {}, reason=reason)
    session.add(row)
    session.flush()
    return row


def session_turns(*, session: Session, tutor_session_id: int) -> Sequence[Turn]:
    return session.scalars(
        select(Turn).where(Turn.session_id == tutor_session_id).order_by(Turn.index)
    ).all()


def session_readings(*, session: Session, tutor_session_id: int) -> Sequence[EmotionReading]:
    return session.scalars(
        select(EmotionReading).where(EmotionReading.session_id == tutor_session_id)
        .order_by(EmotionReading.created_at, EmotionReading.id)
    ).all()


def session_adaptations(*, session: Session, tutor_session_id: int) -> Sequence[Adaptation]:
    return session.scalars(
        select(Adaptation).where(Adaptation.session_id == tutor_session_id)
        .order_by(Adaptation.created_at, Adaptation.id)
    ).all()


def create_class(*, session: Session, name: str, teacher_id: int | None,
                 adaptation_enabled: bool = True) -> SchoolClass:
    row = SchoolClass(name=name, teacher_id=teacher_id, adaptation_enabled=adaptation_enabled)
    session.add(row)
    session.flush()
    return row


def enrol(*, session: Session, student: Student, class_id: int) -> Student:
    student.class_id = class_id
    session.flush()
    return student


def load_mastery(*, session: Session, student_id: int, lesson: str) -> dict | None:
    row = session.scalar(select(MasteryState).where(MasteryState.student_id == student_id,
                                                    MasteryState.lesson == lesson))
    return None if row is None else row.state


def save_mastery(*, session: Session, student_id: int, lesson: str, state: dict) -> None:
    row = session.scalar(select(MasteryState).where(MasteryState.student_id == student_id,
                                                    MasteryState.lesson == lesson))
    if row is None:
        session.add(MasteryState(student_id=student_id, lesson=lesson, state=state))
    else:
        row.state = state
    session.flush()
