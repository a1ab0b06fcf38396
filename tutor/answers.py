"""Check a student's answer by code, never by an LLM.

`check_answer(question, raw)` returns a Verdict. Numbers, fractions, expressions and
equations are compared symbolically with sympy, so equal forms pass ("0.5", "1/2", "2/4";
"2x+1" and "1+2*x"; "x = 3", "3 = x" and "3" for a solved equation). Free text is matched
to the question's expected ideas with a similarity function: the app passes the text
encoder's cosine similarity; the default is lexical overlap, which needs no model.

Input is parsed safely: only digits, single-letter variables the question uses and
arithmetic signs get through to sympy's parser, the length is capped and powers are
bounded, so no input can run code or hang the tutor. Unreadable input is "not correct"
with a message saying what to type, never an exception.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from tutor.curriculum import Misconception, Question
from tutor.numerals import MINUS_WORDS, PERCENT_BEFORE, PERCENT_WORDS, lexicon, spelled


class _Sympy:
    """sympy, imported at the first attribute read: its import takes seconds (a quarter of the
    page's imports on a loaded machine) and the page shows without it. `attune run` warms it
    in the background (warm())."""

    def __getattr__(self, name: str):
        import sympy

        return getattr(sympy, name)


sympy = _Sympy()

Similarity = Callable[[str, str], float]

MAX_CHARS = 120  # longest answer we parse
MAX_POWER = 30  # largest total degree of the powers in an answer, see _power_load
DEFAULT_MIN_SIMILARITY = 0.5  # free text: the best idea must reach this
CLOSE = 0.01  # relative: "close, but not exact"


@cache
def _parser():
    """sympy's parse_expr, the transformations answers are read with, and the only names an
    answer may use."""
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        rationalize,
        standard_transformations,
    )

    transforms = standard_transformations + (
        implicit_multiplication_application,
        convert_xor,
        rationalize,
    )
    names = {
        "Integer": sympy.Integer,
        "Float": sympy.Float,
        "Rational": sympy.Rational,
        "Symbol": sympy.Symbol,
        "Add": sympy.Add,
        "Mul": sympy.Mul,
        "Pow": sympy.Pow,
        "sqrt": sympy.sqrt,
        "pi": sympy.pi,
    }
    return parse_expr, transforms, names


def warm() -> None:
    """Import sympy and its parser, and load the other languages' number words, now (attune
    run does it in the background at start)."""
    _parser()
    lexicon()


_FUNCTIONS = {"sqrt", "pi"}
_ALLOWED_CHARS = re.compile(r"^[0-9a-z+\-*/^().=\s]*$")
_UNICODE = {
    "×": "*",
    "·": "*",
    "÷": "/",
    "−": "-",
    "–": "-",
    "—": "-",
    "⁄": "/",
    "²": "^2",
    "³": "^3",
    "½": "(1/2)",
    "¼": "(1/4)",
    "¾": "(3/4)",
    "⅓": "(1/3)",
    "⅔": "(2/3)",
    "√": "sqrt",
}
_MIXED = re.compile(r"(?<![\d.)])(-?)(\d+)\s+(\d+)\s*/\s*(\d+)(?![\d.(])")
_LEAD_INS = re.compile(
    r"^(?:(?:i think|i guess|maybe|is it|it'?s|it is|the answer is|answer|my answer is|"
    r"that'?s|that is|so|um+|er+|ok|okay)\b[\s,:]*)+"
)
_STOPWORDS = frozenset(
    "a an the is are was were be to of in on at for and or it its it's this that these those "
    "by with "
    "as so we you i they he she them there their then than if into from do does did can will just "
    "how what which when why out up one your our my me".split()
)


# ---------------------------------------------------------------- what a student writes


_UNITS = {
    "zero": 0, "nought": 0, "naught": 0, "oh": None, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
         "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_DENOMINATORS = {
    "half": 2, "halves": 2, "halfs": 2, "third": 3, "quarter": 4, "fourth": 4, "forth": 4,
    "fifth": 5,
    "fith": 5, "sixth": 6, "seventh": 7, "eighth": 8, "eigth": 8, "ninth": 9, "tenth": 10,
    "eleventh": 11, "twelfth": 12, "twelth": 12, "thirteenth": 13, "fifteenth": 15,
    "sixteenth": 16, "twentieth": 20, "hundredth": 100, "thousandth": 1000,
}
_DIGITS_WORDS = r"zero|one|two|three|four|five|six|seven|eight|nine"


def _denominator(word: str) -> int | None:
    for w in (word, word[:-1] if word.endswith("s") else word):
        if w in _DENOMINATORS:
            return _DENOMINATORS[w]
    return None


def _cardinal(words: list[str], i: int) -> tuple[int | None, int]:
    """The whole number spelled from words[i] ("twenty five", "a hundred and two"), and the
    index after it; (None, i) when there is none."""
    total, current, j, seen = 0, 0, i, False
    while j < len(words):
        w = words[j]
        if w in _UNITS and _UNITS[w] is not None:
            if seen and current % 10 == 0 and current % 100 >= 20 and _UNITS[w] < 10:
                current += _UNITS[w]  # "twenty five"
            elif seen and current % 100 == 0 and current:
                current += _UNITS[w]  # "hundred and two"
            elif seen and not current and total:
                current = _UNITS[w]  # "six thousand eight hundred", "two thousand and five"
            elif seen:
                break
            else:
                current = _UNITS[w]
        elif w in _TENS:
            if seen and current % 100 != 0:
                break
            current += _TENS[w]
        elif w in _SCALES and (seen or w == "hundred"):
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        elif w in ("a", "an") and not seen and j + 1 < len(words) and words[j + 1] in _SCALES:
            current = 1
        elif w == "and" and seen and (current % 100 == 0 or total) and j + 1 < len(words) \
                and (words[j + 1] in _UNITS or words[j + 1] in _TENS):
            pass  # "a hundred and twenty"
        else:
            break
        seen = True
        j += 1
    return (total + current, j) if seen else (None, i)


_ONE_AS_PRONOUN = frozenset(
    "this that which each every another the next last any other same first easy hard tricky "
    "new only right wrong".split())


def words_to_numbers(text: str) -> str:
    """Spelled numbers as digits: "three eighths" -> "3/8", "one and a half" -> "1 1/2",
    "twenty five" -> "25", "zero point four" -> "0.4", "minus three" -> "-3",
    "3 quarters" -> "3/4". Other words are kept as they are."""
    tokens = re.findall(r"\d*\.\d+|\d+|[^\W\d_]+|[^\sa-z\d]", text)  # "né" one word
    out: list[str] = []
    i = 0
    while i < len(tokens):
        w = tokens[i]
        if w == "one" and i and tokens[i - 1] in _ONE_AS_PRONOUN and not (
                i + 1 < len(tokens) and _denominator(tokens[i + 1])):
            out.append(w)  # "this one", "the next one": a question, not the number 1
            i += 1
            continue
        value, j = (int(w), i + 1) if re.fullmatch(r"\d+", w) else _cardinal(tokens, i)
        if value is None and w in ("a", "an", "one") and i + 1 < len(tokens) \
                and _denominator(tokens[i + 1]):
            value, j = 1, i + 1
        if value is None and w in ("half", "quarter"):
            out.append(f"1/{_denominator(w)}")  # "half", "quarter"
            i += 1
            continue
        if value is None and w == "point" and i + 1 < len(tokens) and (
                tokens[i + 1].isdigit() or (_UNITS.get(tokens[i + 1]) or 10) < 10):
            value, j = 0, i  # "point 4", "point five"
        if value is None:
            if w in ("minus", "negative", "neg") and i + 1 < len(tokens) and (
                    _cardinal(tokens, i + 1)[0] is not None or tokens[i + 1].isdigit()
                    or tokens[i + 1] in ("half", "quarter") or (  # "minus a half"
                        tokens[i + 1] in ("a", "an") and i + 2 < len(tokens)
                        and _denominator(tokens[i + 2]))):
                out.append("-")
                i += 1
                continue
            out.append(w)
            i += 1
            continue
        number = str(value)
        if value is not None and j < len(tokens) and tokens[j] == "point":
            k, decimals = j + 1, ""
            while k < len(tokens) and (tokens[k] in _UNITS and _UNITS[tokens[k]] is not None
                                       and _UNITS[tokens[k]] < 10 or tokens[k].isdigit()
                                       or tokens[k] == "oh"):  # "four point oh five"
                decimals += "0" if tokens[k] == "oh" else str(_UNITS.get(tokens[k], tokens[k]))
                k += 1
            if decimals:
                number, j = f"{value}.{decimals}", k
        elif j < len(tokens) and (d := _denominator(tokens[j])) and not w.isdigit() or (
                j < len(tokens) and w.isdigit() and _denominator(tokens[j])
                and not tokens[j].startswith("sec")):
            d = _denominator(tokens[j])
            number, j = f"{value}/{d}", j + 1
        elif j + 1 < len(tokens) and tokens[j] == "and" and (
                tokens[j + 1] in ("a", "an", "one") and j + 2 < len(tokens)
                and _denominator(tokens[j + 2])):
            number, j = f"{value} 1/{_denominator(tokens[j + 2])}", j + 3
        elif j + 2 < len(tokens) and tokens[j] == "and" and (
                (n := _cardinal(tokens, j + 1))[0] is not None) and n[1] < len(tokens) and (
                _denominator(tokens[n[1]])):
            number, j = f"{value} {n[0]}/{_denominator(tokens[n[1]])}", n[1] + 1
        out.append(number)
        i = j
    return _join(out)


def _join(tokens: list[str]) -> str:
    s = " ".join(tokens)
    s = re.sub(r"\s*([/^*=+()%])\s*", r" \1 ", s)
    # a sign, not a subtraction: "- 3" -> "-3", but "x - 1" keeps its minus between
    s = re.sub(r"(?<![\d)])(?<!\b[b-hj-z])(?<!\b[b-hj-z] )\s*-\s*(?=\d)", " -", s)
    return re.sub(r"\s+", " ", s).strip()


_OPERAND = r"(?=\s*(?:[-(\d]|[a-z](?![a-z])))"  # a sign said in words needs a number after it
_WORD_OPS = (  # ("took the 3 over wrong" holds no fraction)
    (rf"(?:\bdivided by|\bdivide by|\bover|\bout of)\b{_OPERAND}", "/"),
    (rf"(?:\bmultiplied by|\btimes)\b{_OPERAND}", "*"),
    (rf"\bplus\b{_OPERAND}", "+"),
    (r"(?<=[\d\w)] )minus\b", "-"),
    (r"\bis equal to\b|\bequal to\b|\bequals\b|\bequal\b", "="),
    (r"\bper ?cent\b|\bpercentage\b|(?<=\d )(?:persent|precent|percnt|present)\b", "%"),
    (r"\bsquared\b", "^2"),
)
_FILLERS = frozenset(
    "i think guess believe maybe perhaps its it is the answer answers my so um umm ummm uh uhh "
    "er erm hmm hmmm ok okay well right lol sure probably prob got get say mean which that "
    "thats then simplifies simplified to or final ans yes yeah yo yep just correct am im "
    "be would should could pretty like hm oh ah".split()
) | frozenset(  # units after a number
    "mm cm m km kg g mg l ml cl cm2 m2 sq square cubic degree degrees deg metre metres meter "
    "meters centimetre centimetres centimeter centimeters millimetres kilometres kilometers "
    "gram grams kilogram kilograms litre litres liter liters second seconds sec secs minute "
    "minutes min mins hour hours hr hrs day days pound pounds dollar dollars euro euros pence "
    "p cents quid bucks unit units piece pieces slice slices part parts".split()
)
_TIME_UNITS = frozenset("second seconds sec secs minute minutes min mins moment".split())
_MARKERS = re.compile(
    r"\b(so|therefore|thus|then|hence|is|its|thats|equals|makes|gives|get|got|mean|answer|"
    r"simplifies to|simplified|final|final answer|no wait|wait|i mean|actually|sorry|oh no|"
    r"oops|nope|no)"
    r"[\s,.;:!?]*$|=\s*$"
)
_UNIT_LETTERS = frozenset("mglsh")
# "a" is an article ("a half", "its a 5") unless maths is written onto it: "a^5", "a = 4",
# "3 + a", or a number glued to it ("2a", which _written marks as GLUED_A before it spaces the
# number from the letter)
GLUED_A = "\ue000"
_MATH_TOKEN = re.compile(
    r"\d+:\d+(?![\d.])|\d*\.\d+|\d+|\bsqrt\b|\bpi\b|(?<![^\W\d_])[b-hj-z](?![^\W\d_])|"
    r"(?:(?<=[=+*/^(])|(?<=[=+*/^(] )|(?<![a-z])(?=a\s*[\^=+*/)]))a(?![a-z])|"
    rf"{GLUED_A}|[+\-*/^=()%]"
)
_PROSE = re.compile(r"^(?:[^\W_]|[\s.,?!'’+\-*/^=()%£$€½¼¾⅓⅔×÷−])*$")  # words and maths, no code
_CHOICE = re.compile(
    r"^(?:(?:i think|i guess|maybe|its|it'?s|it is|is it|the answer is|answer|option|choice|"
    r"letter)\s*)*\(?([a-h])\)?[\s.!?]*"
    r"(?:i think|i guess|maybe|right|is (?:the answer|right|correct))?[\s.!?]*$"
)


def _ordinal_fraction(m: re.Match) -> str:
    """ "3 8ths", "three 8ths" -> "3 /8", "three /8" (a count of eighths); after any other
    word, the ordinal's number alone ("in 100ths" -> "in 100")."""
    count, denominator = m[1], m[2]
    if count.isdigit() or count in _UNITS or count in _TENS:
        return f"{count} /{denominator}"
    return f"{count} {denominator}"


