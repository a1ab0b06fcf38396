from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

from cmt.training.features import FeatureSet, cached, cache_path, pack
from cmt.training.train import TrainConfig, TupleSampler, evaluate_pools, load_fusion, train

D = {"text": 12, "face": 10, "speech": 8}


def synthetic_pools(n=140, seed=0, signal=0.6) -> dict[str, FeatureSet]:
    """Each modality carries a weak, independent cue of the label: fusing them should help."""
    g = torch.Generator().manual_seed(seed)
    pools = {}
    for k, (m, d) in enumerate(D.items()):
        labels = torch.arange(n) % 7
        centers = torch.randn(7, d, generator=torch.Generator().manual_seed(100 + k))
        T = 5
        lengths = torch.randint(2, T + 1, (n,), generator=g)
        tokens = torch.randn(int(lengths.sum()), d, generator=g) + signal * centers[
            labels.repeat_interleave(lengths)]
        pools[m] = FeatureSet(m, tokens.half(), lengths, labels, [str(i % 10) for i in range(n)])
    return pools


def tiny_config(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(d_model=32, n_head=2, n_layer=1, epochs=kw.pop("epochs", 6), batch_size=32,
                       lr=kw.pop("lr", 3e-3), out=tmp_path / "cmt.pt", oversample={}, **kw)


def test_label_matched_tuples_share_the_anchor_label():
    pools = synthetic_pools()
    sampler = TupleSampler(pools, partner_prob=1.0, seed=0)
    anchors = sampler.anchors({})
    batch, targets = sampler.batch(anchors[:50])
    for m, (tokens, mask) in batch.items():
        assert tokens.shape[:2] == mask.shape and mask.any(1).all()  # partner_prob 1: all present


def test_training_learns_and_fusion_beats_every_single_modality(tmp_path):
    ckpt = train(tiny_config(tmp_path), synthetic_pools(seed=0), progress=False)
    assert ckpt["history"][-1]["train_loss"] < ckpt["history"][0]["train_loss"]
    model = load_fusion(tmp_path / "cmt.pt")
    res = evaluate_pools(model, synthetic_pools(seed=1))
    tuples = res["tuples"]
    best_single = max(tuples[m]["macro_f1"] for m in D)
    assert tuples["text+face+speech"]["macro_f1"] > best_single


def test_same_seed_same_model(tmp_path):
    a = train(tiny_config(tmp_path, epochs=1), synthetic_pools(), progress=False)
    b = train(tiny_config(tmp_path, epochs=1), synthetic_pools(), progress=False)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k])


def test_an_interrupted_run_resumed_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    import cmt.training.train as T

    whole = train(tiny_config(tmp_path / "whole", epochs=3), synthetic_pools(), progress=False)
    assert not T.resume_path(tmp_path / "whole" / "cmt.pt").exists()  # gone when a run ends

    save = T._save_state

    def save_then_stop(path, state):  # the run is killed right after epoch 2's state is written
        save(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    config = tiny_config(tmp_path / "cut", epochs=3)
    monkeypatch.setattr(T, "_save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config, synthetic_pools(), progress=False)
    monkeypatch.setattr(T, "_save_state", save)
    assert T.resume_path(config.out).is_file() and not config.out.exists()

    resumed = train(config, synthetic_pools(), progress=False, resume=True)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]
    for k, v in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][k], v), k
    assert config.out.is_file() and not T.resume_path(config.out).exists()


