"""The teacher's judgement (`tutor.reports.judge`) on every scripted student, against what the
scenario's writer concluded.

    PYTHONPATH=. python tools/teacher_check.py [--no-model] [--list]

Each scenario (data/scenarios, shipped and others) is played as `attune simulate` plays it (the
shipped model reading the words unless `--no-model`); the turns' states and readings and the
camera frames it logged are then judged as the class overview judges a student, at the times the
script gives (the simulation's database stamps wall-clock times, a second apart). A writer who
lets the student reach or end only in frustrated, anxious or confused wants the student marked
struggling; one who rules out all three (`never`) wants them not marked. Prints the counts, and
with `--list` the students marked against their writer, with the judgement's reason.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tutor import reports  # noqa: E402
from tutor.db.models import EmotionReading, Turn  # noqa: E402
from tutor.simulate import (SCENARIOS_DIR, load_scenario, model_text_reader,  # noqa: E402
                            run_scenario)

T0 = datetime(2026, 1, 5, 9, 0, 30, tzinfo=timezone.utc)
HARD = set(reports.HARD_STATES)


def wanted(scenario) -> bool | None:
    """True: the writer has the student struggling; False: never; None: the file does not say."""
    e = scenario.expect
    if e is None:
        return None
    if (e.reach and set(e.reach) <= HARD) or (e.final and set(e.final) <= HARD):
        return True
    if HARD <= set(e.never):
        return False
    return None


def judged(sim) -> reports.Judgement:
    """The class overview's judgement of the simulated session, at the script's times."""
    with sim.db() as s:
        readings = s.execute(select(EmotionReading.turn_id, EmotionReading.label,
                                    EmotionReading.modality_probs)
                             .where(EmotionReading.session_id == sim.session_id)
                             .order_by(EmotionReading.id)).all()
        turn_ids = s.scalars(select(Turn.id).where(Turn.session_id == sim.session_id)
                             .order_by(Turn.id)).all()
    label_of = {r.turn_id: reports._turn_label(r.label, r.modality_probs)
                for r in readings if r.turn_id is not None}
    frames = [r.label for r in readings if r.turn_id is None]
    if len(sim.frame_times) != len(frames):
        raise RuntimeError(f"{sim.scenario.name}: {len(frames)} frames logged, "
                           f"{len(sim.frame_times)} sent")
    minutes = reports._minutes([(T0 + timedelta(seconds=x), label)
                                for x, label in zip(sim.frame_times, frames)])
    labels = [label_of.get(tid) for tid in turn_ids]
    turns = [reports.TurnSignal(index=i, at=T0 + timedelta(seconds=row.t), state=row.state,
                                label=label)
             for i, (row, label) in enumerate(zip(sim.rows, labels))]
    return reports.judge(turns, minutes, now=turns[-1].at if turns else T0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-model", action="store_true", help="leave the words unread")
    ap.add_argument("--list", action="store_true", help="name the students judged against "
                    "their writer")
    args = ap.parse_args(argv)
    read_text = None if args.no_model else model_text_reader()
    paths = sorted(SCENARIOS_DIR.glob("*.yaml")) + sorted((SCENARIOS_DIR / "others").glob("*.yaml"))
    counts, against = Counter(), []
    for path in paths:
        scenario = load_scenario(path)
        want = wanted(scenario)
        j = judged(run_scenario(scenario, read_text=read_text))
        counts[want, j.struggling] += 1
        if want is not None and want != j.struggling:
            against.append(f"{path.stem}: {'' if want else 'not '}struggling for the writer; "
                           f"marked {j.struggling} ({j.why or 'no reason'})")
    print(f"{len(paths)} scripted students, words {'unread' if args.no_model else 'read'}")
    for want, name in ((True, "struggling"), (False, "never struggling"),
                       (None, "not said")):
        n = counts[want, True] + counts[want, False]
        print(f"  writer: {name:17} {n:4}   marked struggling {counts[want, True]:4}")
    if args.list:
        print("\n".join(against))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
