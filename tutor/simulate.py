"""A scripted student: run a scenario through the real tutor and show, turn by turn, what it did.

    attune simulate data/scenarios/struggling_then_recovering.yaml [--control] [--json]

A scenario (data/scenarios/*.yaml) is a lesson and a list of turns. Each turn says what the
student says (`say`, or `answer: right` / `answer: wrong` for the right answer or a known
wrong one to whatever question the tutor is asking at that moment) and `after_s`, the
seconds since the previous turn. What the modalities read is scripted per turn:

    camera: {emotion: joy, confidence: 0.8}   # the face at 2 frames a second during after_s
    voice:  {emotion: fear, confidence: 0.7}  # the voice; the words were spoken (spoken: true)
    text:   {emotion: anger, confidence: 0.7} # the emotion in the words

`emotion` is a label or probabilities over the seven emotions. Without `text`, the shipped
model reads the words where it is installed (`--no-model`: nothing reads them). The older
form, `emotion` and `confidence` on the turn itself, is one fused reading of the turn, as
before; `emotion: null` is no reading at all.

Everything else is real: the Conversation, the policy, the dialogue and an in-memory SQLite
database, in which each turn, camera frame reading and adaptation is logged. With
ATTUNE_LLM set, the chat model phrases the replies, as in the app. `--control` runs the same
script with the policy that never adapts, for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cmt.contract import EMOTIONS, AnalyzeRequest, AnalyzeResponse, reading_from_probs
from tutor.client import CMTUnavailable
from tutor.dialogue import Dialogue, load_lesson
from tutor.policy import student_note

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "data" / "scenarios"
IN_MEMORY = "sqlite://"
FRAMES_PER_S = 2.0  # the student view sends two camera frames a second


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message says where and why."""


def _probs(emotion: str | dict[str, float], confidence: float) -> dict[str, float]:
    if isinstance(emotion, str):
        rest = (1 - confidence) / (len(EMOTIONS) - 1)
        return {e: confidence if e == emotion else rest for e in EMOTIONS}
    total = sum(emotion.values())
    return {e: emotion.get(e, 0.0) / total for e in EMOTIONS}


def _check_emotion(emotion: str | dict[str, float] | None) -> None:
    if isinstance(emotion, str) and emotion not in EMOTIONS:
        raise ValueError(f"emotion {emotion!r} is not one of {EMOTIONS}")
    if isinstance(emotion, dict):
        unknown = set(emotion) - set(EMOTIONS)
        if unknown:
            raise ValueError(f"unknown emotions {sorted(unknown)}; use {EMOTIONS}")
        if any(v < 0 for v in emotion.values()) or sum(emotion.values()) <= 0:
            raise ValueError("emotion probabilities must be non-negative and add up to more than 0")


class Read(BaseModel):
    """What one modality read: an emotion label (with its confidence) or probabilities."""

    model_config = ConfigDict(extra="forbid")

    emotion: str | dict[str, float]
    confidence: float = Field(default=0.8, gt=0, le=1)  # for a label: its probability

    @model_validator(mode="after")
    def _known(self) -> Read:
        _check_emotion(self.emotion)
        return self

    def probs(self) -> dict[str, float]:
        return _probs(self.emotion, self.confidence)


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str | None = None
    answer: Literal["right", "wrong"] | None = None
    emotion: str | dict[str, float] | None = None  # the older form: one fused reading
    confidence: float = Field(default=0.8, gt=0, le=1)  # for a label: its probability
    camera: Read | None = None
    voice: Read | None = None
    text: Read | None = None
    spoken: bool | None = None  # the words were spoken (default: when `voice` is given)
    after_s: float = Field(default=15.0, ge=0)  # seconds since the previous turn
    note: str | None = None

    @model_validator(mode="after")
    def _one_message(self) -> ScriptTurn:
        if (self.say is None) == (self.answer is None):
            raise ValueError("give exactly one of `say` (text) or `answer` (right or wrong)")
        _check_emotion(self.emotion)
        if self.voice is not None and self.spoken is False:
            raise ValueError("a `voice` reading needs spoken words: drop `spoken: false`")
        if "emotion" in self.model_fields_set and (self.text or self.voice):
            raise ValueError("give either the older `emotion` (one fused reading) or "
                             "`text`/`voice` readings, not both")
        return self

    @property
    def is_spoken(self) -> bool:
        return bool(self.spoken) or (self.spoken is None and self.voice is not None)

    @property
    def fused_only(self) -> bool:
        """The older form: `emotion` on the turn is the whole reading (null: none)."""
        return "emotion" in self.model_fields_set

    def reading(self) -> AnalyzeResponse | None:
        """The older form's one fused reading (None when `emotion: null`)."""
        if self.emotion is None:
            return None
        return AnalyzeResponse.from_probs(_probs(self.emotion, self.confidence),
                                          model_version="scripted", latency_ms=0.0)


