"""Who may see what: teacher accounts and student sign-in codes (argon2id hashes), roles,
access checks.

Roles are "student", "teacher" and "admin". Teachers and admins are rows of `teachers`
(Teacher.role) and sign in with e-mail and password; a student principal is a row of
`students` and signs in with handle and a generated code. The rules, enforced by the
`require_*` functions that every report query calls first:

- an admin reads every class, student and session;
- a teacher reads only the classes whose teacher_id is theirs, and their students' sessions;
- a student reads only their own sessions, and no class.

The principal's role is re-read from the database on every check, so a revoked or deleted
account loses access at once, whatever a UI session still holds.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tutor.db.models import SchoolClass, Student, Teacher, TutorSession

ROLES: tuple[str, ...] = ("student", "teacher", "admin")
STAFF_ROLES: tuple[str, ...] = ("teacher", "admin")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this bounds the work per attempt
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HANDLE_RE = re.compile(r"^[\w.'-]{1,60}$")
# Sign-in codes: 9 characters in three groups, from an alphabet without look-alikes (0/o,
# 1/l/i): 31**9, about 2**44.6, far beyond online guessing at one argon2 verification a try.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_GROUPS, CODE_GROUP_CHARS = 3, 3

_hasher = PasswordHasher()  # argon2id, the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so that both paths cost one argon2
    verification. Made at first need (half a second of the app's start-up, when it was made at
    import); `attune run` makes it in the background after the model loads (`warm`)."""
    return _hasher.hash("attune-no-such-account")


def warm() -> None:
    """Make the dummy hash now, so that no sign-in pays for it."""
    _dummy_hash()


class AuthError(ValueError):
    """An account could not be created: bad e-mail or handle, weak password, unknown role, taken."""


class TooManyAttempts(AuthError):
    """Too many failed sign-ins for this account or from this client; try again later."""


