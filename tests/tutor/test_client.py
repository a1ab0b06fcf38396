from __future__ import annotations

import socket

import pytest

from cmt.contract import AnalyzeRequest
from cmt.serve.app import create_app, serve_in_thread
from cmt.settings import Settings
from tutor.settings import Settings as AppSettings
from tutor.client import CMTRejected, CMTUnavailable, EmbeddedCMT, FallbackCMT, RemoteCMT
from tools.trust import free_port


@pytest.fixture
def service(keyword_engine):
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: keyword_engine))
    yield server, url
    server.should_exit = True


def test_remote_client_reads_the_contract_over_loopback(service):
    _, url = service
    r = RemoteCMT(url).analyze(AnalyzeRequest(text="so happy"))
    assert r.label == "joy" and r.model_version == "test-keyword-0" and not r.degraded


def test_remote_client_reports_a_rejected_input_without_retrying(service):
    _, url = service
    with pytest.raises(CMTRejected, match="does not read image"):
        RemoteCMT(url).analyze(AnalyzeRequest(text="hi", image_b64="aGk="))


def test_a_dead_service_is_unavailable_and_the_fallback_answers_degraded(keyword_engine):
    dead = RemoteCMT(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, retries=1)
    with pytest.raises(CMTUnavailable):
        dead.analyze(AnalyzeRequest(text="hi"))
    r = FallbackCMT(dead, EmbeddedCMT(keyword_engine)).analyze(AnalyzeRequest(text="I'm scared"))
    assert r.label == "fear" and r.degraded


def test_circuit_opens_after_failures_fails_fast_then_recovers():
    from tutor.client import CircuitBreaker

    now = [0.0]
    br = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    assert br.allow() and br.state == "closed"
    br.failure()
    br.failure()
    assert br.state == "open" and not br.allow()
    now[0] = 10.5
    assert br.allow()  # half-open: one trial
    assert not br.allow()  # and only one
    br.success()
    assert br.state == "closed" and br.allow()


def test_client_survives_the_service_dying_and_coming_back(keyword_engine):
    import time as _time

    from tutor.client import CircuitBreaker

    port = free_port()
    app = create_app(Settings(), engine_factory=lambda: keyword_engine)
    server, url = serve_in_thread(app, port=port)
    # a fresh service's first answer can take longer than the 0.5 s allowed below on a busy
    # machine: warmed by a client of its own, so the one under test starts from a live service
    RemoteCMT(url, timeout_s=30, retries=0).analyze(AnalyzeRequest(text="warm"))
    remote = RemoteCMT(url, timeout_s=0.5, retries=0, breaker=CircuitBreaker(failures=2, reset_s=0.5))
    client = FallbackCMT(remote, EmbeddedCMT(keyword_engine))
    assert not client.analyze(AnalyzeRequest(text="happy")).degraded
    server.should_exit = True
    for _ in range(100):  # until the port stops answering
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            _time.sleep(0.05)
        except OSError:
            break
    answers = [client.analyze(AnalyzeRequest(text="happy")) for _ in range(4)]
    assert all(a.degraded and a.label == "joy" for a in answers)  # no turn lost
    assert remote.breaker.state in ("open", "half-open")
    t = _time.perf_counter()
    client.analyze(AnalyzeRequest(text="x"))
    assert _time.perf_counter() - t < 0.3  # open circuit: no waiting on the dead service
    server2, _ = serve_in_thread(create_app(Settings(), engine_factory=lambda: keyword_engine), port=port)
    try:
        RemoteCMT(url, timeout_s=30, retries=0).analyze(AnalyzeRequest(text="warm"))
        _time.sleep(0.6)  # past reset_s: the next call is the trial
        assert not client.analyze(AnalyzeRequest(text="happy")).degraded
        assert remote.breaker.state == "closed"
    finally:
        server2.should_exit = True


