"""Per-student mastery by Bayesian knowledge tracing (Corbett & Anderson, 1994).

For each skill we keep p = P(the student knows it). After an answer,

    P(known | correct) = p (1 - slip) / (p (1 - slip) + (1 - p) guess)
    P(known | wrong)   = p slip       / (p slip + (1 - p) (1 - guess))

and then the student may learn from the step: p' = post + (1 - post) learn.

`Mastery` holds one student's p per skill and picks what to practise next: a step opens
once the skills of every step before it are at least `unlock` likely known; among the open
steps not yet mastered (every skill >= `threshold`, 0.95), it picks the one whose weakest
skill is weakest, earlier steps first on ties. It serialises to a plain dict for the database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from tutor.curriculum import Pack, Question, Step

MASTERY_THRESHOLD = 0.95
UNLOCK_THRESHOLD = 0.7


@dataclass(frozen=True)
class BKTParams:
    p_init: float = 0.2  # P(known) before any practice
    p_learn: float = 0.2  # P(unknown -> known) after each practice opportunity
    p_slip: float = 0.1  # P(wrong | known)
    p_guess: float = 0.2  # P(right | unknown)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"BKTParams.{name} must be a probability in [0, 1], got {value}")
        if self.p_slip + self.p_guess >= 1.0:
            raise ValueError(
                "BKTParams: p_slip + p_guess must be below 1, or a right answer "
                "would not be evidence of knowing the skill"
            )


def update(p_known: float, correct: bool, params: BKTParams = BKTParams()) -> float:
    """P(known) after one observed answer, including the chance of learning from it."""
    p = min(max(float(p_known), 0.0), 1.0)
    s, g = params.p_slip, params.p_guess
    if correct:
        num, den = p * (1 - s), p * (1 - s) + (1 - p) * g
    else:
        num, den = p * s, p * s + (1 - p) * (1 - g)
    post = num / den if den > 0 else p
    return post + (1 - post) * params.p_learn


@dataclass
class Mastery:
    """One student's knowledge of each skill."""

    params: BKTParams = field(default_factory=BKTParams)
    threshold: float = MASTERY_THRESHOLD
    unlock: float = UNLOCK_THRESHOLD
    p: dict[str, float] = field(default_factory=dict)  # skill -> P(known)
    attempts: dict[str, int] = field(default_factory=dict)  # skill -> answers seen

    def p_known(self, skill: str) -> float:
        return self.p.get(skill, self.params.p_init)

    def is_mastered(self, skill: str) -> bool:
        return self.p_known(skill) >= self.threshold

    def observe(self, skills: str | Iterable[str], correct: bool) -> dict[str, float]:
        """Update each skill with one answer; returns the new p per skill."""
        skills = [skills] if isinstance(skills, str) else list(skills)
        for skill in skills:
            self.p[skill] = update(self.p_known(skill), correct, self.params)
            self.attempts[skill] = self.attempts.get(skill, 0) + 1
        return {skill: self.p[skill] for skill in skills}

    def observe_answer(self, step: Step, question: Question, correct: bool) -> dict[str, float]:
        return self.observe(step.skills_for(question), correct)

    def set_known(self, skills: str | Iterable[str], p: float | None = None) -> None:
        """Trust the student ("too easy"): raise the skills to `p` (default: the threshold)."""
        skills = [skills] if isinstance(skills, str) else list(skills)
        for skill in skills:
            self.p[skill] = max(self.p_known(skill), self.threshold if p is None else p)

    def step_mastered(self, step: Step) -> bool:
        return all(self.is_mastered(s) for s in step.skills)

    def next_step(self, pack: Pack, *, exclude: Collection[str] = ()) -> Step | None:
        """The step to practise next, or None when the whole pack is mastered.

        `exclude`: step ids to leave out this time (just skipped, say).
        """
        candidates = []
        for order, step in enumerate(pack.steps):
            if not self.step_mastered(step) and step.id not in exclude:
                weakest = min(self.p_known(s) for s in step.skills)
                candidates.append((weakest, order, step))
            if any(self.p_known(s) < self.unlock for s in step.skills):
                break  # later steps stay locked until this one is partly learned
        if (
            not candidates
        ):  # everything open is mastered or excluded: fall back to any unmastered step
            candidates = [
                (min(self.p_known(s) for s in step.skills), order, step)
                for order, step in enumerate(pack.steps)
                if not self.step_mastered(step) and step.id not in exclude
            ]
        return min(candidates, key=lambda c: c[:2])[2] if candidates else None

    def next_question(
        self, pack: Pack, *, asked: Collection[str] = (), exclude: Collection[str] = ()
    ) -> tuple[Step, Question] | None:
        """The next step and a question from it, preferring questions not yet `asked`
        (question ids); when all of the step's questions were asked, it starts again."""
        step = self.next_step(pack, exclude=exclude)
        if step is None:
            return None
        fresh = [q for q in step.questions if q.id not in asked]
        return step, (fresh or step.questions)[0]

    def summary(self, pack: Pack) -> dict[str, float]:
        """P(known) for every skill of the pack, in teaching order."""
        return {skill: self.p_known(skill) for skill in pack.skills}

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": asdict(self.params),
            "threshold": self.threshold,
            "unlock": self.unlock,
            "p": dict(self.p),
            "attempts": dict(self.attempts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mastery:
        try:
            return cls(
                params=BKTParams(**data.get("params", {})),
                threshold=float(data.get("threshold", MASTERY_THRESHOLD)),
                unlock=float(data.get("unlock", UNLOCK_THRESHOLD)),
                p={str(k): float(v) for k, v in data.get("p", {}).items()},
                attempts={str(k): int(v) for k, v in data.get("attempts", {}).items()},
            )
        except (TypeError, AttributeError) as e:
            raise ValueError(f"not a saved Mastery: {e}") from None
