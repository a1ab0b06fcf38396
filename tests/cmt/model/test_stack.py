from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

from cmt.training.features import FeatureSet
from cmt.model.stack import Stack, subset_key
from cmt.training.calibration import fit_stack, fit_weights
from cmt.training.train import (
    calibration_split,
    dev_tuples,
    evaluate_pools,
    fit_calibration,
    predict_stacked,
    train,
)
from tests.cmt.training.test_train import D, synthetic_pools, tiny_config


def noisy_probs(labels: np.ndarray, accuracy: float, rng) -> np.ndarray:
    """Confident probabilities that are right `accuracy` of the time."""
    n, C = len(labels), 7
    guess = np.where(rng.random(n) < accuracy, labels, rng.integers(0, C, n))
    p = np.full((n, C), 0.02)
    p[np.arange(n), guess] = 1 - 0.02 * (C - 1)
    return p


def test_a_useless_fused_answer_gives_way_to_the_modality_that_knows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 2000)
    fused, text, face = noisy_probs(y, 0.35, rng), noisy_probs(y, 0.8, rng), noisy_probs(y, 0.2, rng)
    stack = fit_stack({"face+text": np.stack([fused, face, text], 1)}, {"face+text": y})
    w_fused, w_face, w_text = stack.weights["face+text"]
    assert w_text > w_fused and w_text > w_face
    y2 = rng.integers(0, 7, 2000)
    parts = [noisy_probs(y2, a, rng) for a in (0.35, 0.2, 0.8)]
    out = stack.combine("face+text", [np.log(p) for p in parts])
    acc = (out.argmax(1) == y2).mean()
    assert acc >= (parts[2].argmax(1) == y2).mean() - 0.02  # as good as text alone, held out


def test_the_better_source_weighs_more():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 1500)
    logps = np.log(np.stack([noisy_probs(y, 0.9, rng), noisy_probs(y, 0.3, rng)], 1))
    for balanced in (True, False):
        w = fit_weights(logps, y, balanced=balanced)
        assert w[0] > 2 * w[1] and all(v >= 0 for v in w)


def test_stack_round_trips_and_unknown_subsets_pass_through():
    s = Stack(weights={"text": [0.5]})
    again = Stack.from_dict(s.to_dict())
    p = np.array([[0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03]])
    assert np.allclose(again.combine("speech", [np.log(p)]), p)
    flat = again.combine("text", [np.log(p)])  # temperature 2: flatter, same argmax
    assert flat.argmax() == 0 and flat[0, 0] < p[0, 0] and np.isclose(flat.sum(), 1)
    assert Stack.from_dict(None) is None
    assert subset_key(("text", "face")) == "face+text"


def test_calibration_split_keeps_groups_whole():
    fs = synthetic_pools(n=200)["face"]
    fit, calib = calibration_split(fs, 0.2, seed=0)
    assert len(fit) + len(calib) == len(fs)
    assert not set(fit.groups) & set(calib.groups)
    assert 1 <= len(set(calib.groups)) <= 3  # 20% of 10 groups
    ungrouped = FeatureSet("text", fs.tokens, fs.lengths, fs.labels, [])
    a, b = calibration_split(ungrouped, 0.25)
    assert len(b) == 50 and len(a) == 150


def test_stack_fitted_on_held_out_tuples_is_no_worse_than_the_modalities_present(tmp_path):
    """A modality with no signal (face) is added: the stacked answer keeps up with text+speech."""
    pools = synthetic_pools(n=280, seed=0)
    pools["face"] = FeatureSet("face", torch.randn_like(pools["face"].tokens.float()).half(),
                               pools["face"].lengths, pools["face"].labels, pools["face"].groups)
    halves = {m: calibration_split(fs, 0.3, seed=0) for m, fs in pools.items()}
    train(tiny_config(tmp_path), {m: h[0] for m, h in halves.items()}, progress=False)
    from cmt.training.train import load_fusion

    model = load_fusion(tmp_path / "cmt.pt")
    stack = fit_calibration(model, {m: h[1] for m, h in halves.items()})
    assert set(stack.weights) >= {"text", "face", "speech", "face+text", "face+speech+text"}
    dev = synthetic_pools(n=280, seed=5)
    rows, labels = dev_tuples(dev)

    def acc(present):
        return float((predict_stacked(model, dev, rows, present, stack).argmax(1) == labels).mean())

    assert acc(("text", "face")) >= acc(("text",)) - 0.03
    assert acc(("text", "face", "speech")) >= max(acc((m,)) for m in D) - 0.03
    res = evaluate_pools(model, dev, stack=stack)
    assert set(res["tuples"]) >= {"text", "text+face", "text+face+speech"}