def test_a_resume_state_from_another_config_is_refused(tmp_path, monkeypatch):
    import cmt.training.train as T

    def stop(path, state):
        T.torch.save(state, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save_state", stop)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, epochs=2), synthetic_pools(), progress=False)
    with pytest.raises(ValueError, match="another config"):
        train(tiny_config(tmp_path, epochs=2, lr=1e-2), synthetic_pools(), progress=False, resume=True)


def test_a_corpus_can_be_repeated_in_its_modalitys_pool():
    from cmt.training.train import merged

    a, b = synthetic_pools(n=14)["text"], synthetic_pools(n=7, seed=1)["text"]
    pool = merged({"text": {"goemotions": a, "meld": b}}, {"meld": 3})["text"]
    assert len(pool) == len(a) + 3 * len(b)
    assert pool.labels.tolist() == a.labels.tolist() + 3 * b.labels.tolist()
    assert len(merged({"text": {"goemotions": a, "meld": b}})["text"]) == len(a) + len(b)


@pytest.mark.parametrize("times", [{"iemocap": 2}, {"meld": 0}])
def test_corpus_times_names_a_trained_corpus_at_least_once(times):
    with pytest.raises(ValueError, match="corpus_times"):
        TrainConfig(corpus_times=times)


def test_feature_cache_round_trip_and_pack(tmp_path):
    chunks = [(torch.randn(2, 4, 3), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool())]
    fs = pack("text", chunks, ["joy", "anger"], ["a", "b"], max_tokens=3)
    assert fs.tokens.shape == (5, 3) and fs.lengths.tolist() == [2, 3]
    tokens, mask = fs.rows(torch.tensor([1, 0]))
    assert tokens.shape == (2, 3, 3) and mask.tolist() == [[True] * 3, [True, True, False]]
    assert torch.allclose(tokens[1, :2], chunks[0][0][0, :2].half().float())
    path = cache_path(tmp_path, "text", "meld", "dev", "enc")
    calls = []
    fs1 = cached(path, lambda: calls.append(1) or fs)
    fs2 = cached(path, lambda: calls.append(1) or fs)
    assert calls == [1] and torch.equal(fs1.tokens, fs2.tokens) and fs2.labels.tolist() == [1, 3]


DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from tests.cmt.training.test_train import synthetic_pools
from cmt.training.train import TrainConfig, train
cfg = TrainConfig(d_model=32, n_head=2, n_layer=1, epochs=2, batch_size=16, out={out!r}, oversample={{}})
ckpt = train(cfg, synthetic_pools(), progress=False)
print("WORLD", ckpt["world_size"], flush=True)
"""


def test_distributed_data_parallel_with_two_cpu_processes(tmp_path):
    root = str(Path(__file__).resolve().parents[3])
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(root=root, out=str(tmp_path / "ddp.pt")))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", str(script)], capture_output=True, text=True,
                       env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("WORLD") == 2, r.stdout  # both ranks finished (lines may interleave)
    ckpt = torch.load(tmp_path / "ddp.pt", weights_only=False)
    assert ckpt["world_size"] == 2 and len(ckpt["history"]) == 2
    model = load_fusion(tmp_path / "ddp.pt")
    assert sum(p.numel() for p in model.parameters()) > 0


def test_a_checkpoint_write_that_fails_leaves_the_one_that_was_there(tmp_path, monkeypatch):
    import errno

    config = tiny_config(tmp_path, epochs=1)
    config.out.write_bytes(b"the shipped checkpoint")
    real = torch.save

    def half_then_full(obj, f, *a, **kw):  # writes part of the file, then the disk is full
        real({"partial": True}, f, *a, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        train(config, synthetic_pools(), progress=False)
    assert config.out.read_bytes() == b"the shipped checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmt.pt"]  # no half-written file left


def _corpus(modality: str, d: int, n: int, seed: int, shift: float = 0.0, groups: int = 10) -> FeatureSet:
    """A corpus whose tokens carry the label (shared centres), moved by `shift` (another studio)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 7
    centers = torch.randn(7, d, generator=torch.Generator().manual_seed(100 + d))
    lengths = torch.full((n,), 3)
    tokens = (torch.randn(3 * n, d, generator=g) + 1.5 * centers[labels.repeat_interleave(lengths)]
              + shift)
    return FeatureSet(modality, tokens.half(), lengths, labels,
                      [f"{seed}-{i % groups}" for i in range(n)], {"corpus": f"c{seed}"})


def test_experts_learn_from_more_corpora_and_reliability_is_fitted_across_them(tmp_path, monkeypatch):
    """The speech expert trains on two corpora, the fusion on one; probes without the held-out
    corpus and on it alone score each other's corpus, and the shipped checkpoint carries the
    reliability model that cmt evaluate and the front door read."""
    import cmt.training.train as ct
    from cmt.training.experts import ExpertSpec
    from cmt.model.fusion import read_checkpoint

    pools = {"train": {"text": {"meld": _corpus("text", 12, 210, 1),
                                "goemotions": _corpus("text", 12, 140, 7, shift=1.0)},
                       "speech": {"ravdess": _corpus("speech", 8, 210, 2),
                                  "emodb": _corpus("speech", 8, 140, 3, shift=2.5)}},
             "dev": {"text": {"meld": _corpus("text", 12, 70, 4),
                              "goemotions": _corpus("text", 12, 35, 8, shift=1.0)},
                     "speech": {"ravdess": _corpus("speech", 8, 70, 5),
                                "emodb": _corpus("speech", 8, 35, 6, shift=2.5)}}}
    monkeypatch.setattr(ct, "build_pools", lambda config, split, encoders=None: pools[split])
    config = tiny_config(tmp_path, epochs=2, calibration=0.2, datasets_dir=tmp_path,
                         corpora={"text": ["meld", "goemotions"], "speech": ["ravdess"]},
                         expert_corpora={"speech": ["ravdess", "emodb"]},
                         experts={"text": ExpertSpec(epochs=5), "speech": ExpertSpec(epochs=5)},
                         reliability={"text": {"held_out": "goemotions", "probe_on": "dev"},
                                      "speech": {"held_out": "emodb"}},
                         probe_dir=tmp_path / "probes")
    report = ct.run(config, progress=False)
    # probes score the corpus they did not train on whole, or only its dev split when told
    n = {k: row["tempered"]["n"] for k, row in report["cross_corpus"].items()}
    assert n == {"speech:without-emodb": 175, "speech:only-emodb": 280,
                 "text:without-goemotions": 35, "text:only-goemotions": 70}
    assert report["train_sizes"]["speech"] < report["expert_train_sizes"]["speech"]
    assert set(report["cross_corpus"]) == {"speech:without-emodb", "speech:only-emodb",
                                           "text:without-goemotions", "text:only-goemotions"}
    for row in report["cross_corpus"].values():
        assert {"ece", "macro_f1"} <= set(row["tempered"]) and row["mapping"][1] >= 0
    assert set(report["per_corpus_calibrated"]) == {"meld", "goemotions", "ravdess", "emodb"}
    ckpt = read_checkpoint(config.out)
    assert set(ckpt["reliability"]) == {"text", "speech"}
    assert sorted(p.name for p in (tmp_path / "probes").iterdir()) == [
        "cmt-speech-only-emodb.pt", "cmt-speech-without-emodb.pt",
        "cmt-text-only-goemotions.pt", "cmt-text-without-goemotions.pt"]
    # the fused answer joins a probe only where the fusion never read the held-out corpus
    probe = {p.stem: read_checkpoint(p)["probe"] for p in (tmp_path / "probes").iterdir()}
    assert probe["cmt-speech-without-emodb"]["fused_source"] is True
    assert probe["cmt-text-without-goemotions"]["fused_source"] is False
    with pytest.raises(ValueError, match="held_out"):
        TrainConfig(corpora={"speech": ["ravdess"]}, calibration=0.2,
                    experts={"speech": ExpertSpec()}, reliability={"speech": {"held_out": "ravdess"}})
    # a trained checkpoint calibrated afterwards: the expert never saw EmoDB; top labels stay
    monkeypatch.setattr(ct, "unseen_corpus", lambda config, corpus: FeatureSet.concat(
        [pools["train"]["speech"]["emodb"], pools["dev"]["speech"]["emodb"]]))
    only = {s: {m: {c: fs for c, fs in by.items() if c != "emodb"} for m, by in p.items()}
            for s, p in pools.items()}
    monkeypatch.setattr(ct, "build_pools", lambda config, split, encoders=None: {
        m: only[split][m] for m in config.all_corpora()})
    later = config.model_copy(update={"expert_corpora": {}, "probe_dir": None,
                                      "reliability": {"text": ct.ReliabilitySpec(),
                                                      "speech": config.reliability["speech"]}})
    report = ct.calibrate(later, config.out, tmp_path / "calibrated.pt")
    assert set(report["cross_corpus"]) == {"speech:emodb"}
    assert report["reliability"]["speech"]["two_fold_on_held_out"]["n"] == 175
    calibrated = read_checkpoint(tmp_path / "calibrated.pt")
    model, stack = ct.load_fusion(tmp_path / "calibrated.pt"), ct.Stack.from_dict(calibrated["stack"])
    experts = ct.experts_from_dict(calibrated["experts"])
    rel = {m: ct.Reliability.from_dict(b) for m, b in calibrated["reliability"].items()}
    fs = pools["dev"]["speech"]["emodb"]
    plain = ct.predict_pool(model, fs, stack=stack, experts=experts)
    tempered = ct.predict_pool(model, fs, stack=stack, experts=experts, reliability=rel)
    assert (plain.argmax(1) == tempered.argmax(1)).all()
    assert tempered.max(1).mean() <= plain.max(1).mean() + 1e-9
    # the temperature fitted after tempering keeps the trained checkpoint's top labels
    assert report["reliability"]["speech"]["gain"] > 0
    trained = ct.Stack.from_dict(read_checkpoint(config.out)["stack"])
    assert (ct.predict_pool(model, fs, stack=trained, experts=experts).argmax(1)
            == tempered.argmax(1)).all()
    # calibrating one modality again leaves the other's reliability model as it was
    text_only = later.model_copy(update={"reliability": {"text": later.reliability["text"]}})
    ct.calibrate(text_only, tmp_path / "calibrated.pt", tmp_path / "text-again.pt")
    again = read_checkpoint(tmp_path / "text-again.pt")["reliability"]
    assert set(again) == {"text", "speech"}
    kept, before = (ct.Reliability.from_dict(r["speech"]) for r in (again, calibrated["reliability"]))
    assert (kept.a, kept.b, kept.median) == (before.a, before.b, before.median)
