"""Decoding audio at a bounded cost: bombs, lying headers, absurd rates, extreme samples.

Each file is made here (tools.trust's makers); none is a fixture on disk.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from cmt.model.encoders.speech import SAMPLE_RATE, AudioError, decode_audio, prepare_audio
from tools.trust import clip, flac_lying_header, wav, webm_silence


def _peak_mb(fn) -> float:
    """The peak of Python and numpy allocations while fn runs, MB."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def _refused(data: bytes, match: str) -> str:
    with pytest.raises(AudioError, match=match) as e:
        decode_audio(data)
    return str(e.value)


def test_a_header_claiming_2_36_samples_is_refused_without_allocating_them():
    data = flac_lying_header()  # a real 1 s FLAC; the header says ~50 days
    assert len(data) < 64_000
    assert _peak_mb(lambda: _refused(data, "at most 30 s")) < 20


@pytest.mark.parametrize("live", [False, True], ids=["container duration", "no duration"])
def test_ten_minutes_of_webm_are_refused_after_at_most_30_s_of_decoding(live):
    pytest.importorskip("av")
    data = webm_silence(600, live=live)
    # decoding it all would hold 10 min x 48 kHz of float32 at least twice (> 200 MB)
    assert _peak_mb(lambda: _refused(data, "at most 30 s")) < 40


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_long_files_of_every_codec_are_refused_by_their_header(fmt):
    data = clip(120, fmt, sr=8000)
    assert _peak_mb(lambda: _refused(data, "120.0 s long")) < 10


@pytest.mark.parametrize("sr", [999_983, 1_000_000, 1, 100])
def test_absurd_sample_rates_are_refused(sr):
    _refused(wav(0.2 if sr > 1000 else 40.0, amp=0.2, sr=sr), "sample rate")


def test_resampling_a_prime_rate_uses_a_bounded_filter(monkeypatch):
    import scipy.signal

    calls = []
    real = scipy.signal.resample_poly

    def spy(x, up, down, **kw):
        calls.append((up, down))
        return real(x, up, down, **kw)

    monkeypatch.setattr(scipy.signal, "resample_poly", spy)
    prime = 47_981  # Hz; gcd with 16 kHz is 1: the exact ratio is 16000/47981
    audio, sr = decode_audio(wav(1.0, amp=0.2, sr=prime))
    assert sr == SAMPLE_RATE and abs(audio.size - SAMPLE_RATE) <= 2
    (up, down), = calls
    assert max(up, down) <= 10_000 and abs(up / down * prime / SAMPLE_RATE - 1) < 1e-4
    # the common rates stay exact
    calls.clear()
    decode_audio(wav(1.0, amp=0.2, sr=44_100))
    assert calls == [(160, 441)]


@pytest.mark.parametrize("fill, match", [(1e30, "within"), (float("nan"), "NaN"),
                                         (float("inf"), "NaN or infinite")])
def test_samples_that_are_not_audio_are_refused(fill, match):
    _refused(wav(1.0, fill=fill, subtype="FLOAT"), match)
    with pytest.raises(AudioError, match=match):
        prepare_audio(np.full(16_000, fill, np.float32), SAMPLE_RATE, SAMPLE_RATE)


def test_a_float_file_a_little_over_full_scale_is_still_audio():
    audio, _ = decode_audio(wav(1.0, amp=1.5, subtype="FLOAT"))
    assert 1.0 < np.abs(audio).max() < 2.0


@pytest.mark.parametrize("data", [b"RIFF\x00\x00\x00\x00WAVEjunk" * 4,
                                  b"\x1a\x45\xdf\xa3" + b"x" * 200, b"OggS" + bytes(300),
                                  b"not audio at all"])
def test_decoding_errors_name_no_python_objects_or_library_classes(data):
    message = _refused(data, ".")
    assert not re.search(r"0x[0-9a-f]{6,}|<_io|[A-Z][a-z]+Error|LibsndfileError", message), message
