"""The policy layer: emotion readings + dialogue evidence → learning state → adaptations.

The learning-centred state (engaged, confused, frustrated, bored, anxious, delighted) is
scored from each fused reading and the dialogue's own evidence, smoothed over time with an
exponential half-life, and switched with hysteresis: a new state must lead the current one
by a margin on two consecutive updates, after the current state has held a minimum time.
So one frame of a frown does not flip the tutor. Every decision carries its reason in words.
All numbers come from a YAML file (data/policy/default.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cmt.contract import EMOTIONS, AnalyzeResponse
from cmt.settings import REPO_DATA_DIR

STATES = ("engaged", "delighted", "frustrated", "anxious", "confused", "bored")
DEFAULT_POLICY = REPO_DATA_DIR / "policy" / "default.yaml"
NOUN = {"engaged": "engagement", "delighted": "delight", "frustrated": "frustration",
        "anxious": "anxiety", "confused": "confusion", "bored": "boredom"}
TONE_WORDS = {"calm": "calmer tone", "upbeat": "upbeat tone", "encouraging": "encouraging tone",
              "neutral": "neutral tone"}
PACING_WORDS = {"worked_example": "worked example first", "slower": "slower steps",
                "harder": "a harder problem", "normal": "normal pace", "skip": "skip ahead"}


class Adaptation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tone: str
    pacing: str
    hint_level: int = Field(ge=0, le=3)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emotion_weights: dict[str, dict[str, float]]
    evidence_weights: dict[str, dict[str, float]]
    half_life_s: float = Field(gt=0)
    switch_margin: float = Field(ge=0)
    min_dwell_s: float = Field(ge=0)
    min_confidence: float = Field(ge=0, le=1)
    adaptations: dict[str, Adaptation]
    break_after_s: float = Field(gt=0)
    break_min_score: float = Field(ge=0, le=1)

    def model_post_init(self, _ctx) -> None:
        for table in (self.emotion_weights, self.adaptations):
            unknown = set(table) - set(STATES)
            if unknown:
                raise ValueError(f"unknown states {sorted(unknown)}; states are {STATES}")
        for state, weights in self.emotion_weights.items():
            if set(weights) - set(EMOTIONS):
                raise ValueError(f"{state}: unknown emotions {sorted(set(weights) - set(EMOTIONS))}")
        if set(STATES) - set(self.adaptations):
            raise ValueError(f"adaptations missing for {sorted(set(STATES) - set(self.adaptations))}")


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
    typed_frustration: bool = False
    too_easy: bool = False
    fast_correct: bool = False

    def phrases(self) -> list[str]:
        words = {1: "one", 2: "two", 3: "three"}
        out = []
        if self.wrong_streak:
            n = self.wrong_streak
            out.append(f"{words.get(n, n)} wrong answer{'s' if n > 1 else ''}")
        if self.hint_requests:
            out.append(f"{self.hint_requests} hint request{'s' if self.hint_requests > 1 else ''}")
        if self.typed_confused:
            out.append("said they don't get it")
        if self.typed_frustration:
            out.append("typed frustration")
        if self.too_easy:
            out.append("said it's too easy")
        if self.fast_correct:
            out.append("answered right, fast")
        return out


@dataclass(frozen=True)
class Decision:
    state: str
    tone: str
    pacing: str
    hint_level: int
    reason: str
    changes: dict[str, list] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    offer_break: bool = False


class Policy:
    """Adaptive by default; mode "control" never adapts (for comparisons), whatever it reads."""

    def __init__(self, config: PolicyConfig | None = None, *, mode: str = "adaptive",
                 clock: Callable[[], float] = time.monotonic):
        if mode not in ("adaptive", "control"):
            raise ValueError(f"policy mode must be 'adaptive' or 'control', got {mode!r}")
        self.config = config or load_policy_config()
        self.mode, self.clock = mode, clock
        # A mild prior: engaged until the readings say otherwise.
        self.scores = {s: (0.5 if s == "engaged" else 0.1) for s in STATES}
        self.state, self.since = "engaged", clock()
        self._last_update: float | None = None
        self._pending: str | None = None
        a = self.config.adaptations["engaged"]
        self.tone, self.pacing, self.hint_level = a.tone, a.pacing, a.hint_level

    # -- scoring
    def instant_scores(self, reading: AnalyzeResponse | None, evidence: Evidence) -> dict[str, float]:
        cfg = self.config
        raw = {s: 0.0 for s in STATES}
        if reading is not None and reading.confidence >= cfg.min_confidence:
            for state, weights in cfg.emotion_weights.items():
                raw[state] += sum(w * reading.probs[e] for e, w in weights.items())
        amounts = {"wrong_streak": min(evidence.wrong_streak, 3),
                   "hint_requests": min(evidence.hint_requests, 3),
                   "typed_confused": float(evidence.typed_confused),
                   "typed_frustration": float(evidence.typed_frustration),
                   "too_easy": float(evidence.too_easy),
                   "fast_correct": float(evidence.fast_correct)}
        for name, weights in cfg.evidence_weights.items():
            for state, w in weights.items():
                raw[state] += w * amounts.get(name, 0.0)
        total = sum(raw.values())
        if total <= 0:
            return dict(self.scores)  # nothing new: keep the picture we have
        return {s: v / total for s, v in raw.items()}

    def observe(self, reading: AnalyzeResponse | None, evidence: Evidence = Evidence(),
                now: float | None = None) -> None:
        """Fold one reading (a camera frame, a turn) into the smoothed scores."""
        now = self.clock() if now is None else now
        dt = self.config.half_life_s if self._last_update is None else max(now - self._last_update, 0.0)
        alpha = min(max(1 - 0.5 ** (dt / self.config.half_life_s), 0.25), 0.75)
        inst = self.instant_scores(reading, evidence)
        self.scores = {s: (1 - alpha) * self.scores[s] + alpha * inst[s] for s in STATES}
        self._last_update = now
        self._maybe_switch(now)

    def _maybe_switch(self, now: float) -> None:
        leader = max(self.scores, key=self.scores.get)
        leads = (leader != self.state
                 and self.scores[leader] - self.scores[self.state] >= self.config.switch_margin
                 and now - self.since >= self.config.min_dwell_s)
        if not leads:
            self._pending = None
        elif self._pending == leader:  # second update in a row: switch
            self.state, self.since, self._pending = leader, now, None
        else:
            self._pending = leader

    # -- deciding
    def decide(self, reading: AnalyzeResponse | None = None, evidence: Evidence = Evidence(),
               now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        before = {"state": self.state, "tone": self.tone, "pacing": self.pacing,
                  "hint_level": self.hint_level}
        if self.mode == "control":
            return Decision(state=self.state, tone=self.tone, pacing=self.pacing,
                            hint_level=self.hint_level, reason="control mode: no adaptation",
                            scores=dict(self.scores))
        self.observe(reading, evidence, now)
        a = self.config.adaptations[self.state]
        self.tone, self.pacing, self.hint_level = a.tone, a.pacing, a.hint_level
        held = now - self.since
        offer_break = (self.state == "frustrated" and held >= self.config.break_after_s
                       and self.scores["frustrated"] >= self.config.break_min_score)
        after = {"state": self.state, "tone": self.tone, "pacing": self.pacing,
                 "hint_level": self.hint_level}
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        return Decision(state=self.state, tone=self.tone, pacing=self.pacing,
                        hint_level=self.hint_level, changes=changes, scores=dict(self.scores),
                        offer_break=offer_break,
                        reason=self._reason(reading, evidence, changes, held, offer_break))

    def _reason(self, reading, evidence: Evidence, changes: dict, held: float,
                offer_break: bool) -> str:
        what = [f"{NOUN[self.state]} {self.scores[self.state]:.2f} for {held:.0f} s"]
        if reading is not None:
            if reading.confidence < self.config.min_confidence:
                what.append(f"{reading.label} reading {reading.confidence:.2f} too unsure to count")
            else:
                what.append(f"read {reading.label} {reading.confidence:.2f}")
        else:
            what.append("no emotion reading")
        what += evidence.phrases()
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
        return f"{self._join(what)} → {outcome}"

    @staticmethod
    def _join(parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
