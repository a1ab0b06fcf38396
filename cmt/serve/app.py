"""FastAPI app: POST /v1/analyze, GET /healthz, GET /readyz.

The model is loaded once, in the lifespan (or handed in by the caller, as the app and
the tests do). Every error answers with the contract's ErrorBody, never a stack trace.
Each client (its API key, or its IP without a valid one) has a rate limit on /v1/
(settings.serve_rate_limit): beyond it, 429 with Retry-After. Probes and /metrics have none.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import h11
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from uvicorn.protocols.http.h11_impl import H11Protocol

from cmt.contract import (MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS, AnalyzeRequest,
                          AnalyzeResponse, ErrorBody)
from cmt.engine import LANES, Engine, InputError, lane
from cmt.serve.batching import Lanes, Overloaded
from cmt.serve.metrics import Metrics
from cmt.serve.ratelimit import RateLimit
from cmt.settings import Settings

log = logging.getLogger("cmt.serve")
MAX_BODY_BYTES = MAX_IMAGE_BYTES * 4 // 3 + MAX_AUDIO_BYTES * 4 // 3 + MAX_TEXT_CHARS * 4 + 64_000
HEADER_TIMEOUT_S = 10.0  # s, for a request line and headers to arrive in full
BODY_IDLE_TIMEOUT_S = 15.0  # s, the longest pause inside a request body


# The handler parses the body itself (JSON or multipart), so FastAPI cannot infer it: say it
# here, so the OpenAPI document describes both forms (clients and schemathesis read it).
_ANALYZE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": AnalyzeRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
        "image": {"type": "string", "format": "binary", "description": "JPEG or PNG"},
        "audio": {"type": "string", "format": "binary", "description": "WAV, FLAC, OGG or MP3"},
    }, "anyOf": [{"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
                 {"required": ["image"]}, {"required": ["audio"]}]}},
}}}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: dict | None = None):
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


class _BodyLimit:
    """Counts the request body as it arrives and fails the request with 413 past `limit` bytes,
    whatever its framing: a chunked upload has no Content-Length to refuse it by, and the
    multipart parser would otherwise spool all of it (2 GB) to disk before the handler runs.
    A body that stalls (nothing for BODY_IDLE_TIMEOUT_S) fails with 408."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seen, started, body_done = 0, False, False
        failed: ApiError | None = None

        async def limited():
            nonlocal seen, body_done, failed
            if body_done:  # after the body: disconnect notices, no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_IDLE_TIMEOUT_S)
            except asyncio.TimeoutError:  # TimeoutError from Python 3.11 on
                failed = ApiError(408, "request_timeout", "the request body stalled: nothing "
                                  f"arrived for {BODY_IDLE_TIMEOUT_S:.0f} s")
                raise failed from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.limit:
                    failed = ApiError(413, "too_large",
                                      f"request body over {self.limit // 1_000_000} MB")
                    raise failed
            return message

        async def sending(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BaseException:  # raised in a task group, it may come back wrapped: answer it here
            if failed is None or started:
                raise
            response = _error(failed.status, failed.error, failed.detail)
            await response(scope, receive, send)


class H11WithHeadTimeout(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request line and headers have not
    all arrived HEADER_TIMEOUT_S after it opened (or after its previous request): uvicorn has
    no such limit, so slow clients (slowloris) could hold connections open for ever. Pass it
    to uvicorn as `http=`."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        waiting = self.conn.their_state is h11.IDLE  # the next request's head is incomplete
        if waiting and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_too_slow)
        elif not waiting and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE:
            self.transport.close()


def _error(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=error, detail=detail).model_dump(), status_code=status,
                        headers=headers)