class Expect(BaseModel):
    """What the adaptive tutor should do with the script (tests check it; turns 0-based)."""

    model_config = ConfigDict(extra="forbid")

    reach: list[str] = Field(default_factory=list)  # one of these states is reached...
    by_turn: int | None = Field(default=None, ge=0)  # ...at or before this turn
    never: list[str] = Field(default_factory=list)  # states never entered
    final: list[str] = Field(default_factory=list)  # the state after the last turn is one of these
    max_changes: int | None = Field(default=None, ge=0)  # turns on which the style changes, at most

    @model_validator(mode="after")
    def _known(self) -> Expect:
        from tutor.policy import STATES

        unknown = set(self.reach + self.never + self.final) - set(STATES)
        if unknown:
            raise ValueError(f"unknown states {sorted(unknown)}; states are {STATES}")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    lesson: str = "fractions"
    start_step: str | None = None
    student: str = "simulated-student"
    seed: int = 0
    turns: list[ScriptTurn] = Field(min_length=1)
    expect: Expect | None = None


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
    """Stands in for the CMT client: a camera frame reads as the turn's `camera`, a turn as
    its `text` and `voice` (or the older fused `emotion`); words without a scripted `text`
    go to `read_text` (the shipped model), when there is one."""

    def __init__(self, read_text: Callable[[str], object | None] | None = None):
        self.turn: ScriptTurn | None = None
        self.words = ""  # what the student says this turn (the transcript of spoken words)
        self.read_text = read_text

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        turn = self.turn
        transcript = self.words if req.audio_b64 else None
        if req.text is None and req.audio_b64 is None:  # a camera frame between turns
            if turn is None or turn.camera is None:
                raise CMTUnavailable("scripted: the camera reads nothing now")
            face = reading_from_probs(turn.camera.probs())
            return AnalyzeResponse.from_probs(face.probs, modalities={"face": face},
                                              model_version="scripted", latency_ms=0.0)
        if turn.fused_only:
            reading = turn.reading()
            if reading is None and transcript is None:
                raise CMTUnavailable("scripted: no reading this turn")
            if reading is not None:
                return reading.model_copy(update={"transcript": transcript})
            return _unreadable(transcript)
        modalities = {}
        if turn.text is not None:
            modalities["text"] = reading_from_probs(turn.text.probs())
        elif self.read_text is not None:
            read = self.read_text(self.words)
            if read is not None:
                modalities["text"] = read
        if turn.voice is not None:
            modalities["speech"] = reading_from_probs(turn.voice.probs())
        if turn.camera is not None and req.image_b64:  # the frame sent with the turn
            modalities["face"] = reading_from_probs(turn.camera.probs())
        if not modalities:
            if transcript is None:
                raise CMTUnavailable("scripted: no reading this turn")
            return _unreadable(transcript)
        fused = {e: sum(m.probs[e] for m in modalities.values()) / len(modalities)
                 for e in EMOTIONS}
        return AnalyzeResponse.from_probs(fused, modalities=modalities, transcript=transcript,
                                          model_version="scripted", latency_ms=0.0)


def _unreadable(transcript: str | None) -> AnalyzeResponse:
    """Spoken words with no emotion read from them: a reading too unsure to count."""
    flat = {e: 1 / len(EMOTIONS) for e in EMOTIONS}
    return AnalyzeResponse.from_probs(flat, transcript=transcript, model_version="scripted",
                                      latency_ms=0.0)


def model_text_reader() -> Callable[[str], object | None] | None:
    """The shipped model reading the words' emotion, or None where it is not installed."""
    try:
        from tutor.embedded import load_engine
        from tutor.settings import Settings

        engine = load_engine(Settings(biometrics=False), similarity=False)
    except (ImportError, OSError, RuntimeError, ValueError) as e:
        print(f"note: the shipped model is not available ({e}); the words are not read",
              file=sys.stderr)
        return None

    def read(words: str):
        try:
            reading = engine.analyze(AnalyzeRequest(text=words, modalities=["text"]))
            return reading.modalities.get("text")
        except ValueError:  # e.g. words the model refuses: no reading, the turn goes on
            return None

    return read


