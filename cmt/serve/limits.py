"""The service's guards below the routes: how much a request may send, and how slowly.

`BodyLimit` (ASGI middleware) counts the body as it arrives: 413 past MAX_BODY_BYTES whatever
its framing, 408 when it stalls. `H11WithHeadTimeout` (uvicorn's `http=`) closes connections
whose request head does not arrive in time (slowloris). `StrictFormRequest` is the request
FastAPI parses forms and JSON from: bounded multipart, form fields that must be UTF-8.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

import h11
from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from uvicorn.protocols.http.h11_impl import H11Protocol

from cmt.contract import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS
from cmt.serve.errors import ApiError, error_response

MAX_BODY_BYTES = MAX_IMAGE_BYTES * 4 // 3 + MAX_AUDIO_BYTES * 4 // 3 + MAX_TEXT_CHARS * 4 + 64_000
HEADER_TIMEOUT_S = 10.0  # s, for a request line and headers to arrive in full
BODY_IDLE_TIMEOUT_S = 15.0  # s, the longest pause inside a request body
FORM_FIELDS = ("text", "image", "audio")
MAX_FORM_FILES = 2  # image and audio; text may come as a file part too
MAX_FORM_FIELDS = 4


class BodyLimit:
    """Counts the request body as it arrives and fails the request with 413 past `limit` bytes,
    whatever its framing: a chunked upload has no Content-Length to refuse it by, and the
    multipart parser would otherwise spool all of it (2 GB) to disk before the route runs. A
    Content-Length past the limit is refused before any of the body is read. A body that
    stalls (nothing for BODY_IDLE_TIMEOUT_S) fails with 408."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = ApiError(413, "too_large", f"request body over {self.limit // 1_000_000} MB")
        length = dict(scope.get("headers", ())).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _answer(too_large, scope, receive, send)
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
                    failed = too_large
                    raise failed
            return message

        async def sending(message):
            nonlocal started
            if failed is not None and not started:
                return  # the app's answer to a body cut off here: this one's goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BaseException:  # raised in a task group, it may come back wrapped: answer it here
            if failed is None or started:
                raise
        if failed is not None and not started:
            await _answer(failed, scope, receive, send)


async def _answer(e: ApiError, scope, receive, send) -> None:
    await error_response(e.status, e.error, e.detail, e.headers)(scope, receive, send)


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


class StrictFormRequest(Request):
    """The request FastAPI reads bodies from (see `StrictRoute`). Its form is multipart through
    _StrictUtf8Parser with small counts (MAX_FORM_FILES, MAX_FORM_FIELDS, a text part of at most
    MAX_TEXT_CHARS characters), or URL-encoded decoded strictly; its JSON must be UTF-8. Each
    failure is a 400 or 422 that says what was wrong."""

    async def form(self, **_limits: Any) -> FormData:  # type: ignore[override]
        if self._form is None:
            self._form = await self._parse_form()
        return self._form

    async def _parse_form(self) -> FormData:
        ctype = self.headers.get("content-type", "")
        if ctype.lower().startswith("application/x-www-form-urlencoded"):
            body = await self.body()
            try:
                return FormData(parse_qsl(body.decode("ascii"), keep_blank_values=True,
                                          max_num_fields=MAX_FORM_FIELDS, encoding="utf-8",
                                          errors="strict"))
            except UnicodeDecodeError:
                raise ApiError(400, "bad_encoding", "text is not valid UTF-8") from None
            except ValueError as e:  # more than MAX_FORM_FIELDS fields
                raise ApiError(400, "bad_form", "at most the fields text, image and audio") from e
        parser = _StrictUtf8Parser(self.headers, self.stream(), max_files=MAX_FORM_FILES,
                                   max_fields=MAX_FORM_FIELDS, max_part_size=MAX_TEXT_CHARS * 4)
        try:
            return await parser.parse()
        except MultiPartException as e:
            raise ApiError(400, "bad_form", e.message) from e

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = json.loads((await self.body()).decode("utf-8"))
            except UnicodeDecodeError:
                raise ApiError(422, "invalid_request", "the body is not valid UTF-8") from None
            except json.JSONDecodeError as e:
                raise ApiError(422, "invalid_request",
                               f"the body is not valid JSON: {e.msg} at character {e.pos}") from e
        return self._json
