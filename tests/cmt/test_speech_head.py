from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from cmt.contract import EMOTIONS
from cmt.speech_head import (
    CHECKPOINT,
    SpeechEmotionHead,
    SpeechHeadConfig,
    load_head,
    main,
    pool,
    train_head,
)

TINY = SpeechHeadConfig(n_layers=3, d_model=8, n_hidden=16, dropout=0.0)


def test_pool_ignores_padding():
    h = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    padded = h.clone()
    padded[0, 3:] = 1e3  # whatever sits on padded frames must not count
    out = pool([padded, padded], mask)
    assert out.shape == (2, 2, 16)
    torch.testing.assert_close(out[0, 0, :8], h[0, :3].mean(0))
    torch.testing.assert_close(out[0, 0, 8:], h[0, :3].std(0, unbiased=False))


def test_head_shapes_and_loss():
    head = SpeechEmotionHead(TINY)
    x = torch.randn(4, 3, 16)
    logits, loss = head(x)
    assert logits.shape == (4, len(EMOTIONS)) and loss is None
    _, loss = head(x, torch.tensor([0, 1, 2, 3]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    probs = head.eval().probs(x)
    assert set(probs[0]) == set(EMOTIONS) and abs(sum(probs[0].values()) - 1) < 1e-5


def test_train_head_learns_separable_classes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(EMOTIONS)), 20)
    centers = rng.normal(0, 3, (len(EMOTIONS), 3, 16))
    x = (centers[y] + rng.normal(0, 1, (len(y), 3, 16))).astype(np.float32)
    head = train_head(x, y, TINY, epochs=80, lr=1e-2, batch_size=len(y))
    logits, _ = head(torch.from_numpy(x))
    assert (logits.argmax(-1).numpy() == y).mean() > 0.95


def test_cli_train_then_evaluate_with_tiny_encoder(tmp_path, monkeypatch, capsys):
    """End to end on a fake RAVDESS of tones, through a tiny random wav2vec2 encoder."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    enc_dir = tmp_path / "enc"
    cfg = Wav2Vec2Config(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                         feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(enc_dir)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(enc_dir)
    data = tmp_path / "ravdess"
    for actor in (1, 2, 20):
        (data / f"Actor_{actor:02d}").mkdir(parents=True)
        for emo in (1, 3, 5):
            t = np.arange(8000) / 16000
            sf.write(data / f"Actor_{actor:02d}" / f"03-01-{emo:02d}-01-01-01-{actor:02d}.wav",
                     0.1 * np.sin(2 * np.pi * 150 * emo * t), 16000)
    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    from cmt.settings import get_settings
    get_settings.cache_clear()
    ckpt = tmp_path / "head.pt"
    common = ["--data-dir", str(data), "--dev-actors", "20", "--checkpoint", str(ckpt),
              "--encoder", str(enc_dir)]
    main(["train", *common, "--epochs", "5"])
    assert ckpt.is_file() and load_head(ckpt).meta["dev_actors"] == [20]
    main(["evaluate", *common])
    out = capsys.readouterr().out
    assert '"n": 3' in out and "accuracy" in out
    get_settings.cache_clear()


@pytest.mark.shared
def test_shipped_head_on_held_out_actor(datasets_dir):
    """The shipped head on strong-intensity clips of held-out actor 20 (never trained on)."""
    from cmt.training.datasets.speech import load_ravdess
    from cmt.model.encoders.speech import SpeechEncoder, load_audio

    if not CHECKPOINT.is_file():
        pytest.fail(f"no shipped head at {CHECKPOINT}")
    head = load_head()
    clips = [e for e in load_ravdess(datasets_dir / "ravdess" / "Actor_20")
             if e.meta["intensity"] == 2 and e.meta["statement"] == 1]
    enc = SpeechEncoder()
    out = enc.encode_batch([load_audio(e.audio_path)[0] for e in clips], transcribe=False)
    probs = head.probs(pool(out.hidden_states[:-1] + (out.tokens,), out.mask))
    hits = [max(p, key=p.get) == e.label for p, e in zip(probs, clips)]
    assert len(clips) == 14 and np.mean(hits) >= 0.5, hits
