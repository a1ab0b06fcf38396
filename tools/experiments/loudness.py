"""Per-utterance loudness normalisation before Whisper (experiment; ported to cmt if it helps).

RAVDESS's clips sit near -48 dBFS RMS with peaks near 0.05; EmoDB's are peak-normalised
(-20 dBFS RMS, peaks at 1.0): a 28 dB gap that Whisper's log-mel features carry. Each clip
is scaled so that the RMS over its active 25 ms frames (within 40 dB of its loudest frame)
is TARGET_DBFS, the gain limited so that the peak stays below 1."""
import numpy as np

from cmt.model.tokens import Encoders

TARGET_DBFS = -23.0
FRAME = 400  # samples at 16 kHz: 25 ms
GATE_DB = 40.0


def normalise_loudness(x: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = len(x) // FRAME
    if n == 0 or not np.any(x):
        return x
    rms = np.sqrt((x[: n * FRAME].reshape(n, FRAME).astype(np.float64) ** 2).mean(1))
    top = rms.max()
    if top <= 1e-7:
        return x
    active = rms[rms >= top * 10 ** (-GATE_DB / 20)]
    level = np.sqrt((active ** 2).mean())
    gain = 10 ** (target_dbfs / 20) / level
    gain = min(gain, 0.99 / max(float(np.abs(x).max()), 1e-9))
    return (x * gain).astype(np.float32)


class NormEncoders(Encoders):
    def key(self, modality):
        k = super().key(modality)
        return k + f"+loud{TARGET_DBFS:g}" if modality == "speech" else k

    def speech_tokens(self, clips, transcribe=False):
        return super().speech_tokens([normalise_loudness(c) for c in clips], transcribe)