class AccessDenied(PermissionError):
    """The principal may not read this class, student or session (or it does not exist)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a teacher/admin id (teachers table) or a student id (students table)."""

    id: int
    role: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")

    @classmethod
    def of(cls, who: Teacher | Student) -> Principal:
        if isinstance(who, Student):
            return cls(id=who.id, role="student")
        return cls(id=who.id, role=who.role)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise AuthError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AuthError(f"a password may have at most {MAX_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; False for a mismatch, a missing or a malformed hash."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_teacher(*, session: Session, name: str, email: str, password: str,
                   role: str = "teacher") -> Teacher:
    """A new teacher (or admin) account with a hashed password. Callers own the transaction."""
    if role not in STAFF_ROLES:
        raise AuthError(f"a teacher account's role must be one of {STAFF_ROLES}, got {role!r}")
    name = (name or "").strip()
    if not name:
        raise AuthError("a teacher needs a name")
    email = normalize_email(email)
    if not EMAIL_RE.match(email):
        raise AuthError(f"{email!r} does not look like an e-mail address")
    if session.scalar(select(Teacher.id).where(func.lower(Teacher.email) == email)) is not None:
        raise AuthError(f"an account for {email} exists already")
    teacher = Teacher(name=name, email=email, password_hash=hash_password(password), role=role)
    session.add(teacher)
    session.flush()
    return teacher


def set_password(*, session: Session, teacher: Teacher, password: str) -> None:
    teacher.password_hash = hash_password(password)
    session.flush()


def authenticate(*, session: Session, email: str, password: str,
                 throttle: SignInThrottle | None = None,
                 client: str | None = None) -> Teacher | None:
    """The teacher whose e-mail and password these are, else None (never says which was wrong).

    An unknown e-mail still costs one argon2 verification, so timing does not tell accounts
    apart. A hash made with older parameters is upgraded in place (callers commit). With a
    `throttle`, too many failures for the e-mail or from `client` raise TooManyAttempts.
    """
    return _throttled(lambda: _authenticate(session, email, password), throttle,
                      normalize_email(email), client)


def _authenticate(session: Session, email: str, password: str) -> Teacher | None:
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        verify_password(None, "")
        return None
    teacher = session.scalar(select(Teacher).where(func.lower(Teacher.email) == normalize_email(email)))
    stored = teacher.password_hash if teacher is not None else None
    if not verify_password(stored, password) or teacher is None or teacher.role not in STAFF_ROLES:
        return None
    if _hasher.check_needs_rehash(stored):
        teacher.password_hash = _hasher.hash(password)
        session.flush()
    return teacher


# ---------------------------------------------------------------- sign-in throttle
# Failed sign-ins allowed per account and per client, in widening windows: a backoff in
# steps. After 5 failures an account waits out the minute, after 20 the hour, after 60 the
# day. A client (an address) may fail more often, since a whole class may share one address
# behind a school's router; it stops one machine from trying codes across many accounts.
ACCOUNT_FAILURES = "5/minute;20/hour;60/day"
CLIENT_FAILURES = "30/minute;200/hour;1000/day"


class SignInThrottle:
    """Counts failed sign-ins per account (e-mail or handle) and per client, in this process.

    `check` before verifying refuses with TooManyAttempts while either is over its limits,
    without spending an argon2 verification; `failed` counts a failure against both; `passed`
    forgets the account's failures (not the client's). An attacker can keep one account
    waiting by failing on purpose, but never learns its code faster than the limits allow.
    """

    def __init__(self, account: str = ACCOUNT_FAILURES, client: str = CLIENT_FAILURES):
        self.limits = {"account": parse_many(account) if account else [],
                       "client": parse_many(client) if client else []}
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _keys(self, account: str, client: str | None):
        yield "account", (account or "").strip().lower()
        if client:
            yield "client", client

    def check(self, account: str, client: str | None = None) -> None:
        wait = 0.0
        for kind, key in self._keys(account, client):
            for item in self.limits[kind]:
                if not self.limiter.test(item, "sign-in", kind, key):
                    reset = self.limiter.get_window_stats(item, "sign-in", kind, key).reset_time
                    wait = max(wait, reset - time.time())
        if wait > 0:
            raise TooManyAttempts(f"Too many sign-in attempts. Please wait {_span(wait)} and "
                                  "try again.")

    def failed(self, account: str, client: str | None = None) -> None:
        for kind, key in self._keys(account, client):
            for item in self.limits[kind]:
                self.limiter.hit(item, "sign-in", kind, key)

    def passed(self, account: str) -> None:
        for item in self.limits["account"]:
            self.limiter.clear(item, "sign-in", "account", (account or "").strip().lower())


def _span(seconds: float) -> str:
    s = max(1, math.ceil(seconds))
    if s < 120:
        return f"{s} seconds"
    return f"{math.ceil(s / 60)} minutes" if s < 7200 else f"{math.ceil(s / 3600)} hours"


def _throttled(check, throttle: SignInThrottle | None, account: str, client: str | None):
    """Run `check` (a sign-in attempt) under `throttle`: refused when over the limits."""
    if throttle is None:
        return check()
    throttle.check(account, client)
    who = check()
    if who is None:
        throttle.failed(account, client)
    else:
        throttle.passed(account)
    return who


# ---------------------------------------------------------------- students
def normalize_handle(handle: str) -> str:
    return (handle or "").strip().lower()


def handle_from_name(name: str) -> str:
    """"Sam Lee" -> "sam.lee": the handle a student gets when none is given."""
    return re.sub(r"[^\w.'-]+", ".", normalize_handle(name)).strip(".")


def new_sign_in_code() -> str:
    """A fresh code such as "k7m-p3x-9qw", from `secrets`."""
    chars = [secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_CHARS)]
    return "-".join("".join(chars[i:i + CODE_GROUP_CHARS])
                    for i in range(0, len(chars), CODE_GROUP_CHARS))


def _code_key(code: str) -> str:
    """What is hashed and compared: the code without case, spaces or dashes."""
    return re.sub(r"[\s-]+", "", code).lower() if isinstance(code, str) else ""


def issue_sign_in_code(*, session: Session, student: Student) -> str:
    """A new code for `student` (the old one stops working); only its hash is stored.
    Returns the code, to be shown once. Callers own the transaction."""
    code = new_sign_in_code()
    student.code_hash = _hasher.hash(_code_key(code))
    session.flush()
    return code


