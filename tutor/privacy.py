"""Privacy by design: consent per modality, data minimisation, retention, export and erasure.

Consent is recorded per student and modality with the time and the version of the notice
the student saw; the newest record wins, so withdrawing is recording a "no". Raw frames and
audio are never stored by Attune: they are analysed in memory and dropped (readings are
stored, media is not). `biometrics=False` (ATTUNE_BIOMETRICS=false) switches face and
voice emotion off entirely: the mode for schools in the EU, where inferring emotion from
face or voice in education is prohibited (AI Act, Art. 5(1)(f)). Where face and voice are
read, the notices say that this is emotion recognition (AI Act, Art. 50(3)).
docs/compliance.md states the modes, what is inferred from what, and what a school must do.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tutor.db.models import (Adaptation, Consent, EmotionReading, MasteryState, Student, Turn,
                              TutorSession)

NOTICE_VERSION = "2026-12-03"
CONSENT_MODALITIES = ("camera", "microphone")
# EU AI Act, Art. 50(3): people exposed to an emotion recognition system must be informed of
# its operation. Reading emotion from a face or a voice is emotion recognition (biometric
# data, Art. 3(39)), so each notice says so, in those words, before the student allows it.
ART_50_3 = ("You are told this because people exposed to emotion recognition must be "
            "informed (EU AI Act, Art. 50(3)).")
NOTICES = {
    "camera": ("Camera: this is emotion recognition. A couple of frames a second are analysed "
               "for your facial expression, in memory; only the emotion reading is stored, "
               "never the picture. " + ART_50_3),
    "microphone": ("Microphone: this is emotion recognition. What you say is transcribed and "
                   "the tone of your voice analysed for emotion, in memory; the transcript and "
                   "the emotion reading are stored, never the recording. " + ART_50_3),
}
# With biometrics off (ATTUNE_BIOMETRICS=false) the microphone is dictation only.
DICTATION_NOTICE = ("Microphone: what you say is transcribed, in memory, and the transcript "
                    "is your message; the recording is never stored and no emotion is read "
                    "from your voice.")


def notice(modality: str, *, biometrics: bool = True) -> str:
    """The notice a student reads before allowing `modality`."""
    if modality == "microphone" and not biometrics:
        return DICTATION_NOTICE
    return NOTICES[modality]


def record_consent(*, session: Session, student_id: int, modality: str, granted: bool,
                   notice_version: str = NOTICE_VERSION) -> Consent:
    if modality not in CONSENT_MODALITIES:
        raise ValueError(f"consent is for one of {CONSENT_MODALITIES}, not {modality!r}")
    row = Consent(student_id=student_id, modality=modality, granted=granted,
                  notice_version=notice_version)
    session.add(row)
    session.flush()
    return row


def current_consents(*, session: Session, student_id: int) -> dict[str, bool]:
    """The newest answer per modality; no record means no."""
    rows = session.scalars(select(Consent).where(Consent.student_id == student_id)
                           .order_by(Consent.created_at, Consent.id)).all()
    state = {m: False for m in CONSENT_MODALITIES}
    for row in rows:
        state[row.modality] = row.granted
    return state


def export_student(*, session: Session, student_id: int) -> dict[str, Any]:
    """Everything Attune holds about a student, as JSON-ready data (the right of access)."""
    student = session.get(Student, student_id)
    if student is None:
        raise LookupError(f"no student {student_id}")

    def cols(row, *names):
        out = {}
        for n in names:
            v = getattr(row, n)
            out[n] = v.isoformat() if isinstance(v, datetime) else v
        return out

    sessions = []
    for ts in session.scalars(select(TutorSession).where(TutorSession.student_id == student_id)
                              .order_by(TutorSession.id)):
        sid = ts.id
        sessions.append({
            **cols(ts, "id", "lesson", "policy_mode", "started_at", "ended_at"),
            "turns": [cols(t, "index", "created_at", "student_text", "tutor_text", "input_source")
                      for t in session.scalars(select(Turn).where(Turn.session_id == sid).order_by(Turn.index))],
            "readings": [cols(r, "created_at", "label", "confidence", "probs", "modality_probs",
                              "transcript", "model_version", "degraded")
                         for r in session.scalars(select(EmotionReading).where(EmotionReading.session_id == sid)
                                                  .order_by(EmotionReading.id))],
            "adaptations": [cols(a, "created_at", "state", "tone", "pacing", "hint_level", "reason")
                            for a in session.scalars(select(Adaptation).where(Adaptation.session_id == sid)
                                                     .order_by(Adaptation.id))],
        })
    return {
        "student": cols(student, "id", "handle", "display_name", "class_id", "created_at"),
        "consents": [cols(c, "modality", "granted", "notice_version", "created_at")
                     for c in session.scalars(select(Consent).where(Consent.student_id == student_id)
                                              .order_by(Consent.id))],
        "mastery": [cols(m, "lesson", "state", "updated_at")
                    for m in session.scalars(select(MasteryState).where(MasteryState.student_id == student_id))],
        "sessions": sessions,
        "exported_at": datetime.now(timezone.utc).isoformat(),
    }


def erase_student(*, session: Session, student_id: int) -> dict[str, int]:
    """Delete the student and everything of theirs (the right to erasure). Returns counts."""
    sids = select(TutorSession.id).where(TutorSession.student_id == student_id).scalar_subquery()
    counts = {}
    for name, model, where in (
        ("readings", EmotionReading, EmotionReading.session_id.in_(sids)),
        ("adaptations", Adaptation, Adaptation.session_id.in_(sids)),
        ("turns", Turn, Turn.session_id.in_(sids)),
        ("sessions", TutorSession, TutorSession.student_id == student_id),
        ("consents", Consent, Consent.student_id == student_id),
        ("mastery", MasteryState, MasteryState.student_id == student_id),
        ("students", Student, Student.id == student_id),
    ):  # explicit, children first: no reliance on the database's cascade settings
        counts[name] = session.execute(delete(model).where(where)).rowcount
    return counts


def purge_readings(*, session: Session, older_than_days: int,
                   now: datetime | None = None) -> int:
    """Delete emotion readings older than the retention period; returns how many."""
    if older_than_days < 0:
        raise ValueError("retention must be zero or more days")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=older_than_days)
    return session.execute(delete(EmotionReading).where(EmotionReading.created_at < cutoff)).rowcount


def count_rows_of(*, session: Session, student_id: int) -> int:
    """How many rows anywhere still point at this student (0 after erasure)."""
    sids = select(TutorSession.id).where(TutorSession.student_id == student_id).scalar_subquery()
    return sum(session.scalar(select(func.count()).select_from(m).where(w)) for m, w in (
        (Student, Student.id == student_id), (TutorSession, TutorSession.student_id == student_id),
        (Turn, Turn.session_id.in_(sids)), (EmotionReading, EmotionReading.session_id.in_(sids)),
        (Adaptation, Adaptation.session_id.in_(sids)), (Consent, Consent.student_id == student_id),
        (MasteryState, MasteryState.student_id == student_id)))
