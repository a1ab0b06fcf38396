"""Numbers a student spells in another language, read as digits.

"tres cuartos" -> "3/4", "menos cinco" -> "-5", "drei Viertel" -> "3/4", "cero coma cinco"
-> "0.5", "ciento veinte" -> "120", "x es igual a cuatro" -> "x = 4", "三分之二" -> "3分之2",
"이십오" -> "25". `tutor.answers` reads English number words itself and turns to this when a
message holds no number it can read (or English reads less of it); the markers of other
languages around digits ("3分之2", "25 por ciento") are read there.

The words (`data/numerals/lexicon.json`, built by `tools/build_numerals.py`) come from the
Unicode CLDR's number-spelling rules, through `unicode-rbnf`, for each language it covers
(about 85): the cardinals 0-100, the hundreds and a thousand in every
grammatical form CLDR spells, and the ordinals 3-20 and 100 as the bottom of a fraction ("un
cinquième", "tre quarti", "три четвертых": a word that starts with the ordinal's stem). Each
is also kept without accents ("tres" for "três") and, for Cyrillic, Greek, Chinese and Korean,
as `anyascii` spells it ("pyat", "ershiwu"), as students type on an English keyboard. A few
fraction words are not ordinals in their language ("tiers", "medio", "kwart", "Hälfte"), and a
few words join numbers ("coma", "per", "buçuk"): those are listed below.

A reading must be plausible before anyone uses it (`spelled`): more than half of the words are
the number's (half, when they make a fraction, a sign or a decimal; any share, when a fraction,
a sign or a decimal closes a message of at most eight words: "ich glaube es ist zwei
Drittel"), no fraction word is left over ("robo tatu"), and a short Latin word that is also
an everyday word somewhere ("en", "to", "set", "hai", "ok") is a number only inside a
fraction ("en halv", "to tredjedele") or after a sign ("minus to"). Where languages disagree
on a word, most languages' value is taken ("tres": 3 in Spanish and Catalan, 60 in Danish); a
tie drops it. English is left to `tutor.answers`, which knows that "this one" is no number.
A reading is `sure` (an answer by rule, whatever the classifier says) when it is more than a
lone word that may be an everyday word too: "không" is zero and "no" in Vietnamese.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from tutor.settings import REPO_DATA_DIR

LEXICON = REPO_DATA_DIR / "numerals" / "lexicon.json"

# Fraction words that are not the ordinal: halves everywhere, and thirds and quarters where
# the word differs from "third" and "fourth".
_HALVES = ("half halve halv halvt halb halbe halben hälfte demi demie moitié medio mitad mezzo "
           "mezza meio meia metade pół połowa polovina половина половину половиной половиною пів "
           "половини yarım nusu setengah separuh nửa kalahati hälften puolikas fél pusė půl "
           "نیم μισό μισή نصف نص आधा आधी 半 반").split()
_SPECIAL = {**{w: 2 for w in _HALVES}, **{w: 3 for w in (
    "tiers tercio tercios terço terços ثلث أثلاث تہائی तिहाई tretjina tretina třetina".split())},
    **{w: 4 for w in "quart quarts kwart kwartaal viertel чверть чверті четверть четверти "
                     "ربع أرباع čtvrt čtvrtina četrtina chwarter".split()}}
# The words for minus and per cent beside a number; tutor.answers reads them around digits.
MINUS_WORDS = ("menos|moins|meno|eksi|минус|мінус|منفی|سالب|manfi|negatif|negativo|négatif|"
               "âm|ลบ|ລົບ|負|负|マイナス|마이너스|mwens|miinus|mínus|mínusz|μείον|माइनस|"
               "negatibong|negatibo|hasi|míneas|mineas")
PERCENT_WORDS = ("por ?ciento|pour ?cent|per ?cento|por ?cento|prozent|procent[a-z]*|prosent|"
                 "persen|feesad|pratishat|хувь|процент[а-я]*|відсот[а-я]*|pourcent|"
                 "posto|odstot[a-z]*|prosentti[a-z]*|százalék|phần trăm|phan tram|퍼센트|"
                 "パーセント|درصد|بالمئة|في المئة|प्रतिशत|посто|fil-mija|porsiyento|porsyento|فیصد|"
                 "τοις εκατό|procento|procenta|procentů|peratus|protsent[a-z]*|"
                 "เปอร์เซ็นต์|percento|prosent[a-z]*")
# ... and before it: "yüzde yirmi beş", "asilimia hamsini"
PERCENT_BEFORE = "yüzde|yuzde|asilimia"
_SIGNS = f"{MINUS_WORDS}|minus|negative|neg|min"  # "min drie", "min lima"
# The unknown and "equals" before a number: "x es igual a cuatro", "x等于四", "س يساوي أربعة"
_EQUALS = re.compile(
    r"(?<![^\W\d_])(?:x|х|икс|ікс|iks|س|ایکس|एक्स|エックス|엑스)(?:\s*(?:等于|等於|は|는)|\s+(?:"
    r"es igual a|igual a|é igual a|est [ée]gale? [àa]|[ée]gale?|vaut|ist gleich|ist|gleich|"
    r"är lika med|är|er lik|er lig med|er|is gel[iy]jk aan|is|on|yhtä kuin|równa się|równa|je|"
    r"jest|este egal cu|este|egyenlő|είναι|ισούται με|eşittir|дорівнює|равно|равен|"
    r"е равно на|е еднакво на|е|је једнако|једнако|jednako|je jednako|يساوي|برابر(?: است| با)?|"
    r"बराबर(?: है)?|bằng|sama dengan|ni sawa na|ay katumbas ng|ay))\s*(?=\S)", re.I)
# "and a half" after a number: "iki buçuk"
_AND_A_HALF = frozenset("buçuk bucuk setengah rưỡi".split())
# Words for one and a half and two and a half: "anderhalf", "ढाई"
_AND_HALVES = {**{w: "1 1/2" for w in "anderhalf anderthalb eineinhalb halvanden halvannen "
                                      "halvtannan puolitoista डेढ़ ڈیڑھ dedh".split()},
               **{w: "2 1/2" for w in "ढाई ڈھائی dhai".split()}}
# A word between two numbers that makes a fraction of them, the top first: "3 sur 4",
# "dua per tiga", "một phần hai", "तीन बटा चार".
OVER = frozenset("sur per phần phan बटा".split())
# A word between a whole number and a decimal's digits: "cero coma cinco", "noll komma fem".
# ("čtyři celé pět": four wholes five)
_DECIMAL = frozenset("coma virgule komma punto vírgula virgula virgola koma pilkku запятая кома "
                     "tizedes nokta virgül phẩy phay pont point perpuluhan nukta celé celá celých "
                     "cele dešimt przecinek virgulă virgula zarez κόμμα فاصلة ممیز اعشاریہ цяло "
                     "цяла egész pointe komats kablelis pikë ponto točka ነጥብ נקודה দশমিক दशमलव "
                     "点 點 てん 점".split())
# "and" between a whole number and a fraction: "siete y medio", "deux et demi"
# ("ноль целых две десятых": nought wholes and two tenths)
# ("два с половиной": two with a half)
_AND = frozenset("y e et und en och og i и і a ve na dan và at and و с з целых цілих".split())
# "and" inside a word of a script without spaces: "二と二分の一", "이와 이분의 일"
_UNSPACED_AND = ("と", "又", "와", "과")
# Latin number words of four letters or more that are also everyday words (in English or
# another language): read as numbers only after a sign, as words of three letters or fewer are.
_EVERYDAY = frozenset("once cent cant fire pump asia sept mitt mille tree".split())
_HANGUL = re.compile(r"[\uac00-\ud7af]")
# Scripts written without spaces between words: numbers are found inside a word.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff"
                       r"\uac00-\ud7af\uf900-\ufaff]")
_WORDCHARS = r"[^\s\d.,;:!?¿¡()\"'’/+=*%<>\[\]{}~-]"
# a word keeps an apostrophe inside it: "дев'ять", "dalawampu't"
_TOKEN = re.compile(rf"{_WORDCHARS}+(?:['’]{_WORDCHARS}+)*|\d+(?:[.,]\d+)?|\S")
# Joined to a number in an unspaced script: the markers tutor.answers reads ("三分之二",
# "이분의 일", "百分之三十") and one closing particle ("吧", "ね", "요").
_UNSPACED_MARKS = ("分之", "分の", "분의", "又", "負", "负", "マイナス", "마이너스")
_UNSPACED_POINT = ("点", "點", "점")  # 零点五, 영점오: a decimal point
_UNSPACED_PERCENT = ("เปอร์เซ็นต์", "パーセント", "퍼센트")  # after the number, glued
_UNSPACED_OVER = ("ส่วน", "ສ່ວນ", "ភាគ")  # สองส่วนสาม (Thai), ສາມສ່ວນສີ່ (Lao): parts of
_PARTICLES = frozenset("吧囉啰啊呀呢嗎吗了的ねよかなだ요야죠") | {"입니다", "이요", "예요", "이에요", "です"}


# Letters an English keyboard types without an accent to strip: "kırk" is typed "kirk".
_UNACCENTED = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "ð": "d",
                             "þ": "th", "æ": "ae", "œ": "oe", "ħ": "h"})


@dataclass(frozen=True)
class Reading:
    text: str  # the message with its spelled numbers as digits
    # more than a lone word that may be an everyday word: a fraction, a sign, a decimal,
    # several words, or a long word ("dezasseis", not "cinco" or "không": see _long)
    sure: bool


def plain(word: str) -> str:
    """Lower case without accents: "três" -> "tres", "kırk" -> "kirk", "łowa" -> "lowa"."""
    decomposed = unicodedata.normalize("NFKD", word.lower().translate(_UNACCENTED))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed
                                                if not unicodedata.combining(c)))


_DECIMAL_PLAIN = frozenset(plain(w) for w in _DECIMAL)


def _latin(word: str) -> bool:
    return all(ord(c) < 0x250 or unicodedata.combining(c) for c in word)


@lru_cache(maxsize=1)
def lexicon() -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    """(spelled cardinal -> value, ordinal stem -> denominator, the cardinals that are only
    another script's number in Latin letters): `data/numerals/lexicon.json`, which
    `tools/build_numerals.py` builds from CLDR's rules (10 ms to load; building it takes a
    second, too long to do on a student's first answer)."""
    table = json.loads(LEXICON.read_text(encoding="utf-8"))
    return table["cardinals"], table["stems"], frozenset(table["romanised"])


def _denominator(word: str) -> int | None:
    word = word.lower()
    plural = (word[:-1],) if word.endswith("s") else ()
    plural += (word[:-2],) if word.endswith("es") else ()
    for form in (word, plain(word), *plural):  # "medios", "halves"
        if form in _SPECIAL:
            return _SPECIAL[form]
    cardinals, stems, _ = lexicon()
    for form in (word, plain(word)):
        for cut in range(min(len(form), 12), 2, -1):
            value = stems.get(form[:cut])
            if value is not None and len(form) - cut <= 5:
                return value
        if form.startswith("per") and form[3:] in cardinals:
            return cardinals[form[3:]]  # "perempat", "pertiga": a quarter, a third
        bottom = re.fullmatch(r"(.+?)a?v[oa]s?", form)  # "doceavos", "onceavo"
        if bottom and cardinals.get(bottom[1], 0) > 10:
            return cardinals[bottom[1]]
    return None


def _unspaced(token: str, cardinals: dict[str, int]) -> list[tuple[str, bool]]:
    """A word of a script without spaces, cut into its numbers (with the markers joined to
    them) and the rest: "答案是四分之三" -> [("答案是", False), ("4分之3", True)]."""
    pieces: list[tuple[str, bool]] = []

    def put(text: str, number: bool) -> None:
        if pieces and pieces[-1][1] and number and pieces[-1][0].isdigit() and text.isdigit():
            a, b = int(pieces[-1][0]), int(text)
            place = 10 ** (len(str(a)) - len(str(a).rstrip("0")))
            if a and 0 < b < place and b < a:  # 一百二十: a hundred and twenty
                pieces[-1] = (str(a + b), True)
                return
        if pieces and pieces[-1][1] == number:
            last = pieces[-1][0]
            decimals = re.search(r"\.\d*$", last) and len(text) == 1  # 零點七五: 0.75
            glue = " " if number and last[-1:].isdigit() and text[:1].isdigit() \
                and not decimals else ""
            pieces[-1] = (last + glue + text, number)  # two numbers side by side stay two
        else:
            pieces.append((text, number))

    i = 0
    while i < len(token):
        if token.startswith("百分之", i):  # per cent, before "百" (a hundred) is read
            put("百分之", True)
            i += 3
            continue
        for n in range(min(8, len(token) - i), 0, -1):
            piece = token[i:i + n]
            if piece in cardinals and _UNSPACED.match(piece):
                put(str(cardinals[piece]), True)
                break
        else:
            n = 0
            mark = next((m for m in _UNSPACED_MARKS if token.startswith(m, i)), None)
            point = next((m for m in _UNSPACED_POINT if token.startswith(m, i)), None)
            joins = next((m for m in _UNSPACED_AND if token.startswith(m, i)), None)
            if point and pieces and pieces[-1][1]:
                put(".", True)
                n = len(point)
            elif joins and pieces and pieces[-1][1]:
                put(" ", True)
                n = len(joins)
            elif (over := next((m for m in _UNSPACED_OVER if token.startswith(m, i)), None)) \
                    and pieces and pieces[-1][1]:
                put("/", True)
                n = len(over)
            elif (cent := next((m for m in _UNSPACED_PERCENT if token.startswith(m, i)), None)) \
                    and pieces and pieces[-1][1]:
                put("%", True)
                n = len(cent)
            elif mark:
                put(mark, True)
                n = len(mark)
            else:
                put(token[i], False)
                n = 1
        i += n
    # a marker with no number beside it ("分の" in a sentence) is a word
    return [(text, number and any(c.isdigit() for c in text)) for text, number in pieces]


@dataclass
class _Item:
    text: str
    role: str  # "n" number, "d" a fraction's bottom, "m" marker, "w" other word, "" punctuation
    words: int = 1  # the message's words it stands for
    value: int | None = None
    short: bool = False  # a short or everyday Latin word: a number only after a sign
    said: str = ""  # the words as typed
    weak: bool = False  # built on a short word ("to tredjedele", "halb"): not the message's end


def _compound(word: str) -> str | None:
    """A long number word written as one, beyond the lexicon's: "dreihundertzwanzig" -> "320",
    "tausendzweihundert" -> "1200", "honderdvijftig" -> "150"; None otherwise."""
    cardinals = lexicon()[0]
    if len(word) < 9 or not _latin(word) or word in cardinals:
        return None

    @lru_cache(maxsize=None)
    def parts(k: int) -> tuple[int, ...] | None:
        if k == len(word):
            return ()
        for end in range(len(word), k + 2, -1):
            value = cardinals.get(word[k:end])
            rest = parts(end) if value is not None else None
            if rest is not None:
                return value, *rest
        return None

    values = parts(0)
    if not values or len(values) < 2:
        return None
    total = current = 0
    for v in values:
        if v in (100, 1000):
            current = max(current, 1) * v
            if v == 1000:
                total, current = total + current, 0
        elif current and v >= 10 ** (len(str(current)) - len(str(current).rstrip("0"))):
            return None  # "dreizwanzig": not how a number is said
        else:
            current += v
    return str(total + current)


def _items(tokens: list[str]) -> list[_Item]:
    cardinals = lexicon()[0]
    items: list[_Item] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.isascii() and t.isdigit():  # "3 huitièmes": digits before a fraction's word
            items.append(_Item(t, "n", 1, int(t), said=t))
            i += 1
            continue
        if _sign(t):
            items.append(_Item(t, "m"))  # before the cardinals: "min" is also a thousand
            i += 1
            continue
        if _UNSPACED.search(t):
            pieces = _unspaced(t, cardinals)
            if _HANGUL.search(t) and not all(number or piece in _PARTICLES
                                             for piece, number in pieces):
                pieces = [(t, False)]  # Korean number syllables (이, 오) are in every word
            for piece, number in pieces:
                if number:
                    items.append(_Item(piece.strip(" ."), "n", said=t))
                else:  # a closing particle ("吧", "ね") is no word
                    particle = piece in _PARTICLES
                    items.append(_Item("" if particle else piece, "" if particle else "w",
                                       0 if particle else 1))
            i += 1
            continue
        if t.endswith("'t") and t[:-2] in cardinals:  # Tagalog "dalawa't": two and
            items += [_Item(str(cardinals[t[:-2]]), "n", 1, cardinals[t[:-2]], said=t),
                      _Item("at", "m", 0)]
            i += 1
            continue
        # Turkish "dörtte üç": in four, three; the suffix is -te after a voiceless consonant
        bottom = re.fullmatch(r"(.+?)([dt])[ae]", plain(t))
        if bottom and len(bottom[1]) >= 2 and bottom[1] in cardinals and i + 1 < len(tokens) \
                and plain(tokens[i + 1]) in cardinals and t not in cardinals \
                and (bottom[2] == "t") == (bottom[1][-1] in "cfhkpst"):
            items.append(_Item(f"of:{cardinals[bottom[1]]}", "m", said=t))
            i += 1
            continue
        joins = t in _AND and items and items[-1].role == "n"  # "un et demi": not "et" (1)
        whole = _AND_HALVES.get(t, _AND_HALVES.get(plain(t))) or _compound(t)
        if whole is not None and not joins:
            items.append(_Item(whole, "n", 1, int(whole) if whole.isdigit() else None, said=t))
            i += 1
            continue
        for n in range(min(5, len(tokens) - i), 0 if not joins else 1, -1):
            phrase = " ".join(tokens[i:i + n])
            value = cardinals.get(phrase, cardinals.get(plain(phrase)))
            if value is not None:
                short = n == 1 and _latin(t) and (len(t) <= 3 or plain(t) in _EVERYDAY
                                                  or len(t) < 5 and t in lexicon()[2])
                items.append(_Item(str(value), "n", n, value, short, said=phrase))
                i += n
                break
        else:
            previous = items[-1] if items else None
            low = plain(t)
            if t in ("%", "pctof", "xequals"):
                role = "m"
            elif re.fullmatch(r"\W", t):
                role = ""
            elif t in OVER or _decimal(t) or (t in _AND and previous and previous.role == "n") \
                    or previous and previous.role == "n" and low in _AND_A_HALF:
                role = "m"
            elif (previous and previous.role == "n" or t in _SPECIAL or low in _SPECIAL) \
                    and _denominator(t):
                role = "d"
            else:
                role = "w"
            items.append(_Item(t, role, 1 if role else 0))
            i += 1
    return items


def _joined(items: list[_Item]) -> list[_Item]:
    """Numbers put together with their neighbours: "doscientos cinco" -> 205, "tres cuartos"
    -> 3/4, "cero coma cinco" -> 0.5, "deux et demi" -> 2 1/2, "dua per tiga" -> 2/3."""
    out: list[_Item] = []
    i = 0
    while i < len(items):
        a = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        after = items[i + 2] if i + 2 < len(items) else None
        if a.role == "n" and a.text.endswith(("分の", "分之", "분의")) and nxt and nxt.role == "n":
            out.append(_Item(f"{a.text} {nxt.text}", "n", a.words + nxt.words))  # "이분의 일"
            i += 2
        elif a.role == "m" and a.text.startswith("of:") and nxt and nxt.role == "n":
            out.append(_Item(f"{nxt.text}/{a.text[3:]}", "n", 1 + nxt.words))  # "beşte iki"
            i += 2
        elif a.role == "m" and a.text in ("pctof", "xequals") and nxt and nxt.role == "n":
            text = f"{nxt.text}%" if a.text == "pctof" else f"x = {nxt.text}"
            out.append(_Item(text, "n", 1 + nxt.words))
            i += 2
        elif a.role == "d" and _denominator(a.text) == 2 and not (out and out[-1].role == "n"):
            out.append(_Item("1/2", "n", 1, None, weak=True))  # "medio", "demi" alone
            i += 1
        elif (b := _after_place(a, nxt, after)) is not None:
            gap = 2 if b is nxt else 3  # "ciento veinte", "duzentos e cinquenta"
            total = a.value * 1000 if b.value == 1000 else a.value + b.value
            out.append(_Item(str(total), "n", sum(it.words for it in items[i:i + gap]), total,
                             a.short and b.short, said=" ".join(it.said or it.text for it in
                                                               items[i:i + gap])))
            i += gap
        elif a.role == "n" and nxt and plain(nxt.text) in _AND_A_HALF:
            out.append(_Item(f"{a.text} 1/2", "n", a.words + 1))
            i += 2
        elif a.role == "n" and nxt and nxt.role == "d":
            out.append(_Item(f"{a.text}/{_denominator(nxt.text)}", "n", a.words + 1,
                             weak=a.short))
            i += 2
        elif a.role == "n" and nxt and nxt.text in OVER and after and after.role == "n":
            out.append(_Item(f"{a.text}/{after.text}", "n", a.words + 1 + after.words))
            i += 3
        elif a.role == "n" and a.value is not None and nxt and _decimal(nxt.text) \
                and after and after.role == "n" and after.value is not None and not (
                    i + 3 < len(items) and items[i + 3].role == "d"):  # "egész öt tized"
            digits, k = str(after.value), i + 3
            while after.value < 10 and k < len(items) and items[k].role == "n" \
                    and items[k].value is not None and items[k].value < 10:
                digits += str(items[k].value)  # "sept virgule zéro cinq": digit by digit
                k += 1
            out.append(_Item(f"{a.value}.{digits}", "n", sum(it.words for it in items[i:k])))
            i = k
        elif a.role == "n" and nxt and (nxt.text in _AND or _decimal(nxt.text)) and after and (
                after.role == "d" and _denominator(after.text) == 2 or after.role == "n"
                and "/" in after.text):
            fraction = "1/2" if after.role == "d" else after.text
            out.append(_Item(f"{a.text} {fraction}", "n", a.words + 1 + after.words))
            i += 3
        else:
            out.append(a)
            i += 1
    return out


def _after_place(a: _Item, nxt: _Item | None, after: _Item | None) -> _Item | None:
    """The number that adds to `a` in its empty places ("mil doscientos", "двадесет пет",
    "duzentos e cinquenta") or multiplies it by a thousand ("dos mil"), or None."""
    if a.role != "n" or a.value is None or nxt is None or a.said.isdigit():
        return None
    b = after if nxt.role == "m" and nxt.text in _AND and after is not None else nxt
    if b.role != "n" or b.value is None or a.value == 0 or b.said.isdigit():
        return None  # digits typed stand alone: "on 2%" is not twelve
    if b.value == 1000 and b is nxt and 1 < a.value < 1000:
        return b
    place = 10 ** (len(str(a.value)) - len(str(a.value).rstrip("0")))
    return b if place >= 10 and 0 < b.value < place and b.value < a.value else None


def _decimal(word: str) -> bool:
    """A decimal point said in words: "coma", "virgül" and "virgul" as typed without accents."""
    return word in _DECIMAL or plain(word) in _DECIMAL_PLAIN


def _long(word: str) -> bool:
    """A number word too long to be another language's everyday word too: "dezasseis",
    "пятнадцать", "十五"; not "không" (Vietnamese "no"), "nulle", "दो" ("give"), "бир"."""
    if _UNSPACED.search(word):
        return len(word) >= 2
    return len(word) >= (6 if _latin(word) else 4)


def _sign(word: str) -> bool:
    return bool(re.fullmatch(_SIGNS, word) or re.fullmatch(_SIGNS, plain(word)))


def _signed(items: list[_Item]) -> list[_Item]:
    """A sign put on the number after it, once that number is whole: "moins cinq" -> -5,
    "menos tres cuartos" -> -3/4."""
    out: list[_Item] = []
    for it in items:
        sign = out[-1] if out else None
        if it.role == "n" and sign and sign.role == "m" and _sign(sign.text) \
                and not it.text.startswith("-"):
            out[-1] = _Item(f"-{it.text}", "n", 1 + it.words)
        else:
            out.append(it)
    return out


def spelled(text: str, *, ignore: frozenset[str] = frozenset()) -> Reading | None:
    """The message with the numbers spelled in it as digits, or None when no plausible number
    is spelled in it (see the module's docstring). Words in `ignore` ("i think its") do not
    count against it."""
    low = text.lower().replace("’", "'").replace("ʼ", "'")
    low = re.sub(rf"(?<!\w)(?:{PERCENT_WORDS})(?!\w)", " % ", low)
    low = re.sub(rf"(?<!\w)(?:{PERCENT_BEFORE})(?!\w)", " pctof ", low)
    low = _EQUALS.sub(" xequals ", low)
    low = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", " ", low)  # "vint-i-cinc", "twenty-five"
    tokens = _TOKEN.findall(low)
    if not tokens or len(tokens) > 24:
        return None
    # fractions first, then what they join: "0 целых 2/10" -> "0 2/10"; the sign last
    items = _joined(_joined(_items(tokens)))
    for k, it in enumerate(items):  # markers left over: "je dois y aller" has no fraction
        after = items[k + 1] if k + 1 < len(items) else None
        if it.role == "m" and (it.text in OVER or _decimal(it.text) or it.text in _AND
                               or it.text.startswith("of:")
                               or it.text == "%" and not (k and items[k - 1].role == "n")
                               or _sign(it.text) and not (after and after.role == "n")):
            it.role = "w"
    for k, it in enumerate(items):
        if it.role == "n" and it.short:  # "en", "to", "set": a number after a sign only
            if k and items[k - 1].role == "m" and items[k - 1].text != "%":
                it.short = False
            else:
                it.role, it.text = "w", it.said
    items = _signed(items)
    words = sum(it.words for it in items if it.role and it.text not in ignore)
    theirs = sum(it.words for it in items if it.role in ("n", "d", "m"))
    if not any(it.role == "n" and not it.short for it in items) or any(
            it.role == "d" for it in items) or sum(it.role == "n" for it in items) > 1:
        return None  # only short words ("i", "en"), a fraction's word left out ("robo tatu"),
        # or two numbers that nothing joins ("nulle komats pieci": which is the answer?)
    built = any(it.role == "m" or not it.text.isdigit() and not it.weak for it in items
                if it.role in ("n", "m"))
    said = [it for it in items if it.role]
    last = said[-1].role == "n" and not said[-1].text.isdigit() and not said[-1].weak \
        and len(said) <= 8
    if (theirs * 2 < words or theirs * 2 == words and not built) and not last:
        return None  # "dwie piąte", "бестен екі": a number and a word not read, maybe its bottom
    # ("je pense que c'est moins cinq", "ich glaube es ist zwei Drittel": a fraction, a sign
    # or a decimal closing a short message is its answer, whatever the words before it)
    # a number in another script, of several words, or a long word no language uses otherwise
    sure = built or any(it.words > 1 or _long(it.said) for it in items if it.role == "n")
    return Reading(" ".join(it.text for it in items), sure)