def test_a_busy_service_does_not_open_the_circuit_and_frames_are_skipped(keyword_engine):
    import httpx

    from tutor.client import CMTBusy

    def busy(request):
        return httpx.Response(503, headers={"Retry-After": "1"},
                              json={"error": "overloaded", "detail": "too busy"})

    remote = RemoteCMT("http://cmt.test", retries=1, transport=httpx.MockTransport(busy))
    client = FallbackCMT(remote, EmbeddedCMT(keyword_engine))
    for _ in range(5):
        with pytest.raises(CMTBusy):
            client.analyze(AnalyzeRequest(image_b64="aGk="))  # a frame: skipped, no fallback
    assert remote.breaker.state == "closed"
    assert client.analyze(AnalyzeRequest(text="so happy")).degraded  # a turn: the fallback answers


# --------------------------------------------------- one turn, one analysis (issue 23)


class SlowCountingEngine:
    """An engine that takes `delay` seconds per batch, one batch at a time (as the real
    engine's lock makes it), and counts every request it analyses."""

    def __init__(self, engine, delay: float):
        import threading

        self.engine, self.delay, self.version = engine, delay, engine.version
        self.analysed = 0
        self._lock = threading.Lock()

    def analyze_batch(self, reqs):
        import time as _time

        with self._lock:
            self.analysed += len(reqs)
            _time.sleep(self.delay)
            return self.engine.analyze_batch(reqs)

    def analyze(self, req):
        (result,) = self.analyze_batch([req])
        if isinstance(result, Exception):
            raise result
        return result

    def settle(self) -> int:
        """The count once every request the engine was given has been read."""
        import time as _time

        _time.sleep(3 * self.delay)
        with self._lock:
            return self.analysed


@pytest.fixture
def local_mode(monkeypatch, tmp_path):
    """make_client's `local` mode around a given engine; the loopback server stopped after."""
    import cmt.serve.app as serve_app
    from tutor.client import make_client

    servers = []

    def serve(app, **kw):
        server, url = serve_in_thread(app, **kw)
        servers.append(server)
        return server, url

    def build(engine, timeout_s):
        monkeypatch.setattr(EmbeddedCMT, "load", classmethod(lambda cls, s: cls(engine)))
        monkeypatch.setattr(serve_app, "serve_in_thread", serve)
        return make_client(AppSettings(cmt_url="local", cmt_timeout_s=timeout_s, home=tmp_path))

    yield build
    for server in servers:
        server.should_exit = True


def test_local_mode_reads_a_timed_out_turn_once_and_says_no_reading(local_mode, keyword_engine):
    slow = SlowCountingEngine(keyword_engine, delay=1.0)
    client = local_mode(slow, timeout_s=0.3)
    with pytest.raises(CMTUnavailable, match="longer than"):
        client.analyze(AnalyzeRequest(text="so happy"))
    # no retry into the same service, no fallback onto the engine busy with this very turn
    assert slow.settle() == 1


def test_local_mode_falls_back_to_its_engine_only_when_the_server_is_gone(keyword_engine):
    from tutor.client import CMTUnreachable

    dead = RemoteCMT(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, retries=0)
    client = FallbackCMT(dead, EmbeddedCMT(keyword_engine), on=CMTUnreachable)
    r = client.analyze(AnalyzeRequest(text="so happy"))
    assert r.label == "joy" and r.degraded


def test_a_remote_timeout_is_not_retried_and_an_independent_fallback_answers(keyword_engine):
    import copy

    slow = SlowCountingEngine(keyword_engine, delay=1.0)
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: slow))
    try:
        own = EmbeddedCMT(copy.copy(keyword_engine))  # another engine, as in another process
        client = FallbackCMT(RemoteCMT(url, timeout_s=0.3, retries=2), own)
        r = client.analyze(AnalyzeRequest(text="so happy"))
        assert r.degraded and r.label == "joy"
        assert slow.settle() == 1
    finally:
        server.should_exit = True


def test_a_server_error_is_not_retried():
    import httpx

    calls = []

    def broken(request):
        calls.append(request)
        return httpx.Response(500, json={"error": "internal_error", "detail": "it is logged"})

    remote = RemoteCMT("http://cmt.test", retries=3, transport=httpx.MockTransport(broken))
    with pytest.raises(CMTUnavailable, match="500"):
        remote.analyze(AnalyzeRequest(text="hi"))
    assert len(calls) == 1


