"""A tutoring session: one turn is inputs → CMT (through the client) → policy → reply → database.

Within a turn the dialogue reads the message first (its move, the checked answer, streaks,
timing), so the policy decides from the emotion reading and that evidence together; the
dialogue then acts on the decision.

The turn, its reading and the policy's decision are written in one transaction, and a
turn is acknowledged (returned) only once that transaction has committed.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cmt.contract import MAX_TEXT_CHARS, AnalyzeRequest, AnalyzeResponse
from tutor.client import CMTClient, CMTError
from tutor.curriculum import Pack
from tutor.db import crud
from tutor.db.models import Student
from tutor.dialogue import Dialogue, Phraser, load_lesson
from tutor.mastery import Mastery
from tutor.privacy import current_consents
from tutor.policy import Decision, Policy, student_note

log = logging.getLogger("tutor.session")


class MessageError(ValueError):
    """The student's message cannot be used as given; str(e) says why, for a person."""


class StorageError(RuntimeError):
    """The turn could not be saved; nothing was acknowledged."""


class TurnLimit:
    """At most `rate` turns per student (a `limits` string such as "30/minute"; empty: no
    limit), counted in this process across all of a student's conversations."""

    def __init__(self, rate: str):
        self.items = parse_many(rate) if rate else []
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, student_id: int) -> None:
        """Count one turn; MessageError, asking the student to slow down, past the limit."""
        for item in self.items:
            if not self.limiter.hit(item, "turns", str(student_id)):
                reset = self.limiter.get_window_stats(item, "turns", str(student_id)).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise MessageError(f"That's a lot of messages in a short time! Let's slow down: "
                                   f"please wait {wait} seconds, then send it again.")


def clean_message(raw: str | bytes | None) -> str:
    """A usable chat message, or MessageError: empty, too long, not UTF-8."""
    if raw is None:
        raise MessageError("Type a message first.")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MessageError("That message is not valid UTF-8 text.") from e
    if not isinstance(raw, str):
        raise MessageError("A message must be text.")
    text = "".join(c for c in raw if c in "\n\t" or unicodedata.category(c)[0] != "C").strip()
    if not text:
        raise MessageError("Type a message first.")
    if len(text) > MAX_TEXT_CHARS:
        raise MessageError(f"That message is {len(text):,} characters long; "
                           f"please keep it under {MAX_TEXT_CHARS:,}.")
    return text


@dataclass(frozen=True)
class TurnResult:
    turn_id: int
    reply: str
    reading: AnalyzeResponse | None
    decision: Decision
    notice: str | None = None  # e.g. why there is no reading this turn
    move: str = ""  # what the student did ("answer", "hint", ...)
    action: str = ""  # what the tutor did, in words
    correct: bool | None = None  # the checked verdict, when an answer was checked
    message: str = ""  # the student's message as used (the transcript of a spoken turn)
    noticed: str = ""  # what the tutor noticed, in plain words for the student (empty: nothing)


@dataclass(frozen=True)
class Opening:
    """The tutor's first message of a lesson, before the student says anything."""

    text: str  # the step explained and its first question asked (or: the lesson is complete)
    question_id: str | None  # the question asked; None when the lesson is complete


def open_lesson(pack: Pack, *, mastery: dict | None = None) -> Opening:
    """The opening for a student whose stored mastery of `pack` is `mastery` (None: new): the
    question their conversation will start from (pass it on as Conversation(asked=...))."""
    dialogue = Dialogue(pack, mastery=Mastery.from_dict(mastery) if mastery else None)
    text = dialogue.start()
    return Opening(text, dialogue.question.id if dialogue.question else None)


def stored_mastery(db: sessionmaker[Session], *, lesson: str, student_id: int | None = None,
                   handle: str | None = None) -> dict | None:
    """A student's stored mastery of a lesson, by id or handle; None for nobody yet (looking
    creates no one)."""
    with db() as s:
        if student_id is None and handle is not None:
            student_id = s.scalar(select(Student.id).where(Student.handle == handle))
        if student_id is None:
            return None
        return crud.load_mastery(session=s, student_id=student_id, lesson=lesson)


