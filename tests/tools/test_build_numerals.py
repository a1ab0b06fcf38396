"""The shipped number words are what CLDR's rules give, built again here."""

from __future__ import annotations

from tools.build_numerals import _most, build
from tools.shipped import serialise
from tutor.numerals import LEXICON


def test_the_shipped_lexicon_is_a_fresh_build():
    assert LEXICON.read_text(encoding="utf-8") == serialise(build())


def test_a_tie_between_languages_drops_the_word_and_a_majority_keeps_its_value():
    assert _most({(2, "lt"), (10, "ak")}) is None
    assert _most({(3, "es"), (3, "ca"), (60, "da")}) == 3