def create_app(settings: Settings | None = None,
               engine_factory: Callable[[], Engine] | None = None) -> FastAPI:
    settings = settings or Settings()
    keys = [k.get_secret_value().encode() for k in settings.api_keys]
    # Clients are counted under a digest of their key, so no key is kept in the limit's storage.
    key_ids = [hashlib.sha256(k).hexdigest()[:16] for k in keys]
    factory = engine_factory or (lambda: Engine.load(settings.checkpoint, device=settings.device,
                                                     biometrics=settings.biometrics))

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = None
        app.state.rate_limit = RateLimit(settings.serve_rate_limit,
                                         settings.serve_rate_limit_storage)
        engine = await run_in_threadpool(factory)
        batcher = Lanes(engine.analyze_batch, lanes=LANES, lane_of=lane,
                        max_batch=settings.serve_max_batch,
                        max_wait_ms=settings.serve_batch_wait_ms,
                        max_queue=settings.serve_max_queue, on_batch=metrics.observe_batch)
        await batcher.start()
        app.state.engine, app.state.batcher = engine, batcher
        log.info("model %s loaded", engine.version)
        yield
        await batcher.stop()

    app = FastAPI(title="Attune CMT", version="0.1.0", lifespan=lifespan,
                  description="Cross-Modal Transformer emotion recognition service.")

    @app.exception_handler(ApiError)
    async def _api_error(_req, exc: ApiError):
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req, exc: RequestValidationError):
        return _error(422, "invalid_request", _first_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req, exc: StarletteHTTPException):
        return _error(exc.status_code, "http_error", str(exc.detail), exc.headers)  # 405: Allow

    @app.exception_handler(Exception)
    async def _unexpected(_req, exc: Exception):
        log.exception("unexpected error")
        return _error(500, "internal_error", "the service failed on this request; it is logged")

    def _client(request: Request) -> str:
        """"key:<digest>" for a request with a valid API key, else "ip:<address>"."""
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:]
        for k, kid in zip(keys, key_ids):
            if hmac.compare_digest(given.encode(), k):
                return f"key:{kid}"
        return f"ip:{request.client.host if request.client else 'unknown'}"

    async def _admit(request: Request) -> None:
        """Count the request against its client's rate limit (429), then check the key (401).
        Wrong keys count against their IP, so guessing keys is rate-limited too."""
        client = _client(request)
        limit = getattr(request.app.state, "rate_limit", None)  # made in the lifespan
        wait = await limit.retry_after(client) if limit is not None else None
        if wait is not None:
            raise ApiError(429, "rate_limited",
                           f"over {settings.serve_rate_limit} for this client; retry in {wait} s",
                           {"Retry-After": str(wait)})
        if keys and not client.startswith("key:"):
            raise ApiError(401, "unauthorized", "missing or wrong API key (X-API-Key header)")

    @app.middleware("http")
    async def _count(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            metrics.requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request):
        batcher = getattr(request.app.state, "batcher", None)
        metrics.queue_depth.set(batcher.depth if batcher else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request):
        engine = getattr(request.app.state, "engine", None)
        if engine is None:
            return _error(503, "not_ready", "model is loading")
        return {"status": "ready", "model_version": engine.version}

    @app.post("/v1/analyze", response_model=AnalyzeResponse,
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody},
                         413: {"model": ErrorBody}, 415: {"model": ErrorBody},
                         422: {"model": ErrorBody}, 429: {"model": ErrorBody},
                         503: {"model": ErrorBody}},
              openapi_extra=_ANALYZE_BODY)
    async def analyze(request: Request) -> AnalyzeResponse:
        """Analyse any of text, a face image and an audio clip: JSON (base64 media) or multipart."""
        await _admit(request)
        engine = getattr(request.app.state, "engine", None)
        if engine is None:
            raise ApiError(503, "not_ready", "model is loading", {"Retry-After": "5"})
        req = await _parse(request)
        try:
            result = await request.app.state.batcher.submit(req)
        except InputError as e:
            raise ApiError(422, "unprocessable_input", str(e)) from e
        except Overloaded as e:
            raise ApiError(503, "overloaded", f"too busy ({e}); retry shortly",
                           {"Retry-After": "1"}) from e
        metrics.observe_response(result)
        return result

    return app


async def _parse(request: Request) -> AnalyzeRequest:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES // 1_000_000} MB")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await request.body()  # _BodyLimit answers 413 past MAX_BODY_BYTES, however framed
        try:
            return AnalyzeRequest.model_validate_json(body)
        except ValidationError as e:
            raise ApiError(422, "invalid_request", _first_errors(e.errors())) from e
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _parse_multipart(request)
    raise ApiError(415, "unsupported_media_type",
                   "send application/json or multipart/form-data with fields text, image, audio")


class _StrictUtf8Parser(MultiPartParser):
    """Starlette's multipart parser, but a text field that is not UTF-8 is refused (Starlette
    reads it as Latin-1: mojibake) as a text file part is."""

    def on_part_end(self) -> None:
        if self._current_part.file is None:
            try:
                bytes(self._current_part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_encoding", "text is not valid UTF-8") from None
        super().on_part_end()


async def _form(request: Request) -> FormData:
    """The request's form: multipart through _StrictUtf8Parser, URL-encoded decoded strictly."""
    ctype = request.headers.get("content-type", "")
    if ctype.lower().startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        try:
            return FormData(parse_qsl(body.decode("ascii"), keep_blank_values=True,
                                      max_num_fields=4, encoding="utf-8", errors="strict"))
        except UnicodeDecodeError:
            raise ApiError(400, "bad_encoding", "text is not valid UTF-8") from None
        except ValueError as e:  # more than 4 fields
            raise ApiError(400, "bad_form", "at most the fields text, image and audio") from e
    parser = _StrictUtf8Parser(request.headers, request.stream(), max_files=2, max_fields=4,
                               max_part_size=MAX_TEXT_CHARS * 4)
    try:
        return await parser.parse()
    except MultiPartException as e:
        raise ApiError(400, "bad_form", e.message) from e


async def _parse_multipart(request: Request) -> AnalyzeRequest:
    limits = {"image": MAX_IMAGE_BYTES, "audio": MAX_AUDIO_BYTES}
    form = await _form(request)
    try:
        fields: dict[str, str] = {}
        text = form.get("text")
        if text is not None:
            fields["text"] = text if isinstance(text, str) else _utf8(await text.read())
        for name, limit in limits.items():
            part = form.get(name)
            if part is None or isinstance(part, str):
                continue
            data = await part.read(limit + 1)
            if len(data) > limit:
                raise ApiError(413, "too_large", f"{name} over {limit // 1_000_000} MB")
            if data:
                fields[f"{name}_b64"] = base64.b64encode(data).decode()
    finally:
        await form.close()
    try:
        return AnalyzeRequest.model_validate(fields)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", _first_errors(e.errors())) from e


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "bad_encoding", "text is not valid UTF-8") from e


def _first_errors(errors: list[dict], n: int = 3) -> str:
    parts = []
    for err in errors[:n]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0):
    """Run `app` with uvicorn in a daemon thread; returns (server, base_url) once it listens."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on", http=H11WithHeadTimeout))
    thread = threading.Thread(target=server.run, name="cmt-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the CMT service did not start")
        time.sleep(0.02)
    sock_host, sock_port = server.servers[0].sockets[0].getsockname()[:2]
    return server, f"http://{sock_host}:{sock_port}"