# Other languages' signs around digits ("menos 5", "4分の3", "25 por ciento", "yüzde 25"): the
# words a student of that language types beside a number (tutor.numerals reads the numbers
# they spell, "menos cinco" -> "-5", when no number is typed).
_FOREIGN = (
    (re.compile(rf"(?<!\w)(?:{MINUS_WORDS})\s*(?=\d)"), "-"),
    (re.compile(r"(\d+)\s*(?:分の|分之|분의)\s*(\d+)"), r"\2/\1"),  # the bottom first
    (re.compile(r"百分之\s*(\d+(?:\.\d+)?)"), r"\1%"),
    (re.compile(rf"(?<!\w)(?:{PERCENT_BEFORE})\s*(\d+(?:[.,]\d+)?)"), r"\1%"),
    (re.compile(rf"(\d)\s*(?:{PERCENT_WORDS})(?!\w)"), r"\1%"),
)


# typed faces that hold maths signs, on their own between spaces: -_- -.- ^^ :( >:( :/ :-) xD
_FACES = re.compile(r"(?<!\S)(?:-[_.]+-|\^_*\^|>?[:;]'?-?[()/\\|pdo]+|x+d+)(?!\S)")
# "2 pounds 50", "two pounds seventy", "3 dollars and 5 cents": one amount
_MONEY = re.compile(r"(\d+)\s*(?:pounds?|quid|dollars?|euros?|bucks)\s*(?:and\s*)?"
                    r"(\d{1,2})(?![\d.])(?:\s*(?:p|pence|cents?)\b)?")


