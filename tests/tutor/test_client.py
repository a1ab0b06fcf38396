from __future__ import annotations

import socket

import pytest

from cmt.contract import AnalyzeRequest
from cmt.serve.app import create_app, serve_in_thread
from cmt.settings import Settings
from tutor.client import CMTRejected, CMTUnavailable, EmbeddedCMT, FallbackCMT, RemoteCMT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    dead = RemoteCMT(f"http://127.0.0.1:{_free_port()}", timeout_s=0.5, retries=1)
    with pytest.raises(CMTUnavailable):
        dead.analyze(AnalyzeRequest(text="hi"))
    r = FallbackCMT(dead, EmbeddedCMT(keyword_engine)).analyze(AnalyzeRequest(text="I'm scared"))
    assert r.label == "fear" and r.degraded
