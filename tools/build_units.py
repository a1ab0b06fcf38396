"""Build `data/numerals/units.json`, the words `tutor/units.py` knows a time or a temperature by.

    PYTHONPATH=. python tools/build_units.py          # writes data/numerals/units.json
    PYTHONPATH=. python tools/build_units.py --check  # exit 1 when the shipped file differs

A number followed by one of them is a time ("dame 5 minutos", "warte 2 Minuten", "2 mins") or
a temperature ("its like 30 degrees in here"), not the answer to a question that measures no
time or temperature. The words come from the Unicode CLDR's unit names through `babel` (BSD;
its CLDR data under the Unicode License): the long names of the second, the minute, the hour,
the degree Celsius and Fahrenheit and the angle's degree in every locale babel carries, lower
case, also without accents. The days, weeks, months and years are left out: their names are
everyday words in too many languages ("dan" is "and" in Indonesian, "mais" "but" in French).
Short names in alphabetic scripts are left out too ("s", "с", "ч": letters, not units), as are
words that are something else in a language students write ("time", "hola", "sat", "vor",
"eur") and the Chinese, Japanese and Korean minute ("分", "분"), which also writes a fraction
("4分の3", "4분의 3": three quarters). English's own short forms are added ("mins", "secs",
"hrs", "deg", "pm", "oclock"). Deterministic: the same library gives the same file.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.shipped import write_or_check  # noqa: E402
from tutor.numerals import plain  # noqa: E402
from tutor.units import UNITS, in_signs  # noqa: E402

KINDS = {
    "time": ("duration-second", "duration-minute", "duration-hour"),
    "temperature": ("temperature-celsius", "temperature-fahrenheit", "temperature-generic",
                    "angle-degree"),
}
ENGLISH = {
    "time": "sec secs min mins hr hrs oclock pm".split(),
    "temperature": "deg degs ° °c °f".split(),
}
NOT_UNITS = frozenset("time hola sat vor eur 分 분".split())


def build() -> dict:
    from babel import Locale, localedata

    words: dict[str, set[str]] = {kind: set(ENGLISH[kind]) for kind in KINDS}
    for name in sorted(localedata.locale_identifiers()):
        try:
            patterns = Locale.parse(name)._data["unit_patterns"]
        except (ValueError, KeyError):
            continue
        for kind, units in KINDS.items():
            for unit in units:
                forms = (patterns.get(unit) or {}).get("long") or {}
                for count, pattern in forms.items():
                    if count == "per" or not isinstance(pattern, str):
                        continue
                    word = " ".join(pattern.replace("{0}", " ").lower().split()).strip(".")
                    if not word or word in NOT_UNITS:
                        continue
                    if not in_signs(word) and sum(c.isalpha() for c in word) < 3:
                        continue
                    words[kind].update({word, plain(word)})
    return {"source": f"babel {version('babel')}",
            **{kind: sorted(w for w in found if w not in NOT_UNITS)
               for kind, found in words.items()}}


def main() -> None:
    write_or_check(UNITS, build, __doc__, lambda table: ", ".join(
        f"{len(table[kind])} {kind} words" for kind in KINDS) + f" ({table['source']})")


if __name__ == "__main__":
    main()
