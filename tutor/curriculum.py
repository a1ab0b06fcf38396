"""Lesson packs: the curriculum as data files a teacher writes.

A pack is one YAML (or JSON) file: Pack -> topics -> steps -> questions. Each step has
explanations at up to three levels of detail, worked examples, the skills it trains and
questions with checkable answers, graded hints and known misconceptions. See
docs/lessons.md for how to write one, and check a file with

    python -m tutor.curriculum validate data/lessons/*.yaml

A file that breaks the schema raises `PackError` naming the file, the field path and the
line, e.g. `fractions.yaml: topics[0].steps[1].questions[2].kind (line 57): Input should
be 'number', 'fraction', ...`. Importing this module needs no torch and no sympy.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tutor.settings import REPO_DATA_DIR

LESSONS_DIR = REPO_DATA_DIR / "lessons"
LEVELS = ("brief", "standard", "detailed")
KINDS = ("number", "fraction", "expression", "equation", "choice", "free_text")
PACK_SUFFIXES = (".yaml", ".yml", ".json")

Level = Literal["brief", "standard", "detailed"]
Kind = Literal["number", "fraction", "expression", "equation", "choice", "free_text"]
# How an answer must be written, beyond having the right value:
#   any      - any equal value ("2/4" for 1/2)
#   simplest - a fraction in lowest terms (or a whole number);
#              an expression with like terms collected
#   mixed    - a mixed number such as "2 1/3" (or a whole number, or a proper fraction)
#   decimal  - a decimal such as "0.75"
#   expanded - an expression with no brackets and like terms collected
Form = Literal["any", "simplest", "mixed", "decimal", "expanded"]
FORMS_BY_KIND = {
    "number": {"any", "decimal"},
    "fraction": {"any", "simplest", "mixed", "decimal"},
    "expression": {"any", "simplest", "expanded"},
    "equation": {"any"},
    "choice": {"any"},
    "free_text": {"any"},
}
ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
MAX_LISTED = 20  # schema problems listed per file


class PackError(ValueError):
    """A lesson pack that cannot be read or breaks the schema; the message says where."""


def _text(value: Any) -> Any:
    """YAML turns `answer: 4` into an int and `- no` into False; accept numbers, refuse booleans."""
    if isinstance(value, bool):
        raise ValueError("YAML read this as true/false; put the text in quotes, e.g. 'no'")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
    return value


def _text_list(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        value = [value]
    return value


Text = Annotated[str, BeforeValidator(_text)]
Ident = Annotated[str, BeforeValidator(_text), Field(pattern=ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Explanations(_Model):
    """The same idea told at up to three levels of detail; `standard` is required."""

    brief: Text | None = None
    standard: Text
    detailed: Text | None = None

    def at(self, level: Level = "standard") -> str:
        """The explanation at `level`, or the nearest level the pack has."""
        order = {
            "brief": ("brief", "standard", "detailed"),
            "standard": ("standard", "detailed", "brief"),
            "detailed": ("detailed", "standard", "brief"),
        }[level]
        return next(text for name in order if (text := getattr(self, name)))


class WorkedExample(_Model):
    problem: Text
    steps: list[Text] = Field(min_length=1)
    answer: Text


class Misconception(_Model):
    """A known wrong answer and the feedback it deserves.

    `answer` is compared like a student's answer (so "2/4" also catches "1/2");
    `pattern` is a regular expression searched in the answer lowercased with spaces removed.
    """

    answer: Text | None = None
    pattern: Text | None = None
    feedback: Text
    name: Text | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> Misconception:
        if (self.answer is None) == (self.pattern is None):
            raise ValueError("give exactly one of `answer` or `pattern`")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as e:
                msg = f"pattern {self.pattern!r} is not a valid regular expression: {e}"
                raise ValueError(msg) from None
        return self


class Question(_Model):
    id: Ident
    prompt: Text
    kind: Kind
    answer: Annotated[list[Text], BeforeValidator(_text_list)] = Field(
        min_length=1,
        description="expected answer(s); any one is correct. free_text: the expected ideas",
    )
    form: Form = "any"
    choices: list[Text] | None = None
    variable: Annotated[str, BeforeValidator(_text), Field(pattern=r"^[a-zA-Z]$")] | None = None
    tolerance: float | None = Field(default=None, ge=0, description="number: absolute tolerance")
    min_similarity: float | None = Field(
        default=None, gt=0, le=1, description="free_text threshold"
    )
    hints: list[Text] = Field(min_length=1, description="least to most revealing")
    misconceptions: list[Misconception] = Field(default_factory=list)
    skills: list[Ident] | None = Field(default=None, description="default: the step's skills")
    explanation: Text | None = Field(
        default=None, description="why the answer is right (for 'why?')"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.form not in FORMS_BY_KIND[self.kind]:
            allowed = ", ".join(sorted(FORMS_BY_KIND[self.kind]))
            raise ValueError(
                f"form {self.form!r} does not apply to kind {self.kind!r} (use {allowed})"
            )
        if self.kind == "choice":
            if not self.choices or len(self.choices) < 2:
                raise ValueError("a choice question needs `choices` with at least two entries")
            folded = [c.casefold() for c in self.choices]
            if len(set(folded)) != len(folded):
                raise ValueError("choices must be different from each other")
            for a in self.answer:
                if a.casefold() not in folded:
                    raise ValueError(f"answer {a!r} is not one of the choices {self.choices}")
        elif self.choices is not None:
            raise ValueError(f"`choices` only applies to kind 'choice', not {self.kind!r}")
        if self.tolerance is not None and self.kind != "number":
            raise ValueError("`tolerance` only applies to kind 'number'")
        if self.min_similarity is not None and self.kind != "free_text":
            raise ValueError("`min_similarity` only applies to kind 'free_text'")
        if self.variable is not None and self.kind not in ("equation", "expression"):
            raise ValueError("`variable` only applies to kinds 'equation' and 'expression'")
        return self


class Step(_Model):
    id: Ident
    title: Text
    skills: list[Ident] = Field(min_length=1)
    explanations: Explanations
    examples: list[WorkedExample] = Field(default_factory=list)
    questions: list[Question] = Field(min_length=1)

    def skills_for(self, question: Question) -> list[str]:
        return list(question.skills or self.skills)


class Topic(_Model):
    id: Ident
    title: Text
    summary: Text | None = None
    steps: list[Step] = Field(min_length=1)


class Pack(_Model):
    id: Ident
    title: Text
    description: Text
    audience: Text | None = None
    version: Text = "1"
    topics: list[Topic] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Pack:
        for what, ids in (
            ("topic", [t.id for t in self.topics]),
            ("step", [s.id for s in self.steps]),
            ("question", [q.id for _, q in self.questions()]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what} ids must be unique within the pack; repeated: {dupes}")
        return self

    @property
    def steps(self) -> list[Step]:
        return [s for t in self.topics for s in t.steps]

    @property
    def skills(self) -> list[str]:
        """Every skill of the pack, in teaching order."""
        seen: dict[str, None] = {}
        for step, q in self.questions():
            seen.update(dict.fromkeys(step.skills_for(q)))
        return list(seen)

    def questions(self) -> Iterator[tuple[Step, Question]]:
        for step in self.steps:
            for q in step.questions:
                yield step, q

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(f"pack {self.id!r} has no step {step_id!r}")

    def question(self, question_id: str) -> tuple[Step, Question]:
        for s, q in self.questions():
            if q.id == question_id:
                return s, q
        raise KeyError(f"pack {self.id!r} has no question {question_id!r}")


# ---------------------------------------------------------------- loading


def _loc_to_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest YAML node along `loc`."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if nxt is None:  # a missing field: point at the mapping that lacks it
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1
    return line


# libyaml's loader where PyYAML has it: a tenth of the pure-Python loader's time, which was
# most of building the student view at start-up.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: Path) -> tuple[Any, str | None]:
    """The file's data, and its YAML text (None for JSON), kept for saying where a problem is."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PackError(f"{path}: cannot read the file ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text), None
        except json.JSONDecodeError as e:
            raise PackError(
                f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None
    try:
        return yaml.load(text, Loader=_FAST_LOADER), text
    except yaml.YAMLError:
        pass
    try:  # read again by the pure-Python loader, whose messages say the problem plainly
        return yaml.safe_load(text), text
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise PackError(f"{path}: not valid YAML{where}: {problem}") from None


def load_pack(path: str | Path) -> Pack:
    """Read and validate one pack file; a bad file raises PackError saying where and why."""
    path = Path(path)
    data, text = _read(path)
    if not isinstance(data, dict):
        raise PackError(f"{path}: a lesson pack must be a mapping with id, title, topics, ...")
    try:
        return Pack.model_validate(data)
    except ValidationError as e:
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text is not None else None
        lines = []
        for err in e.errors():
            loc = err["loc"]
            line = _line_of(root, loc) if root is not None else None
            where = _loc_to_path(loc) + (f" (line {line})" if line else "")
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {msg}")
        n = len(lines)
        if n > MAX_LISTED:
            lines = lines[:MAX_LISTED] + [f"  ... and {n - MAX_LISTED} more"]
        raise PackError(
            f"{path.name}: {n} problem{'s' * (n > 1)} in {path}\n" + "\n".join(lines)
        ) from None


def load_packs(directory: str | Path = LESSONS_DIR) -> dict[str, Pack]:
    """Every pack in a directory, by pack id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PackError(f"{directory}: not a directory of lesson packs")
    packs: dict[str, Pack] = {}
    origin: dict[str, Path] = {}
    for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in PACK_SUFFIXES):
        pack = load_pack(path)
        if pack.id in packs:
            raise PackError(f"{path}: pack id {pack.id!r} is already used by {origin[pack.id]}")
        packs[pack.id], origin[pack.id] = pack, path
    return packs


# ---------------------------------------------------------------- checks beyond the schema
_MATH_SIGNS = str.maketrans({"−": "-", "–": "-", "×": "*", "·": "*", "：": ":"})
_MATH_TOKEN = re.compile(r"\d+ \d+/\d+|\d+(?:\.\d+)?(?:/\d+)?|[a-z]+|\S")  # 2 3/4: one
_SIGNS = set("-+*÷/=()²³^?<>")
_LOOSE_START, _LOOSE_END = set("+*÷/=)^?<>"), set("-+*÷/=(^?<>")


def _math_runs(text: str) -> list[tuple[str, ...]]:
    """The maths written in `text`: runs of numbers, single-letter variables and signs between
    the words, each a tuple of tokens with every variable written as "v" (so "y − 4 = 9" and
    "x − 4 = 9" are the same problem). "3x + 2 when x = 5." -> [(3 v + 2), (v = 5)]."""
    runs, run = [], []
    for tok in _MATH_TOKEN.findall(text.lower().translate(_MATH_SIGNS)):
        if tok[0].isdigit() or tok in _SIGNS or len(tok) == 1 and tok.isalpha():
            run.append("v" if tok.isalpha() else tok)
            continue
        if run:  # a word or punctuation ends the run
            runs.append(tuple(run))
        run = []
    if run:
        runs.append(tuple(run))
    trimmed = []
    for r in runs:  # a sign at either end joins nothing ("What is 1/2 of 3/4?")
        a, b = 0, len(r)
        while a < b and r[a] in _LOOSE_START:
            a += 1
        while b > a and r[b - 1] in _LOOSE_END:
            b -= 1
        trimmed.append(r[a:b])
    return [r for r in trimmed if any(t[0].isdigit() for t in r)]


def _significant(run: tuple[str, ...]) -> bool:
    """A run that names a problem, not just a count: a sum or equation, a fraction, a decimal
    ("8" and "3" alone say little; "5/9 - 2/9", "3/4" and "0.2" say what is asked)."""
    return len(run) > 1 or "/" in run[0] or "." in run[0]


_REMINDER = re.compile(r"\([^()]*[a-z]{2,}[^()]*\)", re.I)  # "(x² means x × x.)"
_WORKED_KINDS = ("number", "fraction", "expression", "equation")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def _contains(runs: list[tuple[str, ...]], part: tuple[str, ...]) -> bool:
    """Whether `part` is written in `runs` as it is asked: "3x + 5x" is not in "9 − 3x + 5x"
    (there the 3x is taken away)."""
    n = len(part)
    return any(r[i:i + n] == part and (i == 0 or r[i - 1] not in "-*÷/^")
               for r in runs for i in range(len(r) - n + 1))


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().translate(_MATH_SIGNS)))


def repeated_problems(pack: Pack) -> list[str]:
    """Questions that ask a problem their own step already works through, in a sentence of an
    explanation (any level may be shown) or in a worked example: shown one, then asked it, a
    student only copies the answer.

    A question repeats when one such sentence or example holds all the maths it asks (its
    sums, equations, fractions and decimals, with any variable's name; a reminder in brackets
    left out) and every number it gives. A question with no such maths (a word problem with
    bare counts, a free-text question) repeats when it is an example's problem word for word,
    or when one explanation or example holds all its numbers and its answer (a pizza cut into
    8 slices, 3 eaten, after a bar of 8 squares, 3 eaten, "3/8 of the bar").
    """
    problems = []
    for step in pack.steps:
        units = [u for t in (step.explanations.brief, step.explanations.standard,
                             step.explanations.detailed) if t for u in _SENTENCE.split(t)]
        units += [f"{e.problem} {' '.join(e.steps)} {e.answer}" for e in step.examples]
        shown = [(runs, {t for r in runs for t in r if t[0].isdigit()})
                 for runs in map(_math_runs, units)]
        worded = {_words(e.problem) for e in step.examples}
        whole = [_math_runs(t) for t in (step.explanations.brief, step.explanations.standard,
                                         step.explanations.detailed) if t]
        whole += [_math_runs(u) for u in units[len(units) - len(step.examples):]]
        for q in step.questions:
            runs = _math_runs(_REMINDER.sub(" ", q.prompt))
            asked = [r for r in runs if _significant(r)]
            numbers = {t for r in runs for t in r if t[0].isdigit()}
            if asked and any(numbers <= nums and all(_contains(rs, r) for r in asked)
                             for rs, nums in shown):
                maths = "; ".join(" ".join(r) for r in asked)
                problems.append(f"step {step.id!r}, question {q.id!r} asks {maths!r}, which "
                                "the step's explanation or worked example already works out")
            elif not asked and _words(q.prompt) in worded:
                problems.append(f"step {step.id!r}, question {q.id!r} is the step's worked "
                                "example word for word")
            elif not asked and len(numbers) > 1 and q.kind in _WORKED_KINDS and any(
                    numbers <= {t for r in rs for t in r if t[0].isdigit()}
                    and any(_contains(rs, r) for a in q.answer for r in _math_runs(a))
                    for rs in whole):
                problems.append(f"step {step.id!r}, question {q.id!r}: the step's explanation "
                                "or worked example uses its numbers and shows its answer")
    return problems


def check_pack(pack: Pack) -> list[str]:
    """Problems the schema cannot see: each expected answer must be judged correct by the
    answer checker, each misconception answer judged wrong and given its feedback, and no
    question may ask a problem its step has just worked through (`repeated_problems`)."""
    from tutor.answers import check_answer

    problems = repeated_problems(pack)
    for step, q in pack.questions():
        where = f"step {step.id!r}, question {q.id!r}"
        for expected in q.answer:
            v = check_answer(q, expected)
            if not v.correct:
                problems.append(
                    f"{where}: expected answer {expected!r} is not judged correct "
                    f"({v.message or v.feedback or 'no reason given'})"
                )
        for m in q.misconceptions:
            if m.answer is None:
                continue
            v = check_answer(q, m.answer)
            if v.correct:
                problems.append(f"{where}: misconception answer {m.answer!r} is judged correct")
            elif v.feedback != m.feedback:
                problems.append(
                    f"{where}: misconception answer {m.answer!r} does not reach its "
                    "feedback (an earlier misconception or a parse problem catches it)"
                )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tutor.curriculum", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check lesson pack files and print OK or the problems")
    val.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)

    failed = 0
    for path in args.files:
        try:
            pack = load_pack(path)
        except PackError as e:
            print(f"FAIL {e}")
            failed += 1
            continue
        problems = check_pack(pack)
        if problems:
            print(
                f"FAIL {path}: {len(problems)} problem(s)\n"
                + "\n".join(f"  {p}" for p in problems)
            )
            failed += 1
            continue
        n_steps = len(pack.steps)
        n_q = sum(1 for _ in pack.questions())
        print(
            f"OK   {path}: {pack.id!r}, {len(pack.topics)} topics, {n_steps} steps, "
            f"{n_q} questions, {len(pack.skills)} skills"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
