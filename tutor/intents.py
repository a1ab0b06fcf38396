"""What the student's chat message is trying to do: answer, ask for a hint, say they're lost, ...

`classify_move(text, expecting_answer=True)` reads one message. A message that is nothing but a
maths answer while a question waits ("3/4", "i think its x = 5", "three eighths?") is an
answer by rule: that much is certain. Everything else is decided by the learned classifier in
`tutor.moves` (trained on `data/moves/`, numpy only), which also flags frustration, since
that rides along with any move ("ugh I don't get it", "this is stupid, skip").

The moves, and what the tutor does with each (`tutor.dialogue`):

    answer      an attempt at the question           checked by code
    hint        "give me a hint", "im stuck"          the next hint
    confused    "i dont get it", "what does x mean"   the explanation again, slower
    example     "can you show me an example?"         a worked example
    why         "why is it 3/4?"                      the reason
    skip        "next", "another one"                 a different question
    too_easy    "too easy", "boring"                  a harder question
    break       "i need a break", "brb"               a clean break; back where they left
    reveal      "just tell me the answer"             the answer after an attempt, else a hint
    repeat      "what was the question?"              the question again
    greeting    "hi", "hola"                          a greeting, then on
    ack         "ok", "thanks", "got it"              carry on
    off_topic   "do you like minecraft"               a short, friendly redirect
    vent        "i hate fractions", "im so bad at this"  acknowledged, then help
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tutor.answers import extract_answer, is_only_an_answer
from tutor.moves import load_model, mostly_garbled, readable, symbols

MoveKind = Literal["answer", "hint", "confused", "example", "why", "skip", "too_easy", "break",
                   "reveal", "repeat", "greeting", "ack", "off_topic", "vent"]
MOVE_KINDS: tuple[str, ...] = ("answer", "hint", "confused", "example", "why", "skip",
                               "too_easy", "break", "reveal", "repeat", "greeting", "ack",
                               "off_topic", "vent")
# The frustration head's probability from which a message is flagged: chosen by 5-fold
# cross-validation on train (linear SVM, Platt-scaled: flag accuracy 0.906 at 0.5, 0.902 at
# 0.4, 0.898 at 0.35; the logistic regression it replaced, 0.902 at 0.5).
FRUSTRATED_AT = 0.5


@dataclass(frozen=True)
class Move:
    kind: str  # one of MOVE_KINDS
    text: str  # the message as typed
    answer: str | None = (
        None  # kind "answer": the answer without lead-ins ("3/4" from "I think it's 3/4")
    )
    frustrated: bool = False
    p_frustrated: float = 0.0  # the flag's calibrated probability (flagged from FRUSTRATED_AT)
    feelings: dict[str, float] | None = None  # "vent", "off_topic" or flagged frustrated:
    # the feeling, probabilities ("k whatever": boredom)
    p_kind: float = 1.0  # the classifier's calibrated probability of `kind` (1: by rule)
    keen: float = 0.0  # "too_easy" not flagged frustrated and heard as asked for keenly most
    # ("this is fun can i do a harder one"), not as a complaint or plainly: how surely (0 else)


def looks_like_answer(text: str) -> bool:
    """The message holds a maths answer somewhere ("3/4", "is it five?")."""
    return extract_answer(text) is not None


# Asking whether an answer was right, in English as learners write it too ("is that right?",
# "was i correct", "this one is right also?", "Is correct?"): certain enough for a rule, since
# none of the fourteen moves says it. "is it ok if..." asks something else, so only
# right/correct count.
_THAT = r"(?:it|that|this|this one|that one|mine)"
_RIGHT = r"(?:(?!not\b)\w+\s+)?(?:right|correct)"  # "is that actually right", not "not right"
_ASKS_IF_RIGHT = re.compile("|".join([
    # "is that right", "was i correct", "did i get it right"; not "how/why/y is that right"
    rf"(?<!how )(?<!why )(?<!\by )\b(?:(?:is|was|were|are|am)\s+"
    rf"(?:{_THAT}|those|these|my answers?|i)|did i(?: get (?:it|that|this))?)\s+{_RIGHT}"
    r"(?!\s+(?:way|method|formula|rule|step))",
    rf"^(?:ok\S*\s+)?(?:and\s+)?{_THAT}\s+(?:is|was)\s+{_RIGHT}\b.*\?",  # "this one is right also?"
    r"^(?:is|was)\s+(?:right|correct)",  # "Is correct?"
    r"^(?:right|correct|that right|thats right|that's right)\s*\?+$"]), re.I)


def asks_if_right(text: str) -> bool:
    """The message asks whether an answer was right and holds no answer of its own
    ("is that right? i wasn't sure"; "is it 3/4?" is an answer)."""
    words = " ".join(readable(text).lower().split())
    return bool(_ASKS_IF_RIGHT.search(words)) and extract_answer(text) is None


def _free_text(text: str) -> str:
    return " ".join(text.split())


# a request for harder work that the feeling head hears at least this surely as worry is a
# worry said: on the dev split's messages read as `too_easy` by the n-gram move head, 5 such,
# all `vent` (at 0.7, 2 more that are `too_easy`); on train, 9 of its `too_easy` reach it.
# With the sentence embedding stacked on the move head, none of dev's messages is left for
# it: those vents are read as vents
TOO_EASY_WORRY = 0.8


def classify_move(text: str, *, expecting_answer: bool, not_answer: bool = False) -> Move:
    """Classify one chat message. `expecting_answer`: a question is waiting for an answer.
    `not_answer`: the message is known to hold no answer to it ("wait 5 minutes" to a question
    that measures no time): the likeliest of the other moves, its probability taken among
    them."""
    raw = text if isinstance(text, str) else str(text)
    text_read = readable(raw)
    if not text_read.strip() or mostly_garbled(raw):
        # empty, or only (or mostly) bytes that were not text (U+FFFD), controls
        return Move("off_topic", raw)
    model = load_model()
    row = model.vector(text_read, expecting_answer)  # one reading for every head
    probs, p_frustrated = model.predict(text_read, expecting_answer, row=row)
    frustrated = bool(p_frustrated >= FRUSTRATED_AT)
    if not any(c.isalnum() for c in text_read) and not symbols(text_read):
        # no word, number, emoji or emoticon ("...", "?!"): no feeling was said to acknowledge
        probs.pop("vent", None)
    if not_answer:
        rest = sum(p for k, p in probs.items() if k != "answer")
        probs = {k: p / rest for k, p in probs.items() if k != "answer"} if rest > 0 else \
            {k: 1 / (len(probs) - 1) for k in probs if k != "answer"}
    if expecting_answer and not not_answer and is_only_an_answer(text_read):
        kind, p_kind = "answer", 1.0  # certain: by rule
    else:
        kind = max(probs, key=probs.get)
        p_kind = float(probs[kind])
    answer = None
    if kind == "answer":
        answer = extract_answer(text_read) or _free_text(text_read)
    feelings = None
    # The feeling head learned on vents alone. On other messages its n-gram part is read
    # alone: stacked with the sentence embedding it hears worry in plain requests for harder
    # work (dev: 4 `too_easy` messages reach TOO_EASY_WORRY, all of them `too_easy`, such as
    # "Could I try some more challenging questions, please?" at 0.84)
    ngrams = row._replace(sentence=None)
    if kind == "too_easy" and not frustrated:
        # "what if theres a harder one on the test", "is that too slow? everyone is on level
        # 3": heard surely as worry, a worry said with the words of a request, not boredom
        said = model.feeling(text_read, expecting_answer, row=ngrams)
        if said and said.get("worry", 0.0) >= TOO_EASY_WORRY:
            kind, p_kind, feelings = "vent", float(said["worry"]), said
    if feelings is None and (kind in ("vent", "off_topic") or frustrated):
        # the feeling a vent says, or that chat or frustration carries ("will my teacher see
        # this": worry; "k whatever": boredom)
        feelings = model.feeling(text_read, expecting_answer,
                                 row=row if kind == "vent" else ngrams)
    # how a request for harder work is made, where the classifier hears keenness most
    how = (model.keen(text_read, expecting_answer, row=row) or {}
           if kind == "too_easy" and not frustrated else {})
    keen = how["keen"] if how and max(how, key=how.get) == "keen" else 0.0
    return Move(kind, raw, answer, frustrated, float(p_frustrated), feelings, p_kind, keen)