def _written(text: str) -> str:
    """A message rewritten for reading maths out of it: lower case, symbols, decimal commas,
    spelled numbers and word operators as signs."""
    s = text.strip().lower().replace("’", "'")
    s = _FACES.sub(" ", s)  # "7 -_-" is 7, "-_- 9/10" is 9/10: a face, not a minus
    s = re.sub(r"(\d)\s*([½¼¾⅓⅔])", r"\1 \2", s)  # 1½ is one and a half
    s = re.sub(r"(\d)\s*又\s*(?=\d+\s*(?:分の|分之|분의))", r"\1 ", s)  # 一又二分之一: one and a half
    for pattern, sign in _FOREIGN:
        s = pattern.sub(sign, s)
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = re.sub(r"(\d) \((\d)/(\d)\)", r"\1 \2/\3", s)
    s = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", s)  # twenty-five
    s = re.sub(r"(?<![\d.])0,(\d+)", r"0.\1", s)  # 0,375
    s = re.sub(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])",
               lambda m: m[0].replace(",", ""), s)  # 1,500 and 1,000,000
    s = re.sub(r"(?<![\d.])\d{1,3}(?: 0\d\d)+(?![\d.])",
               lambda m: m[0].replace(" ", ""), s)  # 10 000: a group of 3 that starts with 0
    s = re.sub(r"(\d),(\d{1,2})(?!\d)", r"\1.\2", s)  # 3,5 (a decimal comma)
    s = re.sub(r"[£$€]\s*(?=\d)", "", s)
    s = re.sub(r"(\b[a-z]+|\d+)\s+(\d+)(?:sts|nds|rds|ths)\b", _ordinal_fraction, s)
    s = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", s)
    s = re.sub(r"(?<=[a-z])'(?=[a-z])", "", s)  # it's -> its
    s = re.sub(r"\b(?!sqrt)[a-z]+\d+[a-z\d]*\b|\b\d+(?:day|moro|morrow|ever|nite|night|u)\b",
               " txt ", s)  # texting: g2g, l8r, b4, sk1p, 2day, 4ever
    s = re.sub(r"(?<=\d)a\b", GLUED_A, s)  # "2a": the unknown a, not the article
    s = words_to_numbers(s)
    s = _MONEY.sub(lambda m: f"{m[1]}.{int(m[2]):02d}", s)
    s = re.sub(r"(\d) : (\d)", r"\1:\2", s)  # a ratio or a time: "3:2", "3:30"
    for pattern, sign in _WORD_OPS:
        s = re.sub(pattern, f" {sign} ", s)
    s = re.sub(r"(\d)\s+and\s+(\d+\s*/\s*\d+)", r"\1 \2", s)  # "1 and 1/2"
    s = re.sub(r"(\d|\b[b-hj-z])\s+(?:is|(?:would|must|should|will|has to|could) be)\s+"
               r"(?=-?\s*[\d(])", r"\1 = ", s)  # "x is 5", "6/8 is 3/4", "x must be 5"
    return re.sub(r"\s+", " ", s).strip()


