"""What a number in a message measures, when it measures a time or a temperature.

"wait 5 minutes", "dame 5 minutos", "2 mins" and "its like 30 degrees in here" hold a number,
and a classifier that has mostly seen numbers in answers hears one; to a question about
fractions they are a pause and a remark about the heat, not a wrong answer. `measured(text)`
says which of `time` and `temperature` a number in the text is followed by a unit of
("5 minutes" -> {"time"}), and `named(text)` which of them the text names at all (a
question's prompt, hints and answers: "how many minutes is 3/4 of an hour?"). The dialogue
takes an answer measured in what its question never names for the move the classifier heard
next (`tutor.dialogue`).

The unit words (`data/numerals/units.json`, built by `tools/build_units.py`) are CLDR's long
names of the second, minute, hour and degree in every language babel carries, with English's
short forms ("mins", "secs", "hrs", "pm"); see that tool for the words left out.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

from tutor.answers import as_digits
from tutor.numerals import lexicon, plain
from tutor.settings import REPO_DATA_DIR

UNITS = REPO_DATA_DIR / "numerals" / "units.json"
KINDS = ("time", "temperature")


def in_signs(word: str) -> bool:
    """Written in Chinese, Japanese or Korean signs, which run on without spaces."""
    return any(unicodedata.name(c, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA"))
               for c in word)


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    """Per kind: its unit words, each a word of its own (or a sign of Chinese, Japanese or
    Korean, which run on)."""
    table = json.loads(UNITS.read_text(encoding="utf-8"))
    out = {}
    for kind in KINDS:
        words = sorted(table[kind], key=len, reverse=True)  # "minutes" before "min"
        spaced = "|".join(re.escape(w) for w in words if not in_signs(w))
        run_on = "|".join(re.escape(w) for w in words if in_signs(w)) or "(?!)"
        out[kind] = re.compile(rf"(?<![^\W\d_])(?:{spaced})(?![^\W\d_])|{run_on}")
    return out


def _plain(text: str) -> str:
    return " ".join(plain(text).replace("’", "'").replace("o'clock", "oclock").split())


def _counts(before: str) -> bool:
    """`before` ends in a number: digits, or a number word of any language ("zwei", "五")."""
    if before[-1:].isdigit():
        return True
    word = re.search(r"[^\W\d_]+$", before)
    if word is None:
        return False
    cardinals = lexicon()[0]
    if in_signs(word[0]):  # run on: "等我五" ends in "五"
        return any(word[0][-k:] in cardinals for k in range(1, min(len(word[0]), 4) + 1))
    return word[0] in cardinals


def measured(text: str) -> frozenset[str]:
    """The kinds (`time`, `temperature`) that a number in `text` is followed by a unit of:
    "wait five minutes", "warte zwei Minuten" -> {"time"}, "30°C" -> {"temperature"}, "5 cm"
    and "3/4" -> {}."""
    s = _plain(as_digits(text))
    return frozenset(kind for kind, unit in _patterns().items()
                     if any(_counts(s[:m.start()].rstrip()) for m in unit.finditer(s)))


def named(text: str) -> frozenset[str]:
    """The kinds whose unit words `text` holds anywhere ("how many minutes..." -> {"time"})."""
    s = _plain(text)
    return frozenset(kind for kind, unit in _patterns().items() if unit.search(s))
