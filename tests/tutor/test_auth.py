from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tutor.auth import (AccessDenied, AuthError, Principal, authenticate, authenticate_student,
                        create_student, create_teacher, current_principal, issue_sign_in_code,
                        require_class_access, require_session_access, require_student_access,
                        reset_student_code)
from tutor.db import crud
from tutor.db.models import SchoolClass, Student, Teacher


def test_passwords_are_hashed_with_argon2_and_verify(db):
    with db.begin() as s:
        t = create_teacher(session=s, name="Ada", email=" Ada@School.example ",
                           password="correct horse")
        tid = t.id
    with db() as s:
        row = s.get(Teacher, tid)
        assert row.email == "ada@school.example" and row.role == "teacher"
        assert "correct horse" not in row.password_hash
        assert row.password_hash.startswith("$argon2id$")
    with db.begin() as s:
        assert authenticate(session=s, email="ADA@school.example", password="correct horse").id == tid
        assert authenticate(session=s, email="ada@school.example", password="correct hors") is None
        assert authenticate(session=s, email="nobody@school.example", password="correct horse") is None
        assert authenticate(session=s, email="ada@school.example", password="") is None


def test_same_password_gives_different_hashes(db):
    with db.begin() as s:
        a = create_teacher(session=s, name="A", email="a@x.org", password="same-password")
        b = create_teacher(session=s, name="B", email="b@x.org", password="same-password")
        assert a.password_hash != b.password_hash


@pytest.mark.parametrize("kw, words", [
    (dict(password="short"), "at least 8"),
    (dict(email="not-an-email"), "e-mail"),
    (dict(role="student"), "role"),
    (dict(name="  "), "name"),
])
def test_create_teacher_rejects_bad_input_with_words(db, kw, words):
    args = dict(name="T", email="t@x.org", password="long enough", role="teacher") | kw
    with db.begin() as s, pytest.raises(AuthError, match=words):
        create_teacher(session=s, **args)


def test_duplicate_email_is_refused(db):
    with db.begin() as s:
        create_teacher(session=s, name="T", email="t@x.org", password="long enough")
    with db.begin() as s, pytest.raises(AuthError, match="exists already"):
        create_teacher(session=s, name="T2", email="T@X.org", password="long enough 2")


def test_teacher_reads_own_class_not_anothers_and_admin_reads_all(db):
    with db.begin() as s:
        a = create_teacher(session=s, name="A", email="a@x.org", password="password-a")
        b = create_teacher(session=s, name="B", email="b@x.org", password="password-b")
        root = create_teacher(session=s, name="Root", email="root@x.org", password="password-r",
                              role="admin")
        ca, cb = SchoolClass(name="7a", teacher_id=a.id), SchoolClass(name="7b", teacher_id=b.id)
        s.add_all([ca, cb])
        s.flush()
        stu = crud.get_or_create_student(session=s, handle="bea")
        stu.class_id = cb.id
        ts = crud.start_session(session=s, student=stu)
        pa, pb, pr = Principal.of(a), Principal.of(b), Principal.of(root)
        ids = ca.id, cb.id, stu.id, ts.id
    ca_id, cb_id, stu_id, ts_id = ids
    with db() as s:
        assert require_class_access(session=s, principal=pa, class_id=ca_id).name == "7a"
        with pytest.raises(AccessDenied, match="not one of yours"):
            require_class_access(session=s, principal=pa, class_id=cb_id)
        with pytest.raises(AccessDenied):
            require_student_access(session=s, principal=pa, student_id=stu_id)
        with pytest.raises(AccessDenied):
            require_session_access(session=s, principal=pa, session_id=ts_id)
        # a class that does not exist reads the same as someone else's: no enumeration
        with pytest.raises(AccessDenied, match="does not exist or is not one of yours"):
            require_class_access(session=s, principal=pa, class_id=99999)
        assert require_session_access(session=s, principal=pb, session_id=ts_id).id == ts_id
        assert require_class_access(session=s, principal=pr, class_id=cb_id).id == cb_id
        assert require_session_access(session=s, principal=pr, session_id=ts_id).id == ts_id
        # a student reads their own session and no class
        me = Principal(id=stu_id, role="student")
        assert require_session_access(session=s, principal=me, session_id=ts_id).id == ts_id
        with pytest.raises(AccessDenied):
            require_class_access(session=s, principal=me, class_id=cb_id)
        with pytest.raises(AccessDenied, match="sign in"):
            require_class_access(session=s, principal=None, class_id=ca_id)


def test_role_is_reread_from_the_database(db):
    with db.begin() as s:
        boss = create_teacher(session=s, name="Boss", email="boss@x.org", password="password-1",
                              role="admin")
        other = create_teacher(session=s, name="O", email="o@x.org", password="password-2")
        c = SchoolClass(name="8c", teacher_id=other.id)
        s.add(c)
        s.flush()
        stale, cid = Principal.of(boss), c.id
        boss.role = "teacher"  # demoted
    with db() as s:
        assert current_principal(session=s, principal=stale).role == "teacher"
        with pytest.raises(AccessDenied):
            require_class_access(session=s, principal=stale, class_id=cid)
    with db.begin() as s:
        s.delete(s.get(Teacher, stale.id))
    with db() as s, pytest.raises(AccessDenied, match="no longer exists"):
        current_principal(session=s, principal=stale)