@lru_cache(maxsize=4096)
def _read(raw: str) -> tuple[str, bool | None]:
    """`_written(raw)`; when that holds no number, or one that leaves more of the message
    unread, the same for the message with numbers spelled in another language read as digits
    ("tres cuartos" -> "3/4", "zero vírgula quatro" -> "0.4", "3 huitièmes" -> "3/8"), and
    whether that reading is sure (tutor.numerals). The flag is None when the English reading
    stands."""
    s = _written(raw)
    found = _chunks(s)
    digits = re.search(r"\d", raw)
    if digits and not found:
        return s, None  # digits that hold no number: texting ("g2g"), a face ("-_-")
    reading = spelled(raw, ignore=_FILLERS)
    if reading is None or digits and not reading.sure:
        return s, None
    other = _written(reading.text)
    if found and _unread(other) >= _unread(s):
        return s, None  # read at least as fully in English: "3 quarters", "minus 4"
    return other, reading.sure


def _words(s: str, found: list[tuple[int, int]]) -> list[str]:
    """The words of a written message outside its maths (`found`, its `_chunks`), in letters
    of any script: "なんで4をかけるの" keeps its words."""
    for a, b in reversed(found):
        s = s[:a] + " " + s[b:]
    return re.findall(r"[^\W\d_]+", s)


def _unread(s: str) -> int:
    """How many words of a written message are neither maths nor fillers."""
    return sum(w not in _FILLERS for w in _words(s, _chunks(s)))


def _chunks(s: str) -> list[tuple[int, int]]:
    """(start, end) of each run of maths tokens, separated only by spaces."""
    runs: list[list[int]] = []
    for m in _MATH_TOKEN.finditer(s):
        if runs and not s[runs[-1][1]:m.start()].strip():
            runs[-1][1] = m.end()
        else:
            runs.append([m.start(), m.end()])
    return [(a, b) for a, b in runs if re.search(r"\d", s[a:b])]


def _tidy(chunk: str) -> str:
    chunk = chunk.strip().strip("=").strip()
    if len(set(chunk.split())) == 1:
        chunk = chunk.split()[0]  # "64 64 64": said again, one answer
    lead = re.fullmatch(r"([a-z])\s+(-?[\d.]+(?:/\d+)?)", chunk)
    if lead:  # "is x 9?": the unknown named; "e 13", "y 5": a word of another language
        return f"x = {lead[2]}" if lead[1] == "x" else lead[2]
    parts = re.fullmatch(r"(.*\d)\s+([a-z])", chunk)
    if parts and parts[2] in _UNIT_LETTERS and "=" not in chunk:
        chunk = parts[1]  # "5 m": a unit, not m times 5
    sides = [p.strip() for p in chunk.split("=") if p.strip()]
    if len(sides) < 2:
        return sides[0] if sides else ""
    lone = re.fullmatch(r"[a-z]", sides[0])
    if lone and len(sides) >= 2:
        return f"{sides[0]} = {sides[-1]}"
    if re.fullmatch(r"[a-z]", sides[-1]) and len(sides) == 2:
        return f"{sides[-1]} = {sides[0]}"
    if len(sides) == 2 and re.search(r"[a-z]", sides[0]) and not re.search(r"[a-z]", sides[1]):
        return f"{sides[0]} = {sides[1]}"  # an equation left to solve: the checker says so
    return sides[-1]  # "6/8 = 3/4": the last expression


_BECAUSE = re.compile(r"\b(?:because|cos|coz|cuz|cause|since)\b")
_DENIED = re.compile(r"\b(?:not|isnt|aint|never)[\s,]*$")  # just before a number: denied


def _pick(s: str) -> tuple[int, int] | None:
    found = _chunks(s)
    if not found:
        return None
    denied = [c for c in found if _DENIED.search(s[:c[0]])]
    if denied and len(denied) < len(found):  # "its 2/4, not 2/5": the one denied is not it
        found = [c for c in found if c not in denied]
    why = _BECAUSE.search(s)
    if why and found[0][1] <= why.start():  # "200, because 50 is 20%": the reason follows
        found = [c for c in found if c[1] <= why.start()]
    steps = [c for c in found if s[c[0]] in "*/+=^"]  # "times 2.": a step of the working
    if steps and len(steps) < len(found):
        found = [c for c in found if c not in steps]
    if len(found) > 1 and not re.search(r"[=+*^]|\s-", s[found[-1][0]:found[-1][1]]) \
            and re.search(r"[,.;!?]", s[found[-2][1]:found[-1][0]]):
        # spoken working, then the result on its own: "84 / 7 = 12, times 3, 36"
        return found[-1]
    marked = [c for i, c in enumerate(found)
              if i > 0 and _MARKERS.search(s[found[i - 1][1]:c[0]])]
    solved = [c for c in found if re.fullmatch(r"[a-z]\s*=\s*-?[\d.]+(?:\s*/\s*\d+)?",
                                               s[c[0]:c[1]].strip())]
    if len(found) > 1 and solved and solved[-1] != found[0]:
        return solved[-1]
    if marked:
        return marked[-1]
    stated = [c for c in found[1:] if "=" in s[c[0]:c[1]]]  # "25% of 48 is 12": the result
    return stated[-1] if stated else found[0]


