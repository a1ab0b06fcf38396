"""Hypothesis against the service: whatever the body, a 4xx with an ErrorBody, never a 5xx."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmt.serve import create_app
from cmt.settings import Settings
from tests.fakes import StandInModel
from tools.trust import media_strategy, png_header, wav

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def client():
    from cmt.serve.engine import Engine

    engine = Engine(StandInModel())
    with TestClient(create_app(Settings(), engine_factory=lambda: engine)) as c:
        yield c


def _answers_the_contract(r) -> None:
    assert r.status_code < 500, r.text
    body = r.json()
    if r.status_code == 200:
        assert body["label"] and abs(sum(body["probs"].values()) - 1) < 1e-3
    else:
        assert set(body) == {"error", "detail"} and body["detail"]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
                           max_leaves=10)


@SETTINGS
@given(body=st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "text": st.text(max_size=200), "image_b64": st.text(max_size=40),
    "audio_b64": st.text(max_size=40), "student_id": st.text(max_size=200),
    "modalities": st.lists(st.text(max_size=8), max_size=4)})))
def test_any_json_body_answers_the_contract(client, body):
    _answers_the_contract(client.post("/v1/analyze", content=json.dumps(body),
                                      headers={"Content-Type": "application/json"}))


@SETTINGS
@given(image=st.one_of(st.none(), media_strategy()), audio=st.one_of(st.none(), media_strategy()),
       text=st.one_of(st.none(), st.text(max_size=100)))
def test_any_media_answers_the_contract(client, image, audio, text):
    body = {"text": text}
    if image is not None:
        body["image_b64"] = base64.b64encode(image).decode()
    if audio is not None:
        body["audio_b64"] = base64.b64encode(audio).decode()
    _answers_the_contract(client.post("/v1/analyze", json=body))


@SETTINGS
@given(raw=st.binary(max_size=2000), ctype=st.sampled_from([
    "application/json", "multipart/form-data; boundary=x", "multipart/form-data",
    "application/x-www-form-urlencoded", "text/plain", "image/jpeg", ""]))
def test_any_bytes_in_any_content_type_answer_the_contract(client, raw, ctype):
    _answers_the_contract(client.post("/v1/analyze", content=raw, headers={"Content-Type": ctype}))


@pytest.mark.parametrize("files, status", [
    ({"image": ("a.png", png_header(60_000, 60_000), "image/png")}, 422),
    ({"audio": ("s.wav", wav(2.0), "audio/wav")}, 422),
    ({"audio": ("l.wav", wav(31.0, amp=0.2), "audio/wav")}, 422),
    ({"image": ("a.jpg", b"\xff\xd8\xff" + b"\0" * (8 * 1024 * 1024), "image/jpeg")}, 413),
])
def test_bombs_silence_and_oversize_parts_get_a_clear_4xx(client, files, status):
    r = client.post("/v1/analyze", files=files)
    assert r.status_code == status and set(r.json()) == {"error", "detail"}, r.text


def test_a_chunked_body_past_the_limit_is_cut_off_with_413(client):
    from cmt.serve.limits import MAX_BODY_BYTES

    def body():
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 4):
            yield b"a" * (1 << 20)

    r = client.post("/v1/analyze", content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert client.post("/v1/analyze", json={"text": "happy"}).status_code == 200
