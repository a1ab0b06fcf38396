from __future__ import annotations

import pytest
import torch

from cmt.model.encoders.text import TextEncoder, mean_pool

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad", "the",
         "cat", "sat", "on", "mat", "!", ".", "##s"]


def make_tiny_bert(d):
    """A random BERT (hidden 32, 2 layers) and its tokenizer saved to folder d."""
    from transformers import BertConfig, BertModel, BertTokenizer

    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizer(str(d / "vocab.txt")).save_pretrained(d)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_tiny_encoder_shapes_and_masks(tiny_dir):
    enc = TextEncoder(str(tiny_dir), max_length=16)
    assert enc.dim == 32 and enc.name == str(tiny_dir)
    hidden, mask = enc.tokens(["i am so happy !", "the cat"])
    assert hidden.shape[:2] == mask.shape and hidden.shape[2] == 32
    assert mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [7, 4]  # [CLS] + words + [SEP]
    emb = enc.embed(["i am so happy !", "the cat", "sad"])
    assert emb.shape == (3, 32)
    # Padding must not change a sentence's vector: embed alone == embed in a batch.
    alone = enc.embed(["the cat"])
    assert torch.allclose(alone[0], emb[1], atol=1e-5)
    hidden, mask = enc.tokens(["i am so happy !", "the cat"])
    assert torch.allclose(emb[1], mean_pool(hidden[1:2], mask[1:2])[0], atol=1e-5)


def test_truncation_and_bad_input(tiny_dir):
    enc = TextEncoder(str(tiny_dir), max_length=8)
    _, mask = enc.tokens(["the cat sat on the mat the cat sat on the mat"])
    assert mask.shape[1] == 8
    assert enc.embed([]).shape == (0, 32)
    with pytest.raises(TypeError):
        enc.embed("one string")


def test_missing_model_gives_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load text encoder"):
        TextEncoder(str(tmp_path / "nope"))


def test_real_minilm_paraphrases_are_closer():
    enc = TextEncoder()
    assert enc.dim == 384
    e = enc.embed([
        "I am really happy with how my exam went.",
        "I'm so glad my test went well.",
        "The train to Boston leaves at nine.",
    ])
    cos = torch.nn.functional.cosine_similarity
    para = cos(e[0], e[1], dim=0)
    unrelated = cos(e[0], e[2], dim=0)
    assert para > 0.6 and para > unrelated + 0.3


def test_similarity_separates_a_right_idea_from_a_wrong_one():
    from cmt.model.encoders.text import TextEncoder, similarity_fn

    sim = similarity_fn(TextEncoder())
    idea = "the parts must be the same size so that every part is the same fraction of the whole"
    right = sim("equal pieces make each part the same amount", idea)
    wrong = sim("because fractions are numbers", idea)
    assert right >= 0.4 > wrong  # the lesson pack's threshold for this question
    assert sim("pizza", idea) < 0.1