class Conversation:
    """One student's session with the tutor.

    The student is `student_id` (a signed-in student) or `student_handle` (found or made by
    handle: open sign-in, the kiosk, simulations). `lesson` is a pack id or file (default:
    the default lesson); `pack` a loaded pack; `dialogue` a ready Dialogue (tests,
    simulations); `phraser` an optional LLM phraser; `clock` the time source shared by the
    policy and the dialogue; `turn_limit` the per-student limit shared by conversations;
    `asked` the id of a question the student was already shown (the page's opening,
    `open_lesson`): their first message answers it.
    """

    def __init__(self, *, db: sessionmaker[Session], cmt: CMTClient,
                 student_handle: str | None = None, student_id: int | None = None,
                 display_name: str | None = None, lesson: str | None = None,
                 pack: Pack | None = None, policy_mode: str = "adaptive",
                 dialogue: Dialogue | None = None, phraser: Phraser | None = None,
                 clock: Callable[[], float] = time.monotonic, biometrics: bool = True,
                 similarity: Callable[[str, str], float] | None = None,
                 turn_limit: TurnLimit | None = None, asked: str | None = None):
        self.db, self.cmt, self.clock, self.biometrics = db, cmt, clock, biometrics
        self.turn_limit = turn_limit
        if (student_handle is None) == (student_id is None):
            raise ValueError("give exactly one of student_handle and student_id")
        pack = dialogue.pack if dialogue is not None else (pack or load_lesson(lesson))
        with db.begin() as s:
            if student_id is not None:
                student = s.get(Student, student_id)
                if student is None:
                    raise MessageError("This account no longer exists; please sign in again.")
            else:
                student = crud.get_or_create_student(session=s, handle=student_handle,
                                                     display_name=display_name)
            self.handle = student.handle
            if student.school_class is not None and not student.school_class.adaptation_enabled:
                policy_mode = "control"  # the teacher turned adaptation off for this class
            saved = crud.load_mastery(session=s, student_id=student.id, lesson=pack.id)
            ts = crud.start_session(session=s, student=student, lesson=pack.id,
                                    policy_mode=policy_mode)
            self.student_id, self.session_id = student.id, ts.id
        if dialogue is None:
            mastery = Mastery.from_dict(saved) if saved else None
            dialogue = Dialogue(pack, mastery=mastery, phraser=phraser, clock=clock,
                                similarity=similarity)
        if asked is not None:
            try:
                dialogue.resume(asked)
            except KeyError:  # not this lesson's question: the first reply asks one
                log.warning("question %r is not in lesson %r", asked, pack.id)
        self.dialogue, self.pack = dialogue, pack
        self.policy = Policy(mode=policy_mode, clock=clock)
        # The page reads a recording, a typed message and camera frames in threads of their own:
        # what follows each reading (the policy, the dialogue, the turn's place in the session)
        # is done one at a time, in time order (`_now`: the latest time the policy has seen).
        self._lock, self._now = threading.Lock(), -math.inf

    def _at(self, now: float) -> float:
        """`now`, or the policy's latest time if a later one got in first (hold `_lock`)."""
        self._now = max(self._now, now)
        return self._now

    def turn(self, text: str | bytes | None, *, image: bytes | None = None,
             audio: bytes | None = None, source: str = "typed") -> TurnResult:
        """One exchange. Spoken turns give `audio` and no text: the transcript is the message."""
        if self.turn_limit is not None:
            self.turn_limit.check(self.student_id)
        t0 = time.perf_counter()
        now = self.clock()
        spoken = text is None and audio is not None
        image, audio, withheld = self._permitted(image, audio)
        if spoken and audio is None:
            raise MessageError("To talk to the tutor, first allow the microphone (or type instead).")
        if spoken:
            reading, notice = self._read(None, image, audio)
            if reading is None:
                raise MessageError(f"I couldn't process that recording: {notice}")
            if not (reading.transcript or "").strip():
                raise MessageError("I couldn't hear any words in that recording; please try again.")
            message, source = clean_message(reading.transcript), "spoken"
        else:
            message = clean_message(text)
            reading, notice = self._read(message, image, audio)
        notice = notice or withheld
        with self._lock:
            now = self._at(now)
            evidence = self.dialogue.evidence(message, now=now)
            decision = self.policy.decide(reading, evidence, now=now, source=source)
            answer = self.dialogue.respond(message, decision, now=now)
            reply = answer.text
            latency_ms = (time.perf_counter() - t0) * 1e3
            try:
                with self.db.begin() as s:
                    turn = crud.add_turn(session=s, tutor_session_id=self.session_id,
                                         student_text=message, tutor_text=reply,
                                         input_source=source, latency_ms=latency_ms)
                    if reading is not None:
                        crud.add_reading(session=s, tutor_session_id=self.session_id,
                                         reading=reading, turn_id=turn.id)
                    crud.add_adaptation(session=s, tutor_session_id=self.session_id,
                                        turn_id=turn.id, state=decision.state, tone=decision.tone,
                                        pacing=decision.pacing, hint_level=decision.hint_level,
                                        reason=decision.reason, changes=decision.changes)
                    crud.save_mastery(session=s, student_id=self.student_id, lesson=self.pack.id,
                                      state=self.dialogue.mastery.to_dict())
                    turn_id = turn.id
            except SQLAlchemyError as e:
                log.error("could not save turn of session %s: %s", self.session_id, e)
                raise StorageError("Your message could not be saved just now; "
                                   "please send it again.") from e
        return TurnResult(turn_id=turn_id, reply=reply, reading=reading, decision=decision,
                          notice=notice, move=answer.move, action=answer.action,
                          correct=answer.correct, message=message,
                          noticed=student_note(decision))

    def observe_frame(self, image: bytes) -> AnalyzeResponse | None:
        """A camera frame between turns: read it, let the policy see it, log the reading.

        Returns None (and analyses nothing) without camera consent or with biometrics off.
        """
        image, _, withheld = self._permitted(image, None)
        if not image:
            return None
        try:
            reading = self.cmt.analyze(AnalyzeRequest(image_b64=base64.b64encode(image).decode()))
        except CMTError as e:
            log.info("frame not read: %s", e)
            return None
        with self._lock:
            self.policy.observe(reading, now=self._at(self.clock()))
        try:
            with self.db.begin() as s:
                crud.add_reading(session=s, tutor_session_id=self.session_id, reading=reading)
        except SQLAlchemyError as e:
            log.warning("frame reading not saved: %s", e)
        return reading

    def _permitted(self, image: bytes | None, audio: bytes | None):
        """Media the student has consented to, now (a withdrawal takes effect at once)."""
        if image is None and audio is None:
            return None, None, None
        try:
            with self.db() as s:
                consent = current_consents(session=s, student_id=self.student_id)
        except SQLAlchemyError as e:  # database down: consent unknown, so nothing is analysed
            log.warning("consent not readable for session %s: %s", self.session_id, e)
            consent = {"camera": False, "microphone": False}
        withheld = []
        if image is not None and not (consent["camera"] and self.biometrics):
            image = None
            withheld.append("camera")
        if audio is not None and not consent["microphone"]:
            audio = None
            withheld.append("microphone")
        note = f"Not analysed (no consent or switched off): {', '.join(withheld)}." if withheld else None
        return image, audio, note

    def _read(self, message: str | None, image: bytes | None, audio: bytes | None):
        try:
            req = AnalyzeRequest(
                text=message,
                image_b64=base64.b64encode(image).decode() if image else None,
                audio_b64=base64.b64encode(audio).decode() if audio else None,
                modalities=None if self.biometrics else ["text"],
            )
        except ValidationError:  # e.g. an empty recording and no text: nothing to read
            return None, "No emotion reading this turn (nothing to analyse)."
        try:
            return self.cmt.analyze(req), None
        except CMTError as e:
            log.warning("no reading for session %s: %s", self.session_id, e)
            return None, f"No emotion reading this turn ({e})."

    def close(self) -> None:
        with self.db.begin() as s:
            crud.end_session(session=s, tutor_session_id=self.session_id)
