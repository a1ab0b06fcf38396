from __future__ import annotations

import socket

import pytest

from cmt.contract import AnalyzeRequest
from cmt.serve.app import create_app, serve_in_thread
from cmt.settings import Settings
from tutor.client import CMTRejected, CMTUnavailable, EmbeddedCMT, FallbackCMT, RemoteCMT
from tutor.trust import free_port


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
