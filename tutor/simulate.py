"""A scripted student: run a scenario through the real tutor and show, turn by turn, what it did.

    python -m tutor.simulate data/scenarios/struggling_then_recovering.yaml [--control]

A scenario (data/scenarios/*.yaml) is a lesson and a list of turns. Each turn says what the
student types (`say`, or `answer: right` / `answer: wrong` for the right answer or a known
wrong one to whatever question the tutor is asking at that moment), the emotion the camera
and voice would read (`emotion`: a label, or probabilities over the seven emotions), and
`after_s`, the seconds since the previous turn. No model runs: the readings are scripted.
Everything else is real: the Conversation, the policy, the dialogue and an in-memory SQLite
database, in which each turn, reading and adaptation is logged. `--control` runs the same
script with the policy that never adapts, for comparison.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cmt.contract import EMOTIONS, AnalyzeRequest, AnalyzeResponse
from tutor.client import CMTUnavailable
from tutor.dialogue import Dialogue, load_lesson

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "data" / "scenarios"
IN_MEMORY = "sqlite://"


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message says where and why."""


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str | None = None
    answer: Literal["right", "wrong"] | None = None
    emotion: str | dict[str, float] | None = "neutral"  # None: no reading this turn
    confidence: float = Field(default=0.8, gt=0, le=1)  # for a label: its probability
    after_s: float = Field(default=15.0, ge=0)  # seconds since the previous turn
    note: str | None = None

    @model_validator(mode="after")
    def _one_message(self) -> ScriptTurn:
        if (self.say is None) == (self.answer is None):
            raise ValueError("give exactly one of `say` (text) or `answer` (right or wrong)")
        if isinstance(self.emotion, str) and self.emotion not in EMOTIONS:
            raise ValueError(f"emotion {self.emotion!r} is not one of {EMOTIONS}")
        return self

    def reading(self) -> AnalyzeResponse | None:
        if self.emotion is None:
            return None
        if isinstance(self.emotion, str):
            rest = (1 - self.confidence) / (len(EMOTIONS) - 1)
            probs = {e: self.confidence if e == self.emotion else rest for e in EMOTIONS}
        else:
            unknown = set(self.emotion) - set(EMOTIONS)
            if unknown:
                raise ScenarioError(f"unknown emotions {sorted(unknown)}; use {EMOTIONS}")
            total = sum(self.emotion.values())
            if total <= 0:
                raise ScenarioError("emotion probabilities must add up to more than 0")
            probs = {e: self.emotion.get(e, 0.0) / total for e in EMOTIONS}
        return AnalyzeResponse.from_probs(probs, model_version="scripted", latency_ms=0.0)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    lesson: str = "fractions"
    start_step: str | None = None
    student: str = "simulated-student"
    seed: int = 0
    turns: list[ScriptTurn] = Field(min_length=1)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: cannot read the scenario: {e}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with name, lesson and turns")
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors())
        raise ScenarioError(f"{path}: the scenario has problems:\n{problems}") from None


class ScriptedCMT:
    """Stands in for the CMT client: answers each analyze() with the next scripted reading."""

    def __init__(self):
        self.next: AnalyzeResponse | None = None

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        if self.next is None:
            raise CMTUnavailable("scripted: no reading this turn")
        return self.next


class SimClock:
    def __init__(self, start: float = 0.0):
        self.t = start

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class Row:
    index: int
    t: float  # seconds into the session
    said: str
    emotion: str  # "anger 0.80" or "-"
    state: str
    tone: str
    pacing: str
    hint_level: int
    move: str
    did: str
    reason: str
    reply: str


@dataclass
class Simulation:
    scenario: Scenario
    mode: str
    rows: list[Row]
    session_id: int
    db: object  # the sessionmaker, for looking at what was logged


