"""Build `data/numerals/lexicon.json`, the number words `tutor/numerals.py` reads answers with.

    PYTHONPATH=. python tools/build_numerals.py          # writes data/numerals/lexicon.json
    PYTHONPATH=. python tools/build_numerals.py --check  # exit 1 when the shipped file differs

The words come from the Unicode CLDR's number-spelling rules through `unicode-rbnf` (MIT; its
CLDR data under the Unicode License), for every language it covers but English (which
`tutor.answers` reads itself): the cardinals 0-100, the hundreds and a thousand, in every
rule set that spells a count (not years, cheques, dates or Korean's attributive forms, which
are everyday words too), each also lower case without accents, without spaces in scripts
that write none, and, for Cyrillic, Greek, Chinese and Korean, as `anyascii` spells it in
Latin letters (4 letters or more: "pyat", "ershiwu"; not "i" or "sa"); the hundreds and the
thousand also as they start a longer number ("ciento" of "ciento veinte", "hundert" of
"dreihundert"); and the stems of the ordinals 3-20 and 100, the bottom of a fraction ("un
cinquième", "tre quarti"). Where languages give one word two values, the value most
languages give it is kept ("tres": 3 in Spanish and Catalan, 60 in Danish); a tie drops the
word. Deterministic: the same library gives the same file.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from anyascii import anyascii

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.shipped import write_or_check  # noqa: E402
from tutor.numerals import _AND, _UNSPACED, LEXICON, _latin, plain  # noqa: E402

CARDINALS = (*range(101), *range(200, 1001, 100))
DENOMINATORS = (*range(3, 21), 100)
# Rule sets that spell something other than a count: years, cheques, dates, roman numerals.
# Korean's attributive forms (한, 두, 세, 네) are also "one", "yes" and other everyday words.
SKIP_RULESETS = ("year", "financial", "days", "roman", "verbose", "digits", "attributive")
# Scripts whose numbers students also type in Latin letters, as anyascii spells them.
ROMANISED = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u3400-\u9fff\uac00-\ud7af]")


def build() -> dict:
    """The lexicon as `tutor.numerals.lexicon` reads it, built from CLDR's rules."""
    from unicode_rbnf import FormatPurpose, RbnfEngine

    cardinals: dict[str, set[tuple[int, str]]] = {}  # words -> (value, language)
    ordinals: dict[str, set[tuple[int, str]]] = {}
    romanised: set[str] = set()
    spelled_in_latin: set[str] = set()

    def add(table: dict[str, set[tuple[int, str]]], words: str, value: int) -> None:
        words = " ".join(words.lower().replace("-", " ").replace("\u00ad", "").replace("\u200b", "")
                         .replace("’", "'").replace("ʼ", "'").split())
        if not words:
            return
        forms = {words, plain(words)}
        if _UNSPACED.search(words):
            forms.add(words.replace(" ", ""))  # Korean "열 일곱" is typed "열일곱" too
        roman = " ".join(anyascii(words).lower().replace("'", "").split())
        if table is cardinals and ROMANISED.match(words) and len(roman) >= 4:
            forms.add(roman)  # "pyat", "ershiwu"; not "i", "sa"
            romanised.add(roman)
        if _latin(words):
            spelled_in_latin.update(forms)
        for form in forms:
            table.setdefault(form, set()).add((value, language))

    for language in RbnfEngine.get_supported_languages():
        if language.split("_")[0] == "en":
            continue  # English is read by tutor.answers, which knows "this one" is no number
        try:
            engine = RbnfEngine.for_language(language)
        except Exception:  # a language whose rules the library cannot load: the others stay
            continue
        for purpose, numbers, table in ((FormatPurpose.CARDINAL, CARDINALS, cardinals),
                                        (FormatPurpose.ORDINAL, DENOMINATORS, ordinals)):
            for n in numbers:
                try:
                    spelled = engine.format_number(n, purpose).text_by_ruleset
                except Exception:  # no rule set for this purpose in this language
                    break
                for ruleset, words in spelled.items():
                    if not any(skip in ruleset for skip in SKIP_RULESETS):
                        add(table, words, n)
        for hundred in (*range(100, 1000, 100), 1000):  # "ciento" of "ciento veinte"
            one = engine.format_number(1).text_by_ruleset
            for ruleset, words in engine.format_number(hundred + 1).text_by_ruleset.items():
                head = words.removesuffix(one.get(ruleset, "\0")).split()
                while head and head[-1] in _AND:
                    head.pop()  # "cento e um": "cento"
                if head and words.split() != head and ruleset in one \
                        and not any(skip in ruleset for skip in SKIP_RULESETS):
                    add(cardinals, " ".join(head), hundred)
                    if len(head) == 2 and head[0] in one.values():
                        add(cardinals, head[1], hundred)  # "одна тысяча": "тысяча" alone
                    for unit in one.values():  # "einhundert": "hundert" in "dreihundert"
                        if len(head) == 1 and head[0].startswith(unit) \
                                and len(head[0]) - len(unit) >= 4:
                            add(cardinals, head[0][len(unit):], hundred)
    card = {w: _most(v) for w, v in cardinals.items() if _most(v) is not None}
    stems: dict[str, set[tuple[int, str]]] = {}
    for words, values in ordinals.items():
        *before, word = words.split()  # "al treilea", "wa nne": the ordinal's own word
        if any(len(w) > 3 or w in cardinals for w in before):
            continue  # "décimo primeiro", "dix-huitième": its last word is another ordinal
        stem = word[:-2] if len(word) >= 7 else word[:-1] if len(word) >= 5 else word
        if len(stem) >= 4 and stem not in card:
            stems.setdefault(stem, set()).update(values)
    return {"source": f"unicode-rbnf {version('unicode-rbnf')}",
            "cardinals": card,
            "stems": {s: _most(v) for s, v in stems.items() if _most(v) is not None},
            "romanised": sorted(romanised - spelled_in_latin)}


def _most(said: set[tuple[int, str]]) -> int | None:
    """The value most languages give a word ("tres": 3 in Spanish and Catalan, 60 in Danish);
    None when two values tie ("du": 2 in Lithuanian, 10 in Akan)."""
    votes = Counter(value for value, _ in said)
    (best, n), *rest = votes.most_common()
    return None if rest and rest[0][1] == n else best


def main() -> None:
    write_or_check(LEXICON, build, __doc__, lambda table: (
        f"{len(table['cardinals'])} cardinals, {len(table['stems'])} ordinal stems, "
        f"{len(table['romanised'])} romanised ({table['source']})"))


if __name__ == "__main__":
    main()
