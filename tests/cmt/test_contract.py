from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from cmt.contract import EMOTIONS, MAX_TEXT_CHARS, AnalyzeRequest, AnalyzeResponse


def test_request_needs_something_to_analyze():
    with pytest.raises(ValidationError, match="nothing to analyze"):
        AnalyzeRequest(text="   ")
    assert AnalyzeRequest(image_b64=base64.b64encode(b"x").decode()).image_bytes() == b"x"


def test_request_limits_text_and_rejects_nul_and_bad_base64():
    with pytest.raises(ValidationError, match="at most"):
        AnalyzeRequest(text="a" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValidationError, match="NUL"):
        AnalyzeRequest(text="a\x00b")
    with pytest.raises(ValidationError, match="base64"):
        AnalyzeRequest(audio_b64="not base64!!")


def test_response_probabilities_cover_the_seven_emotions_and_sum_to_one():
    probs = {e: 1 / 7 for e in EMOTIONS}
    r = AnalyzeResponse.from_probs(probs, model_version="v", latency_ms=1)
    assert r.label in EMOTIONS and list(r.probs) == list(EMOTIONS)
    with pytest.raises(ValidationError, match="sum to 1"):
        AnalyzeResponse.from_probs({e: 0.5 for e in EMOTIONS}, model_version="v", latency_ms=1)
    with pytest.raises(ValidationError, match="missing"):
        AnalyzeResponse.from_probs({"joy": 1.0}, model_version="v", latency_ms=1)
