"""Honest confidence: the ECE, the distance-based reliability and its tempering of answers."""

from __future__ import annotations

import numpy as np
import pytest

from cmt.contract import EMOTIONS
from cmt.training.metrics import calibration, scores
from cmt.model.reliability import Reliability
from cmt.training.calibration import fit_density, fit_mapping
from cmt.model.stack import Stack


def test_ece_of_a_calibrated_and_an_overconfident_answer():
    rng = np.random.default_rng(0)
    n, c = 4000, len(EMOTIONS)
    conf = rng.uniform(0.55, 1.0, n)  # above the runner-up, 1 - conf
    t = rng.integers(0, c, n)
    right = rng.random(n) < conf  # right exactly as often as it says
    pred = np.where(right, t, (t + 1) % c)
    p = np.full((n, c), 0.0)
    p[np.arange(n), pred] = conf
    p[np.arange(n), (pred + 1) % c] = 1 - conf
    ece, bins = calibration(t, p)
    assert ece < 0.03
    assert sum(b["n"] for b in bins) == n and all(0 <= b["low"] < b["high"] <= 1 for b in bins)
    sure = np.zeros((n, c))
    sure[np.arange(n), pred] = 1.0  # always certain, right as often as before
    assert calibration(t, sure)[0] == pytest.approx(1 - right.mean())
    assert scores([EMOTIONS[i] for i in t], sure)["ece"] == pytest.approx(1 - right.mean())


def test_far_inputs_get_low_reliability_and_near_uniform_answers():
    rng = np.random.default_rng(0)
    means = rng.normal(0, 3, (3, 8))
    y = rng.integers(0, 3, 600)
    train = means[y] + rng.normal(0, 1, (600, 8))
    calib_y = rng.integers(0, 3, 300)
    calib = means[calib_y] + rng.normal(0, 1, (300, 8))
    far_y = rng.integers(0, 3, 300)
    far = rng.normal(0, 1, (300, 8)) * 4 + 12  # another "corpus": far away, labels unrelated
    rel = fit_density(train, y, calib)
    assert np.median(rel.log_ratio(calib)) == pytest.approx(0, abs=1e-3)
    # a confident classifier: right in-domain, confidently wrong far away
    onehot = lambda k: np.log(np.eye(7)[k] * 0.94 + 0.01)  # noqa: E731
    z = np.concatenate([onehot(calib_y), onehot((far_y + 1) % 3)])
    s = np.concatenate([rel.log_ratio(calib), rel.log_ratio(far)])
    rel.a, rel.b = fit_mapping(s, z, np.concatenate([calib_y, far_y]))
    assert rel.b > 0
    r_in, r_far = rel.score(calib), rel.score(far)
    assert r_in.mean() > 0.8 and r_far.mean() < 0.2
    # the stack tempers a source by its reliability: a far input answers near uniform
    stack = Stack(weights={"speech": [1.0]})
    near = stack.combine("speech", [onehot(far_y[:5] + 1)], [r_in[:5]])
    gone = stack.combine("speech", [onehot(far_y[:5] + 1)], [r_far[:5]])
    assert near.max(1).mean() > 0.8 and gone.max(1).mean() < 0.4
    again = Reliability.from_dict(rel.to_dict())
    assert np.allclose(again.score(far), r_far, atol=1e-4)


def test_combine_without_scales_is_unchanged():
    rng = np.random.default_rng(1)
    lp = [np.log(rng.dirichlet(np.ones(7), 4)) for _ in range(2)]
    stack = Stack(weights={"face": [0.5, 1.2]})
    assert np.allclose(stack.combine("face", lp), stack.combine("face", lp, [np.ones(4)] * 2))
    assert np.allclose(Stack().combine("face", lp).sum(1), 1)
