"""One bad item fails alone, and lanes keep cheap requests from waiting behind costly ones.

The hostile inputs are made here (tools.trust's makers): a FLAC whose header claims 2^36-1
samples, float audio of 1e30, a model that answers NaN.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cmt.contract import EMOTIONS, AnalyzeRequest, AnalyzeResponse
from cmt.serve.engine import Engine, InputError
from cmt.serve.app import create_app, serve_in_thread
from cmt.serve.batching import MicroBatcher
from cmt.settings import Settings
from tests.fakes import StandInModel
from tools.trust import flac_lying_header, wav


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _NaNModel(StandInModel):
    """The stand-in, but its reading of "nan" is NaN everywhere."""

    def predict(self, text=None, **kw):
        out = super().predict(text=text, **kw)
        if text == "nan":
            out.probs = {e: float("nan") for e in EMOTIONS}
        return out


def test_a_lying_header_a_huge_sample_and_a_nan_reading_fail_alone():
    engine = Engine(_NaNModel())
    bad = [AnalyzeRequest(audio_b64=_b64(flac_lying_header())),
           AnalyzeRequest(audio_b64=_b64(wav(1.0, fill=1e30, subtype="FLOAT"))),
           AnalyzeRequest(text="nan")]
    good = [AnalyzeRequest(text=f"so happy {i}") for i in range(10)]
    results = engine.analyze_batch(bad + good)
    assert all(isinstance(r, InputError) for r in results[:3]), results[:3]
    assert "30 s" in str(results[0]) and "+-1" in str(results[1]) and "not a number" in str(results[2])
    assert all(isinstance(r, AnalyzeResponse) and r.label == "joy" for r in results[3:])


def test_anything_one_item_raises_fails_that_item_alone():
    class Exploding(StandInModel):
        def __init__(self):
            super().__init__()
            self.decoders = {**self.decoders, "audio": self._audio}

        @staticmethod
        def _audio(data):
            raise MemoryError("Unable to allocate 256. GiB")

        def predict(self, text=None, **kw):
            if text == "bug":
                raise KeyError("a bug")
            return super().predict(text=text, **kw)

    results = Engine(Exploding()).analyze_batch(
        [AnalyzeRequest(audio_b64=_b64(wav(1.0, amp=0.2))), AnalyzeRequest(text="bug"),
         AnalyzeRequest(text="wow")])
    assert isinstance(results[0], InputError) and "too large" in str(results[0])
    assert isinstance(results[1], KeyError)
    assert results[2].label == "surprise"


def test_a_batch_that_fails_as_a_whole_is_answered_item_by_item():
    def run(items):
        if 13 in items:
            raise ValueError("thirteen")
        return [x * 2 for x in items]

    async def main():
        b = MicroBatcher(run, max_batch=8, max_wait_ms=5)
        await b.start()
        out = await asyncio.gather(*(b.submit(i) for i in (1, 13, 3, 4)), return_exceptions=True)
        await b.stop()
        return out

    out = asyncio.run(main())
    assert out[0] == 2 and isinstance(out[1], ValueError) and out[2:] == [6, 8]


def test_bad_audio_beside_ten_text_requests_over_http():
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: Engine(StandInModel())))
    bombs = [flac_lying_header(), wav(1.0, fill=1e30, subtype="FLOAT"), wav(0.2, amp=0.2, sr=999_983)]
    try:
        with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(13) as pool:
            texts = [pool.submit(http.post, "/v1/analyze", json={"text": "so happy"}) for _ in range(10)]
            bad = [pool.submit(http.post, "/v1/analyze", files={"audio": ("a.flac", b, "audio/flac")})
                   for b in bombs]
            assert [f.result().status_code for f in texts] == [200] * 10
            answers = [f.result() for f in bad]
        assert [r.status_code for r in answers] == [422] * 3, [r.text for r in answers]
        assert "sample rate" in answers[2].json()["detail"]
    finally:
        server.should_exit = True


class _GatedSpeech(StandInModel):
    """Speech waits for `release`: a text request must not wait with it."""

    def __init__(self):
        super().__init__()
        self.speech_started, self.release = threading.Event(), threading.Event()

    def predict_batch(self, items):
        if any(it["audio"] is not None for it in items):
            self.speech_started.set()
            assert self.release.wait(30)
        return super().predict_batch(items)


def test_a_text_request_does_not_wait_behind_speech_in_the_engine():
    model = _GatedSpeech()
    engine = Engine(model)
    with ThreadPoolExecutor(2) as pool:
        speech = pool.submit(engine.analyze, AnalyzeRequest(audio_b64=_b64(wav(1.0, amp=0.3))))
        assert model.speech_started.wait(10)
        text = pool.submit(engine.analyze, AnalyzeRequest(text="so happy"))
        try:
            assert text.result(timeout=10).label == "joy"
            assert not speech.done()  # the text was answered while the speech was held
        finally:
            model.release.set()
        assert speech.result(timeout=10).modalities


def test_a_text_request_does_not_wait_behind_speech_in_the_service():
    model = _GatedSpeech()
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: Engine(model)))
    try:
        with httpx.Client(base_url=url, timeout=10) as http, ThreadPoolExecutor(2) as pool:
            speech = pool.submit(http.post, "/v1/analyze",
                                 files={"audio": ("a.wav", wav(1.0, amp=0.3), "audio/wav")})
            assert model.speech_started.wait(10)
            try:
                r = http.post("/v1/analyze", json={"text": "so happy"})
                assert r.status_code == 200 and not speech.done()
            finally:
                model.release.set()
            assert speech.result().status_code == 200
    finally:
        model.release.set()
        server.should_exit = True


@pytest.mark.parametrize("req, lane", [({"text": "hi"}, "text"),
                                       ({"text": "hi", "image_b64": "AAAA"}, "face"),
                                       ({"image_b64": "AAAA", "audio_b64": "AAAA"}, "speech")])
def test_a_request_runs_in_the_lane_of_its_costliest_input(req, lane):
    from cmt.serve.engine import lane as lane_of

    assert lane_of(AnalyzeRequest(**req)) == lane