def as_digits(text: str) -> str:
    """The message as the answer reader reads it: lower case, with its numbers spelled in
    words, English or another language's, as digits ("wait five minutes" -> "wait 5
    minutes", "dame cinco minutos" -> "dame 5 minutos")."""
    raw = text if isinstance(text, str) else str(text)
    if len(raw) > 10 * MAX_CHARS:
        return raw.lower()
    return _read(raw)[0]


def extract_answer(text: str) -> str | None:
    """The answer in a student's message, written plainly, or None when there is none.

    "i think its 3/4" -> "3/4", "6/8 = 3/4" -> "3/4", "three eighths" -> "3/8",
    "1 and 1/2" -> "1 1/2", "x equals five" -> "x = 5", "5 cm" -> "5", "75 %" -> "75%",
    "0,75" -> "0.75", "B)" -> "b". Question-agnostic and regex-only (no sympy)."""
    raw = text if isinstance(text, str) else str(text)
    if len(raw) > 10 * MAX_CHARS:
        return None
    low = raw.strip().lower().replace("’", "'")
    choice = _CHOICE.match(low)
    if choice:
        return choice[1]
    s, _ = _read(raw)
    span = _pick(s)
    if span is None:
        return None
    answer = _tidy(s[span[0]:span[1]].replace(GLUED_A, "a"))
    answer = re.sub(r"\s*%", "%", answer)
    answer = re.sub(r"\s*([/^*()])\s*", r"\1", answer)
    answer = re.sub(r"\s*([+=])\s*", r" \1 ", answer)
    answer = re.sub(r"(?<=[\w)])\s*-\s*", " - ", answer).strip()
    answer = re.sub(r"(\d)\s+(?=[a-z(])", r"\1", answer)  # "2 x" -> "2x"
    return answer if re.search(r"\d", answer) else None


def is_only_an_answer(text: str) -> bool:
    """The message is an answer and nothing else: maths with at most lead-ins around it
    ("is it 3/4?", "x = 5 i think"). Used as a certain rule when a question waits."""
    raw = text if isinstance(text, str) else str(text)
    if len(raw) > MAX_CHARS:
        return False
    low = raw.strip().lower().replace("’", "'")
    if _CHOICE.match(low):
        return len(low) <= 3 or bool(re.search(r"\b(option|choice|answer|letter|its|it is)\b",
                                               low))
    s, sure = _read(raw)
    found = _chunks(s)
    if not found or sure is False:  # a lone number word of another language: maybe a word
        return False
    words = _words(s, found)  # "なんで4をかけるの" is not an answer
    if any(w in _TIME_UNITS for w in words):
        return False  # "one sec", "2 mins": how students ask to wait, as often as an answer
    return all(w in _FILLERS for w in words) and len(words) <= 6



class ParseProblem(ValueError):
    """The student's text could not be read as the kind of answer asked for."""


@dataclass(frozen=True)
class Verdict:
    correct: bool
    normalized: str  # the answer as the checker read it ("1/2", "x = 3", a choice's text)
    kind: str
    feedback: str | None = None  # a matched misconception's feedback
    message: str | None = (
        None  # what was wrong with how it was written, or why it could not be read
    )
    misconception: str | None = None  # the matched misconception's name (or its answer/pattern)
    score: float | None = None  # free text: the best similarity to an expected idea


# ---------------------------------------------------------------- parsing


def _clean(raw: str, kind: str = "number") -> str:
    s = raw.strip().lower()
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = _LEAD_INS.sub("", s).strip()
    s = s.rstrip(".!? ")
    if kind != "choice":
        s = s.lstrip("= ")  # "= 3/4"
    if kind in ("number", "fraction"):
        s = re.sub(r"(\d)\s*(?:out of|over)\s*(\d)", r"\1/\2", s)  # "3 out of 8"
    return re.sub(r"\s+", " ", s)


def _power_load(e: sympy.Basic, factor: float = 1.0) -> float:
    """The total degree the powers in `e` could expand to.

    x^2 + (x+1)^3 counts 5; (x^2)^3 counts 3 + 6 = 9.
    Plain division (a power of -1) and roots count nothing."""
    if isinstance(e, sympy.Pow):
        base, ex = e.args
        load = _power_load(ex, factor)
        if not ex.is_number:
            raise ParseProblem("powers must be plain numbers here, like x^2")
        size = abs(float(ex.doit()))
        if size > MAX_POWER:
            raise ParseProblem("that power is far too big to work with")
        if size > 1:
            load += size * factor
            factor *= size
        return load + _power_load(base, factor)
    return sum(_power_load(a, factor) for a in e.args)


