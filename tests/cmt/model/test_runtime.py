from __future__ import annotations

import io

import soundfile as sf
import torch

from cmt.model.runtime import WARM_RATE, ready_to_serve, set_threads


class Recorder:
    """A model whose decoders note what they were given."""

    def __init__(self):
        self.seen = []
        self.decoders = {"audio": self._audio, "image": self._image}

    def _audio(self, data: bytes):
        audio, rate = sf.read(io.BytesIO(data))
        self.seen.append(("audio", rate, len(audio)))

    def _image(self, data: bytes):
        self.seen.append(("image", data[:2]))


def test_ready_to_serve_sets_the_threads_and_warms_both_decoders(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("ATTUNE_SERVE_THREADS", "1")
    try:
        model = Recorder()
        ready_to_serve(model)
        assert torch.get_num_threads() == 1
        # a browser's 48 kHz recording (the resampler's path) and a JPEG
        assert model.seen == [("audio", WARM_RATE, WARM_RATE // 2), ("image", b"\xff\xd8")]
    finally:
        torch.set_num_threads(before)


def test_zero_threads_keeps_torchs_default():
    assert set_threads(0) == torch.get_num_threads()


def test_a_text_only_model_is_warmed_without_decoders():
    class TextOnly:
        decoders: dict = {}

    ready_to_serve(TextOnly())  # nothing to decode: nothing fails
