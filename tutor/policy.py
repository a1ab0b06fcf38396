"""The policy layer: evidence over time, by modality → learning state → adaptations.

Evidence arrives in channels: the dialogue's own (answers, hint requests, moves, response
times, frustration in the student's words), and the emotion read from the words (text), the
voice (speech), the face, or a fused reading that names no modality. Each channel keeps its
evidence as a sum decayed on time (a half-life in seconds): a camera frame stands for the
half second since the previous one, so 120 frames a minute weigh one minute of face, while a
turn is a turn. A reading counts by its confidence, the service's per-modality reliability
when it gives one, and how emotional it is (a neutral reading is weak evidence). Each channel
is trusted by its reliability (for a modality, measured: tools/policy_reliability.py) times
how much evidence it holds; the dialogue is the
most reliable, so three wrong answers outweigh a smiling face, and joy while answers go wrong
counts little towards delight.

The state is switched with hysteresis in time: a new state must lead the current one by a
margin for `confirm_s` seconds or on two turns in a row, after the current state has held
`min_dwell_s`. Leaving a family of states (doing fine, struggling, bored) is judged on the
family's total, so evidence split between confusion and frustration still counts whole.
So one frown does nothing, and turns two seconds apart still adapt.

Every decision carries a technical reason (scores, seconds, evidence: for the log and the
teacher) and `student_note` says it in plain words for the student. All numbers come from a
YAML file (data/policy/default.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cmt.contract import EMOTIONS, AnalyzeResponse
from tutor.settings import REPO_DATA_DIR

STATES = ("engaged", "delighted", "frustrated", "anxious", "confused", "bored")
CHANNELS = ("dialogue", "text", "speech", "face", "fused")
EMOTION_CHANNELS = ("text", "speech", "face", "fused")
SIGNALS = ("wrong_answer", "wrong_streak", "slow_wrong", "hint_requests", "typed_confused",
           "typed_frustration", "too_easy", "fast_correct", "fast_after_too_easy", "correct",
           "skip_while_right", "right_streak", "break_while_right", "drift", "fast_wrong",
           "fast_streak", "chat_while_right", "slip_owned", "fed_up")
COUNT_CAP = 3  # a counted signal (wrong or right answers in a row, hints) counts up to this
SLIP_OWNED_LETTERS = 8  # an ack at least this long after a first wrong answer owns the slip
FAILING_AFTER = 2  # wrong answers in a row from which a smile is not delight (one is a slip)
RECOVERED_AFTER = 2  # right answers in a row from which, after a struggle, it may be delight
SLOW_STATES = ("frustrated", "anxious", "confused")  # the tutor slows down in these
FELT = ("engaged", "delighted", "anxious")  # states that right answers do not tell apart
FAMILIES = {"fine": ("engaged", "delighted"), "struggling": SLOW_STATES, "bored": ("bored",)}
FAMILY_OF = {s: g for g, members in FAMILIES.items() for s in members}
STRUGGLING_STATES = ("frustrated", "anxious", "confused")
# a sensor's usual look (Policy._at_rest): the emotions it reads while the answers go right
AT_REST = {"anger": ("anger", "disgust"), "fear": ("fear",)}
SENSORS = ("face", "speech")  # the channels whose usual look is learned (AT_REST)
DEFAULT_POLICY = REPO_DATA_DIR / "policy" / "default.yaml"
NOUN = {"engaged": "engagement", "delighted": "delight", "frustrated": "frustration",
        "anxious": "anxiety", "confused": "confusion", "bored": "boredom"}
TONE_WORDS = {"calm": "calmer tone", "upbeat": "upbeat tone", "encouraging": "encouraging tone",
              "neutral": "neutral tone"}
PACING_WORDS = {"worked_example": "worked example first", "slower": "slower steps",
                "harder": "a harder problem", "normal": "normal pace", "skip": "skip ahead"}
CONTROL_REASON = "control mode: no adaptation"
FEELING_WORDS = {"worry": "worried", "down": "down", "glad": "glad", "bored": "bored",
                 "angry": "annoyed"}  # a vent's said feeling, in the reason


class Adaptation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tone: str
    pacing: str
    hint_level: int = Field(ge=0, le=3)


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reliability: float = Field(ge=0, le=1)
    half_life_s: float = Field(gt=0)
    saturation: float = Field(gt=0)  # evidence (turns; seconds for the face) for half trust

    def trust(self, weight: float) -> float:
        """How far this much evidence is trusted: reliability, saturating with the evidence."""
        return self.reliability * weight / (weight + self.saturation)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emotion_weights: dict[str, dict[str, float]]
    evidence_weights: dict[str, dict[str, float]]
    slow_s: float = Field(gt=0)
    slow_vs_own: float = Field(default=1.5, ge=1)
    too_easy_memory_s: float = Field(ge=0)
    drift_s: float | None = Field(default=None, gt=0)  # see Policy._drift; None: never
    drift_letters: int = Field(default=4, ge=0)
    drift_memory_s: float = Field(default=0.0, ge=0)
    fast_streak_from: int = Field(default=3, ge=2)  # see Policy._dialogue
    rushed_wrong: float = Field(default=1.0, ge=0, le=1)  # see Policy._dialogue
    channels: dict[str, Channel]
    max_frame_s: float = Field(gt=0)
    prior_weight: float = Field(gt=0)
    smile_while_failing: float = Field(ge=0, le=1)
    said_feeling: float = Field(default=0.0, ge=0)  # 0: a said feeling is only a text reading
    said_feelings: dict[str, dict[str, float]] = Field(default_factory=dict)  # feeling -> states
    chat_worry_from: float = Field(default=1.1, ge=0)  # see Policy._said (above 1: never)
    struggle_own: float = Field(default=0.3, gt=0)  # the weight of the dialogue's own split
    calm_while_struggling: float = Field(default=0.0, ge=0)  # a calm reading, in that split,
    # counts this much towards confusion
    struggle_how: dict[str, list[str]] = Field(default_factory=dict)  # evidence -> the states
    # the readings may move its struggling share among (see Policy._resplit)
    switch_margin: float = Field(ge=0)
    switch_margin_slow: float | None = Field(default=None, ge=0)  # see Policy._track
    confirm_s: float = Field(ge=0)
    min_dwell_s: float = Field(ge=0)
    min_confidence: float = Field(ge=0, le=1)
    adaptations: dict[str, Adaptation]
    break_after_s: float = Field(gt=0)
    break_min_score: float = Field(ge=0, le=1)
    anger_at_rest: float = Field(default=0.0, ge=0, le=1)  # see Policy._at_rest
    fear_at_rest: float = Field(default=0.0, ge=0, le=1)  # ...and fear, see Policy._at_rest
    at_rest_min: float = Field(default=0.0, ge=0, le=1)  # ...from this usual anger or fear
    said_at_once: float | None = Field(default=None, ge=0, le=1)  # see Policy._track
    relief_from: list[str] = Field(default_factory=list)  # see Policy._track

    def model_post_init(self, _ctx) -> None:
        tables = [self.emotion_weights, self.adaptations, *self.evidence_weights.values(),
                  *self.said_feelings.values()]
        for table in tables:
            unknown = set(table) - set(STATES)
            if unknown:
                raise ValueError(f"unknown states {sorted(unknown)}; states are {STATES}")
        for state, weights in self.emotion_weights.items():
            unknown = sorted(set(weights) - set(EMOTIONS))
            if unknown:
                raise ValueError(f"{state}: unknown emotions {unknown}")
        unknown = sorted(set(self.evidence_weights) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown evidence {unknown}; evidence is {SIGNALS}")
        if set(CHANNELS) != set(self.channels):
            raise ValueError(f"channels must be exactly {CHANNELS}")
        unknown = sorted(set(self.struggle_how) - set(SIGNALS))
        if unknown:
            raise ValueError(f"struggle_how: unknown evidence {unknown}; evidence is {SIGNALS}")
        for name, states in self.struggle_how.items():
            if not states or set(states) - set(SLOW_STATES):
                raise ValueError(f"struggle_how: {name} must go to some of {SLOW_STATES}")
        unknown = sorted(set(self.relief_from) - set(SLOW_STATES))
        if unknown:
            raise ValueError(f"relief_from: {unknown} are not among {SLOW_STATES}")
        missing = sorted(set(STATES) - set(self.adaptations))
        if missing:
            raise ValueError(f"adaptations missing for {missing}")


def load_policy_config(path: Path | None = None) -> PolicyConfig:
    path = Path(path or DEFAULT_POLICY)
    try:
        return PolicyConfig.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValueError) as e:
        raise ValueError(f"policy file {path}: {e}") from e


@dataclass(frozen=True)
class Evidence:
    """What the dialogue itself knows this turn."""

    wrong_streak: int = 0
    hint_requests: int = 0
    typed_confused: bool = False
    typed_frustration: bool = False  # frustration in the student's words, typed or spoken
    frustration_p: float = 1.0  # how sure that reading is (the flag's calibrated probability)
    too_easy: bool = False
    too_easy_p: float = 1.0  # how sure the classifier is that "too easy" was said (its move
    # probability): "these are alright actually", heard as too easy at 0.59, counts 0.59
    too_easy_keen: float = 0.0  # ...and how surely it was asked for keenly, not as a complaint
    # ("this is fun can i do a harder one"): that share is gladness said, not boredom
    fast_correct: bool = False
    fast_wrong: bool = False  # a second (or later) wrong answer in a row, given fast: guessing
    rushed: bool = False  # a first wrong answer, given fast: a rush more than being lost
    correct: bool | None = None  # this turn's checked answer; None: no answer counted
    response_s: float | None = None  # seconds since the tutor's last reply
    move: str = ""  # the student's move kind (tutor.intents)
    feelings: dict[str, float] | None = None  # a vent's said feeling, probabilities (tutor.moves)
    letters: int | None = None  # letters and digits in the message ("k" 1, "mm" 2, "ok" 2)

    @property
    def keenly(self) -> float:
        """How surely harder work was asked for keenly: gladness said, not boredom."""
        return self.too_easy_p * self.too_easy_keen

    @property
    def felt(self) -> str | None:
        """The feeling a vent not flagged frustrated says, as the classifier hears it most."""
        if self.move != "vent" or self.typed_frustration or not self.feelings:
            return None
        return max(self.feelings, key=self.feelings.get)

    def amounts(self, slow_s: float) -> dict[str, float]:
        slow = self.correct is False and (self.response_s or 0.0) > slow_s
        return {"wrong_answer": float(self.correct is False),
                "wrong_streak": float(min(self.wrong_streak, COUNT_CAP)),
                "slow_wrong": float(slow),
                "hint_requests": float(min(self.hint_requests, COUNT_CAP)),
                "typed_confused": float(self.typed_confused and self.move != "why"),
                "typed_frustration": float(self.typed_frustration) * self.frustration_p,
                "too_easy": float(self.too_easy) * self.too_easy_p * (1.0 - self.too_easy_keen),
                "fast_correct": float(self.fast_correct),
                "fast_wrong": float(self.fast_wrong),
                "fast_after_too_easy": 0.0,  # the policy knows when "too easy" was said
                "skip_while_right": 0.0,  # the policy knows how the answers are going
                "break_while_right": 0.0,
                "chat_while_right": 0.0,
                "slip_owned": 0.0,  # ...and whether the last answer was a first wrong one
                "fed_up": 0.0,  # ...and whether the frustration typed is boredom's
                "drift": 0.0,  # ...and whether their mind is elsewhere
                "right_streak": 0.0,  # ...and how many in a row were right
                "fast_streak": 0.0,  # ...and whether this one ends a run of quick ones
                "correct": float(self.correct is True and not self.fast_correct)}

    def phrases(self, *, spoken: bool = False, slow_s: float = 30.0) -> list[str]:
        words = {1: "one", 2: "two", 3: "three"}
        out = []
        if self.wrong_streak:
            n = self.wrong_streak
            out.append(f"{words.get(n, n)} wrong answer{'s' if n > 1 else ''}")
        elif self.correct:
            out.append("a right answer")
        if self.hint_requests:
            out.append(f"{self.hint_requests} hint request{'s' if self.hint_requests > 1 else ''}")
        if self.typed_confused:
            out.append("said they don't get it")
        if self.typed_frustration:
            out.append("said they're frustrated" if spoken else "typed frustration")
        elif self.felt:
            out.append(f"said they're {FEELING_WORDS.get(self.felt, self.felt)}")
        if self.too_easy:
            out.append("asked keenly for harder work" if self.too_easy_keen > 0
                       else "said it's too easy")
        if self.fast_correct:
            out.append("answered right, fast")
        elif self.fast_wrong:
            out.append("guessed fast")
        elif self.rushed:
            out.append("answered fast")
        elif self.response_s is not None and self.correct is False and self.response_s >= slow_s:
            out.append(f"answered after {self.response_s:.0f} s")
        return out


@dataclass(frozen=True)
class Decision:
    state: str
    tone: str
    pacing: str
    hint_level: int
    reason: str  # technical: scores, seconds, evidence (the log, the teacher view)
    changes: dict[str, list] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    offer_break: bool = False
    driver: str | None = None  # the channel that weighed most for the state, when it changed
    # ("said": a feeling the student put into words)
    previous: str | None = None  # the state before a change
    source: str = "typed"  # how the student's words came: "typed" or "spoken"
    control: bool = False
    evidence: Evidence | None = None  # the dialogue's evidence this turn
    drifting: bool = False  # the student seemed to drift off this turn (Policy._drift)
    chatted: bool = False  # ...or chatted off the lesson while it goes well (chat_while_right)
    worried_question: bool = False  # the chat was heard as a worry said (chat_worry_from)


class _Accumulator:
    """One channel's evidence: per-state sums decayed on time, and their total weight."""

    def __init__(self, half_life_s: float):
        self.half_life_s = half_life_s
        self.mass = {s: 0.0 for s in STATES}
        self.weight = 0.0
        self.at: float | None = None

    def decay_to(self, now: float) -> None:
        if self.at is not None and now > self.at:
            k = 0.5 ** ((now - self.at) / self.half_life_s)
            self.mass = {s: v * k for s, v in self.mass.items()}
            self.weight *= k
        self.at = now if self.at is None else max(self.at, now)

    def add(self, direction: dict[str, float], weight: float, now: float) -> None:
        self.decay_to(now)
        for s, v in direction.items():
            self.mass[s] += weight * v
        self.weight += weight

    def view(self) -> dict[str, float]:
        return {s: (v / self.weight if self.weight > 0 else 0.0) for s, v in self.mass.items()}