def parse_math(
    text: str, symbols: Sequence[str] = (), *, mixed_numbers: bool = False
) -> sympy.Expr:
    """Parse one side of an answer into a sympy expression, safely.

    Only the letters in `symbols` (single-letter variables) and sqrt/pi are allowed;
    "2x" means 2*x, "^" means a power, decimals become exact fractions and, with
    `mixed_numbers`, "2 1/3" means 2 + 1/3. Raises ParseProblem with a readable reason.
    """
    s = text.strip().lower()
    if not s:
        raise ParseProblem("the answer is empty")
    if len(s) > MAX_CHARS:
        raise ParseProblem(f"that is too long to be an answer here (over {MAX_CHARS} characters)")
    s = re.sub(r"(\d*\.?\d+)\s*%", r"(\1/100)", s)  # 75% is 3/4
    if "," in s:
        raise ParseProblem("use a dot for decimals, like 0.5, and leave out commas")
    if not _ALLOWED_CHARS.match(s):
        bad = sorted({c for c in s if not _ALLOWED_CHARS.match(c)})
        raise ParseProblem(f"I can't read the symbol(s) {' '.join(bad)} in a maths answer")
    if re.search(r"//|\*\*\*|[+\-*/^]\s*$", s):
        raise ParseProblem("an operation sign is doubled or has nothing after it")
    if mixed_numbers:
        s = _MIXED.sub(lambda m: f"({m[1]}({m[2]} + {m[3]}/{m[4]}))", s)

    allowed = {v.lower() for v in symbols}

    def words(m: re.Match) -> str:
        w = m[0]
        if w in _FUNCTIONS or w in allowed:
            return w
        if set(w) <= allowed:  # "xy" with x and y allowed: x*y
            return "*".join(w)
        if allowed:
            names = " and ".join(sorted(allowed))
            raise ParseProblem(f"your answer uses {w!r}, but the only letter here is {names}")
        if len(w) > 1 or len(re.findall(r"[a-z]+", s)) > 1:  # words: never quoted back
            raise ParseProblem("I couldn't find a number in that")
        raise ParseProblem(f"I expected a number here, not {w!r}")

    s = re.sub(r"[a-z]+", words, s)
    local = {v: sympy.Symbol(v) for v in allowed}
    parse_expr, transforms, names = _parser()
    try:
        shape = parse_expr(
            s,
            local_dict=dict(local),
            global_dict=dict(names),
            transformations=transforms,
            evaluate=False,
        )
        if _power_load(shape) > MAX_POWER:
            raise ParseProblem("those powers are far too big to work with")
        expr = parse_expr(
            s, local_dict=dict(local), global_dict=dict(names), transformations=transforms
        )
    except ParseProblem:
        raise
    except Exception:  # the parser's errors vary (SyntaxError, TokenError, TypeError, ...)
        raise ParseProblem("I couldn't read that as maths; check the brackets and signs") from None
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.Tuple):
        raise ParseProblem("I couldn't read that as one maths expression")
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ParseProblem("that divides by zero, which has no answer")
    return expr


def _equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Symbolic equality, with a numeric spot check before the slow path."""
    diff = a - b
    if diff == 0 or sympy.expand(diff) == 0:
        return True
    free = sorted(diff.free_symbols, key=str)
    if not free:
        return abs(complex(diff.evalf())) < 1e-12
    for point in (0.37, 1.91, -2.3):
        try:
            value = complex(diff.subs({s: point for s in free}).evalf())
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if abs(value) > 1e-9:
            return False
    return sympy.simplify(diff) == 0


def _pretty(e: sympy.Expr) -> str:
    return str(e).replace("**", "^")


# ---------------------------------------------------------------- written form


def _form_problem(question: Question, s: str, value: sympy.Expr) -> str | None:
    """Why the student's correct value is not in the form the question asks for, or None."""
    form = question.form
    t = s.replace(" ", "")
    if form == "decimal":
        if not re.fullmatch(r"-?\d*\.?\d+", t):
            return "That's the right value. Now write it as a decimal, like 0.75."
    elif form == "simplest" and question.kind == "fraction":
        if re.fullmatch(r"-?\d+", t):
            return None
        m = re.fullmatch(r"-?(?:(\d+) )?(\d+)/(\d+)", s.replace(" /", "/").replace("/ ", "/"))
        if not m:
            return (
                "That's the right value. Now write it as a fraction in its simplest form, like 3/4."
            )
        n, d = int(m[2]), int(m[3])
        if math.gcd(n, d) > 1:
            return (
                "That's equal to the answer, but it can be simplified: divide the top and the "
                f"bottom by {math.gcd(n, d)}."
            )
        if d == 1:
            return f"That's right, but it's simpler to write it as the whole number {n}."
    elif form == "mixed":
        if re.fullmatch(r"-?\d+", t):
            return None
        m = re.fullmatch(r"-?(?:(\d+) )?(\d+)/(\d+)", s.replace(" /", "/").replace("/ ", "/"))
        if not m:
            return "That's the right value. Now write it as a mixed number, like 2 1/3."
        n, d = int(m[2]), int(m[3])
        if n >= d:
            return (
                "That's the right value, but it's an improper fraction. "
                "Write it as a mixed number, like 2 1/3."
            )
        if math.gcd(n, d) > 1:
            return f"Nearly: the fraction part {n}/{d} can be simplified."
    elif form in ("simplest", "expanded"):
        target = len(sympy.Add.make_args(sympy.expand(value)))
        if form == "expanded" and "(" in s:
            return "That's equal to the answer. Now multiply out the brackets."
        if _count_terms(s) > target:
            return "That's equal to the answer, but some like terms can still be collected."
    return None


def _count_terms(s: str) -> int:
    """Terms at bracket depth 0, as written: "2x + 3x - 1" has 3."""
    depth, terms, prev = 0, 1, ""
    for ch in s.replace(" ", ""):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch in "+-" and depth == 0 and prev not in ("", "(", "*", "/", "^", "+", "-"):
            terms += 1
        prev = ch
    return terms


# ---------------------------------------------------------------- kinds


def _symbols_of(question: Question) -> list[str]:
    if question.variable:
        return [question.variable.lower()]
    found = set()
    for a in question.answer:
        found |= set(re.findall(r"[a-z]", re.sub(r"sqrt|pi", "", a.lower())))
    return sorted(found)