class SimClock:
    def __init__(self, start: float = 0.0):
        self.t = start

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class Row:
    index: int  # 1-based, for the table
    t: float  # seconds into the session
    said: str
    emotion: str  # what was read this turn ("text anger 0.80, face joy 0.80") or "-"
    state: str
    tone: str
    pacing: str
    hint_level: int
    move: str
    did: str
    reason: str
    reply: str
    correct: bool | None = None
    offer_break: bool = False
    changed: bool = False
    noticed: str = ""
    source: str = "typed"

    def as_json(self) -> dict:
        """The `--json` line: turn (0-based, file order), move, correct, state, ... reply."""
        return {"turn": self.index - 1, "t": self.t, "said": self.said, "source": self.source,
                "move": self.move, "correct": self.correct, "state": self.state,
                "tone": self.tone, "pacing": self.pacing, "hint_level": self.hint_level,
                "offer_break": self.offer_break, "changed": self.changed,
                "reason": self.reason, "noticed": self.noticed, "reply": self.reply}


@dataclass
class Simulation:
    scenario: Scenario
    mode: str
    rows: list[Row]
    session_id: int
    db: object  # the sessionmaker, for looking at what was logged
    frame_times: list[float] = field(default_factory=list)  # when each camera frame was sent


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
                 db_url: str = IN_MEMORY, read_text: Callable[[str], object | None] | None = None,
                 phraser=None) -> Simulation:
    """Play the script through a real Conversation; every turn is logged in the database.

    `read_text` reads the emotion of words a turn gives no `text` reading for (see
    model_text_reader); None: nothing reads them. `phraser`: an LLM phraser, or None."""
    from tutor.db import init_db
    from tutor.privacy import record_consent
    from tutor.session import Conversation

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    pack = load_lesson(scenario.lesson)
    clock, cmt = SimClock(), ScriptedCMT(read_text)
    dialogue = Dialogue(pack, start_step=scenario.start_step, seed=scenario.seed, clock=clock,
                        phraser=phraser)
    db = init_db(db_url)
    mode = "control" if control else "adaptive"
    conv = Conversation(db=db, cmt=cmt, student_handle=scenario.student, pack=pack,
                        policy_mode=mode, dialogue=dialogue, clock=clock)
    with db.begin() as s:  # the scripted student allows the camera and the microphone
        for modality in ("camera", "microphone"):
            record_consent(session=s, student_id=conv.student_id, modality=modality, granted=True)
    rows, frame_times = [], []
    for i, turn in enumerate(scenario.turns, 1):
        start, cmt.turn = clock.t, turn
        if turn.camera is not None:  # the frames the camera sent while the student thought
            for k in range(1, int(turn.after_s * FRAMES_PER_S) + 1):
                clock.t = start + k / FRAMES_PER_S
                frame_times.append(clock.t)
                conv.observe_frame(b"scripted frame")
        clock.t = start + turn.after_s
        said = resolve(turn, dialogue)
        cmt.words = said
        frame = b"scripted frame" if turn.camera is not None else None
        if turn.is_spoken:
            result = conv.turn(None, audio=said.encode("utf-8"), image=frame)
        else:
            result = conv.turn(said, image=frame)
        r, d = result.reading, result.decision
        read = "-" if r is None else (", ".join(f"{m} {x.label} {x.confidence:.2f}"
                                                for m, x in r.modalities.items())
                                      or f"{r.label} {r.confidence:.2f}")
        rows.append(Row(index=i, t=clock.t, said=said, emotion=read, state=d.state, tone=d.tone,
                        pacing=d.pacing, hint_level=d.hint_level, move=result.move,
                        did=result.action, reason=d.reason, reply=result.reply,
                        correct=result.correct, offer_break=d.offer_break,
                        changed=bool(d.changes), noticed=student_note(d),
                        source="spoken" if turn.is_spoken else "typed"))
    conv.close()
    return Simulation(scenario=scenario, mode=mode, rows=rows, session_id=conv.session_id, db=db,
                      frame_times=frame_times)


