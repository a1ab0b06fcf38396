"""POST /v1/analyze: any of text, a face image and an audio clip, as JSON (base64 media) or
as a form (multipart files): one route per body format on the one path (`include(app)`).
POST /v1/similarity: how alike two texts mean (free-text answers), from the same engine.

Both need a client within its rate limit and key (`ClientDep`) and a loaded model
(`BatcherDep`); requests are batched per lane, and one bad input fails alone (422).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.routing import Match

from cmt.contract import (MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS, AnalyzeRequest,
                          AnalyzeResponse, ErrorBody, SimilarityRequest, SimilarityResponse)
from cmt.serve.batching import Lanes, Overloaded
from cmt.serve.deps import BatcherDep, ClientDep, EngineDep, MetricsDep
from cmt.serve.engine import InputError
from cmt.serve.errors import ApiError, first_errors
from cmt.serve.limits import StrictFormRequest
from cmt.serve.metrics import Metrics

PATH = "/v1/analyze"
JSON_TYPE = "application/json"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 408, 413, 415, 422, 429, 503)}
# The form route is left out of the OpenAPI document (one operation per path and method), so
# the JSON route's entry describes the form too: clients and schemathesis read it.
FORM_DOC = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "image": {"type": "string", "format": "binary", "description": "JPEG or PNG"},
        "audio": {"type": "string", "format": "binary", "description": "WAV, FLAC, OGG or MP3"},
    }, "anyOf": [{"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
                 {"required": ["image"]}, {"required": ["audio"]}]}}}}}


def content_type(scope) -> str:
    raw = dict(scope.get("headers", ())).get(b"content-type", b"")
    return raw.decode("latin-1").split(";")[0].strip().lower()


class StrictRoute(APIRoute):
    """A route whose body FastAPI reads through StrictFormRequest (bounded, strict UTF-8)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request):
            return await handler(StrictFormRequest(request.scope, request.receive))

        return strict


class FormRoute(StrictRoute):
    """Matches form bodies only, so the JSON route on the same path answers everything else."""

    def matches(self, scope):
        match, child = super().matches(scope)
        if match is Match.FULL and content_type(scope) not in FORM_TYPES:
            return Match.NONE, {}
        return match, child


def json_only(request: Request) -> None:
    if content_type(request.scope) != JSON_TYPE:
        raise ApiError(415, "unsupported_media_type",
                       "send application/json or multipart/form-data with fields text, image, "
                       "audio")


async def analyze(_client: ClientDep, batcher: BatcherDep, metrics: MetricsDep,
                  _json: Annotated[None, Depends(json_only)],
                  body: AnalyzeRequest) -> AnalyzeResponse:
    """Analyse any of text, a face image and an audio clip: JSON (base64 media) or multipart."""
    return await _analyze(body, batcher, metrics)


async def analyze_form(
        _client: ClientDep, batcher: BatcherDep, metrics: MetricsDep,
        text: Annotated[str | UploadFile | None, Form()] = None,
        image: Annotated[UploadFile | None, File(description="JPEG or PNG")] = None,
        audio: Annotated[UploadFile | None, File(description="WAV, FLAC, OGG or MP3")] = None,
) -> AnalyzeResponse:
    fields: dict[str, str] = {}
    if text is not None:
        fields["text"] = text if isinstance(text, str) else _utf8(await text.read())
    for name, part, limit in (("image", image, MAX_IMAGE_BYTES), ("audio", audio, MAX_AUDIO_BYTES)):
        if part is None:
            continue
        data = await part.read(limit + 1)
        if len(data) > limit:
            raise ApiError(413, "too_large", f"{name} over {limit // 1_000_000} MB")
        if data:
            fields[f"{name}_b64"] = base64.b64encode(data).decode()
    try:
        req = AnalyzeRequest.model_validate(fields)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", first_errors(e.errors())) from e
    return await _analyze(req, batcher, metrics)


def include(app: FastAPI) -> None:
    """Both routes, the form's first, on the app's own router: FormRoute's match on the
    content type needs the router to ask the route (an included APIRouter matches by path and
    method alone)."""
    common = dict(methods=["POST"], response_model=AnalyzeResponse, responses=ERRORS,
                  tags=["analysis"])
    app.router.add_api_route(PATH, analyze_form, **common, include_in_schema=False,
                      route_class_override=FormRoute)
    app.router.add_api_route(PATH, analyze, **common, openapi_extra=FORM_DOC,
                      route_class_override=StrictRoute)
    app.router.add_api_route("/v1/similarity", compare, methods=["POST"],
                             response_model=SimilarityResponse, responses=ERRORS,
                             tags=["analysis"], route_class_override=StrictRoute)


async def _analyze(req: AnalyzeRequest, batcher: Lanes, metrics: Metrics) -> AnalyzeResponse:
    try:
        result = await batcher.submit(req)
    except InputError as e:
        raise ApiError(422, "unprocessable_input", str(e)) from e
    except Overloaded as e:
        raise ApiError(503, "overloaded", f"too busy ({e}); retry shortly",
                       {"Retry-After": "1"}) from e
    metrics.observe_response(result)
    return result


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "bad_encoding", "text is not valid UTF-8") from e


async def compare(_client: ClientDep, engine: EngineDep, body: SimilarityRequest,
                  _json: Annotated[None, Depends(json_only)]) -> SimilarityResponse:
    """How alike two texts mean (a free-text answer and an expected idea)."""
    try:
        value = await run_in_threadpool(engine.similarity, body.a, body.b)
    except InputError as e:
        raise ApiError(422, "unprocessable_input", str(e)) from e
    return SimilarityResponse(similarity=value, model_version=engine.version)
