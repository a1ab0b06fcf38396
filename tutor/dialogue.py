"""The tutor's side of the chat: lesson pack, current question, mastery and the reply.

One turn, as `tutor.session.Conversation` drives it:

    evidence = dialogue.evidence(message, now)       # classify the move, check the answer
    decision = policy.decide(reading, evidence, now)  # emotion + evidence -> tone, pacing, ...
    reply = dialogue.respond(message, decision, now)  # act on the move, adapted to the decision

Correctness is always decided by `tutor.answers.check_answer` (code), mastery by Bayesian
knowledge tracing (`tutor.mastery.Mastery`). The decision changes what is said, not just how:

    pacing worked_example  a worked example from the step before the question
    pacing slower          the detailed explanation of the step
    pacing harder / skip   after a right answer or "too easy": a question from a later step
    hint_level n           a wrong answer or a hint request gets at least hint n
    offer_break            a short break is offered
    tone                   the connecting lines come from that tone's bank (tutor.prompts)

Replies are composed from the lesson pack and tutor.prompts.PHRASES, never repeating a bank's
line twice in a row. With a `phraser` (tutor.llm.LLMPhraser) an LLM rewords the composed reply;
on any error, or if its wording contradicts the checked verdict, the template reply is used.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from tutor.answers import Similarity, Verdict, attempts_explanation, check_answer, picked_choice
from tutor.curriculum import LESSONS_DIR, Pack, PackError, Question, Step, load_pack, load_packs
from tutor.intents import Move, asks_if_right, classify_move, looks_like_answer
from tutor.mastery import Mastery
from tutor.policy import Decision, Evidence
from tutor.prompts import PHRASES
from tutor.units import measured, named

log = logging.getLogger("tutor.dialogue")

DEFAULT_LESSON = "fractions"
EXPECTED_ANSWER_S = 20.0  # s, a typical time to answer a question
FAST_FRACTION = 0.5  # an answer in under this share of the expected time is "fast"
REVEAL_AFTER = 3  # wrong answers on one question before the tutor shows the answer
# a free-text question's accepted explanation that the classifier hears as one of these
# requests less surely than this is the answer stated, not the request
REQUESTS = ("confused", "why", "hint", "example")
CHAT = ("vent", "ack", "off_topic", "greeting")  # moves that ask for nothing
UNSURE_REQUEST = 0.6
# what the tutor says to a feeling put into words (the feeling the move classifier hears in a
# vent: tutor.moves), and whether help with the question follows; anger and frustration are
# acknowledged and helped, gladness and boredom carry on with the question
SAID_BANK = {"glad": "share_joy", "worry": "reassure", "down": "cheer_up",
             "bored": "hear_bored", "angry": "acknowledge", "unsure": "heard_feeling"}
CARRY_ON_AFTER = ("glad", "bored")
# a feeling heard less surely than this is answered as heard, not named: on the dev split's
# vents the feeling the classifier hears most is right 0.46 of the time below 0.6 (90 of 696)
# and 0.91 from it (`tools/train_moves.py` fits the head), and cheering sad news is worse
# than a plain "thanks for telling me"
FEELING_SURE = 0.6
LEVEL_FOR_PACING = {"slower": "detailed", "worked_example": "detailed", "harder": "brief",
                    "skip": "brief", "normal": "standard"}


@lru_cache(maxsize=8)
def _packs(directory: str) -> dict[str, Pack]:
    return load_packs(directory)


def load_lesson(lesson: str | Path | None = None, directory: str | Path = LESSONS_DIR) -> Pack:
    """A lesson pack by id ("fractions") or by file path; None gives the default lesson."""
    if lesson is not None and (Path(lesson).suffix or Path(lesson).is_file()):
        return load_pack(lesson)
    packs = _packs(str(directory))
    wanted = lesson or (DEFAULT_LESSON if DEFAULT_LESSON in packs else next(iter(packs), None))
    if wanted not in packs:
        raise PackError(f"no lesson pack {wanted!r} in {directory}; "
                        f"available: {', '.join(sorted(packs)) or 'none'}")
    return packs[wanted]


@dataclass(frozen=True)
class Reply:
    """What the tutor said this turn and what it did."""

    text: str
    move: str  # the student's move, one of tutor.intents.MOVE_KINDS
    action: str  # what the tutor did, in words ("checked: wrong; worked example; re-asked")
    correct: bool | None = None  # right or wrong as it counts; None: nothing checked, or unreadable
    verdict: Verdict | None = None
    step_id: str | None = None  # where the student is now
    question_id: str | None = None
    phrased_by: str = "template"  # "template" or "llm"


@dataclass(frozen=True)
class PhraseContext:
    """Everything an LLM phraser is told; the verdict is final."""

    plan: str  # the composed template reply
    tone: str
    pacing: str
    move: str
    student_message: str
    correct: bool | None
    step_title: str = ""
    step_explanation: str = ""
    question: str = ""


class Phraser(Protocol):
    def phrase(self, ctx: PhraseContext, *, check: Callable[[str], Verdict]) -> str: ...


class Phrasebook:
    """Picks a line for a situation and tone, never the same line of a bank twice running."""

    def __init__(self, phrases: dict[str, dict[str, tuple[str, ...]]] = PHRASES,
                 rng: random.Random | None = None):
        self.phrases, self.rng = phrases, rng or random.Random()
        self._last: dict[str, str] = {}

    def say(self, bank: str, tone: str = "neutral", **fmt: str) -> str:
        tones = self.phrases[bank]
        lines = tones.get(tone) or tones["neutral"]
        fresh = [line for line in lines if line != self._last.get(bank)] or list(lines)
        line = self.rng.choice(fresh)
        self._last[bank] = line
        return line.format(**fmt) if fmt else line


@dataclass
class _Analysis:
    message: str
    move: Move
    question: Question | None  # the question the message answers (or is about)
    verdict: Verdict | None
    counts_wrong: bool  # a wrong answer that counts (not an unreadable one or a form slip)
    elapsed_s: float | None
    evidence: Evidence
    checking: bool = False  # asks whether the answer just given was right ("is right?"),
    # or says it again with no request ("yesss 3/4!!")


@dataclass
class _Out:
    """The reply being composed."""

    parts: list[str] = field(default_factory=list)
    did: list[str] = field(default_factory=list)

    def add(self, text: str | None, did: str | None = None) -> None:
        if text:
            self.parts.append(text)
        if did:
            self.did.append(did)


def format_example(example) -> str:
    lines = [f"Example: {example.problem}"]
    lines += [f"  {i}. {s}" for i, s in enumerate(example.steps, 1)]
    lines.append(f"  Answer: {example.answer}")
    return "\n".join(lines)


def format_question(question: Question) -> str:
    if question.kind != "choice":
        return question.prompt
    options = "\n".join(f"  {chr(97 + i)}) {c}" for i, c in enumerate(question.choices or []))
    return f"{question.prompt}\n{options}"


def said_feeling(move: Move) -> str:
    """The feeling a vent puts into words: anger when it is flagged frustrated or the
    classifier's weights say no feeling (older weights), else the one it hears most."""
    if move.frustrated or not move.feelings:
        return "angry"
    felt = max(move.feelings, key=move.feelings.get)
    return felt if felt in SAID_BANK else "angry"


