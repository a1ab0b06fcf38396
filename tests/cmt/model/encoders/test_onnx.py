"""ONNX Runtime against torch on real fixtures: the same labels, probabilities within 1e-4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cmt.model.encoders.onnx import prepared, wanted

FACES = Path(__file__).resolve().parents[3] / "fixtures" / "faces"
SENTENCES = ["I keep getting these fractions wrong and it is so annoying.",
             "Yes!! I finally got it right, this is great!",
             "I'm scared I'll fail the test tomorrow.", "ok", "What is the next question?"]
PROB_TOL = 1e-4  # probabilities, absolute (measured: under 1e-6)
STATE_TOL = 1e-3  # encoder states, absolute (measured: under 4e-5)

pytestmark = pytest.mark.skipif(not wanted("auto", "cpu"), reason="onnx/onnxruntime not installed")


@pytest.fixture(scope="module")
def crops():
    from cmt.model.encoders.face import FaceEncoder, decode_image

    finder = FaceEncoder("attune-face-emotion", runtime="torch")
    out = []
    for path in sorted(FACES.glob("*.jpg")):
        rgb = decode_image(path.read_bytes())
        out.append(finder.crop(rgb)[0] if finder.crop(rgb)[0] is not None else rgb)
    return out


def test_the_face_encoder_on_onnx_reads_real_faces_as_torch_does(crops):
    from cmt.model.encoders.face import FaceEncoder

    ref = FaceEncoder("attune-face-emotion", runtime="torch")
    ort = FaceEncoder("attune-face-emotion", runtime="onnx")
    for batch in (crops[:1], crops, crops[1:]):  # the batch size is not fixed by the export
        a, b = ref.encode(batch), ort.encode(batch)
        assert ort._onnx, "ONNX Runtime did not serve"
        assert (a.probs.argmax(1) == b.probs.argmax(1)).all()
        assert np.abs(a.probs - b.probs).max() < PROB_TOL
        assert (a.tokens - b.tokens).abs().max() < STATE_TOL
        assert a.tokens.shape == b.tokens.shape and b.tokens.dtype == torch.float32


def test_the_text_reading_on_onnx_is_the_torch_reading():
    from cmt import load_model
    from cmt.model.encoders.text import TextEncoder

    model = load_model()
    name = model.encoders.names["text"]
    readings = {}
    for runtime in ("torch", "onnx"):
        model.encoders.__dict__["text"] = TextEncoder(name, runtime=runtime)  # the cached encoder
        readings[runtime] = [model.predict(text=s) for s in SENTENCES]
        readings[runtime].append(model.predict_batch([{"text": s} for s in SENTENCES[:3]]))
    assert model.encoders.text._onnx, "ONNX Runtime did not serve"
    for a, b in zip(readings["torch"][:-1], readings["onnx"][:-1]):
        assert a.label == b.label
        assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < PROB_TOL
    for a, b in zip(readings["torch"][-1], readings["onnx"][-1]):  # a padded batch
        assert a.label == b.label
        assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < PROB_TOL


def test_changed_weights_get_a_new_export_never_the_stale_one(tmp_path):
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    kw = dict(input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
              folder=tmp_path)
    run = prepared("tiny", layer, (x,), **kw)
    (y,) = run({"x": x.numpy()})
    assert np.allclose(y, layer(x).detach().numpy(), atol=1e-6)
    with torch.no_grad():
        layer.weight.mul_(-1)  # as if retrained
    run = prepared("tiny", layer, (x,), **kw)
    (y,) = run({"x": x[:1].numpy()})
    assert np.allclose(y, layer(x[:1]).detach().numpy(), atol=1e-6)
    assert len(list(tmp_path.glob("tiny-*.onnx"))) == 2  # one per set of weights
    run = prepared("tiny", layer, (x,), **kw)  # the same weights again: the cached export
    assert len(list(tmp_path.glob("tiny-*.onnx"))) == 2


def test_a_failed_export_leaves_torch_serving(tmp_path):
    class NotExportable(torch.nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing():
                raise RuntimeError("an operator the exporter does not know")
            return x * 2

    x = torch.ones(1, 2)
    assert prepared("broken", NotExportable(), (x,), input_names=["x"], output_names=["y"],
                    dynamic_axes={}, folder=tmp_path) is None
    assert not list(tmp_path.glob("*.onnx"))


def test_runtime_names_are_checked():
    assert not wanted("torch", "cpu")
    with pytest.raises(ValueError, match="runtime must be"):
        wanted("tensorrt", "cpu")



def test_exporting_leaves_the_live_torch_model_as_it_was(tmp_path, monkeypatch):
    """Tracing the text model for ONNX once changed the live torch model: the top layers run on
    its lower layers' states (cmt.training.text_tune) then moved by up to 2.7 from the encoder's output."""
    from cmt.model.encoders.text import TextEncoder
    from cmt.settings import get_settings
    from cmt.training.text_tune import TopLayers, lower_states
    from tests.cmt.model.encoders.test_text import make_tiny_bert

    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))  # no cached export: export now
    get_settings.cache_clear()
    try:
        model = make_tiny_bert(tmp_path / "tiny-bert")
        enc = TextEncoder(str(model), max_length=16)
        texts = ["i am so happy !", "the cat"]
        enc.tokens(["i am so happy !"])  # the export happens here, in this process
        assert enc._onnx  # ONNX Runtime serves the encoder
        top = TopLayers(enc.model.encoder.layer[1:], enc.dim, 0.0).eval()
        with torch.no_grad():
            x, mask = top.hidden(lower_states(enc, texts, 1))
        want, want_mask = TextEncoder(str(model), max_length=16, runtime="torch").tokens(texts)
        assert torch.equal(mask.bool(), want_mask)
        assert torch.allclose(x[mask.bool()], want[want_mask], atol=2e-2)  # float16 in between
    finally:
        get_settings.cache_clear()


def test_tuning_in_place_is_served_from_a_new_export_never_the_stale_one(tmp_path, monkeypatch):
    """Weights changed in place after the first call (tuning through the same object): the
    next call reads the new weights, as torch does, through an export of those weights."""
    from cmt.model.encoders.text import TextEncoder
    from cmt.settings import get_settings
    from tests.cmt.model.encoders.test_text import make_tiny_bert

    monkeypatch.setenv("ATTUNE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        enc = TextEncoder(str(make_tiny_bert(tmp_path / "tiny-bert")), max_length=16,
                          runtime="onnx")
        texts = ["i am so happy !", "the cat"]
        before, _ = enc.tokens(texts)
        assert enc._onnx
        with torch.no_grad():
            enc.model.encoder.layer[-1].output.LayerNorm.bias.add_(0.5)  # as tuning would
        after, mask = enc.tokens(texts)
        enc._use_onnx = False
        want, want_mask = enc.tokens(texts)  # torch on the changed weights
        assert torch.equal(mask, want_mask)
        assert (after - before)[mask].abs().min() > 0.4  # the change shows
        assert (after - want)[mask].abs().max() < STATE_TOL
        assert len(list((tmp_path / "home" / "cache" / "onnx").glob("text-*.onnx"))) == 2
    finally:
        get_settings.cache_clear()


def test_the_test_session_has_a_home_of_its_own():
    """The ONNX exports of a test run go to the session's own ATTUNE_HOME (tests/conftest.py),
    never to the user's ~/.attune."""
    import os

    from cmt.model.encoders.onnx import cache_dir
    from cmt.settings import get_settings

    get_settings.cache_clear()
    home = Path(os.environ["ATTUNE_HOME"]).resolve()
    assert cache_dir().resolve().is_relative_to(home)
    assert not home.is_relative_to(Path.home() / ".attune")