def test_principal_rejects_unknown_role():
    with pytest.raises(ValueError, match="role"):
        Principal(id=1, role="superuser")


def test_a_hash_with_old_parameters_is_upgraded_on_sign_in(db, monkeypatch):
    from argon2 import PasswordHasher

    import tutor.auth

    real = tutor.auth._hasher
    monkeypatch.setattr(tutor.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                              parallelism=1))
    with db.begin() as s:
        old = create_teacher(session=s, name="Old", email="old@x.org", password="old-password")
        old_hash, tid = old.password_hash, old.id
    monkeypatch.setattr(tutor.auth, "_hasher", real)
    with db.begin() as s:
        assert authenticate(session=s, email="old@x.org", password="old-password").id == tid
    with db() as s:
        new_hash = s.get(Teacher, tid).password_hash
    assert new_hash != old_hash and not real.check_needs_rehash(new_hash)


# ---------------------------------------------------------------- students
def test_a_student_gets_a_random_code_stored_only_as_an_argon2_hash(db):
    with db.begin() as s:
        klass = crud.create_class(session=s, name="7a", teacher_id=None)
        sam, code = create_student(session=s, name="Sam Lee", class_id=klass.id)
        _, other = create_student(session=s, name="Sam Lee", handle="Sam2")
        sid = sam.id
    assert re.fullmatch(r"[2-9a-z]{3}-[2-9a-z]{3}-[2-9a-z]{3}", code) and code != other
    with db() as s:
        row = s.get(Student, sid)
        assert (row.handle, row.display_name, row.class_id) == ("sam.lee", "Sam Lee", klass.id)
        assert row.code_hash.startswith("$argon2id$") and code not in row.code_hash
        assert s.scalar(select(Student.handle).where(Student.handle == "sam2")) == "sam2"
    with db.begin() as s:
        assert authenticate_student(session=s, handle=" Sam.Lee ", code=code).id == sid
        # case, spaces and dashes do not matter when typing it
        assert authenticate_student(session=s, handle="sam.lee",
                                    code=code.upper().replace("-", " ")).id == sid
        assert authenticate_student(session=s, handle="sam.lee", code=other) is None
        assert authenticate_student(session=s, handle="sam2", code=code) is None
        assert authenticate_student(session=s, handle="nobody", code=code) is None
        assert authenticate_student(session=s, handle="sam.lee", code="") is None


def test_a_student_without_a_code_cannot_sign_in_and_a_reset_code_replaces_the_old(db):
    with db.begin() as s:
        typed = crud.get_or_create_student(session=s, handle="ana")  # made by a typed name
        assert authenticate_student(session=s, handle="ana", code="") is None
        first = issue_sign_in_code(session=s, student=typed)
        second = issue_sign_in_code(session=s, student=typed)
    with db.begin() as s:
        assert authenticate_student(session=s, handle="ana", code=first) is None
        assert authenticate_student(session=s, handle="ana", code=second).handle == "ana"


def test_unknown_handle_costs_one_verification_like_a_wrong_code(db, monkeypatch):
    import tutor.auth

    with db.begin() as s:
        create_student(session=s, name="Bo")
    calls = []
    real = tutor.auth.verify_password
    monkeypatch.setattr(tutor.auth, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    with db.begin() as s:
        for handle in ("bo", "nobody"):
            calls.clear()
            assert authenticate_student(session=s, handle=handle, code="abc-def-ghj") is None
            assert len(calls) == 1


@pytest.mark.parametrize("kw, words", [
    (dict(name=" "), "name"),
    (dict(handle="no spaces please"), "handle"),
    (dict(handle="taken"), "exists already"),
    (dict(class_id=99999), "no class"),
])
def test_create_student_rejects_bad_input_with_words(db, kw, words):
    with db.begin() as s:
        crud.get_or_create_student(session=s, handle="taken")
    with db.begin() as s, pytest.raises(AuthError, match=words):
        create_student(session=s, **(dict(name="Kim") | kw))


def test_a_teacher_resets_codes_in_their_own_class_only(db):
    with db.begin() as s:
        a = create_teacher(session=s, name="A", email="a@x.org", password="password-a")
        b = create_teacher(session=s, name="B", email="b@x.org", password="password-b")
        root = create_teacher(session=s, name="R", email="r@x.org", password="password-r",
                              role="admin")
        ca = crud.create_class(session=s, name="7a", teacher_id=a.id)
        mine, _ = create_student(session=s, name="Mia", class_id=ca.id)
        pa, pb, pr, me = Principal.of(a), Principal.of(b), Principal.of(root), Principal.of(mine)
    with db.begin() as s:
        code = reset_student_code(session=s, principal=pa, student_id=me.id)
        assert authenticate_student(session=s, handle="mia", code=code).id == me.id
        with pytest.raises(AccessDenied, match="not in one of your classes"):
            reset_student_code(session=s, principal=pb, student_id=me.id)
        with pytest.raises(AccessDenied, match="teacher or an administrator"):
            reset_student_code(session=s, principal=me, student_id=me.id)
        assert reset_student_code(session=s, principal=pr, student_id=me.id) != code