def answered_feeling(move: Move) -> str:
    """The feeling the reply to a vent answers: `said_feeling`, or "unsure" where the
    classifier hears no feeling at least `FEELING_SURE` surely (a plain "thanks for telling
    me", neither cheered nor consoled)."""
    felt = said_feeling(move)
    if move.frustrated or not move.feelings or move.feelings.get(felt, 0.0) >= FEELING_SURE:
        return felt
    return "unsure"


class Dialogue:
    """One student's tutor for one lesson pack: state, evidence and replies."""

    def __init__(self, pack: Pack, *, mastery: Mastery | None = None,
                 phraser: Phraser | None = None, similarity: Similarity | None = None,
                 start_step: str | None = None, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 expected_answer_s: float = EXPECTED_ANSWER_S):
        if expected_answer_s <= 0:
            raise ValueError(f"expected_answer_s must be positive, got {expected_answer_s}")
        self.pack, self.phraser, self.similarity = pack, phraser, similarity
        self.mastery = mastery or Mastery()
        self.book = Phrasebook(rng=random.Random(seed))
        self.clock, self.expected_answer_s = clock, expected_answer_s
        if start_step is not None:
            step = pack.step(start_step)
            first: tuple[Step, Question] | None = (step, step.questions[0])
        else:
            first = self.mastery.next_question(pack)
        self.step, self.question = first if first else (None, None)
        self.presented = False  # has the current question been shown?
        self.asked: list[str] = []  # question ids shown, oldest first
        self.hints_given = 0  # on the current question
        self.hint_requests = 0  # on the current question
        self.wrong_on_question = 0
        self.wrong_streak = 0  # wrong answers in a row, across questions
        self.examples_shown: dict[str, int] = {}  # step id -> worked examples shown
        self.level_shown: str | None = None  # explanation level last shown for the step
        self.last_answered: tuple[Step, Question] | None = None  # the last question got right
        # the last message's answer: right (True), checked and counted wrong (False), or
        # there was none (None)
        self._just_answered: bool | None = None
        self._last_reply_at: float | None = None
        self._pending: _Analysis | None = None
        self.on_break = False  # the student took a break; the next message comes back

    # ------------------------------------------------------------ opening the lesson
    def start(self, tone: str = "neutral", pacing: str = "normal") -> str:
        """The lesson's opening, before the student has said anything: the current step
        explained and its question asked, so the student's first message can answer it.
        (A lesson already complete says so.)"""
        out = _Out()
        if self.question is None:
            out.add(self.book.say("done", tone), "lesson complete")
        else:
            self._present(out, Decision(state="engaged", tone=tone, pacing=pacing,
                                        hint_level=0, reason="the lesson's opening"),
                          new_step=True, bank="open")
        return "\n\n".join(out.parts)

    def resume(self, question_id: str) -> None:
        """Carry on from a question the student was shown elsewhere (the page's greeting
        asked it): their next message answers it. KeyError for a question not in the pack."""
        step, question = self.pack.question(question_id)
        self._set_question(step, question)
        self.level_shown = "standard"  # the opening explained the step at this level
        self.presented = True

    # ------------------------------------------------------------ reading the student
    @property
    def expecting_answer(self) -> bool:
        return self.presented and self.question is not None

    def check(self, answer: str, question: Question | None = None) -> Verdict:
        """The code's verdict on `answer` for `question` (default: the current one)."""
        question = question or self.question
        if question is None:
            raise ValueError("there is no question to check an answer against")
        return check_answer(question, answer, similarity=self.similarity)

    def evidence(self, message: str, now: float | None = None) -> Evidence:
        """Classify the message and check an answer; what the policy should know this turn.

        Changes nothing: `respond` with the same message acts on this analysis.
        """
        self._pending = self._analyse(message, self.clock() if now is None else now)
        return self._pending.evidence

    def _measured_otherwise(self, message: str) -> bool:
        """The message's number is a time or a temperature that the waiting question never
        speaks of ("wait 5 minutes", "she say 12 oclock", "its like 30 degrees in here" to a
        question about fractions): a pause or a remark, not a wrong answer. "45 minutes" to
        "how many minutes is 3/4 of an hour?" is its answer."""
        q = self.question
        if q is None or q.kind in ("free_text", "choice"):
            return False
        said = measured(message)
        if not said:
            return False
        asked = " ".join([q.prompt, *q.answer, *q.hints, q.explanation or ""])
        return not said <= named(asked)

    def _restated(self, move: Move, message: str, verdict: Verdict) -> bool:
        """Just after a right answer, the message holds that answer again and not this
        question's ("3/4 obviously. give me something harder", "x is 4 easy", the same answer
        sent twice over a slow link): said about the last question, not a wrong attempt at
        this one. Unless it is a wrong answer the lesson knows students give to this one (a
        misconception's): then it is that attempt. An explanation is not said again this way:
        only answers the checker compares by value. `verdict`: the message's, on this
        question."""
        if self._just_answered is not True or self.last_answered is None:
            return False
        last = self.last_answered[1]
        if last.kind == "free_text":
            return False
        if not self.check(move.answer or message, last).correct:
            return False
        return not verdict.correct and verdict.misconception is None

    def _explained(self, q: Question, move: Move, message: str) -> Verdict | None:
        """The checker's verdict on a calm message to a free-text question when the message is
        the explanation, right or wrong, whatever the classifier heard; else None. A feeling
        or chat heard in a long sentence that tries the question is the answer ("because the
        numbers are like that" is a wrong one, not a glad vent; "i hate it when the parts are
        different sizes", flagged, never gets here). So is the right explanation, stated,
        where the classifier half hears a request in it ("the parts have to be the same size
        so each one is the same fraction of the whole", confused at 0.51); "i dont get why
        the parts have to be the same size" is heard surely and stays a request."""
        chat = move.kind in CHAT
        unsure_request = (move.kind in REQUESTS and move.p_kind < UNSURE_REQUEST
                          and "?" not in message)
        if not (chat or unsure_request):
            return None
        verdict = self.check(message)
        if chat:
            says_feeling = (move.kind == "vent" and bool(move.feelings)
                            and said_feeling(move) != "glad")
            return verdict if attempts_explanation(q, message, verdict,
                                                   says_feeling=says_feeling) else None
        return verdict if verdict.correct else None

    def _analyse(self, message: str, now: float) -> _Analysis:
        move = classify_move(message, expecting_answer=self.expecting_answer)
        q = self.question
        verdict, restated = None, False
        if move.kind == "answer" and self.expecting_answer:
            verdict = self.check(move.answer or message)  # kept for the answer it stays
            restated = self._restated(move, message, verdict)
            if restated or self._measured_otherwise(message):
                move = classify_move(message, expecting_answer=True, not_answer=True)
                verdict = None
        if move.kind != "answer" and self.expecting_answer:
            if q.kind == "choice" and picked_choice(q, message) is not None:
                move = Move("answer", message, message, move.frustrated, move.p_frustrated)
            elif q.kind == "free_text" and not move.frustrated:
                verdict = self._explained(q, move, message)
                if verdict is not None:
                    move = Move("answer", message, message, move.frustrated, move.p_frustrated)
        counts_wrong = False
        if move.kind == "answer" and self.expecting_answer:
            if verdict is None:  # the explanation's verdict is already in hand
                verdict = self.check(move.answer or message)
            counts_wrong = not verdict.correct and (verdict.feedback is not None
                                                    or verdict.message is None)
        elapsed = None if self._last_reply_at is None else max(now - self._last_reply_at, 0.0)
        correct = verdict is not None and verdict.correct
        streak = 0 if correct else self.wrong_streak + counts_wrong
        fast = elapsed is not None and elapsed < FAST_FRACTION * self.expected_answer_s
        # "is right?" just after an answer, right or wrong, asks to be told so (`respond`),
        # whatever move the classifier hears in it: no "i don't get it"
        checking = (self._just_answered is not None and move.kind != "answer"
                    and asks_if_right(message)) or (
            restated and (move.kind in CHAT or move.kind == "why"))
        # the answer just got right said again, with no request: yes, it was right
        evidence = Evidence(
            wrong_streak=streak,
            hint_requests=self.hint_requests + (move.kind == "hint"),
            typed_confused=move.kind in ("confused", "why") and not checking,
            typed_frustration=move.frustrated,
            frustration_p=move.p_frustrated if move.frustrated else 0.0,
            too_easy=move.kind == "too_easy",
            too_easy_p=move.p_kind if move.kind == "too_easy" else 0.0,
            too_easy_keen=move.keen,
            fast_correct=correct and fast,
            fast_wrong=counts_wrong and streak >= 2 and fast,
            rushed=counts_wrong and streak == 1 and fast,
            correct=True if correct else (False if counts_wrong else None),
            response_s=elapsed,
            move=move.kind,
            feelings=move.feelings,
            letters=sum(c.isalnum() for c in message),
        )
        return _Analysis(message, move, self.question, verdict, counts_wrong, elapsed, evidence,
                         checking)

    # ------------------------------------------------------------ replying
    def _steer(self, a: _Analysis, tone: str, *, worried: bool = False) -> tuple[str, str]:
        """Back to the lesson; typed frustration ("this is so annoying") is acknowledged first,
        and a feeling put into words is answered as the feeling it is (`worried`: the policy
        heard the chat as a worry said, "will my teacher see this")."""
        if a.move.frustrated:
            return self.book.say("acknowledge", tone), "acknowledged typed frustration"
        if a.move.kind == "vent":
            felt = answered_feeling(a.move)
            why = ("acknowledged what they said" if felt == "unsure"
                   else f"acknowledged how they feel ({felt})")
            return self.book.say(SAID_BANK[felt], tone), why
        if worried:
            return self.book.say("worried_question", tone), "reassured a worried question"
        return self.book.say("off_topic", tone), "steered back to the lesson"

    def respond(self, message: str, decision: Decision, now: float | None = None) -> Reply:
        """Act on the student's move, adapted to the policy's decision, and say so."""
        now = self.clock() if now is None else now
        a = self._pending if self._pending and self._pending.message == message else None
        a = a or self._analyse(message, now)
        self._pending = None
        self.wrong_streak = a.evidence.wrong_streak
        self.hint_requests = a.evidence.hint_requests
        just_answered, self._just_answered = self._just_answered, None
        out, tone = _Out(), decision.tone
        kind = a.move.kind
        back = self.on_break and kind != "break"
        if back:  # back from a break: where we were, then whatever they asked
            self.on_break = False
            out.add(self.book.say("welcome_back", tone), "back from the break")
            if kind in ("ack", "greeting", "off_topic", "repeat") and self.presented \
                    and self.question is not None:
                kind = "repeat"  # the question again, as it was left
        if kind == "break" and self.question is not None:
            self._on_break(decision, out)
        elif not self.presented and self.question is not None and kind != "answer":
            if kind == "greeting":
                out.add(self.book.say("greet", tone), "greeted")
            elif kind == "off_topic" and looks_like_answer(message):
                out.add(self.book.say("early", tone), "answer before the question")
            elif kind in ("off_topic", "vent") or a.move.frustrated:
                out.add(*self._steer(a, tone, worried=decision.worried_question))
            self._present(out, decision, new_step=True)
        elif self.question is None:
            out.add(self.book.say("done", tone), "lesson complete")
        elif a.checking:
            self._on_asks_if_right(a, decision, out, right=just_answered is True)
        elif kind == "answer":
            self._on_answer(a, decision, out)
        elif kind == "hint":
            self._on_hint(decision, out)
        elif kind == "confused":
            if a.move.frustrated:
                out.add(self.book.say("acknowledge", tone), "acknowledged typed frustration")
            self._on_confused(decision, out)
        elif kind == "why":
            self._on_why(decision, out, just_answered is True)
        elif kind == "skip":
            self._on_skip(decision, out)
        elif kind == "too_easy":
            self._on_too_easy(decision, out)
        elif kind == "greeting":
            out.add(self.book.say("greet", tone), "greeted")
            out.add(f"{self.book.say('reask', tone)} {format_question(self.question)}", "re-asked")
        elif kind == "example":
            self._on_example(decision, out)
        elif kind == "reveal":
            self._on_reveal(decision, out)
        elif kind == "repeat":
            if not back:
                out.add(self.book.say("repeat", tone))
            out.add(format_question(self.question), "repeated the question")
        elif kind == "ack":
            self._carry_on(out, tone)
        elif kind == "vent":
            out.add(*self._steer(a, tone))
            felt = answered_feeling(a.move)
            if (felt in CARRY_ON_AFTER or decision.pacing == "harder"
                    or (felt == "unsure" and decision.pacing == "normal")):
                self._carry_on(out, tone)  # heard, and on with the question: no unasked help
            else:  # while the tutor steps up (a bored student), nor "let's make it easier"
                self._on_vent(decision, out)
        else:  # off_topic
            out.add(*self._steer(a, tone, worried=decision.worried_question))
            out.add(f"{self.book.say('reask', tone)} {format_question(self.question)}")
        if decision.offer_break and not self.on_break:
            out.add(self.book.say("break", tone), "offered a break")
        self._last_reply_at = now
        template = "\n\n".join(out.parts)
        text, by = self._phrase(template, a, decision)
        return Reply(text=text, move=a.move.kind, action="; ".join(out.did) or "replied",
                     correct=a.evidence.correct,  # as it counts: an unreadable answer is None
                     verdict=a.verdict, step_id=self.step.id if self.step else None,
                     question_id=self.question.id if self.question else None, phrased_by=by)

    # -- moves
    def _on_answer(self, a: _Analysis, d: Decision, out: _Out) -> None:
        step, q, v, tone = self.step, self.question, a.verdict, d.tone
        if v is None:  # an answer before any question was shown
            out.add(self.book.say("early", tone), "answer before the question")
            self._present(out, d, new_step=True)
            return
        if v.correct:
            self.mastery.observe_answer(step, q, True)
            self.last_answered, self._just_answered = (step, q), True
            out.add(self.book.say("right", tone), "checked: right")
            self._advance(out, d)
            return
        if not a.counts_wrong:  # the right value written the wrong way, or unreadable
            nearly = check_answer(q.model_copy(update={"form": "any"}), a.move.answer or a.message,
                                  similarity=self.similarity).correct
            bank, did = ("not_yet", "checked: right value, wrong form") if nearly else (
                "unclear", "checked: could not read it")
            out.add(f"{self.book.say(bank, tone)} {v.message}", did)
            out.add(self.book.say("again", tone))
            return
        self.mastery.observe_answer(step, q, False)
        self.wrong_on_question += 1
        self._just_answered = False
        why = v.feedback or v.message or ""
        out.add(f"{self.book.say('wrong', tone)} {why}".strip(),
                "checked: wrong" + (f" ({v.misconception})" if v.misconception else ""))
        if self.wrong_on_question >= REVEAL_AFTER:
            reveal = self.book.say("reveal", tone, answer=q.answer[0])
            out.add(f"{reveal} {q.explanation or ''}".strip(), "showed the answer")
            self._advance(out, d, moved_on=True)
            return
        if self._support(out, d, hint_min=d.hint_level):
            out.add(f"{self.book.say('yours', tone)} {format_question(q)}", "re-asked")
        else:
            out.add(self.book.say("again", tone))

    def _on_hint(self, d: Decision, out: _Out) -> None:
        tone = d.tone
        if d.pacing == "worked_example" and self._worked_example(out, d):
            out.add(f"{self.book.say('yours', tone)} {format_question(self.question)}", "re-asked")
            return
        if not self._hint(out, d, at_least=max(d.hint_level, 1)):
            q = self.question
            out.add(f"{self.book.say('no_more_hints', tone)} {q.hints[-1]}", "repeated last hint")
            out.add('If you like, say "skip" and we\'ll try a different one.')
        else:
            out.add(self.book.say("again", tone))

    def _on_confused(self, d: Decision, out: _Out) -> None:
        tone, step = d.tone, self.step
        if d.pacing == "worked_example" and self._worked_example(out, d):
            pass
        elif self.level_shown != "detailed":
            out.add(self.book.say("explain", tone))
            out.add(step.explanations.at("detailed"), "detailed explanation")
            self.level_shown = "detailed"
        else:  # the long version was already shown: a hint says it about this question
            out.add(self.book.say("explain", tone))
            if not self._hint(out, d, at_least=max(d.hint_level, 1)):
                out.add(step.explanations.at("standard"), "standard explanation")
        out.add(f"{self.book.say('reask', tone)} {format_question(self.question)}", "re-asked")

    def _on_asks_if_right(self, a: _Analysis, d: Decision, out: _Out,
                          right: bool) -> None:
        """"is that right? i wasn't sure" just after an answer: yes, it was (a "why" is then
        answered for that answer), or no, it was not (the tutor's "not quite" may have been
        missed); a feeling said with it is heard, and the waiting question follows with no
        unasked hint. Not "i don't get it": the policy does not count it as confusion."""
        bank, did = (("confirm_right", "confirmed the last answer was right") if right else
                     ("confirm_wrong", "said the last answer was not right"))
        out.add(self.book.say(bank, d.tone), did)
        if right and a.move.kind == "why":
            self._on_why(d, out, just_answered=True)
            return
        if a.move.kind == "vent" or a.move.frustrated:
            out.add(*self._steer(a, d.tone))
        if right:
            self._carry_on(out, d.tone)
        else:  # "Great. Over to you:" after a no would jar
            out.add(f"{self.book.say('reask', d.tone)} {format_question(self.question)}",
                    "re-asked")

    def _on_why(self, d: Decision, out: _Out, just_answered: bool) -> None:
        tone = d.tone
        if just_answered and self.last_answered:
            step, q = self.last_answered
            out.add(f"{self.book.say('why', tone)} {q.explanation or step.explanations.at()}",
                    "explained the last answer")
            out.add(f"{self.book.say('reask', tone)} {format_question(self.question)}")
            return
        level = "detailed" if self.level_shown == "standard" else LEVEL_FOR_PACING.get(
            d.pacing, "standard")
        out.add(f"{self.book.say('why', tone)} {self.step.explanations.at(level)}",
                f"explained why ({level})")
        self.level_shown = level
        out.add(f"{self.book.say('reask', tone)} {format_question(self.question)}", "re-asked")

    def _on_example(self, d: Decision, out: _Out) -> None:
        tone = d.tone
        if not self._worked_example(out, d):
            out.add(self.book.say("no_example", tone))
            out.add(self.step.explanations.at("detailed"), "detailed explanation (no example left)")
            self.level_shown = "detailed"
        out.add(f"{self.book.say('yours', tone)} {format_question(self.question)}", "re-asked")

    def _on_break(self, d: Decision, out: _Out) -> None:
        """Take the break the student asked for; the next message comes back to this question."""
        if self.on_break:
            out.add(self.book.say("still_away", d.tone), "still on a break")
            return
        self.on_break = True
        out.add(self.book.say("take_break", d.tone), "took a break")

    def _on_reveal(self, d: Decision, out: _Out) -> None:
        """The answer only after an attempt; before one, a hint."""
        tone, q = d.tone, self.question
        if self.wrong_on_question > 0:
            reveal = self.book.say("reveal", tone, answer=q.answer[0])
            out.add(f"{reveal} {q.explanation or ''}".strip(), "showed the answer (asked)")
            self._advance(out, d, moved_on=True)
            return
        out.add(self.book.say("reveal_not_yet", tone), "hint instead of the answer (no attempt)")
        if not self._hint(out, d, at_least=max(d.hint_level, 1)):
            out.add(f"{self.book.say('no_more_hints', tone)} {q.hints[-1]}", "repeated last hint")
        out.add(f"{self.book.say('yours', tone)} {format_question(q)}", "re-asked")

    def _on_vent(self, d: Decision, out: _Out) -> None:
        """After acknowledging anger, worry or feeling down: help with the question (an
        example or a hint)."""
        tone = d.tone
        if d.pacing == "worked_example" and self._worked_example(out, d):
            pass
        else:
            out.add(self.book.say("more_help", tone))
            if not self._hint(out, d, at_least=max(d.hint_level, 1)):
                out.add(self.step.explanations.at("brief"), "brief explanation")
        out.add(f"{self.book.say('yours', tone)} {format_question(self.question)}", "re-asked")

    def _carry_on(self, out: _Out, tone: str) -> None:
        out.add(f"{self.book.say('carry_on', tone)} {format_question(self.question)}",
                "carried on")

    def _on_skip(self, d: Decision, out: _Out) -> None:
        out.add(self.book.say("skip", d.tone), "skipped the question")
        self._advance(out, d, moved_on=True)

    def _on_too_easy(self, d: Decision, out: _Out) -> None:
        tone = d.tone
        if self.wrong_on_question > 0:
            # just missed this one: no harder question ("these are getting hard" is often
            # heard as asking for harder work); this one first
            out.add(self.book.say("this_one_first", tone), "kept the question (just missed)")
            out.add(format_question(self.question))  # shown already: it was just answered
            return
        if d.pacing in ("harder", "skip"):
            self._advance(out, d, moved_on=True)  # _advance says "harder" itself
            return
        # Not adapting: test the claim with the hardest question of this step not yet asked.
        left = [q for q in self.step.questions if q.id not in self.asked] or self.step.questions
        self._set_question(self.step, left[-1])
        out.add(self.book.say("prove_it", tone), "asked the step's hardest question")
        out.add(format_question(self.question))
        self.presented = True

    # -- building blocks
    def _support(self, out: _Out, d: Decision, *, hint_min: int) -> bool:
        """Help after a wrong answer, as the pacing and hint level say. True: something
        long was shown, so the question should be repeated."""
        if d.pacing == "worked_example" and self._worked_example(out, d):
            return True
        long = False
        if d.pacing in ("slower", "worked_example") and self.level_shown != "detailed":
            out.add(self.book.say("explain", d.tone))
            out.add(self.step.explanations.at("detailed"), "detailed explanation")
            self.level_shown, long = "detailed", True
        if hint_min > 0:
            self._hint(out, d, at_least=hint_min)
        return long

    def _worked_example(self, out: _Out, d: Decision) -> bool:
        examples = self.step.examples
        shown = self.examples_shown.get(self.step.id, 0)
        if shown >= len(examples):
            return False
        self.examples_shown[self.step.id] = shown + 1
        out.add(self.book.say("worked", d.tone))
        out.add(format_example(examples[shown]), "worked example")
        return True

    def _hint(self, out: _Out, d: Decision, *, at_least: int) -> bool:
        hints = self.question.hints
        level = min(max(self.hints_given + 1, at_least), len(hints))
        if level <= self.hints_given:
            return False
        self.hints_given = level
        out.add(f"{self.book.say('hint', d.tone)} {hints[level - 1]}", f"hint {level}")
        return True

    def _set_question(self, step: Step, question: Question) -> None:
        if self.step is None or step.id != self.step.id:
            self.level_shown = None
        self.step, self.question = step, question
        self.hints_given = self.hint_requests = self.wrong_on_question = 0
        if question.id not in self.asked:
            self.asked.append(question.id)

    def _advance(self, out: _Out, d: Decision, *, moved_on: bool = False) -> None:
        """Pick the next question (mastery, or a harder one when the pacing says so)."""
        before = self.step
        harder = d.pacing in ("harder", "skip")
        nxt = self._harder() if harder else None
        if nxt is None:
            exclude_q = {self.question.id} if moved_on else set()
            nxt = self.mastery.next_question(self.pack, asked=set(self.asked) | exclude_q)
        if nxt is None:
            self.step = self.question = None
            out.add(self.book.say("done", d.tone), "lesson complete")
            return
        if harder:
            out.add(self.book.say("harder", d.tone), "moved to a harder question")
        self._set_question(*nxt)
        self._present(out, d, new_step=before is None or nxt[0].id != before.id)

    def _harder(self) -> tuple[Step, Question] | None:
        """The first unasked question of the next later step not yet mastered."""
        steps = self.pack.steps
        here = next(i for i, s in enumerate(steps) if s.id == self.step.id)
        for step in steps[here + 1:]:
            if self.mastery.step_mastered(step):
                continue
            fresh = [q for q in step.questions if q.id not in self.asked]
            if fresh:
                return step, fresh[0]
        return None

    def _present(self, out: _Out, d: Decision, *, new_step: bool, bank: str = "step") -> None:
        """Show the current question; on a new step, its explanation first as paced, after a
        line from the phrase `bank` naming the step."""
        tone, step = d.tone, self.step
        if new_step:
            level = LEVEL_FOR_PACING.get(d.pacing, "standard")
            out.add(self.book.say(bank, tone, title=step.title))
            if d.pacing == "worked_example" and self._worked_example(out, d):
                out.add(step.explanations.at("brief"))
                self.level_shown = "brief"
            else:
                out.add(step.explanations.at(level), f"explained the step ({level})")
                self.level_shown = level
        elif d.pacing == "slower" and self.level_shown != "detailed":
            out.add(step.explanations.at("detailed"), "detailed explanation")
            self.level_shown = "detailed"
        out.add(f"{self.book.say('ask', tone)} {format_question(self.question)}",
                f"asked {self.question.id}")
        if self.question.id not in self.asked:
            self.asked.append(self.question.id)
        self.presented = True

    def _phrase(self, template: str, a: _Analysis, d: Decision) -> tuple[str, str]:
        if self.phraser is None:
            return template, "template"
        ctx = PhraseContext(
            plan=template, tone=d.tone, pacing=d.pacing, move=a.move.kind,
            student_message=a.message, correct=None if a.verdict is None else a.verdict.correct,
            step_title=self.step.title if self.step else "",
            step_explanation=self.step.explanations.at("brief") if self.step else "",
            question=format_question(a.question) if a.question else "",
        )
        asked = a.question

        def check(answer: str) -> Verdict:
            return self.check(answer, asked)

        try:
            text = self.phraser.phrase(ctx, check=check)
        except Exception as e:  # noqa: BLE001 - any LLM trouble: the template reply still teaches
            log.warning("LLM phrasing failed, using the template reply: %s: %s",
                        type(e).__name__, e)
            return template, "template"
        return text, "llm"
