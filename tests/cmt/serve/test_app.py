from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from cmt.contract import EMOTIONS, MAX_TEXT_CHARS
from cmt.serve import create_app
from cmt.settings import Settings

KEY, KEY_A, KEY_B = "s3cret-0123456789abcdef", "key-a-0123456789abcdef", "key-b-0123456789abcdef"


@pytest.fixture
def client(keyword_engine):
    app = create_app(Settings(), engine_factory=lambda: keyword_engine)
    with TestClient(app) as c:
        yield c


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model_version"] == "test-keyword-0"


def test_analyze_json_and_multipart_answer_the_contract(client):
    r = client.post("/v1/analyze", json={"text": "I am so happy"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "joy" and set(body["probs"]) == set(EMOTIONS)
    assert body["modalities"]["text"]["label"] == "joy" and body["latency_ms"] >= 0
    r = client.post("/v1/analyze", data={"text": "I hate this"})
    assert r.status_code == 200 and r.json()["label"] == "anger"


@pytest.mark.parametrize("kwargs, status, words", [
    ({"json": {"text": ""}}, 422, "nothing to analyze"),
    ({"json": {"text": "x" * (MAX_TEXT_CHARS + 1)}}, 422, "at most"),
    ({"json": {"text": "hi", "extra": 1}}, 422, "extra"),
    ({"content": b'{"text": "\xff\xfe bad"}', "headers": {"Content-Type": "application/json"}}, 422, ""),
    ({"content": b"text=hi", "headers": {"Content-Type": "text/plain"}}, 415, "multipart"),
    ({"files": {"text": ("t.txt", b"\xff\xfe", "text/plain")}}, 400, "UTF-8"),
    ({"files": {"image": ("a.jpg", b"\xff\xd8 not really", "image/jpeg")}}, 422, "does not read image"),
])
def test_bad_requests_get_a_clear_4xx_and_the_service_keeps_serving(client, kwargs, status, words):
    r = client.post("/v1/analyze", **kwargs)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "detail"} and words in r.json()["detail"]
    assert client.post("/v1/analyze", json={"text": "wow"}).json()["label"] == "surprise"


def test_an_oversized_body_is_refused_before_it_is_read(client):
    r = client.post("/v1/analyze", content=b"{}", headers={"Content-Type": "application/json",
                                                           "Content-Length": str(2 * 1024**3)})
    assert r.status_code == 413 and "too_large" == r.json()["error"]


def test_api_key_is_enforced_when_configured(keyword_engine):
    app = create_app(Settings(api_keys=[KEY]), engine_factory=lambda: keyword_engine)
    with TestClient(app) as c:
        assert c.post("/v1/analyze", json={"text": "hi"}).status_code == 401
        assert c.post("/v1/analyze", json={"text": "hi"}, headers={"X-API-Key": "nope" + KEY}).status_code == 401
        ok = c.post("/v1/analyze", json={"text": "hi"}, headers={"X-API-Key": KEY})
        assert ok.status_code == 200


def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(keyword_engine):
    """FastAPI reads a body before a route's dependencies run; the key is checked first."""
    import asyncio

    app = create_app(Settings(api_keys=[KEY]), engine_factory=lambda: keyword_engine)
    reads, sent = [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/analyze", "raw_path": b"/v1/analyze",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80),
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"30000000"),
                         (b"x-api-key", b"nope" + KEY.encode())]}
    with TestClient(app):  # the lifespan: the rate limit and the engine
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and reads == []


@pytest.mark.parametrize("keys", ['[""]', '["short"]', '["a-good-long-key-0123456789", ""]',
                                  '[" padded-key-0123456789 "]'])
def test_empty_short_or_padded_api_keys_are_refused_at_start(monkeypatch, keys):
    from pydantic import ValidationError

    monkeypatch.setenv("ATTUNE_API_KEYS", keys)
    with pytest.raises(ValidationError, match="at least 16 characters|space"):
        Settings(_env_file=None)