def _normalised(raw: dict[str, float]) -> tuple[dict[str, float], float]:
    total = sum(raw.values())
    return ({s: v / total for s, v in raw.items()} if total > 0 else {}), total


class Policy:
    """Adaptive by default; mode "control" never adapts (for comparisons), whatever it reads."""

    def __init__(self, config: PolicyConfig | None = None, *, mode: str = "adaptive",
                 clock: Callable[[], float] = time.monotonic):
        if mode not in ("adaptive", "control"):
            raise ValueError(f"policy mode must be 'adaptive' or 'control', got {mode!r}")
        self.config = config or load_policy_config()
        self.mode, self.clock = mode, clock
        self.channels = {c: _Accumulator(self.config.channels[c].half_life_s) for c in CHANNELS}
        # feelings the student put into words: the dialogue's too, kept apart from the answers'
        # evidence so that no reading re-splits them (a said worry stays worry)
        self._said_acc = _Accumulator(self.config.channels["dialogue"].half_life_s)
        # per evidence that says how the student struggles (struggle_how): its share of the
        # dialogue's evidence, added with the same weights at the same times, so its view is
        # that share of the dialogue's view
        self._how = {name: _Accumulator(self.config.channels["dialogue"].half_life_s)
                     for name in self.config.struggle_how}
        self.state, self.since = "engaged", clock()
        self._pending: str | None = None
        self._pending_since = 0.0
        self._pending_turns = 0
        self._failing = 0  # wrong answers in a row (no right one since)
        self._right_run = 0  # right answers in a row (0: the last answer was wrong, or none yet)
        self._fast_run = 0  # ...of which the last ones were quick (fast_correct)
        self._right_s: list[float] = []  # how long this student took over their right answers
        self._answered_right = False  # any right answer yet
        self._last_face: float | None = None
        # per sensor and look (AT_REST): what it read while answers go right (sum, weight)
        self._rest = {(c, look): [0.0, 0.0] for c in SENSORS for look in AT_REST}
        self._worry_said = False  # the student has put a worry into words (Policy._said)
        self._said_too_easy: float | None = None  # when "too easy" was last said or borne out
        self._claim_keen = 0.0  # ...and how keenly it was said (Evidence.too_easy_keen)
        self._drifting: float | None = None  # when the student last seemed to drift off
        self._drifted = False  # ...and whether they did on this turn
        self._chatted = False  # chatted off-topic this turn while it goes well (no worry)
        self._after_wrong = False  # the last answer counted was wrong
        self._owned = False  # ...and this turn owned that slip (slip_owned)
        self._asked_worried = False  # this turn's chat was a worry said (chat_worry_from)
        self.scores = self._fuse()
        a = self.config.adaptations["engaged"]
        self.tone, self.pacing, self.hint_level = a.tone, a.pacing, a.hint_level

    # -- evidence in
    def _read(self, reading: AnalyzeResponse, now: float, *, frame: bool) -> list[str]:
        """Fold one reading into its channels; returns what was read, in words."""
        cfg, read = self.config, []
        parts = [(m, r) for m, r in reading.modalities.items() if m in EMOTION_CHANNELS]
        if not parts and not frame:
            parts = [("fused", reading)]
        for channel, r in parts:
            if channel == "face":
                last = self._last_face
                amount = cfg.max_frame_s if last is None else min(max(now - last, 0.0),
                                                                  cfg.max_frame_s)
                self._last_face = now
            else:
                amount = 1.0
            if r.confidence < cfg.min_confidence:
                read.append(f"{channel} {r.label} {r.confidence:.2f} too unsure to count")
                continue
            said = f"{'read' if channel == 'fused' else channel} {r.label} {r.confidence:.2f}"
            if channel in SENSORS:
                usual = r
                for look in AT_REST:
                    usual = self._at_rest(channel, look, usual, amount)
                if usual is not r:
                    said, r = f"{said} (partly their usual look)", usual
            direction, weight = self._evidence_of(r)
            if not direction:
                continue
            self.channels[channel].add(direction, amount * weight, now)
            read.append(said)
        return read

    def _at_rest(self, channel: str, look: str, r, amount: float):
        """A camera or voice that reads anger while the answers go right is how this student
        looks or sounds (a concentration frown, a gruff voice, a loud room), not frustration;
        one that reads fear then is glare, a dim room or an accent, not worry. What it read of
        the look's emotions then (AT_REST), on average, is taken off each of its readings
        (`anger_at_rest` or `fear_at_rest` of it) and counted as calm, once that average
        reaches `at_rest_min`. Learned only while the last answer was right, so anger that
        comes with failing is kept; the average starts from 10 s of a calm face or one calm
        spoken turn. Fear is taken off only while the answers go right and until the student
        says a worry: a fearful look over failing, or beside worry put into words, is
        believed."""
        share = self.config.anger_at_rest if look == "anger" else self.config.fear_at_rest
        if share <= 0:
            return r
        emotions = AT_REST[look]
        seen = sum(r.probs.get(e, 0.0) for e in emotions)
        rest = self._rest[(channel, look)]
        if self._right_run:  # the last answer was right
            rest[0] += amount * seen
            rest[1] += amount
        if look == "fear" and (not self._right_run or self._worry_said):
            return r
        prior = self.config.max_frame_s * 10.0 if channel == "face" else 1.0
        usual = rest[0] / (rest[1] + prior)
        if usual < self.config.at_rest_min:
            return r  # a calm sensor's crumbs of anger or fear are not a usual look
        off = min(seen, share * usual)
        if off <= 0:
            return r
        probs = dict(r.probs)
        for e in emotions:
            probs[e] = probs.get(e, 0.0) * (1.0 - off / seen)
        probs["neutral"] = probs.get("neutral", 0.0) + off
        return r.model_copy(update={"probs": probs, "label": max(probs, key=probs.get)})

    def _evidence_of(self, r) -> tuple[dict[str, float], float]:
        """A reading as evidence: its direction over the states (emotion_weights) and its
        weight, confidence times strength times the service's reliability when it gives one."""
        raw = {s: sum(w * r.probs[e] for e, w in ws.items())
               for s, ws in self.config.emotion_weights.items()}
        direction, strength = _normalised(raw)
        reliability = getattr(r, "reliability", None)
        return direction, r.confidence * strength * (1.0 if reliability is None
                                                     else max(float(reliability), 0.0))

    def slow_s(self) -> float:
        """From how long a wrong answer is hesitation: `slow_s`, or longer for a student whose
        right answers take longer (`slow_vs_own` times their median), so a child who types
        slowly is not read as confused by one slow slip."""
        if not self._right_s:
            return self.config.slow_s
        own = sorted(self._right_s)[len(self._right_s) // 2]
        return max(self.config.slow_s, self.config.slow_vs_own * own)

    def _dialogue(self, evidence: Evidence, now: float) -> None:
        amounts = evidence.amounts(self.slow_s())
        if evidence.correct and evidence.response_s is not None:
            self._right_s.append(evidence.response_s)
        self._answered_right |= bool(evidence.correct)
        if evidence.rushed:
            # a first wrong answer given fast ("wait no", fixed seconds later): a rush, less
            # a sign of being lost than one thought over (a second one fast is guessing)
            amounts["wrong_answer"] *= self.config.rushed_wrong
            amounts["wrong_streak"] *= self.config.rushed_wrong
        if evidence.too_easy and self._after_wrong:
            # "too easy" just after a wrong answer: the answer says otherwise (and "these are
            # getting hard" is often heard as asking for harder work): no boredom from it
            amounts["too_easy"] = 0.0
        elif evidence.too_easy:
            self._said_too_easy = now
            self._claim_keen = evidence.too_easy_keen
        if (evidence.correct and self._said_too_easy is not None
                and now - self._said_too_easy <= self.config.too_easy_memory_s):
            # after "too easy", a right answer bears the claim out, and the claim stands while
            # right answers keep coming: a quick one as said; a steady or slow one (drifting
            # off, or a harder question) except as far as the student is plainly enjoying it
            # ("yesss that one was hard"): that share is doing well
            glad = 0.0 if amounts["fast_correct"] else self._glad_share(now)
            amounts["fast_correct"] *= glad
            amounts["correct"] *= glad
            # as they said, as far as it was said as a complaint (a keen "give me a harder
            # one" borne out is a student enjoying the challenge)
            amounts["fast_after_too_easy"] = (1.0 - glad) * (1.0 - self._claim_keen)
            self._said_too_easy = now
        if (evidence.typed_frustration and evidence.feelings and self._answered_right
                and evidence.wrong_streak <= 1):
            # irritation whose words say boredom ("whatever", "this is pointless") from a
            # student who has answered right and is not failing: fed up with work they can
            # do, not stuck on it (before any right answer, "why do we even have to do this"
            # is resentment of the work, frustration)
            bored = evidence.feelings.get("bored", 0.0)
            amounts["fed_up"] = amounts["typed_frustration"] * bored
            amounts["typed_frustration"] *= 1.0 - bored
        if evidence.correct is not None:
            self._right_run = self._right_run + 1 if evidence.correct else 0
            self._fast_run = self._fast_run + 1 if evidence.fast_correct else 0
        if evidence.fast_correct and self._fast_run >= self.config.fast_streak_from:
            # right again, quick again: one quick answer is a student doing well, a run of them
            # (with no slow one or slip between) is work too easy for them, said or not
            amounts["fast_streak"] = 1.0
        if evidence.correct and self._right_run >= 2 and self.state in SLOW_STATES:
            # a run of right answers while the tutor is slowed down: recovery, as a run of
            # wrong ones is struggling (they count only then, so no boredom is outvoted)
            amounts["right_streak"] = float(min(self._right_run, COUNT_CAP))
        if evidence.move == "skip" and self._right_run:
            amounts["skip_while_right"] = 1.0  # another question, please: this one is no challenge
        if evidence.move == "break" and self._right_run and not evidence.typed_frustration:
            amounts["break_while_right"] = 1.0  # wanting to stop while it goes well: had enough
        if evidence.move == "off_topic" and self._right_run and not evidence.typed_frustration:
            # chat while it goes well ("how many more?", "did you watch the match"): a mind
            # elsewhere, except as far as the chat is worry ("will my teacher see this")
            worry = (evidence.feelings or {}).get("worry", 0.0)
            amounts["chat_while_right"] = 1.0 - worry
        self._chatted = amounts["chat_while_right"] >= 0.5
        if (self._after_wrong and evidence.move == "ack" and evidence.wrong_streak == 1
                and not evidence.typed_frustration
                and (evidence.letters or 0) >= SLIP_OWNED_LETTERS):
            # "oh i added the bottoms. silly me" just after a first wrong answer: a slip seen
            # and owned, not a student lost ("ok" alone says nothing of the kind)
            amounts["slip_owned"] = 1.0
        self._owned = amounts["slip_owned"] > 0
        if evidence.correct is not None or evidence.move == "answer":
            self._after_wrong = evidence.correct is False
        self._drifted = self._drift(evidence, now)
        if self._drifted:
            amounts["drift"] = 1.0
            amounts["correct"] = 0.0  # a right answer minutes later says they can, not that
            self._drifting = now      # they are with it
        raw = {s: 0.0 for s in STATES}
        for name, weights in self.config.evidence_weights.items():
            for state, w in weights.items():
                raw[state] += w * amounts.get(name, 0.0)
        direction, strength = _normalised(raw)
        if direction:
            self.channels["dialogue"].add(direction, strength, now)
            for name, acc in self._how.items():
                weights = self.config.evidence_weights.get(name, {})
                acc.add({st: w * amounts.get(name, 0.0) / strength
                         for st, w in weights.items() if st in SLOW_STATES}, strength, now)
        if evidence.correct is not None:
            self._failing = 0 if evidence.correct else max(evidence.wrong_streak, 1)
        elif evidence.wrong_streak == 0 and evidence.move == "answer":
            self._failing = 0

    def _drift(self, evidence: Evidence, now: float) -> bool:
        """Their mind is elsewhere: a reply of a few letters ("k", "mm", "sry"; at most
        `drift_letters`), not an answer and not angry, at least `drift_s` after the tutor's
        last reply, while they are not failing; and, within `drift_memory_s` of that, a right
        answer that again took `drift_s` or more (the drifting goes on; it says they can do
        it, not that they are with it). Counted in no language: the length and the time."""
        cfg, waited = self.config, evidence.response_s or 0.0
        if cfg.drift_s is None or waited < cfg.drift_s:
            return False
        if (evidence.move != "answer" and not evidence.typed_frustration
                and evidence.letters is not None and evidence.letters <= cfg.drift_letters):
            return not self._failing
        return bool(evidence.correct and self._drifting is not None
                    and now - self._drifting <= cfg.drift_memory_s)

    def _said(self, reading: AnalyzeResponse | None, evidence: Evidence, now: float) -> None:
        """A feeling the student put into words ("i'm scared i'll get it wrong": a `vent` the
        flag does not call frustration) is said, not guessed at: the dialogue takes it in as
        `said_feeling` turns of evidence, towards the states `said_feelings` gives the feeling
        the move classifier heard (worry, feeling down, gladness...), as sure as that reading
        is; without that reading, in the direction the words' emotion reads."""
        self._asked_worried = False
        if evidence.typed_frustration or evidence.move not in ("vent", "off_topic", "too_easy"):
            return
        feelings = evidence.feelings
        if evidence.move == "too_easy":
            # harder work asked for keenly ("this is fun can i do a harder one"): as glad as
            # it is keen; a complaint, or a plain request, says no feeling here (`_dialogue`)
            feelings = {"glad": evidence.keenly}
        if evidence.move == "off_topic":
            # a question about being marked, seen or told ("will my teacher see this"): chat,
            # but a worry put into words as surely as the classifier hears worry in it
            worry = (feelings or {}).get("worry", 0.0)
            if worry < self.config.chat_worry_from or "worry" not in self.config.said_feelings:
                return
            self._asked_worried = True
            feelings = {"worry": worry}  # only the worry in chat is a feeling said
        if feelings and self.config.said_feelings:
            raw = {s: 0.0 for s in STATES}
            for feeling, p in feelings.items():
                for state, w in self.config.said_feelings.get(feeling, {}).items():
                    raw[state] += p * w
            direction, weight = _normalised(raw)
        else:
            words = None if reading is None else reading.modalities.get("text")
            if words is None or words.confidence < self.config.min_confidence:
                return
            direction, weight = self._evidence_of(words)
        if direction and self._after_wrong and direction.get("delighted"):
            # gladness said just after a wrong answer ("haha my brain is broken 🤪"): laughing
            # at the slip, a smile while failing, not delight
            direction, weight = _normalised(
                {s: v * weight * (self.config.smile_while_failing if s == "delighted" else 1.0)
                 for s, v in direction.items()})
        if direction:
            self._worry_said |= direction.get("anxious", 0.0) >= 0.5
            self._said_acc.add(direction, self.config.said_feeling * weight, now)

    # -- fusing
    def _glad_share(self, now: float) -> float:
        """How much of how right answers feel is delight now (see `_felt`)."""
        self._said_acc.decay_to(now)
        felt = self._felt(self._emotions(now))
        total = sum(felt.values())
        return felt["delighted"] / total if total > 0 else 0.0

    def _trust(self, channel: str, now: float | None = None) -> float:
        acc, c = self.channels[channel], self.config.channels[channel]
        if now is not None:
            acc.decay_to(now)
            if channel == "dialogue":
                self._said_acc.decay_to(now)
        return c.trust(acc.weight + (self._said_acc.weight if channel == "dialogue" else 0.0))

    def _contributions(self, now: float | None = None) -> dict[str, dict[str, float]]:
        """Per channel: its trust times its view of each state.

        Joy counts little towards delight while answers go wrong. Right answers say the
        student is not failing, not how they feel about it: the dialogue's "engaged" is
        shared between engaged, delighted and anxious as the emotion channels see those and
        as the student said they feel, trusted as the dialogue is (an anxious student may
        well answer right: "sorry for being slow", then right answers, is worry). Likewise
        wrong answers say the student is struggling, not how: the dialogue's struggling mass
        keeps its own split between frustration, anxiety and confusion with weight
        `struggle_own` and follows the emotion channels' split with their total trust in
        those states (a student failing with a fearful voice is anxious, not only confused),
        where a calm reading counts `calm_while_struggling` towards confusion (a quiet
        student who keeps failing is lost, and anger's crumbs in a neutral reading do not
        make him frustrated); evidence that says how they struggle moves only as far as
        `struggle_how` lets it (`_resplit`). A feeling the student put into words joins the
        dialogue's view as said, split by nothing, and a worry said leans the struggling split
        towards anxiety as a fearful voice does ("will sir see my answers", then a wrong one)."""
        out = self._emotions(now)
        trust = self._trust("dialogue", now)
        view = self.channels["dialogue"].view()
        felt = self._felt(out)
        said, told = self._said_acc.weight, self._said_acc.view()
        if sum(felt.values()) > 0:
            fine = sum(view[s] for s in FELT if s != "anxious")
            for s in FELT:
                view[s] = (view[s] if s == "anxious" else 0.0) + fine * felt[s] / sum(felt.values())
        hurt = {s: sum(out[c][s] for c in EMOTION_CHANNELS) for s in SLOW_STATES}
        hurt["confused"] += self.config.calm_while_struggling * sum(
            out[c]["engaged"] for c in EMOTION_CHANNELS)  # failing calmly: lost, not upset
        if said > 0:  # a worry put into words says how failing feels too ("will sir see")
            hurt["anxious"] += self.config.channels["dialogue"].trust(said) * told["anxious"]
        view.update(self._resplit(view, hurt))
        answers = self.channels["dialogue"].weight
        if said > 0:  # feelings put into words join as they were said
            view = {s: (answers * view[s] + said * told[s]) / (answers + said) for s in STATES}
        out["dialogue"] = {s: trust * v for s, v in view.items()}
        return out

    def _resplit(self, view: dict[str, float], hurt: dict[str, float]) -> dict[str, float]:
        """The dialogue's struggling share, split again by the emotion channels (`hurt`: their
        trust in each struggling state). Wrong answers and their streak say only that the
        student struggles, so the readings may move that share among all three states.
        Evidence that says how (`struggle_how`) moves only among the states given there:
        frustration typed or said stays frustration, and a hesitant wrong answer or "i don't
        get it" (not flagged frustrated) is confusion or worry, never anger, whatever a
        frowning camera reads. Each share keeps `struggle_own` of its own split."""
        own = self.config.struggle_own
        rest = {s: view[s] for s in SLOW_STATES}
        shares = []
        for name, acc in self._how.items():
            said = acc.view()
            share = {s: min(said[s], rest[s]) for s in SLOW_STATES}
            rest = {s: rest[s] - share[s] for s in SLOW_STATES}
            shares.append((self.config.struggle_how[name], share))
        shares.append((SLOW_STATES, rest))
        out = dict.fromkeys(SLOW_STATES, 0.0)
        for to, share in shares:
            total = sum(hurt[s] for s in to)
            if total <= 0:
                for s in SLOW_STATES:
                    out[s] += share[s]
                continue
            mass = sum(share.values())
            for s in SLOW_STATES:
                out[s] += own * share[s] / (own + total)
            for s in to:
                out[s] += mass * hurt[s] / (own + total)
        return out

    def _emotions(self, now: float | None = None) -> dict[str, dict[str, float]]:
        """Per emotion channel: its trust times its view of each state (joy counts little
        towards delight while answers go wrong)."""
        out = {}
        for channel in EMOTION_CHANNELS:
            trust = self._trust(channel, now)
            view = self.channels[channel].view()
            if self._failing >= FAILING_AFTER:
                view["delighted"] *= self.config.smile_while_failing
            out[channel] = {s: trust * v for s, v in view.items()}
        return out

    def _felt(self, emotions: dict[str, dict[str, float]]) -> dict[str, float]:
        """How right answers feel: engaged, delighted or anxious, as the emotion channels
        read those and as the student said they feel (trusted as the dialogue is)."""
        felt = {s: sum(emotions[c][s] for c in EMOTION_CHANNELS) for s in FELT}
        said, told = self._said_acc.weight, self._said_acc.view()
        if said > 0:  # a feeling put into words is a reading of how right answers feel too
            said_trust = self.config.channels["dialogue"].trust(said)
            for s in FELT:
                felt[s] += said_trust * told[s]
        return felt

    def _fuse(self, now: float | None = None) -> dict[str, float]:
        contrib = self._contributions(now)
        total = self._total()
        scores = {s: (self.config.prior_weight if s == "engaged" else 0.0) for s in STATES}
        for per_state in contrib.values():
            for s, v in per_state.items():
                scores[s] += v
        return {s: v / total for s, v in scores.items()}

    def _total(self) -> float:
        """What the scores are shares of: the prior and every channel's trust."""
        return self.config.prior_weight + sum(self._trust(c) for c in CHANNELS)

    def _said_share(self, state: str) -> float:
        """How much the feelings put into words add to `state`'s score now (within the
        dialogue's share)."""
        said, answers = self._said_acc.weight, self.channels["dialogue"].weight
        if said <= 0:
            return 0.0
        total = self._total()
        told = self._said_acc.view()[state] * said / (answers + said)
        return self._trust("dialogue") * told / total

    def channel_shares(self, state: str) -> dict[str, float]:
        """How much each channel adds to `state`'s score now (for reasons and the teacher)."""
        contrib = self._contributions()
        total = self._total()
        return {c: contrib[c][state] / total for c in CHANNELS}

    # -- switching
    def observe(self, reading: AnalyzeResponse | None, evidence: Evidence | None = None,
                now: float | None = None) -> None:
        """A reading between turns (a camera frame): evidence in, no switch until a turn."""
        if self.mode == "control":
            return
        now = self.clock() if now is None else now
        if reading is not None:
            self._read(reading, now, frame=True)
        if evidence is not None:
            self._dialogue(evidence, now)
        self.scores = self._fuse(now)
        self._track(now, turn=False, between=True)

    def _said_now(self, evidence: Evidence) -> frozenset[str]:
        """The states a feeling said on this turn points to, when the move classifier heard
        it at least `said_at_once` surely: a `vent` not flagged frustrated, or "too easy" /
        "boring" (a said boredom, towards the states `said_feelings` gives `bored`)."""
        sure = self.config.said_at_once
        if sure is None:
            return frozenset()
        if evidence.too_easy and self._answered_right and not self._after_wrong:
            # "too easy" before any right answer is a claim the answers have yet to bear out
            # (the dialogue tests it with the step's hardest question); it still counts.
            # Just after a wrong answer it counts nothing (`_dialogue`). Asked for keenly,
            # it is gladness said
            keen = evidence.keenly
            if keen >= sure:
                return frozenset(self.config.said_feelings.get("glad", {}))
            if evidence.too_easy_p - keen >= sure:
                return frozenset(self.config.said_feelings.get("bored", {}))
            return frozenset()
        felt = evidence.felt
        if felt is None or evidence.feelings[felt] < sure:
            return frozenset()
        states = frozenset(self.config.said_feelings.get(felt, {}))
        return states - {"delighted"} if self._after_wrong else states  # see `_said`

    def _leader(self) -> tuple[str, float]:
        """The state that should be, and its lead over the current one. Between families
        (doing fine, struggling, bored) the families' totals compete, so evidence split
        between confusion and frustration still adds up; within a family, the states."""
        totals = {g: sum(self.scores[s] for s in members) for g, members in FAMILIES.items()}
        mine = FAMILY_OF[self.state]
        best = max(totals, key=totals.get)
        if best != mine:
            leader = max(FAMILIES[best], key=self.scores.get)
            return leader, totals[best] - totals[mine]
        leader = max(FAMILIES[mine], key=self.scores.get)
        return leader, self.scores[leader] - self.scores[self.state]

    def _track(self, now: float, *, turn: bool, said: frozenset[str] = frozenset(),
               correct: bool | None = None, between: bool = False) -> bool:
        """Follow the leader; True when it has earned the switch: after `confirm_s` or on two
        turns in a row, or at once when it is a state the student has just said they feel
        (`said`: "i'm on a roll!!" heard as gladness, or "this is way too easy", at least
        `said_at_once` surely). From a state in `relief_from` (anxiety), doing fine again is
        relief: the switch goes to engaged, not delight, and a gladness said then brings it
        at once; so it is from the other slow states until two answers in a row have gone
        right (a smile over a first right answer after a struggle is relief: the recovery
        has to hold before it is delight). Between turns (`between`: camera frames) a lead
        that fades does not cancel a pending switch: the evidence only decays there, as it
        does with no camera, and the next turn judges the lead. Never into another family
        on a turn whose answer (`correct`) says otherwise: a right answer does not confirm
        that the student struggles, nor does a first slip owned in words ("ah i added the
        bottoms": they see what went wrong), nor a wrong one that they are doing fine (the
        switch waits for a turn that does not contradict it); and never into delight on a wrong
        answer, from any state (a smile while failing is not delight)."""
        leader, lead = self._leader()
        if leader == "delighted" and (self.state in self.config.relief_from or (
                self.state in SLOW_STATES and self._right_run < RECOVERED_AFTER)):
            leader = "engaged"
            if "delighted" in said:
                said = said | {"engaged"}
        margin = self.config.switch_margin
        if (leader in SLOW_STATES and self.state in SLOW_STATES
                and self.config.switch_margin_slow is not None):
            margin = self.config.switch_margin_slow  # among the slow states (all calm or
            # encouraging, all slower): how the student struggles, followed more closely
        leads = leader != self.state and lead >= margin
        if not leads:
            if not between:  # between turns (camera frames) the evidence only fades, as it
                self._pending = None  # does without a camera: the next turn judges the lead
            return False
        if self._pending is None or FAMILY_OF[leader] != FAMILY_OF[self._pending]:
            # the current state is beaten from now by this family: count its time and turns
            self._pending_since, self._pending_turns = now, 0
        self._pending = leader  # the switch goes to whichever state leads when it is earned
        self._pending_turns += turn
        confirmed = (now - self._pending_since >= self.config.confirm_s
                     or self._pending_turns >= 2 or leader in said)
        across = FAMILY_OF[leader] != FAMILY_OF[self.state]
        against = ((correct is True or self._owned) and across
                   and FAMILY_OF[leader] == "struggling") or (
            correct is False and (leader == "delighted"
                                  or (across and FAMILY_OF[leader] == "fine")))
        return confirmed and not against and now - self.since >= self.config.min_dwell_s

    # -- deciding
    def decide(self, reading: AnalyzeResponse | None = None, evidence: Evidence = Evidence(),
               now: float | None = None, *, source: str = "typed", turn: bool = True) -> Decision:
        """One turn: fold in its reading and the dialogue's evidence, maybe switch, and say why.

        `turn=False` for a live stream that decides on every frame (the demo view): frames
        then confirm a switch only by time, never by counting as turns."""
        now = self.clock() if now is None else now
        if self.mode == "control":
            return Decision(state=self.state, tone=self.tone, pacing=self.pacing,
                            hint_level=self.hint_level, reason=CONTROL_REASON,
                            scores=dict(self.scores), source=source, control=True)
        read = self._read(reading, now, frame=False) if reading is not None else []
        self._dialogue(evidence, now)
        self._said(reading, evidence, now)
        self.scores = self._fuse(now)
        before = self.state
        driver = None
        if self._track(now, turn=turn, said=self._said_now(evidence), correct=evidence.correct):
            shares = self.channel_shares(self._pending)
            felt = {c: v for c, v in shares.items() if c != "dialogue" and v > 0}
            said = self._said_share(self._pending)
            if said > 0:
                felt["said"] = said  # a feeling the student put into words
            if self._pending in FELT and self._pending != "engaged" and felt:
                shares = felt  # the dialogue only passed on what the readings felt
            driver = max(shares, key=shares.get)
            self.state, self.since, self._pending = self._pending, now, None
        old = {"state": before, "tone": self.tone, "pacing": self.pacing,
               "hint_level": self.hint_level}
        a = self.config.adaptations[self.state]
        self.tone, self.pacing, self.hint_level = a.tone, a.pacing, a.hint_level
        held = now - self.since
        offer_break = (self.state == "frustrated" and held >= self.config.break_after_s
                       and self.scores["frustrated"] >= self.config.break_min_score)
        new = {"state": self.state, "tone": self.tone, "pacing": self.pacing,
               "hint_level": self.hint_level}
        changes = {k: [old[k], new[k]] for k in new if old[k] != new[k]}
        reason = self._reason(read, reading is not None, evidence, changes, held, offer_break,
                              spoken=source == "spoken")
        return Decision(state=self.state, tone=self.tone, pacing=self.pacing,
                        hint_level=self.hint_level, changes=changes, scores=dict(self.scores),
                        offer_break=offer_break, reason=reason,
                        driver=driver if "state" in changes else None,
                        previous=before if "state" in changes else None, source=source,
                        evidence=evidence, drifting=self._drifted, chatted=self._chatted,
                        worried_question=self._asked_worried)

    def _reason(self, read: list[str], had_reading: bool, evidence: Evidence, changes: dict,
                held: float, offer_break: bool, *, spoken: bool) -> str:
        shares = self.channel_shares(self.state)
        top = [f"{c} {v:.2f}" for c, v in sorted(shares.items(), key=lambda kv: -kv[1])
               if v >= 0.01][:3]
        what = [f"{NOUN[self.state]} {self.scores[self.state]:.2f} for {held:.0f} s"
                + (f" ({', '.join(top)})" if top else "")]
        what += read if had_reading else ["no emotion reading"]
        what += evidence.phrases(spoken=spoken, slow_s=self.slow_s())
        if self._drifted:
            what.append(f"drifting off ({evidence.response_s:.0f} s to reply)")
        if self._chatted:
            what.append("chatting while it goes well")
        if self._owned:
            what.append("owned the slip")
        if self._asked_worried:
            what.append("asked a worried question")
        if self._pending:
            what.append(f"{NOUN[self._pending]} rising")
        todo = []
        if "tone" in changes:
            todo.append(TONE_WORDS.get(self.tone, f"{self.tone} tone"))
        if "pacing" in changes:
            todo.append(PACING_WORDS.get(self.pacing, self.pacing))
        if "hint_level" in changes:
            todo.append(f"hint level {self.hint_level}")
        if offer_break:
            todo.append("offer a short break")
        outcome = ", ".join(todo) if todo else "style unchanged"
        return f"{_join(what)} → {outcome}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------- in plain words
_NOW = {  # a change of state, said to the student (in the tone the state brings)
    "frustrated": "This looks frustrating, so let's slow down and do one together.",
    "confused": "You seem stuck, so let's go through it step by step.",
    "anxious": "No rush. We'll take it slowly, one step at a time.",
    "bored": "This seems too easy for you, so let's try something harder!",
    "delighted": "You're enjoying this! Let's keep going.",
    "engaged": "You're doing well, so we'll carry on as normal.",
}
_STILL = {  # no change this turn
    "frustrated": "We're still taking it slowly and doing it together.",
    "confused": "We're still going step by step.",
    "anxious": "Still no rush: one step at a time.",
    "bored": "Still keeping it challenging for you!",
    "delighted": "Still going great!",
    "engaged": "Let's keep going.",
}
_RECOVERED = "You've got the hang of it now, so back to the normal pace."


_DRIFTED = "You seem a bit far away, so let's try something more of a challenge!"


def _because(driver: str | None, evidence: Evidence | None, *, spoken: bool,
             drifted: bool = False, chatted: bool = False) -> str:
    words = "what you said" if spoken else "what you wrote"
    if driver == "face":
        return "I could see it on your face."
    if driver == "speech":
        return "I could hear it in your voice."
    if driver in ("text", "said"):  # the words' emotion, or a feeling put into words
        return f"I noticed it in {words}."
    if driver == "fused":  # a reading that names no modality
        return "I noticed how you seem to feel."
    if driver == "dialogue":
        if drifted and not chatted:
            return "I noticed it from how long you take to reply."
        e = evidence or Evidence()
        if (e.typed_frustration or e.typed_confused or e.too_easy or e.move == "hint"
                or chatted):
            return f"I noticed it in {words}."
        return "I noticed it from how your answers are going."
    return ""


def student_note(decision: Decision) -> str:
    """What the tutor noticed, in words a ten-year-old understands (no scores, no jargon).

    Consistent with the tone shown; says when the camera or voice drove a change, and
    never says "wrote" of a spoken turn. Empty in control mode (nothing adapts)."""
    if decision.control:
        return ""
    drifted = decision.state == "bored" and (decision.drifting or decision.chatted)
    if "state" not in decision.changes:
        line = _STILL[decision.state]
    elif decision.state in ("engaged", "delighted") and decision.previous in SLOW_STATES:
        line = _RECOVERED if decision.state == "engaged" else _NOW["delighted"]
    elif drifted:
        line = _DRIFTED
    else:
        line = _NOW[decision.state]
    because = (_because(decision.driver, decision.evidence, spoken=decision.source == "spoken",
                        drifted=drifted, chatted=decision.chatted)
               if "state" in decision.changes else "")
    if decision.offer_break:
        line += " How about a short break?"
    return f"{line} {because}".strip()


def struggling(turn_states: Sequence) -> tuple[bool, str]:
    """Whether a student is struggling, judged per turn (never per reading), and why.

    `turn_states`: the policy's state after each turn, oldest first (strings, or rows with a
    `.state` such as tutor.db.models.Adaptation). Struggling: the last turn found them
    frustrated or anxious, or at least half of their last six turns (and at least three) were
    in a struggling state (frustrated, anxious, confused)."""
    states = [getattr(t, "state", t) for t in turn_states]
    if not states:
        return False, ""
    last = states[-1]
    if last in ("frustrated", "anxious"):
        return True, f"the tutor's last turn found them {last}"
    recent = states[-6:]
    hard = sum(s in STRUGGLING_STATES for s in recent)
    if hard >= 3 and hard * 2 >= len(recent):
        which = _join(sorted({s for s in recent if s in STRUGGLING_STATES}))
        return True, f"{hard} of their last {len(recent)} turns were {which}"
    return False, ""

