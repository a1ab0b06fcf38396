"""The service's smaller trust holes (issue 19's minor items): slow clients, non-UTF-8 form
fields, 405 without Allow, a schema that did not say what is required, leaking reprs."""

from __future__ import annotations

import socket
import time

import jsonschema
import pytest
from fastapi.testclient import TestClient

from cmt.serve.engine import Engine
from cmt.serve import limits as serve_limits
from cmt.serve.app import create_app, serve_in_thread
from cmt.settings import Settings
from tests.fakes import StandInModel


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(), engine_factory=lambda: Engine(StandInModel()))) as c:
        yield c


def test_a_405_says_which_methods_are_allowed(client):
    r = client.get("/v1/analyze")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert set(r.json()) == {"error", "detail"}


def test_the_schema_says_what_is_required_and_the_service_agrees(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    # the body's schema, its "#/components/..." references resolved in the document
    schema = {**body["application/json"]["schema"], "components": spec.get("components", {})}
    for given in ({}, {"text": ""}, {"text": "  "}, {"text": None}, {"image_b64": "%%"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(given, schema)
        assert client.post("/v1/analyze", json=given).status_code == 422
    jsonschema.validate({"text": "hi"}, schema)
    assert client.post("/v1/analyze", json={"text": "hi"}).status_code == 200
    assert body["multipart/form-data"]["schema"]["anyOf"]


@pytest.mark.parametrize("kwargs", [
    {"content": b"text=%FF%FEcaf%E9", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {"files": {"text": (None, b"caf\xe9 \xff")}},  # a plain form field, not a file part
])
def test_a_form_field_that_is_not_utf8_is_refused_not_read_as_mojibake(client, kwargs):
    r = client.post("/v1/analyze", **kwargs)
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"], r.text


def test_utf8_form_fields_still_read(client):
    assert client.post("/v1/analyze", data={"text": "I hate fractions, café"}).json()["label"] == "anger"
    r = client.post("/v1/analyze", files={"text": (None, "wow, déjà vu".encode())})
    assert r.json()["label"] == "surprise"


def test_error_details_name_no_python_objects(client):
    r = client.post("/v1/analyze", files={"image": ("a.jpg", b"\xff\xd8\xff" + b"x" * 50, "image/jpeg")})
    assert r.status_code == 422 and "object at 0x" not in r.text and "BytesIO" not in r.text, r.text


def _wait_closed(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes (or resets) the connection within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_client_that_never_finishes_its_headers_is_cut_off(monkeypatch):
    monkeypatch.setattr(serve_limits, "HEADER_TIMEOUT_S", 0.5)
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: Engine(StandInModel())))
    host, port = url.removeprefix("http://").split(":")
    try:
        slow = [socket.create_connection((host, int(port))) for _ in range(5)]
        for s in slow:
            s.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        idle = socket.create_connection((host, int(port)))  # sends nothing at all
        assert all(_wait_closed(s, 5) for s in [*slow, idle])
        # a client that is quick is served as before, also on a kept-alive connection
        with socket.create_connection((host, int(port)), timeout=5) as ok:
            for _ in range(2):
                ok.sendall(b'POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json'
                           b'\r\nContent-Length: 16\r\n\r\n{"text": "wow!"}')
                time.sleep(0.3)
                assert ok.recv(4096).startswith(b"HTTP/1.1 200")
        for s in [*slow, idle]:
            s.close()
    finally:
        server.should_exit = True


def test_a_body_that_stalls_gets_408(monkeypatch):
    monkeypatch.setattr(serve_limits, "BODY_IDLE_TIMEOUT_S", 0.5)
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: Engine(StandInModel())))
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b'Content-Length: 100\r\n\r\n{"text": "he')
            answer = b""
            while b"stalled" not in answer and (chunk := s.recv(4096)):  # headers, body may part
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer, answer
    finally:
        server.should_exit = True