def resolve(turn: ScriptTurn, dialogue: Dialogue) -> str:
    """The text the student types: `say`, or a right/wrong answer to the current question."""
    if turn.say is not None:
        return turn.say
    q = dialogue.question
    if q is None:
        return "done?"
    if turn.answer == "right":
        if q.kind == "choice":
            return chr(97 + [c.casefold() for c in q.choices].index(q.answer[0].casefold()))
        return q.answer[0]
    wrong = [m.answer for m in q.misconceptions if m.answer]
    if wrong:
        return wrong[dialogue.wrong_on_question % len(wrong)]
    if q.kind == "choice":
        right = {a.casefold() for a in q.answer}
        return chr(97 + next(i for i, c in enumerate(q.choices) if c.casefold() not in right))
    if q.kind == "free_text":
        return "because the numbers are like that"
    return "0" if q.answer[0].strip() != "0" else "1"


def run_scenario(scenario: Scenario | str | Path, *, control: bool = False,
                 db_url: str = IN_MEMORY) -> Simulation:
    """Play the script through a real Conversation; every turn is logged in the database."""
    from tutor.db import init_db
    from tutor.session import Conversation

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    pack = load_lesson(scenario.lesson)
    clock, cmt = SimClock(), ScriptedCMT()
    dialogue = Dialogue(pack, start_step=scenario.start_step, seed=scenario.seed, clock=clock)
    db = init_db(db_url)
    mode = "control" if control else "adaptive"
    conv = Conversation(db=db, cmt=cmt, student_handle=scenario.student, pack=pack,
                        policy_mode=mode, dialogue=dialogue, clock=clock)
    rows = []
    for i, turn in enumerate(scenario.turns, 1):
        clock.t += turn.after_s
        said = resolve(turn, dialogue)
        cmt.next = turn.reading()
        result = conv.turn(said)
        r, d = result.reading, result.decision
        rows.append(Row(index=i, t=clock.t, said=said,
                        emotion=f"{r.label} {r.confidence:.2f}" if r else "-",
                        state=d.state, tone=d.tone, pacing=d.pacing, hint_level=d.hint_level,
                        move=result.move, did=result.action, reason=d.reason, reply=result.reply))
    conv.close()
    return Simulation(scenario=scenario, mode=mode, rows=rows, session_id=conv.session_id, db=db)


def _cut(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def print_table(sim: Simulation, out: TextIO | None = None, *, replies: bool = False) -> None:
    """The turn-by-turn table: what the student did and felt, what the tutor did and why."""
    out = out or sys.stdout
    cols = (("#", 3), ("t(s)", 5), ("student", 26), ("emotion", 12), ("state", 10),
            ("tone", 11), ("pacing", 14), ("tutor did", 44))
    out.write(f"{sim.scenario.name} [{sim.mode}] - {len(sim.rows)} turns\n")
    header = " ".join(f"{name:<{w}}" for name, w in cols)
    out.write(header + "  why\n" + "-" * (len(header) + 5) + "\n")
    for row in sim.rows:
        cells = (str(row.index), f"{row.t:.0f}", _cut(row.said, 26), row.emotion, row.state,
                 row.tone, row.pacing, _cut(row.did, 44))
        out.write(" ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, cols, strict=True)))
        out.write(f"  {row.reason}\n")
        if replies:
            out.write("".join(f"      | {line}\n" for line in row.reply.splitlines() if line))
    adapted = sum(1 for r in sim.rows if "→ style unchanged" not in r.reason
                  and r.reason != "control mode: no adaptation")
    out.write(f"\nstyle changed on {adapted} of {len(sim.rows)} turns; "
              f"session {sim.session_id} logged {len(sim.rows)} turns\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tutor.simulate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path, help="a scenario YAML, e.g. data/scenarios/*.yaml")
    parser.add_argument("--control", action="store_true",
                        help="use the policy that never adapts, for comparison")
    parser.add_argument("--replies", action="store_true", help="print the tutor's replies too")
    parser.add_argument("--db", default=IN_MEMORY, help="database URL (default: in memory)")
    args = parser.parse_args(argv)
    try:
        sim = run_scenario(args.scenario, control=args.control, db_url=args.db)
    except ValueError as e:  # ScenarioError, PackError: say it plainly
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_table(sim, replies=args.replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