def _cut(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def print_table(sim: Simulation, out: TextIO | None = None, *, replies: bool = False) -> None:
    """The turn-by-turn table: what the student did and felt, what the tutor did and why."""
    out = out or sys.stdout
    cols = (("#", 3), ("t(s)", 5), ("student", 26), ("read", 24), ("state", 10),
            ("tone", 11), ("pacing", 14), ("tutor did", 44))
    out.write(f"{sim.scenario.name} [{sim.mode}] - {len(sim.rows)} turns\n")
    header = " ".join(f"{name:<{w}}" for name, w in cols)
    out.write(header + "  why\n" + "-" * (len(header) + 5) + "\n")
    for row in sim.rows:
        said = ("(said) " if row.source == "spoken" else "") + row.said
        cells = (str(row.index), f"{row.t:.0f}", _cut(said, 26), _cut(row.emotion, 24),
                 row.state, row.tone, row.pacing, _cut(row.did, 44))
        out.write(" ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, cols, strict=True)))
        out.write(f"  {row.reason}\n")
        if replies:
            out.write("".join(f"      | {line}\n" for line in row.reply.splitlines() if line))
            if row.noticed:
                out.write(f"      (the student sees: {row.noticed})\n")
    adapted = sum(1 for r in sim.rows if r.changed)
    out.write(f"\nstyle changed on {adapted} of {len(sim.rows)} turns; "
              f"session {sim.session_id} logged {len(sim.rows)} turns\n")


def print_json(sim: Simulation, out: TextIO | None = None) -> None:
    """One JSON object per turn, in file order."""
    out = out or sys.stdout
    for row in sim.rows:
        out.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")


def unmet(scenario: Scenario, rows: Sequence[Row]) -> list[str]:
    """What the scenario's `expect` asked and the tutor did not do; [] when all of it held
    (or the scenario expects nothing)."""
    want, states = scenario.expect, [r.state for r in rows]
    if want is None:
        return []
    out = []
    if want.reach:
        upto = len(states) if want.by_turn is None else want.by_turn + 1
        if not set(states[:upto]) & set(want.reach):
            by = "" if want.by_turn is None else f" by turn {want.by_turn}"
            out.append(f"reach one of {want.reach}{by}: states were {states[:upto]}")
    entered = [s for s in want.never if s in states]
    if entered:
        out.append(f"never enter {want.never}: entered {entered} at turn "
                   f"{min(states.index(s) for s in entered)}")
    if want.final and states[-1] not in want.final:
        out.append(f"end in one of {want.final}: ended {states[-1]}")
    changes = sum(r.changed for r in rows)
    if want.max_changes is not None and changes > want.max_changes:
        out.append(f"change style on at most {want.max_changes} turns: changed on {changes}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attune simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path, help="a scenario YAML, e.g. data/scenarios/*.yaml")
    parser.add_argument("--control", action="store_true",
                        help="use the policy that never adapts, for comparison")
    parser.add_argument("--replies", action="store_true", help="print the tutor's replies too")
    parser.add_argument("--json", action="store_true", help="one JSON object per turn")
    parser.add_argument("--no-model", action="store_true",
                        help="do not read the words with the shipped model (turns without "
                             "a scripted `text` reading have none)")
    parser.add_argument("--db", default=IN_MEMORY, help="database URL (default: in memory)")
    parser.add_argument("--check", action="store_true",
                        help="check the scenario's `expect` (on stderr); exit 1 when unmet")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
        phraser = _phraser()
        needs_model = not args.no_model and any(
            not t.fused_only and t.text is None for t in scenario.turns)
        read_text = model_text_reader() if needs_model else None
        sim = run_scenario(scenario, control=args.control, db_url=args.db,
                           read_text=read_text, phraser=phraser)
    except ValueError as e:  # ScenarioError, PackError, LLMConfigError: say it plainly
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print_json(sim)
    else:
        print_table(sim, replies=args.replies)
    if args.check:
        if scenario.expect is None:
            print(f"error: {args.scenario} states no `expect` to check", file=sys.stderr)
            return 2
        misses = unmet(scenario, sim.rows)
        for miss in misses:
            print(f"expect unmet: {miss}", file=sys.stderr)
        if not misses:
            print("expect met", file=sys.stderr)
        return 1 if misses else 0
    return 0


def _phraser():
    """The LLM phraser ATTUNE_LLM asks for, as the app uses it; None when it is not set."""
    from tutor.settings import Settings
    from tutor.llm import phraser_from_settings

    return phraser_from_settings(Settings())


if __name__ == "__main__":
    sys.exit(main())
