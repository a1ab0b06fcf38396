"""The adaptive loop end to end: real Chromium, the fake camera from ../shared/media, the real
model. Three wrong answers and two frustrated messages, with the camera on, turn the tutor
calm and slower within those turns, and the student is told so in plain words."""

from __future__ import annotations

import time

import pytest

from tests.ui.test_browser import _shot, app, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.shared]
MESSAGES = ("hi", "3/5", "this is stupid, I keep getting it wrong", "5/8",
            "ugh I hate fractions, this is so annoying", "8/3")


def test_wrong_answers_and_frustration_calm_the_tutor_with_the_camera_on(app, page):  # noqa: F811
    from sqlalchemy import func, select

    from tutor.db.models import Adaptation, Turn

    _, db, _ = app
    page.locator("#student-name textarea, #student-name input").first.fill("Kai")
    # the tick alone starts the camera (the page presses the webcam's buttons itself;
    # pressing them here as well would stop it again)
    page.locator("#consent-camera input[type=checkbox]").check()
    page.locator("#student-camera-note").get_by_text("Camera:").wait_for(timeout=90_000)
    box = page.locator("#student-message textarea")
    with db() as s:
        before = s.scalar(select(func.count(Turn.id)))
    for i, message in enumerate(MESSAGES, 1):
        box.fill(message)
        box.press("Enter")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db() as s:
                if s.scalar(select(func.count(Turn.id))) >= before + i:
                    break
            time.sleep(0.3)
        page.wait_for_timeout(3_000)  # the reply streams in (and clears the box) before the next
    page.locator("#student-noticed").get_by_text("tone: calm").wait_for(timeout=30_000)
    with db() as s:
        adaptations = s.scalars(select(Adaptation).order_by(Adaptation.id)).all()[-len(MESSAGES):]
    assert adaptations[-1].tone == "calm"
    assert adaptations[-1].pacing in ("slower", "worked_example")
    assert any("calmer tone" in a.reason for a in adaptations)
    note = page.locator("#student-noticed").inner_text()
    assert "→" not in note and not any(c.isdigit() for c in note)
    _shot(page, "adaptive.png")  # the README's and the issue note's picture of the loop

    # the teacher's overview judges the same student struggling, camera smiles and all
    from tutor.auth import Principal
    from tutor.db import crud
    from tutor.db.models import Student, Teacher
    from tutor.reports import class_overview

    with db.begin() as s:
        kai = s.scalars(select(Student).where(Student.display_name == "Kai")).one()
        teacher = s.scalars(select(Teacher).where(Teacher.email == "rivera@school.test")).one()
        klass = crud.create_class(session=s, name="Kai's class", teacher_id=teacher.id)
        crud.enrol(session=s, student=kai, class_id=klass.id)
        (status,) = class_overview(session=s, principal=Principal.of(teacher), class_id=klass.id)
    assert status.struggling, status
    assert status.why
