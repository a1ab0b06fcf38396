from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

from cmt.model.fusion import FUSIONS, FusionDims, FusionModel, drop_modalities

D_IN = {"text": 24, "face": 16, "speech": 20}


def tiny(fusion: str) -> FusionModel:
    torch.manual_seed(0)
    return FusionModel(FusionDims(d_in=D_IN, d_model=32, n_head=2, n_layer=2, fusion=fusion)).eval()


def batch(B=3, present=("text", "face", "speech"), T={"text": 5, "face": 4, "speech": 7}):
    g = torch.Generator().manual_seed(1)
    out = {}
    for m, d in D_IN.items():
        mask = torch.ones(B, T[m], dtype=torch.bool) if m in present else torch.zeros(B, T[m], dtype=torch.bool)
        if m in present:
            mask[0, -2:] = False  # padding
        out[m] = (torch.randn(B, T[m], d, generator=g), mask)
    return out


@pytest.mark.parametrize("fusion", FUSIONS)
def test_shapes_loss_and_per_modality_logits(fusion):
    model = tiny(fusion)
    logits, loss, extras = model(batch(), targets=torch.tensor([0, 3, 6]))
    assert logits.shape == (3, 7) and torch.isfinite(logits).all()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(extras["unimodal_logits"]) == set(D_IN)
    loss.backward()


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("present", [("text",), ("face",), ("speech",), ("text", "speech")])
def test_a_missing_modality_is_normal_input(fusion, present):
    logits, _, _ = tiny(fusion)(batch(present=present))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_padding_and_absent_modalities_do_not_change_the_answer(fusion):
    model = tiny(fusion)
    b = batch(present=("text", "face"))
    ref, _, _ = model(b)
    noisy = dict(b)
    t, m = b["speech"]
    noisy["speech"] = (t * 100 + 5, m)  # garbage behind an all-False mask
    t, m = b["text"]
    t2 = t.clone()
    t2[0, -2:] = 1e3  # garbage in padded positions
    noisy["text"] = (t2, m)
    out, _, _ = model(noisy)
    assert torch.allclose(ref, out, atol=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_modality_absent_from_every_row_may_be_left_out(fusion):
    """What the front door relies on to run a face frame's fusion on the face alone."""
    model = tiny(fusion)
    assert model.reads_absent_modalities == (fusion == "concat")
    if model.reads_absent_modalities:
        return
    b = batch(present=("face",))
    ref, _, _ = model(b)
    out, _, _ = model({"face": b["face"]})
    assert torch.allclose(ref, out, atol=1e-6)


def test_cross_attention_weights_are_reported_per_modality_pair():
    _, _, extras = tiny("cross")(batch())
    att = extras["attention"]
    assert set(att) == set(D_IN) and set(att["text"]) == {"none", "face", "speech"}
    total = sum(att["text"].values())
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)


def test_modality_dropout_keeps_at_least_one_modality():
    b = batch(B=64)
    dropped = drop_modalities(b, p=0.9, generator=torch.Generator().manual_seed(0))
    present = torch.stack([m.any(1) for _, m in dropped.values()], 1)
    assert (present.sum(1) >= 1).all() and (present.sum(1) < 3).any()


def test_unknown_fusion_is_refused():
    with pytest.raises(ValueError, match="fusion must be"):
        FusionDims(fusion="magic")
