"""Guessing sign-in codes and passwords: throttled per account and per client, with backoff."""

from __future__ import annotations

import pytest

from tests.tutor.test_reports import fast_hashing  # noqa: F401 (fixture)
from tutor.auth import (SignInThrottle, TooManyAttempts, authenticate, authenticate_student,
                        create_student, create_teacher)


@pytest.fixture
def sam(db):
    with db.begin() as s:
        _, code = create_student(session=s, name="Sam Lee")
    return code


def guess(db, throttle, handle, code, client):
    with db.begin() as s:
        return authenticate_student(session=s, handle=handle, code=code, throttle=throttle,
                                    client=client)


def test_the_right_code_is_refused_after_a_burst_of_wrong_ones(db, sam):
    throttle = SignInThrottle()
    refused = 0
    for i in range(300):  # the audit's burst: ~300 guesses, then the right code
        try:
            assert guess(db, throttle, "sam.lee", f"wrong-{i}", "10.0.0.9") is None
        except TooManyAttempts:
            refused += 1
    assert refused >= 295  # only the first few were even checked
    with pytest.raises(TooManyAttempts, match="wait"):
        guess(db, throttle, "sam.lee", sam, "10.0.0.9")
    # the account stays throttled from another client too: rotating addresses does not help
    with pytest.raises(TooManyAttempts):
        guess(db, throttle, "sam.lee", sam, "10.0.0.10")


def test_a_client_guessing_many_accounts_is_throttled(db, sam):
    throttle = SignInThrottle()
    for i in range(30):  # thirty handles, one guess each: no account is over its limit
        assert guess(db, throttle, f"student{i}", "abc-def-ghk", "10.0.0.7") is None
    with pytest.raises(TooManyAttempts):
        guess(db, throttle, "sam.lee", sam, "10.0.0.7")
    assert guess(db, throttle, "sam.lee", sam, "10.0.0.8") is not None  # others sign in


def test_backoff_widens_and_a_success_forgets_the_accounts_failures(db, sam):
    throttle = SignInThrottle(account="2/minute;3/hour", client="")
    for _ in range(2):
        assert guess(db, throttle, "sam.lee", "nope", None) is None
    with pytest.raises(TooManyAttempts, match="seconds"):
        guess(db, throttle, "sam.lee", sam, None)
    throttle.limiter.clear(throttle.limits["account"][0], "sign-in", "account", "sam.lee")
    assert guess(db, throttle, "sam.lee", "nope", None) is None  # the third, in the hour
    throttle.limiter.clear(throttle.limits["account"][0], "sign-in", "account", "sam.lee")
    with pytest.raises(TooManyAttempts, match="minutes"):  # the hour's window now
        guess(db, throttle, "sam.lee", sam, None)
    fresh = SignInThrottle(account="2/minute", client="")
    assert guess(db, fresh, "sam.lee", "nope", None) is None
    assert guess(db, fresh, "sam.lee", sam, None) is not None
    assert guess(db, fresh, "sam.lee", "nope", None) is None  # the count started again
    assert guess(db, fresh, "sam.lee", sam, None) is not None


def test_teacher_passwords_are_throttled_by_e_mail(db):
    with db.begin() as s:
        create_teacher(session=s, name="Ada", email="ada@school.example", password="correct horse")
    throttle = SignInThrottle()
    for _ in range(5):
        with db.begin() as s:
            assert authenticate(session=s, email="ADA@school.example", password="guess",
                                throttle=throttle, client="10.1.1.1") is None
    with db.begin() as s, pytest.raises(TooManyAttempts):
        authenticate(session=s, email="ada@school.example ", password="correct horse",
                     throttle=throttle, client="10.1.1.2")
