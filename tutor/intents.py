"""What the student's chat message is trying to do: answer, ask for a hint, say they're lost, ...

`classify_move(text, expecting_answer=True)` is rule-based (keywords and regular expressions
on a normalised message), fast and predictable. It copes with case, punctuation, missing
apostrophes ("dont get it"), stretched words ("hiii", "sooo easy") and small typos in short
messages ("hnit", "confsued"). Frustration is flagged separately because it rides along with
any move ("ugh I don't get it", "this is stupid, skip").
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

MoveKind = Literal["answer", "confused", "hint", "why", "skip", "too_easy", "off_topic", "greeting"]
MOVE_KINDS: tuple[str, ...] = (
    "answer",
    "confused",
    "hint",
    "why",
    "skip",
    "too_easy",
    "off_topic",
    "greeting",
)
LEAD_WORDS = 6  # in a long message, a request must start within this many words


@dataclass(frozen=True)
class Move:
    kind: str  # one of MOVE_KINDS
    text: str  # the message as typed
    answer: str | None = (
        None  # kind "answer": the answer without lead-ins ("3/4" from "I think it's 3/4")
    )
    frustrated: bool = False


_NEG = (
    r"(?:dont|do not|dnt|doesnt|does not|didnt|did not|cant|can not|cannot|still dont|really dont)"
)
_RULES: tuple[tuple[str, re.Pattern], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "skip",
            r"\bskip\b|^next\b|\bnext (one|question|please)\b|^pass\b|\bmove on\b|\bgive up\b|"
            r"\bi quit\b|\b(another|different|new) (one|question)\b|\bsomething else\b|"
            r"\blets move\b",
        ),
        (
            "too_easy",
            r"\bto+ easy\b|\b(so|this is|thats|its|way|super|really) easy\b|^easy\b|\bboring\b|"
            r"\bharder\b|\bmore (difficult|challenging)\b|\bchallenge me\b|"
            r"\bi (already )?know (this|that|how|it)\b|\balready know\b|\bbaby stuff\b|\btrivial\b",
        ),
        (
            "hint",
            r"\bhints?\b|\bclues?\b|\bhelp\b|\bstuck\b|\bnudge\b|\btips?\b|"
            r"\bhow (do|should|can) i (start|begin)\b|\bwhere (do|should) i (start|begin)\b|"
            r"\bfirst step\b",
        ),
        (
            "why",
            r"\bwhy\b|\bhow come\b|\bwhat makes (it|that|this)\b|\bhow (is|was) (that|this|it) "
            r"(right|correct|true)\b|\bhow did you get\b|\bwhere did .* come from\b|\breason\b",
        ),
        (
            "confused",
            rf"\b{_NEG} (get|understand|follow|see|know what)\b|\bi dont know\b|\bidk\b|"
            r"\bno idea\b|\bdunno\b|\bconfus|\bim lost\b|^lost\b|\bmakes? no sense\b|"
            r"\bwhat does (that|this|it) mean\b|\bexplain (it |that |this )?(again|differently)\b|"
            r"\bcan you explain\b|\bexplain\b|\bhuh\b|^what$|^wait what\b|\b(say|put) (it|that) "
            r"(again|differently|another way)\b|\bsimpler\b|\bnot sure (what|how)\b|\btoo hard\b|"
            r"\bso hard\b|\bi cant do (this|it)\b|\bim not getting\b|\bnot getting it\b",
        ),
        (
            "greeting",
            r"^(hi|hello|hey|hiya|heya|yo|howdy|greetings|good (morning|afternoon|evening)|"
            r"hi there|hello there|whats up|sup)( (there|tutor|again|everyone))?$",
        ),
    )
)
_FRUSTRATION = re.compile(
    r"\bugh\b|\bargh\b|\bstupid\b|\bdumb\b|\bhate\b|\bannoying\b|\bfrustrat|\bgive up\b|\bi quit\b|"
    r"\bso hard\b|\btoo hard\b|\bcant do (this|it)\b|\bwhatever\b|\bsucks?\b|\bpointless\b|"
    r"\buseless\b|"
    r"\bfml\b|\bwtf\b|\bomg\b|\bsick of\b|\bfed up\b|\bi hate\b|\bnever get\b"
)
_OFF_TOPIC_LEAD = re.compile(
    r"^(can we (talk|play|do)|do you (like|play|know|have)|what is your|whats your|who are you|"
    r"are you|"
    r"tell me (about|a joke)|lets talk|i like|my favou?rite|did you see|have you (seen|heard))\b"
)
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred half halves third thirds quarter quarters fifth fifths sixth sixths eighth eighths "
    "minus negative "
    "plus over true false yes no"
).split()
_MATH = re.compile(r"\d|[=+*/^<>]|^-|^[a-h]$|^\(?[a-h][).]|^(option|choice) [a-h]$")
_LEAD_INS = re.compile(
    r"^(?:(?:i think|i guess|i believe|maybe|perhaps|is it|it'?s|it is|the answer is|my answer is|"
    r"answer|that'?s|that is|so|um+|uh+|er+|ok|okay|hmm+|well)\b[\s,:]*)+",
    re.IGNORECASE,
)
_CHAT = frozenset(
    "ok okay k cool thanks thank thx ty lol haha hehe nice great wow sure fine alright".split()
)
_VOCAB = (
    "hint",
    "help",
    "clue",
    "skip",
    "next",
    "why",
    "confused",
    "understand",
    "easy",
    "harder",
    "boring",
    "hello",
    "explain",
    "stuck",
    "dont",
    "know",
    "again",
)


def _normalise(text: str) -> str:
    s = text.lower().replace("’", "'").replace("‘", "'").replace("`", "'")
    s = re.sub(r"(\w)'(\w)", r"\1\2", s)  # don't -> dont, it's -> its, i'm -> im
    s = re.sub(r"([a-z])\1{2,}", r"\1", s)  # hiii -> hi, sooo -> so, ughhh -> ugh
    s = re.sub(r"\bim\b|\bi am\b", "im", s)
    return re.sub(r"\s+", " ", s).strip()


def _words_only(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", s)).strip()


def _fix_typos(words: str) -> str:
    fixed = []
    for w in words.split():
        if len(w) >= 3 and w.isalpha() and w not in _VOCAB:
            near = difflib.get_close_matches(w, _VOCAB, n=1, cutoff=0.75 if len(w) > 3 else 0.85)
            w = near[0] if near else w
        fixed.append(w)
    return " ".join(fixed)


def _intent(words: str) -> str | None:
    return next((kind for kind, rx in _RULES if rx.search(words)), None)


def _answer_part(s: str) -> str:
    return _LEAD_INS.sub("", s).strip().rstrip("?!. ").strip() or s.strip()


def looks_like_answer(s: str) -> bool:
    part = _answer_part(s)
    words = _words_only(part).split()
    return bool(_MATH.search(part)) or (
        0 < len(words) <= 3 and all(w in _NUMBER_WORDS for w in words)
    )


def classify_move(text: str, *, expecting_answer: bool) -> Move:
    """Classify one chat message. `expecting_answer`: a question is waiting for an answer."""
    raw = text if isinstance(text, str) else str(text)
    s = _normalise(raw)
    words = _words_only(s)
    frustrated = bool(_FRUSTRATION.search(words)) or bool(
        re.search(r"[!?]{3,}", raw) and not _MATH.search(s)
    )
    if not words:
        if expecting_answer and _MATH.search(s):
            return Move("answer", raw, _answer_part(s), frustrated)
        return Move("confused" if s.startswith("?") else "off_topic", raw, None, frustrated)

    answer_like = looks_like_answer(s)
    n_words = len(words.split())
    if expecting_answer and n_words > 8 and not answer_like:
        # a long message is an explanation (a free-text answer) unless it opens with a request
        lead = " ".join(words.split()[:LEAD_WORDS])
        kind = _intent(lead)
        if kind == "why" and not re.match(r"^(but |so |ok )?(why|how come)\b", words):
            kind = None  # "why" inside an explanation is usually part of the answer
        if kind in (None, "greeting"):
            kind = "off_topic" if _OFF_TOPIC_LEAD.search(words) else "answer"
    else:
        kind = _intent(words)
        if kind is None and n_words <= 4 and not answer_like:
            kind = _intent(_fix_typos(words))
        if kind == "why" and answer_like and re.match(r"^(is it|its|it is|maybe)\b", s):
            kind = None  # "is it 3/4? why" still answers first
        if kind is None or (kind == "greeting" and expecting_answer and answer_like):
            chat = _OFF_TOPIC_LEAD.search(words) or set(words.split()) <= _CHAT or s.endswith("?")
            if expecting_answer and (answer_like or not chat):
                kind = "answer"
            elif kind is None:
                kind = "off_topic"
    if kind == "answer" and frustrated and not answer_like and n_words <= 8:
        kind = "confused"  # "ugh this is so annoying" is not an attempt at the question
    answer = _answer_part(raw.strip()) if kind == "answer" else None  # as the student spelled it
    return Move(kind, raw, answer, frustrated)
