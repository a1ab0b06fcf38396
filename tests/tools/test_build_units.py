"""The shipped unit words are what CLDR's unit names give, built again here."""

from __future__ import annotations

import json

from tools.build_units import NOT_UNITS, build
from tools.shipped import serialise
from tutor.units import UNITS


def test_the_shipped_unit_words_are_a_fresh_build():
    assert UNITS.read_text(encoding="utf-8") == serialise(build())


def test_letters_and_everyday_words_are_no_units_but_names_of_every_language_are():
    table = json.loads(UNITS.read_text(encoding="utf-8"))
    time, heat = set(table["time"]), set(table["temperature"])
    assert {"minutos", "minuten", "minuty", "хвилин", "دقائق", "分钟", "秒"} <= time
    assert {"degrees", "grados", "stopni", "градусів", "°c"} <= heat
    assert not (time | heat) & (NOT_UNITS | {"s", "h", "с", "ч", "a", "an", "il"})