def _wav(seconds: float, rate: int = 48000) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()


def test_the_wait_grows_with_the_seconds_of_audio():
    import base64

    import httpx

    from tutor.client import AUDIO_WAIT_FACTOR, audio_seconds

    waits = []

    def answer(request):
        waits.append(request.extensions["timeout"]["read"])
        return httpx.Response(422, json={"error": "unprocessable_input", "detail": "test"})

    remote = RemoteCMT("http://cmt.test", timeout_s=2.0, transport=httpx.MockTransport(answer))
    clip = AnalyzeRequest(audio_b64=base64.b64encode(_wav(6.0)).decode())
    assert audio_seconds(clip) == pytest.approx(6.0)
    for req in (AnalyzeRequest(text="hi"), clip):
        with pytest.raises(CMTRejected):
            remote.analyze(req)
    assert waits == [pytest.approx(2.0), pytest.approx(2.0 + AUDIO_WAIT_FACTOR * 6.0)]


def test_a_typed_turn_whose_reading_times_out_still_gets_its_reply(local_mode, keyword_engine, db):
    from tutor.session import Conversation

    slow = SlowCountingEngine(keyword_engine, delay=1.0)
    conv = Conversation(db=db, cmt=local_mode(slow, timeout_s=0.3), student_handle="ida")
    result = conv.turn("I think the answer is 3/4")
    assert result.reply and result.reading is None
    assert "No emotion reading this turn" in result.notice
    assert slow.settle() == 1


def test_a_client_still_loading_skips_frames_and_typed_turns_and_a_spoken_turn_waits(
        keyword_engine):
    import threading
    from concurrent.futures import Future

    from tutor.client import CMTBusy, PendingCMT

    future: Future = Future()
    client = PendingCMT(future)
    for req in (AnalyzeRequest(image_b64="aGk="), AnalyzeRequest(text="so happy")):
        with pytest.raises(CMTBusy, match="still loading"):  # answered at once, unread
            client.analyze(req)
    spoken = AnalyzeRequest(audio_b64="aGk=", modalities=["text"])
    seen = []

    class Recording:  # the loaded client: records what reaches it
        def analyze(self, req):
            seen.append(req)
            return EmbeddedCMT(keyword_engine).analyze(AnalyzeRequest(text="so happy"))

    threading.Timer(0.2, lambda: future.set_result(Recording())).start()
    assert client.analyze(spoken).label == "joy"  # waited for the model, then read
    assert seen == [spoken]
    assert client.analyze(AnalyzeRequest(text="so happy")).label == "joy"  # loaded: read


def test_a_model_that_failed_to_load_is_unavailable_with_its_reason():
    from concurrent.futures import Future

    from tutor.client import PendingCMT

    future: Future = Future()
    future.set_exception(ValueError("cmt.pt: not a torch file"))
    with pytest.raises(CMTUnavailable, match="did not load: cmt.pt: not a torch file"):
        PendingCMT(future).analyze(AnalyzeRequest(text="hi"))


def test_answers_are_compared_by_the_engine_the_turns_use_else_by_word_overlap(keyword_engine):
    from cmt.serve.engine import Engine
    from tests.fakes import KeywordModel
    from tutor.answers import lexical_similarity
    from tutor.client import answer_similarity

    a, b = "the parts must be the same size", "equal parts"
    engine = Engine(KeywordModel(), similarity=lambda x, y: 0.93)
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: engine))
    try:
        remote = RemoteCMT(url)
        assert remote.similarity(a, b) == 0.93
        assert answer_similarity(FallbackCMT(remote, EmbeddedCMT(keyword_engine)))(a, b) == 0.93
        assert answer_similarity(EmbeddedCMT(engine))(a, b) == 0.93
        # an engine that cannot compare, and a service that is gone: word overlap, no error
        assert answer_similarity(EmbeddedCMT(keyword_engine))(a, b) == lexical_similarity(a, b)
    finally:
        server.should_exit = True
    dead = RemoteCMT(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    assert answer_similarity(dead)(a, b) == lexical_similarity(a, b)
