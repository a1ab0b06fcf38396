"""Both sign-in views are throttled per account and per client (deps.sign_in_throttle)."""

from __future__ import annotations

import pytest

from tutor.settings import Settings
from tests.tutor.test_reports import fast_hashing  # noqa: F401 (fixture)
from tutor.auth import Principal, create_student, create_teacher
from tutor.client import EmbeddedCMT
from ui import student, teacher
from ui.deps import Deps


@pytest.fixture
def deps(db, keyword_engine):
    return Deps(settings=Settings(student_sign_in="code"), db=db, cmt=EmbeddedCMT(keyword_engine))


def test_a_student_guessing_codes_is_told_to_wait_and_the_right_code_waits_too(deps):
    with deps.db.begin() as s:
        _, code = create_student(session=s, name="Ana")
    for i in range(5):
        with pytest.warns(UserWarning, match="do not match"):
            assert student.sign_in(deps, "ana", f"bad-{i}", client="10.0.0.5")[0] is None
    with pytest.warns(UserWarning, match="Too many sign-in attempts"):
        assert student.sign_in(deps, "ana", code, client="10.0.0.5")[0] is None
    other = Deps(settings=deps.settings, db=deps.db, cmt=deps.cmt)  # a fresh process's count
    assert isinstance(student.sign_in(other, "ana", code, client="10.0.0.5")[0], Principal)


def test_a_teacher_guessing_passwords_is_told_to_wait(deps):
    with deps.db.begin() as s:
        create_teacher(session=s, name="Ada", email="ada@school.test", password="correct horse")
    for _ in range(5):
        with pytest.warns(UserWarning, match="do not match"):
            assert teacher.sign_in(deps, "ada@school.test", "guess", client="10.0.0.6")[0] is None
    with pytest.warns(UserWarning, match="Too many sign-in attempts"):
        out = teacher.sign_in(deps, "ada@school.test", "correct horse", client="10.0.0.6")
    assert not isinstance(out[0], Principal)
