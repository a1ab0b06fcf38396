from __future__ import annotations

import pytest
import torch

from cmt.contract import EMOTIONS
from cmt.model.encoders.text import TextEncoder
from cmt.training.text_tune import Split, TopLayers, TuneConfig, fit_set, lower_states, save, tune
from cmt.training.corpora import calibration_mask
from tests.cmt.model.encoders.test_text import make_tiny_bert

HAPPY = ["i am so happy !", "so happy", "happy happy !", "the cat am happy", "i am happy .",
         "happy cat", "so so happy", "the happy cat sat"]
SAD = ["i am so sad .", "so sad", "sad sad .", "the cat am sad", "i am sad !",
       "sad cat", "so so sad", "the sad cat sat"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-tune"))


def _split(enc: TextEncoder, happy: list[str], sad: list[str], cut: int) -> Split:
    labels = [EMOTIONS.index("joy")] * len(happy) + [EMOTIONS.index("sadness")] * len(sad)
    return Split(lower_states(enc, happy + sad, cut), torch.tensor(labels))


def test_top_layers_on_lower_states_give_the_encoders_output(tiny_dir):
    enc = TextEncoder(str(tiny_dir), max_length=16)
    texts = ["i am so happy !", "the cat"]
    for cut in (0, 1):  # tune both layers, or only the top one
        top = TopLayers(enc.model.encoder.layer[cut:], enc.dim, 0.0).eval()
        with torch.no_grad():
            x, mask = top.hidden(lower_states(enc, texts, cut))
        want, want_mask = enc.tokens(texts)
        assert torch.equal(mask.bool(), want_mask)
        # float16 states in between: equal to a float16's precision
        assert torch.allclose(x[mask.bool()], want[want_mask], atol=2e-2)


def test_tuning_learns_and_the_file_loads_back_into_the_encoder(tiny_dir, tmp_path):
    enc = TextEncoder(str(tiny_dir), max_length=16)
    config = TuneConfig(base=str(tiny_dir), layers=1, epochs=6, batch_size=4, lr=3e-3, head_lr=3e-2,
                        dropout=0.0, label_smoothing=0.0)
    splits = {"goemotions": {"fit": _split(enc, HAPPY, SAD, 1),
                             "calibration": _split(enc, ["happy !"], ["sad ."], 1)}}
    blob = tune(config, splits, enc, log=lambda _: None)
    assert [r["epoch"] for r in blob["history"]] == [1, 2, 3, 4, 5, 6]
    assert blob["history"][blob["epoch"] - 1]["goemotions/calibration"] == 1.0  # both told apart
    assert list(blob["layers"]) == [1]  # only the top layer is kept

    path = tmp_path / "tuned.pt"
    save(blob, path)
    tuned = TextEncoder(str(path), max_length=16)
    assert tuned.fingerprint == f"{path}@{blob['digest']}" and tuned.fingerprint != enc.fingerprint
    base_state, tuned_state = enc.model.state_dict(), tuned.model.state_dict()
    for key in base_state:
        same = torch.equal(base_state[key], tuned_state[key])
        # the embeddings and layer 0 come from the base; layer 1 from the file
        assert same == (not key.startswith("encoder.layer.1.")), key
    assert torch.equal(tuned_state["encoder.layer.1.output.dense.weight"],
                       blob["layers"][1]["output.dense.weight"].float())


def test_an_oversampled_corpus_is_seen_that_many_times_per_epoch():
    def split(n: int, label: str) -> Split:
        return Split([torch.zeros(2, 4)] * n, torch.full((n,), EMOTIONS.index(label)))

    splits = {"goemotions": {"fit": split(5, "joy")}, "meld": {"fit": split(2, "anger")}}
    states, labels = fit_set(TuneConfig(oversample=(("meld", 3),)), splits)
    assert len(states) == 11 and labels.tolist().count(EMOTIONS.index("anger")) == 6
    states, labels = fit_set(TuneConfig(oversample=()), splits)
    assert len(states) == 7 and labels.tolist().count(EMOTIONS.index("anger")) == 2


def test_a_bad_tuned_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(ValueError, match="not a tuned text encoder file"):
        TextEncoder(str(bad))


def test_calibration_mask_holds_whole_groups_or_examples():
    held = calibration_mask(["a", "a", "b", "b", "c", "c", "d", "d"], 0.25, seed=0)
    assert sum(held) == 2 and held[0::2] == held[1::2]  # one whole group of four
    assert sum(calibration_mask([""] * 20, 0.15, seed=0)) == 3  # no groups: 15% of examples
