"""SQLAlchemy 2 models: who learns, who teaches, and every turn, reading and adaptation."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Teacher(Base):
    __tablename__ = "teachers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="teacher")  # teacher | admin
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    classes: Mapped[list[SchoolClass]] = relationship(back_populates="teacher")


class SchoolClass(Base):
    __tablename__ = "classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("teachers.id", ondelete="SET NULL"))
    adaptation_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    teacher: Mapped[Teacher | None] = relationship(back_populates="classes")
    students: Mapped[list[Student]] = relationship(back_populates="school_class")


class Student(Base):
    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(120), unique=True)  # what the student signs in as
    display_name: Mapped[str] = mapped_column(String(200))
    code_hash: Mapped[str | None] = mapped_column(String(200))  # argon2 of the sign-in code
    class_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    school_class: Mapped[SchoolClass | None] = relationship(back_populates="students")
    sessions: Mapped[list[TutorSession]] = relationship(back_populates="student")


class Consent(Base):
    """A student's yes or no to one modality, under one version of the notice. Newest wins."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    modality: Mapped[str] = mapped_column(String(20))  # camera | microphone
    granted: Mapped[bool] = mapped_column(Boolean)
    notice_version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MasteryState(Base):
    """Per student and lesson: the knowledge-tracing state, so progress outlives a session."""

    __tablename__ = "mastery"
    __table_args__ = (UniqueConstraint("student_id", "lesson"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    lesson: Mapped[str] = mapped_column(String(200))
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TutorSession(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    lesson: Mapped[str | None] = mapped_column(String(200))
    policy_mode: Mapped[str] = mapped_column(String(20), default="adaptive")  # adaptive | control
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    student: Mapped[Student] = relationship(back_populates="sessions")
    turns: Mapped[list[Turn]] = relationship(back_populates="session", order_by="Turn.index")


class Turn(Base):
    """One exchange: what the student said and what the tutor answered."""

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("session_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    student_text: Mapped[str] = mapped_column(Text)
    tutor_text: Mapped[str] = mapped_column(Text)
    input_source: Mapped[str] = mapped_column(String(20), default="typed")  # typed | spoken
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    session: Mapped[TutorSession] = relationship(back_populates="turns")
    readings: Mapped[list[EmotionReading]] = relationship(back_populates="turn")
    adaptations: Mapped[list[Adaptation]] = relationship(back_populates="turn")


class EmotionReading(Base):
    """One CMT answer: fused and per-modality probabilities, with provenance and timing."""

    __tablename__ = "emotion_readings"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    probs: Mapped[dict[str, Any]]
    modality_probs: Mapped[dict[str, Any]]
    transcript: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(120))
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    turn: Mapped[Turn | None] = relationship(back_populates="readings")


class Adaptation(Base):
    """What the policy changed and why."""

    __tablename__ = "adaptations"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(20))  # engaged, confused, frustrated, ...
    tone: Mapped[str] = mapped_column(String(20))
    pacing: Mapped[str] = mapped_column(String(30))
    hint_level: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[dict[str, Any]]  # {"tone": ["neutral", "calm"], ...}
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    turn: Mapped[Turn | None] = relationship(back_populates="adaptations")
