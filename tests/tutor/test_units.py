from __future__ import annotations

import pytest

from tutor.units import measured, named


@pytest.mark.parametrize("text", [
    "2 mins", "wait 5 minutes", "wait five minutes", "give me 10 min", "5min", "1 sec",
    "she say 12 oclock ok", "its 9pm", "dame 5 minutos", "dame cinco minutos",
    "warte zwei Minuten", "daj mi dwie minuty", "почекай 5 хвилин", "انتظر 5 دقائق",
    "等我5分钟", "五分钟", "5秒待って", "i spent 20 minutes on this"])
def test_a_number_followed_by_a_time_is_measured_in_time(text):
    assert measured(text) == {"time"}


@pytest.mark.parametrize("text", ["its like 30 degrees in here", "30°C", "hace 35 grados"])
def test_a_number_followed_by_degrees_is_a_temperature(text):
    assert measured(text) == {"temperature"}


@pytest.mark.parametrize("text", [
    "3/4", "x = 5", "5 cm", "three quarters", "4分の3", "四分之三", "4분의 3",  # 分: a fraction
    "c'est 5 mais je sais pas", "give me a minute", "one more minute pls",  # no number before
    "its hot in here", "5 time"])
def test_answers_and_a_unit_without_a_number_measure_nothing(text):
    assert measured(text) == frozenset()


def test_a_question_names_the_kinds_its_words_hold():
    assert named("How many minutes is 3/4 of an hour?") == {"time"}
    assert named("The angle is 90 degrees. What is half of it?") == {"temperature"}
    assert named("What is 3/4 of 20?") == frozenset()
