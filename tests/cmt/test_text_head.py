from __future__ import annotations

import pytest
import torch

from cmt.contract import EMOTIONS
from cmt.text_head import (
    Features,
    HeadConfig,
    TextHead,
    TrainConfig,
    evaluate_text,
    load_head,
    main,
    train_text_head,
)
from tests.cmt.training.datasets.test_text import write_goemotions, write_meld
from tests.cmt.model.encoders.test_text import make_tiny_bert


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_head_shapes_loss_and_padding(pool):
    torch.manual_seed(0)
    head = TextHead(HeadConfig(d_in=32, d_hidden=16, pool=pool)).eval()
    x = torch.randn(3, 5, 32)  # (B, T, d)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    logits, loss = head(x, mask)
    assert logits.shape == (3, len(EMOTIONS)) and loss is None
    # Padded positions must not matter: garbage there gives the same logits.
    x2 = x.clone()
    x2[~mask] = 100.0
    assert torch.allclose(head(x2, mask)[0], logits, atol=1e-5)
    _, loss = head(x, mask, targets=torch.tensor([0, 1, 2]))
    assert loss.ndim == 0 and loss > 0


def test_features_batch_rebuilds_padded_tokens():
    tokens = torch.arange(6 * 2, dtype=torch.float16).reshape(6, 2)  # lengths 1, 3, 2
    f = Features(pooled=torch.zeros(3, 2), tokens=tokens, lengths=torch.tensor([1, 3, 2]),
                 labels=torch.tensor([0, 1, 2]))
    x, mask = f.batch(torch.tensor([2, 0]), "attention")
    assert mask.tolist() == [[True, True], [True, False]]
    assert x[0].tolist() == tokens[4:6].float().tolist() and x[1, 1].tolist() == [0.0, 0.0]
    both = Features.concat([f, f])
    assert len(both) == 6 and both.batch(torch.tensor([3]), "attention")[0][0, 0].tolist() == [0, 1]


@pytest.fixture()
def tiny_corpora(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    ds = tmp_path / "datasets"
    for split in ("train", "dev"):
        write_meld(ds / "meld", split)
        write_goemotions(ds / "goemotions" / "ekman", split)
    return ds, make_tiny_bert(tmp_path / "tiny-bert")


def test_train_evaluate_and_cache_round_trip(tiny_corpora, tmp_path):
    ds, enc = tiny_corpora
    out = tmp_path / "head.pt"
    r = train_text_head(datasets_dir=ds, out=out, encoder=str(enc), log=lambda *_: None,
                        candidates=[(HeadConfig(pool="mean"), TrainConfig(epochs=2, batch_size=4)),
                                    (HeadConfig(pool="attention"), TrainConfig(epochs=2))])
    assert set(r["dev"]) == {"meld", "goemotions"} and len(r["candidates"]) == 2
    assert out.stat().st_size < 5e6
    cached = list((tmp_path / "home" / "cache" / "text").glob("*.pt"))
    assert len(cached) == 4  # encoder x corpus x split
    _head, ckpt = load_head(out)
    assert ckpt["labels"] == list(EMOTIONS) and ckpt["encoder"] == str(enc)
    assert "GoEmotions" in ckpt["training_data"]["train"]
    s = evaluate_text(corpus="meld", data_dir=ds / "meld", checkpoint=out)
    assert s["n"] == 4
    assert s["weighted_f1"] == pytest.approx(ckpt["scores"]["dev"]["meld"]["weighted_f1"])


def test_cli_evaluate_prints_scores(tiny_corpora, tmp_path, capsys):
    ds, enc = tiny_corpora
    out = tmp_path / "head.pt"
    train_text_head(datasets_dir=ds, out=out, encoder=str(enc), log=lambda *_: None,
                    candidates=[(HeadConfig(), TrainConfig(epochs=1))])
    main(["evaluate", "--corpus", "goemotions", "--data-dir", str(ds / "goemotions" / "ekman"),
          "--checkpoint", str(out)])
    assert '"weighted_f1"' in capsys.readouterr().out


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="text head checkpoint not found"):
        load_head(tmp_path / "none.pt")


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("corpus,rel,floor", [("meld", "meld", 0.50),
                                              ("goemotions", "goemotions/ekman", 0.62)])
def test_shipped_head_on_real_dev(datasets_dir, corpus, rel, floor):
    """The committed checkpoint still scores what it was shipped with (dev weighted F1)."""
    s = evaluate_text(corpus=corpus, data_dir=datasets_dir / rel)
    _, ckpt = load_head()
    assert s["weighted_f1"] == pytest.approx(ckpt["scores"]["dev"][corpus]["weighted_f1"], abs=0.01)
    assert s["weighted_f1"] > floor
