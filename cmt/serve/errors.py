"""Every 4xx and 5xx of the service answers with the contract's ErrorBody, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cmt.contract import ErrorBody

log = logging.getLogger("cmt.serve")


class ApiError(HTTPException):
    """An error answered with ErrorBody(error, detail). An HTTPException, so FastAPI lets it
    through where it reads a body (BodyLimit and the strict form parser raise it there)."""

    def __init__(self, status: int, error: str, detail: str, headers: dict | None = None):
        super().__init__(status, detail, headers)
        self.status, self.error = status, error


def error_response(status: int, error: str, detail: str,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=error, detail=detail).model_dump(), status_code=status,
                        headers=headers)


def first_errors(errors: list[dict], n: int = 3) -> str:
    """The first `n` of pydantic's errors, one line: "text: String should have at most ..."."""
    parts = []
    for err in errors[:n]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req, exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req, exc: RequestValidationError):
        return error_response(422, "invalid_request", first_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req, exc: StarletteHTTPException):  # 404, 405 (with Allow)
        return error_response(exc.status_code, "http_error", str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_req, exc: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal_error",
                              "the service failed on this request; it is logged")