def test_a_bug_on_one_input_fails_that_request_alone(keyword_engine):
    from cmt.contract import AnalyzeRequest

    model = keyword_engine.model
    original = model.predict

    def flaky(text=None, **kw):
        if text == "boom":
            raise RuntimeError("a bug")
        return original(text=text, **kw)

    model.predict = flaky
    results = keyword_engine.analyze_batch([AnalyzeRequest(text="boom"), AnalyzeRequest(text="so happy")])
    assert isinstance(results[0], RuntimeError) and results[1].label == "joy"
    app = create_app(Settings(), engine_factory=lambda: keyword_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/analyze", json={"text": "boom"})
        assert r.status_code == 500 and r.json()["error"] == "internal_error"
        assert c.post("/v1/analyze", json={"text": "wow"}).status_code == 200


def test_over_the_rate_limit_a_client_gets_429_others_do_not_and_it_resets(keyword_engine):
    settings = Settings(api_keys=[KEY_A, KEY_B], serve_rate_limit="2/second")
    a, b = {"X-API-Key": KEY_A}, {"Authorization": "Bearer " + KEY_B}
    with TestClient(create_app(settings, engine_factory=lambda: keyword_engine)) as c:
        assert [c.post("/v1/analyze", json={"text": "hi"}, headers=a).status_code
                for _ in range(2)] == [200, 200]
        r = c.post("/v1/analyze", json={"text": "hi"}, headers=a)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert set(r.json()) == {"error", "detail"} and "2/second" in r.json()["detail"]
        assert r.headers["Retry-After"] == "1"
        # another key is its own client; probes and metrics are never limited
        assert c.post("/v1/analyze", json={"text": "hi"}, headers=b).status_code == 200
        assert [c.get(p).status_code for p in ("/healthz", "/readyz", "/metrics")] == [200] * 3
        assert 'status="429"' in c.get("/metrics").text
        time.sleep(float(r.headers["Retry-After"]) + 0.05)
        assert c.post("/v1/analyze", json={"text": "hi"}, headers=a).status_code == 200


def test_wrong_keys_count_against_the_clients_address(keyword_engine):
    settings = Settings(api_keys=[KEY_A], serve_rate_limit="3/minute")
    with TestClient(create_app(settings, engine_factory=lambda: keyword_engine)) as c:
        codes = [c.post("/v1/analyze", json={"text": "hi"}, headers={"X-API-Key": f"guess-{i}"})
                 .status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert c.post("/v1/analyze", json={"text": "hi"},
                      headers={"X-API-Key": KEY_A}).status_code == 200


def test_an_empty_rate_limit_is_no_limit(keyword_engine):
    with TestClient(create_app(Settings(serve_rate_limit=""),
                               engine_factory=lambda: keyword_engine)) as c:
        assert {c.post("/v1/analyze", json={"text": "hi"}).status_code for _ in range(30)} == {200}


def test_a_rate_limit_that_does_not_parse_is_refused_at_start():
    with pytest.raises(ValueError, match="rate limit"):
        Settings(serve_rate_limit="lots")
    with pytest.raises(ValueError, match="redis://"):
        Settings(serve_rate_limit_storage="postgres://secret@db")


@pytest.mark.redis
def test_replicas_sharing_redis_share_one_limit(keyword_engine, redis_url):
    import uuid

    key = f"key-{uuid.uuid4().hex}"  # a fresh client, whatever earlier runs left in Redis
    settings = Settings(api_keys=[key], serve_rate_limit="3/minute",
                        serve_rate_limit_storage=redis_url)
    one = create_app(settings, engine_factory=lambda: keyword_engine)
    two = create_app(settings, engine_factory=lambda: keyword_engine)
    with TestClient(one) as c1, TestClient(two) as c2:
        codes = [c.post("/v1/analyze", json={"text": "hi"}, headers={"X-API-Key": key}).status_code
                 for c in (c1, c2, c1, c2)]
        assert codes == [200, 200, 200, 429]


def test_an_unreachable_redis_lets_requests_through(keyword_engine, caplog):
    settings = Settings(serve_rate_limit="1/minute",
                        serve_rate_limit_storage="redis://:hunter2@127.0.0.1:9/0")
    with TestClient(create_app(settings, engine_factory=lambda: keyword_engine)) as c:
        codes = [c.post("/v1/analyze", json={"text": "hi"}).status_code for _ in range(2)]
    assert codes == [200, 200]
    assert "rate limit not counted" in caplog.text and "hunter2" not in caplog.text


def test_the_openapi_document_declares_the_key_schemes_and_both_body_formats(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["APIKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": schemes["APIKey"]["description"]}
    assert schemes["Bearer"]["scheme"] == "bearer"
    op = spec["paths"]["/v1/analyze"]["post"]
    assert {"APIKey": []} in op["security"] and {"Bearer": []} in op["security"]
    assert set(op["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert list(spec["paths"]["/v1/analyze"]) == ["post"]  # one operation for both formats


def test_a_bearer_token_is_the_same_key_as_the_header(keyword_engine):
    with TestClient(create_app(Settings(api_keys=[KEY]), engine_factory=lambda: keyword_engine)) as c:
        assert c.post("/v1/analyze", data={"text": "hi"}).status_code == 401
        assert c.post("/v1/analyze", data={"text": "wow"},
                      headers={"Authorization": "Bearer " + KEY}).json()["label"] == "surprise"
        r = c.post("/v1/analyze", json={"text": "hi"}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_a_json_body_that_is_not_json_says_where(client):
    r = client.post("/v1/analyze", content=b'{"text": "hi"', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert "not valid JSON" in r.json()["detail"] and "character 13" in r.json()["detail"]


def test_similarity_comes_from_the_engine_behind_the_key(keyword_engine):
    from cmt.serve.engine import Engine
    from tests.fakes import KeywordModel

    overlap = Engine(KeywordModel(), similarity=lambda a, b: len(set(a.split()) & set(b.split())) / 4)
    with TestClient(create_app(Settings(api_keys=[KEY]), engine_factory=lambda: overlap)) as c:
        body = {"a": "equal parts of a whole", "b": "the parts are equal"}
        assert c.post("/v1/similarity", json=body).status_code == 401
        r = c.post("/v1/similarity", json=body, headers={"X-API-Key": KEY})
        assert r.json() == {"similarity": 0.5, "model_version": "test-keyword-0"}
        r = c.post("/v1/similarity", json={"a": "x" * (MAX_TEXT_CHARS + 1), "b": "y"},
                   headers={"X-API-Key": KEY})
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    with TestClient(create_app(Settings(), engine_factory=lambda: keyword_engine)) as c:
        r = c.post("/v1/similarity", json={"a": "one", "b": "two"})  # no text encoder: says so
        assert r.status_code == 422 and "does not compare texts" in r.json()["detail"]
