from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

from cmt.model.experts import (
    Expert,
    ExpertConfig,
    expert_input,
    experts_from_dict,
    experts_to_dict,
    pool,
)
from cmt.model.stack import source_names
from cmt.model.tokens import layer_summary
from cmt.training.experts import ExpertSpec, fit_experts, pool_probs
from cmt.training.features import FeatureSet
from cmt.training.train import (
    calibration_split,
    dev_tuples,
    fit_calibration,
    load_fusion,
    predict_pool,
    predict_stacked,
    train,
)
from tests.cmt.training.test_train import synthetic_pools, tiny_config


def test_summary_tokens_give_back_the_pooled_layers():
    """The speech expert reads the fusion's summary tokens as the speech head's (L, 2d) input."""
    hidden = [torch.randn(2, 9, 6) for _ in range(5)]  # input embedding, then 4 blocks
    last = torch.randn(2, 9, 6)  # the encoder's output, after its closing layer norm
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 6:] = False
    summary = layer_summary(hidden, last, mask)  # (2, 10, 6)
    states = hidden[:4] + [last]
    frames = torch.randn(2, 3, 6)
    tokens = torch.cat([summary, frames], 1)
    got = expert_input(tokens, torch.ones(2, 13, dtype=torch.bool), n_layers=5)
    torch.testing.assert_close(got, pool(states, mask))
    plain = expert_input(frames, torch.tensor([[1, 1, 0], [1, 1, 1]]).bool(), n_layers=1)
    assert plain.shape == (2, 1, 12)
    torch.testing.assert_close(plain[0, 0, :6], frames[0, :2].mean(0))


def test_experts_learn_and_round_trip():
    pools = synthetic_pools(n=280, seed=0, signal=1.0)
    experts = fit_experts(pools, {"text": ExpertSpec(epochs=40, dropout=0.0), "nope": ExpertSpec()})
    assert set(experts) == {"text"}
    dev = synthetic_pools(n=280, seed=4, signal=1.0)["text"]
    p = pool_probs(experts["text"], dev)
    assert p.shape == (280, 7) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == dev.labels.numpy()).mean() > 0.6  # chance is 1/7
    again = experts_from_dict(experts_to_dict(experts))
    assert np.allclose(pool_probs(again["text"], dev), p, atol=1e-6)


def test_stack_leans_on_an_expert_that_knows_more_than_the_fusion(tmp_path):
    """The fusion barely trains (one epoch on weak cues); the text expert reads strong cues: the
    stacked text answer follows the expert, fitted on a calibration split neither saw."""
    pools = synthetic_pools(n=420, seed=0, signal=1.0)
    halves = {m: calibration_split(fs, 0.3, seed=0) for m, fs in pools.items()}
    fit = {m: h[0] for m, h in halves.items()}
    train(tiny_config(tmp_path, epochs=1).model_copy(update={"lr": 1e-4}), fit, progress=False)
    model = load_fusion(tmp_path / "cmt.pt")
    experts = fit_experts(fit, {"text": ExpertSpec(epochs=40, dropout=0.0)})
    stack = fit_calibration(model, {m: h[1] for m, h in halves.items()}, experts=experts)
    for key, w in stack.weights.items():
        assert len(w) == len(source_names(key.split("+"), experts)), key
    w_fused, w_expert = stack.weights["text"]
    assert w_expert > w_fused
    dev = synthetic_pools(n=280, seed=6, signal=1.0)
    y = dev["text"].labels.numpy()
    alone = (predict_pool(model, dev["text"]).argmax(1) == y).mean()
    stacked = (predict_pool(model, dev["text"], stack=stack, experts=experts).argmax(1) == y).mean()
    assert stacked > alone + 0.1
    rows, labels = dev_tuples(dev)
    eprobs = {"text": pool_probs(experts["text"], dev["text"])}
    both = predict_stacked(model, dev, rows, ("text", "face"), stack, eprobs)
    assert (both.argmax(1) == labels).mean() >= (eprobs["text"][rows["text"]].argmax(1) == labels).mean() - 0.05


def test_an_expert_of_tiny_dims_has_the_right_shapes():
    e = Expert(ExpertConfig(n_layers=2, d_model=4, n_hidden=8))
    logits, loss = e(torch.randn(3, 2, 8), torch.tensor([0, 1, 2]))
    assert logits.shape == (3, 7) and loss.ndim == 0
    fs = FeatureSet("speech", torch.randn(12, 4).half(), torch.tensor([5, 7]), torch.tensor([0, 1]))
    assert pool_probs(e.eval(), fs).shape == (2, 7)


def test_experts_without_a_calibration_split_are_refused(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="calibration"):
        tiny_config(tmp_path, experts={"text": ExpertSpec()})
    assert tiny_config(tmp_path, experts={"text": ExpertSpec()}, calibration=0.2).experts
    with pytest.raises(ValidationError, match="summary tokens"):
        tiny_config(tmp_path, experts={"speech": ExpertSpec(summary_layers=5)}, calibration=0.2)
    assert tiny_config(tmp_path, experts={"speech": ExpertSpec(summary_layers=5)}, calibration=0.2,
                       speech_summary=True).experts
