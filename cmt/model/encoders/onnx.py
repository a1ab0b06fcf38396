"""ONNX Runtime for the frozen CPU encoders (face, text) and for the fusion of a lone modality
(cmt.model.emotion): torch exports, onnxruntime runs.

An export is keyed by a digest of the weights it was made from (and of the graph's
inputs and outputs), kept in Settings().home / "cache" / "onnx", and made again whenever
the weights change: a retrained encoder is never served from a stale export. Torch stays
the reference (training, GPUs, and the fallback when onnx or onnxruntime is missing or an
export fails); `tests/cmt/model/encoders/test_onnx.py` checks that both give the same labels and
probabilities on real fixtures.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("cmt.model.encoders.onnx")

EXPORT_FORMAT = 2  # bump when the export itself changes (opset, graph wrapper, example inputs)
OPSET = 17
RUNTIMES = ("auto", "torch", "onnx")


def weights_digest(module: torch.nn.Module, *extra: str) -> str:
    """16 hex digits over the module's state (names, shapes, values) and `extra` strings."""
    h = hashlib.sha1(f"{EXPORT_FORMAT}|{OPSET}|{torch.__version__}|".encode())
    for s in extra:
        h.update(s.encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def state_version(module: torch.nn.Module) -> tuple:
    """A cheap signature of the module's weights as they stand: each parameter's and buffer's
    identity and in-place version counter (bumped by load_state_dict, an optimiser step, any
    `.copy_`/`.mul_`). When it changes, the weights may have: the digest is taken again.
    Tensors made under torch.inference_mode keep no version counter; for them the identity and
    storage stand alone (weights loaded that way are not tuned in place)."""
    return tuple((id(t), t.data_ptr(), -1 if t.is_inference() else t._version)
                 for t in (*module.parameters(), *module.buffers()))


def cache_dir() -> Path:
    from cmt.settings import get_settings

    return get_settings().home / "cache" / "onnx"


def export(module: torch.nn.Module, args: tuple, path: Path, *, input_names: list[str],
           output_names: list[str], dynamic_axes: dict) -> Path:
    """Export `module` to `path` atomically (a half-written file is never seen)."""
    import warnings

    from cmt.model.checkpoint import atomic_write

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            # a copy is traced: tracing a transformers model changed the live one (its lower
            # layers' states for a partial forward, as cmt.training.text_tune reads them, moved
            # by up to 2.7)
            torch.onnx.export(copy.deepcopy(module), args, str(tmp), input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              opset_version=OPSET, dynamo=False)

    return atomic_write(path, write)


def session(path: Path):
    """An onnxruntime CPU session; threads as torch has them in this process."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def wanted(runtime: str, device: torch.device | str) -> bool:
    """Whether `runtime` asks for ONNX Runtime here ("auto": on a CPU when it is installed)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "torch" or torch.device(device).type != "cpu":
        return False
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxruntime  # noqa: F401
    except ImportError as e:
        if runtime == "onnx":
            raise ImportError("runtime='onnx' needs onnx and onnxruntime "
                              "(pip install 'attune[cmt]')") from e
        return False
    return True


def prepared(name: str, module: torch.nn.Module, args: tuple, *, input_names: list[str],
             output_names: list[str], dynamic_axes: dict, extra: tuple[str, ...] = (),
             folder: Path | None = None
             ) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]] | None:
    """A function feeds -> outputs running `module` on ONNX Runtime, exported now unless an
    export of these very weights is cached; None (torch serves) when the export fails."""
    digest = weights_digest(module, name, *input_names, *output_names, *extra)
    path = (folder or cache_dir()) / f"{name}-{digest}.onnx"
    try:
        if not path.is_file():
            log.info("exporting %s to ONNX (%s)", name, path)
            export(module, args, path, input_names=input_names, output_names=output_names,
                   dynamic_axes=dynamic_axes)
        sess = session(path)
    except Exception as e:  # noqa: BLE001 - any failure here means: torch serves
        log.warning("ONNX Runtime not used for %s (torch serves it): %s", name, e)
        return None
    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return sess.run(output_names, feeds)

    run.path = path  # the export it runs (tools/bench_text_int8.py quantises it)
    return run
