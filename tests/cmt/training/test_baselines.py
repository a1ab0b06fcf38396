from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

from cmt.training.baselines import latency_stacked_ms, render
from cmt.training.experts import ExpertSpec, fit_experts
from cmt.training.train import calibration_split, dev_tuples, fit_calibration, load_fusion, train
from tests.cmt.training.test_train import synthetic_pools, tiny_config


def test_stacked_latency_is_measured_and_the_table_renders(tmp_path):
    halves = {m: calibration_split(fs, 0.3) for m, fs in synthetic_pools().items()}
    train(tiny_config(tmp_path, epochs=1), {m: h[0] for m, h in halves.items()}, progress=False)
    model = load_fusion(tmp_path / "cmt.pt")
    experts = fit_experts({m: h[0] for m, h in halves.items()}, {"text": ExpertSpec(epochs=2)})
    stack = fit_calibration(model, {m: h[1] for m, h in halves.items()}, experts=experts)
    dev = synthetic_pools(seed=3)
    rows, _ = dev_tuples(dev)
    ms = latency_stacked_ms(model, stack, experts, dev, rows, ("text", "face", "speech"), n=5)
    assert 0 < ms < 1000
    row = {"weighted_f1": 0.5, "macro_f1": 0.4, "accuracy": 0.5, "cross_entropy": 1.2, "n": 9}
    text = render([{"model": "CMT", **row, "latency_ms": ms}, {"model": "pair", **row, "latency_ms": None}])
    assert "n = 9" in text and text.splitlines()[3].rstrip().endswith("-")


def test_retraining_the_comparators_leaves_the_configs_model_alone(tmp_path, monkeypatch):
    import cmt.training.baselines as baselines
    import cmt.model.tokens

    class Keys:  # the encoders only name the features here
        def __init__(self, *args, **kwargs):
            pass

        def key(self, modality):
            return modality

    pools = synthetic_pools()
    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cmt.model.tokens, "Encoders", Keys)
    monkeypatch.setattr(baselines, "training_pools", lambda config: (pools, None))
    dev = {m: {"synthetic": fs} for m, fs in synthetic_pools(seed=3).items()}
    monkeypatch.setattr(baselines, "build_pools", lambda config, split: dev)
    config = tiny_config(tmp_path, epochs=1)
    with pytest.raises(FileNotFoundError, match="run `cmt train`"):
        baselines.run(config, retrain=True, progress=False)

    train(config, pools, progress=False)
    shipped = (tmp_path / "cmt.pt").read_bytes()
    table = baselines.run(config, retrain=True, progress=False)
    assert (tmp_path / "cmt.pt").read_bytes() == shipped  # the comparators went to the cache
    assert len(list((tmp_path / "home" / "cache" / "baselines").glob("*.pt"))) == 3
    assert {"CMT (cross-modal attention)", "late fusion (mean of unimodal probabilities)"} <= {
        r["model"] for r in table}
