"""The policy's channel reliabilities are the measured ones (tools/policy_reliability.py)."""

from __future__ import annotations

import json

import pytest

from tools.policy_reliability import MEASURED, kappa, reliabilities
from tutor.policy import load_policy_config


def test_kappa_is_one_when_always_right_and_zero_for_a_guess():
    assert kappa([[5, 0], [0, 5]]) == pytest.approx(1.0)
    assert kappa([[25, 25], [25, 25]]) == pytest.approx(0.0)
    assert kappa([[45, 5], [10, 40]]) == pytest.approx(0.7)


def test_each_modality_is_trusted_as_measured_on_its_hardest_set():
    measured = reliabilities(json.loads(MEASURED.read_text()))
    channels = load_policy_config().channels
    assert set(measured) == {"text", "speech", "face"}
    for modality, (k, _) in measured.items():
        assert channels[modality].reliability == pytest.approx(round(k, 2)), modality


def test_reports_of_cmt_evaluate_are_recorded_and_the_lowest_kappa_wins(tmp_path):
    from tools.policy_reliability import record

    def report(name, dataset, matrix):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({
            "modality": "face", "dataset": dataset, "split": "dev", "n": sum(map(sum, matrix)),
            "checkpoint": "/x/cmt.pt", "confusion": {"labels": ["joy", "anger"],
                                                     "matrix": matrix}, "accuracy": 0.0}))
        return path

    out = tmp_path / "measured.json"
    sets = record([report("a", "posed", [[5, 0], [0, 5]]),
                   report("b", "wild", [[45, 5], [10, 40]])], out)
    assert json.loads(out.read_text()) == sets and sets[0]["checkpoint"] == "cmt.pt"
    k, name = reliabilities(sets)["face"]
    assert k == pytest.approx(0.7) and name == "wild dev"