def _value(text: str) -> sympy.Expr:
    expr = parse_math(text, (), mixed_numbers=True)
    if expr.free_symbols:
        raise ParseProblem("I expected a number here")
    return expr


def _solutions(question: Question, text: str, var: sympy.Symbol) -> tuple[list[sympy.Expr], bool]:
    """The values of `var` an answer gives, and whether it is written solved ("x = 3" or "3")."""
    sides = text.split("=")
    if len(sides) > 2:
        raise ParseProblem("write one equals sign, like x = 3")
    if len(sides) == 1:
        value = parse_math(sides[0], [var.name], mixed_numbers=True)
        if var in value.free_symbols:
            raise ParseProblem(f"give the value of {var.name}, like {var.name} = 3")
        return [value], True
    lhs, rhs = (parse_math(side, [var.name], mixed_numbers=True) for side in sides)
    if lhs == var and var not in rhs.free_symbols:
        return [rhs], True
    if rhs == var and var not in lhs.free_symbols:
        return [lhs], True
    if var not in (lhs - rhs).free_symbols:
        raise ParseProblem(f"that equation has no {var.name} left in it")
    try:
        degree = sympy.Poly(sympy.together(lhs - rhs).as_numer_denom()[0], var).degree()
    except sympy.PolynomialError:
        degree = 99
    if degree > 2:
        raise ParseProblem(f"give the value of {var.name}, like {var.name} = 3")
    return list(sympy.solve(sympy.Eq(lhs, rhs), var)), False


def _check_equation(question: Question, s: str) -> tuple[bool, str, str | None]:
    names = _symbols_of(question)
    if len(names) != 1:
        raise ParseProblem("this question needs a `variable` to solve for")
    var = sympy.Symbol(names[0])
    got, solved = _solutions(question, s, var)
    normalized = " or ".join(f"{var} = {_pretty(v)}" for v in got) if solved else s
    for expected in question.answer:
        want, _ = _solutions(question, _clean(expected), var)
        same = len(got) == len(want) and all(any(_equal(g, w) for w in want) for g in got)
        if same and solved:
            return True, normalized, None
        if same:
            return (
                False,
                normalized,
                (
                    f"That equation is true, but it isn't solved yet: keep going "
                    f"until {var} is on its own, like {var} = 3."
                ),
            )
    return False, normalized, None


def _check_math(question: Question, s: str) -> tuple[bool, str, str | None]:
    """number, fraction and expression kinds: (correct, normalized, message)."""
    if question.kind == "expression":
        if "=" in s:
            raise ParseProblem(
                "this asks for an expression, not an equation, so leave out the = sign"
            )
        got = parse_math(s, _symbols_of(question))
    else:
        got = _value(s)
    normalized = _pretty(got)
    close = False
    for expected in question.answer:
        want = parse_math(
            _clean(expected), _symbols_of(question), mixed_numbers=question.kind != "expression"
        )
        if question.kind == "number":
            tol = (
                question.tolerance
                if question.tolerance is not None
                else 1e-9 * max(1.0, abs(float(want)))
            )
            ok = abs(float(got - want)) <= tol
        else:
            ok = _equal(got, want)
        if ok:
            return True, normalized, _form_problem(question, s, want)
        if not got.free_symbols and not want.free_symbols and want != 0:
            close |= abs(float((got - want) / want)) < CLOSE
    if close and question.kind == "fraction":
        return False, normalized, "That's close, but not exact. Try giving it as a fraction."
    if close:
        return (
            False,
            normalized,
            "That's close, but not quite. Check your working or your rounding.",
        )
    return False, normalized, None


def picked_choice(question: Question, text: str) -> int | None:
    """Which of a choice question's options `text` picks: its letter ("b", "option b", "(b)")
    or its text, case, spaces and punctuation aside, allowing a typo or two (difflib ratio
    0.85 or more, the one best match). None: it picks none."""
    choices = list(question.choices or [])
    spaced = [re.sub(r"\s+", "", c.casefold()) for c in choices]  # "<" stays "<"
    t = re.sub(r"\s+", "", text.casefold())
    if t and t in spaced:
        return spaced.index(t)
    m = re.fullmatch(r"(?:option|choice|answer)?\(?([a-z])[).:]?", t)
    if m and ord(m[1]) - ord("a") < len(choices):
        return ord(m[1]) - ord("a")
    options = [re.sub(r"[\W_]+", "", c) for c in spaced]  # punctuation aside
    t = re.sub(r"[\W_]+", "", t)
    if len(t) < 4:
        return None
    ratios = [difflib.SequenceMatcher(None, t, o).ratio() for o in options]
    best = max(range(len(options)), key=ratios.__getitem__, default=None)
    if best is None or ratios[best] < 0.85 or sorted(ratios)[-2:-1] == [ratios[best]]:
        return None
    return best


def _check_choice(question: Question, s: str) -> tuple[bool, str, str | None]:
    choices = list(question.choices or [])
    index = picked_choice(question, s)
    if index is None:
        letters = ", ".join(chr(ord("a") + i) for i in range(len(choices)))
        raise ParseProblem(f"pick one of the choices: type its letter ({letters}) or its text")
    picked = choices[index]
    correct = picked.casefold() in {a.casefold() for a in question.answer}
    return correct, picked, None