def create_student(*, session: Session, name: str, handle: str | None = None,
                   class_id: int | None = None) -> tuple[Student, str]:
    """A new student with a sign-in code: (student, code). The handle defaults to the name's
    ("Sam Lee" -> "sam.lee"). Callers own the transaction."""
    name = (name or "").strip()
    if not name:
        raise AuthError("a student needs a name")
    handle = normalize_handle(handle) if handle else handle_from_name(name)
    if not HANDLE_RE.match(handle):
        raise AuthError(f"{handle!r} is not a usable handle (letters, digits, dots, dashes; "
                        "up to 60)")
    if session.scalar(select(Student.id).where(Student.handle == handle)) is not None:
        raise AuthError(f"a student {handle!r} exists already (give a new code to an existing "
                        "student with `attune admin reset-code`)")
    if class_id is not None and session.get(SchoolClass, class_id) is None:
        raise AuthError(f"no class {class_id}")
    student = Student(handle=handle, display_name=name, class_id=class_id)
    session.add(student)
    session.flush()
    return student, issue_sign_in_code(session=session, student=student)


def authenticate_student(*, session: Session, handle: str, code: str,
                         throttle: SignInThrottle | None = None,
                         client: str | None = None) -> Student | None:
    """The student whose handle and code these are, else None (never says which was wrong).

    Like `authenticate`: one argon2 verification whether or not the handle exists or has a
    code, a hash made with older parameters is upgraded in place (callers commit), and with
    a `throttle` too many failures raise TooManyAttempts.
    """
    return _throttled(lambda: _authenticate_student(session, handle, code), throttle,
                      normalize_handle(handle), client)


def _authenticate_student(session: Session, handle: str, code: str) -> Student | None:
    key = _code_key(code)
    if not key or len(key) > MAX_PASSWORD_CHARS:
        verify_password(None, "")
        return None
    student = session.scalar(select(Student).where(Student.handle == normalize_handle(handle)))
    stored = student.code_hash if student is not None else None
    if not verify_password(stored, key) or student is None:
        return None
    if _hasher.check_needs_rehash(stored):
        student.code_hash = _hasher.hash(key)
        session.flush()
    return student


# ---------------------------------------------------------------- access checks
def current_principal(*, session: Session, principal: Principal | None) -> Principal:
    """The principal as the database sees it now (role re-read); AccessDenied if gone."""
    if not isinstance(principal, Principal):
        raise AccessDenied("please sign in first")
    if principal.role == "student":
        if session.get(Student, principal.id) is None:
            raise AccessDenied("this account no longer exists; please sign in again")
        return principal
    teacher = session.get(Teacher, principal.id)
    if teacher is None or teacher.role not in STAFF_ROLES:
        raise AccessDenied("this account no longer exists; please sign in again")
    return Principal(id=teacher.id, role=teacher.role)


def require_class_access(*, session: Session, principal: Principal | None,
                         class_id: int) -> SchoolClass:
    """The class, if `principal` may read it; else AccessDenied (same words whether or not it exists)."""
    p = current_principal(session=session, principal=principal)
    school_class = session.get(SchoolClass, class_id) if isinstance(class_id, int) else None
    if school_class is not None and (p.is_admin or (p.role == "teacher"
                                                    and school_class.teacher_id == p.id)):
        return school_class
    raise AccessDenied(f"class {class_id} does not exist or is not one of yours")


def require_student_access(*, session: Session, principal: Principal | None,
                           student_id: int) -> Student:
    p = current_principal(session=session, principal=principal)
    student = session.get(Student, student_id) if isinstance(student_id, int) else None
    if student is not None and _may_read_student(session, p, student):
        return student
    raise AccessDenied(f"student {student_id} does not exist or is not in one of your classes")


def require_session_access(*, session: Session, principal: Principal | None,
                           session_id: int) -> TutorSession:
    p = current_principal(session=session, principal=principal)
    ts = session.get(TutorSession, session_id) if isinstance(session_id, int) else None
    if ts is not None and _may_read_student(session, p, ts.student):
        return ts
    raise AccessDenied(f"session {session_id} does not exist or is not one of your students'")


def reset_student_code(*, session: Session, principal: Principal | None, student_id: int) -> str:
    """A new sign-in code for a student of the teacher's own class (an admin: any student)."""
    p = current_principal(session=session, principal=principal)
    if p.role not in STAFF_ROLES:
        raise AccessDenied("only a teacher or an administrator can give out sign-in codes")
    student = require_student_access(session=session, principal=p, student_id=student_id)
    return issue_sign_in_code(session=session, student=student)


def _may_read_student(session: Session, p: Principal, student: Student) -> bool:
    if p.is_admin:
        return True
    if p.role == "student":
        return student.id == p.id
    if student.class_id is None:
        return False
    school_class = session.get(SchoolClass, student.class_id)
    return school_class is not None and school_class.teacher_id == p.id
