"""Speech augmentation for training: the rooms, microphones and lines a student's voice comes
through, which acted studio corpora (RAVDESS, EmoDB) do not have.

Each augmented copy of a clip draws, with its own seed: a speed change of 0.9-1.1 (pitch moves
with it, as when a tape runs fast), a pitch shift of up to 2 semitones, room reverberation (a
synthetic exponentially decaying impulse response, RT60 0.15-0.8 s), band-limiting (a telephone
or cheap-microphone band), coloured noise at 5-30 dB SNR, coarse quantisation (a codec's
artefacts), and a gain of -12 to +6 dB. audiomentations (a training-only dependency: the
`train` extra) provides all but the reverberation.

    clip2 = augment_clip(clip, seed=7)      # float32 mono at 16 kHz -> float32 mono
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # Hz
RT60_S = (0.15, 0.8)  # s, reverberation time of the simulated rooms
SPEED = (0.9, 1.1)  # playback rate; pitch moves with it


def _reverb(x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """x convolved with a random room: decaying noise reaching -60 dB at RT60, direct path first."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(*RT60_S)
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # ln(1000) = 6.9: -60 dB at rt60
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # the direct sound against the room's tail
    ir /= np.sqrt((ir ** 2).sum())
    y = fftconvolve(x, ir)[: x.size]
    return (y * (np.abs(x).max() / max(np.abs(y).max(), 1e-9))).astype(np.float32)


def _speed(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import resample_poly

    rate = rng.uniform(*SPEED)
    return resample_poly(x, 100, int(round(100 * rate))).astype(np.float32)


def augment_clip(x: np.ndarray, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One random degradation of a mono float32 clip (deterministic for a seed)."""
    import audiomentations as A

    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    if rng.random() < 0.5:
        x = _speed(x, rng)
    if rng.random() < 0.5:
        x = _reverb(x, sample_rate, rng)
    chain = A.Compose([
        A.PitchShift(min_semitones=-2, max_semitones=2, p=0.3),
        A.OneOf([A.BandPassFilter(min_center_freq=500, max_center_freq=1800,
                                  min_bandwidth_fraction=1.2, max_bandwidth_fraction=1.9),
                 A.LowPassFilter(min_cutoff_freq=2500, max_cutoff_freq=6000)], p=0.5),
        A.AddColorNoise(min_snr_db=5, max_snr_db=30, p=0.6),
        A.BitCrush(min_bit_depth=6, max_bit_depth=10, p=0.2),
        A.Gain(min_gain_db=-12, max_gain_db=6, p=0.8),
    ])
    # audiomentations draws from numpy's global generator: seed it for this clip, then restore
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2 ** 31)))
    import random

    py_state = random.getstate()
    random.seed(int(rng.integers(2 ** 31)))
    try:
        y = chain(samples=x, sample_rate=sample_rate)
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
