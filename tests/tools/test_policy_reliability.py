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