def _tokens(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in _STOPWORDS:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(w) > len(suffix) + 2 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.append(w)
    return out


def lexical_similarity(answer: str, idea: str) -> float:
    """Share of the idea's content words that the answer contains (crudely stemmed), 0..1."""
    want = set(_tokens(idea))
    if not want:
        return 0.0
    return len(want & set(_tokens(answer))) / len(want)


def _check_free_text(question: Question, s: str, similarity: Similarity) -> tuple[bool, str, float]:
    if len(_tokens(s)) == 0:
        raise ParseProblem("write a sentence or two in your own words")
    if len(s) > 1000:
        raise ParseProblem("that's long: say it in a sentence or two")
    score = max(float(similarity(s, idea)) for idea in question.answer)
    threshold = question.min_similarity or DEFAULT_MIN_SIMILARITY
    return score >= threshold, s, score


# the word an explanation begins with ("because ...", "cuz ...", "porque ..."), in English as
# students type it and in the languages learners most often mix into it
_EXPLAINS = re.compile(
    r"^\W*(?:(?:because|becos|becuz|bcuz|bcoz|bcos|bc|cause|cos|coz|cuz|since|so\s+that|"
    r"porque|parce\s+que|weil|perch[eé]|omdat|fordi|eftersom|ponieważ|bo|protože|"
    r"потому\s+что|так\s+как|бо|тому\s+що|çünkü|karena|kerana|vì|kasi|kwa\s+sababu)(?!\w)"
    r"|因为|因為|なぜなら|왜냐하면|لأن|क्योंकि|কারণ)", re.IGNORECASE)


def attempts_explanation(question: Question, text: str, verdict: Verdict, *,
                         says_feeling: bool = False) -> bool:
    """`text` tries to answer the free-text `question` (`verdict`: the checker's on it), right
    or wrong: the checker accepts it or knows the wrong idea in it; or, unless it says a
    feeling (`says_feeling`: "im not good with fractions" is heard, not marked), it holds
    half of an expected idea's content words or begins as an explanation does ("because they
    have to"). Word overlap, not the engine's comparison, judges "half": a sentence
    embedding puts "i hate fractions" a quarter of the way to any sentence about fractions."""
    if question.kind != "free_text":
        return False
    if verdict.correct or verdict.misconception is not None:
        return True
    if says_feeling:
        return False
    threshold = question.min_similarity or DEFAULT_MIN_SIMILARITY
    near = max(lexical_similarity(text, idea) for idea in question.answer)
    return near >= threshold / 2 or bool(_EXPLAINS.match(text))


# ---------------------------------------------------------------- front door


def _matches(question: Question, m: Misconception, s: str, similarity: Similarity) -> bool:
    try:
        if m.pattern is not None:
            return re.search(m.pattern, s.replace(" ", "").lower()) is not None
        if question.kind == "free_text":
            threshold = question.min_similarity or DEFAULT_MIN_SIMILARITY
            return similarity(s, m.answer) >= threshold
        if question.kind == "choice":
            return _check_choice(question, s)[1].casefold() == m.answer.casefold()
        probe = question.model_copy(update={"answer": [m.answer], "form": "any", "tolerance": None})
        check = _check_equation if question.kind == "equation" else _check_math
        return check(probe, s)[0]
    except ParseProblem:
        return False


def _misconception(question: Question, s: str, similarity: Similarity) -> Misconception | None:
    return next((m for m in question.misconceptions if _matches(question, m, s, similarity)), None)


_HOW_TO_WRITE = {
    "number": "Type a number, like 12, 0.5 or 3/4.",
    "fraction": "Type a fraction like 3/4, a mixed number like 2 1/3, or a decimal.",
    "expression": "Type an expression, like 2x + 3.",
    "equation": "Type the value, like x = 3.",
    "choice": "Type the letter of your choice.",
    "free_text": "Explain in a sentence or two.",
}


def check_answer(question: Question, raw: str, *, similarity: Similarity | None = None) -> Verdict:
    """Judge one answer. Never raises on what a student types; see Verdict.message."""
    similarity = similarity or lexical_similarity
    kind = question.kind
    raw = raw if isinstance(raw, str) else str(raw)
    s = _clean(raw, kind)
    if kind != "free_text":  # "three eighths", "6/8 = 3/4", "5 cm", "0,75", "B)"
        found = extract_answer(raw) if _PROSE.match(raw) or is_only_an_answer(raw) else None
        if found is not None and (kind != "choice" or re.fullmatch(r"[a-h]", found)):
            s = found
        if kind in ("number", "fraction"):  # no unknowns here: letters after it are a unit
            s = re.sub(r"(?<=\d)\s*[a-z]{1,3}(?:\s*/\s*[a-z]{1,3})?$", "", s) or s  # 18p, 8 m/s
            named = re.fullmatch(r"[a-z]\s*=\s*([^a-z=]*\d[^a-z=]*)", s.strip())
            if named:  # "x equals seven": the value is what is judged
                s = named[1].strip()
    score = None
    try:
        if kind == "free_text":
            correct, normalized, score = _check_free_text(
                question, re.sub(r"\s+", " ", raw.strip()), similarity
            )
            message = None
        elif kind == "choice":
            correct, normalized, message = _check_choice(question, s)
        elif kind == "equation":
            correct, normalized, message = _check_equation(question, s)
        else:
            correct, normalized, message = _check_math(question, s)
    except ParseProblem as e:
        reason = str(e)
        m = _misconception(question, s, similarity)  # a pattern may still recognise it
        how = "" if "like" in reason else f" {_HOW_TO_WRITE[kind]}"
        return Verdict(
            False,
            s,
            kind,
            feedback=m.feedback if m else None,
            message=f"{reason[0].upper()}{reason[1:]}.{how}",
            misconception=(m.name or m.answer or m.pattern) if m else None,
        )
    except Exception:  # pathological input that got past the guards; never crash the tutor
        return Verdict(
            False, s, kind, message=f"I couldn't work with that answer. {_HOW_TO_WRITE[kind]}"
        )

    if correct and message is None:
        return Verdict(True, normalized, kind, score=score)
    m = _misconception(question, s if kind != "free_text" else normalized, similarity)
    return Verdict(
        False,
        normalized,
        kind,
        feedback=m.feedback if m else None,
        message=message,
        misconception=(m.name or m.answer or m.pattern) if m else None,
        score=score,
    )
