"""What the routes need, as `Annotated` dependencies: the settings, the engine and its
batcher, the metrics, and the client behind a request (API key, rate limit).

The app factory puts them on `app.state`; the lifespan adds the engine and batcher once the
model is loaded. API keys travel in `X-API-Key` (APIKeyHeader) or `Authorization: Bearer`
(HTTPBearer), both declared in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cmt.serve.batching import Lanes
from cmt.serve.engine import Engine
from cmt.serve.errors import ApiError, error_response
from cmt.serve.metrics import Metrics
from cmt.serve.ratelimit import RateLimit
from cmt.settings import Settings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="APIKey",
                              description="one of the service's keys (ATTUNE_API_KEYS)")
bearer = HTTPBearer(auto_error=False, scheme_name="Bearer",
                    description="the same key as a bearer token")


@dataclass(frozen=True)
class Keys:
    """The keys the service accepts; clients are counted under a digest of their key, so no
    key is kept in the rate limit's storage."""

    secrets: tuple[bytes, ...]
    ids: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        secrets = tuple(k.get_secret_value().encode() for k in settings.api_keys)
        return cls(secrets, tuple(hashlib.sha256(k).hexdigest()[:16] for k in secrets))

    def id_of(self, given: str) -> str | None:
        for secret, kid in zip(self.secrets, self.ids):
            if hmac.compare_digest(given.encode(), secret):
                return kid
        return None


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_engine(request: Request) -> Engine:
    """The loaded engine, or 503 while the model loads."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise ApiError(503, "not_ready", "model is loading", {"Retry-After": "5"})
    return engine


def get_batcher(request: Request, _engine: Annotated[Engine, Depends(get_engine)]) -> Lanes:
    return request.app.state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EngineDep = Annotated[Engine, Depends(get_engine)]
BatcherDep = Annotated[Lanes, Depends(get_batcher)]


async def admission(state, given: str, host: str | None) -> str:
    """The client ("key:<digest>" with a valid key, else "ip:<address>"), counted against its
    rate limit (429), then checked for a key where keys are set (401). Wrong keys count against
    their address, so guessing keys is rate-limited too."""
    keys: Keys = state.keys
    kid = keys.id_of(given)
    client = f"key:{kid}" if kid else f"ip:{host or 'unknown'}"
    limit: RateLimit | None = getattr(state, "rate_limit", None)  # from the lifespan
    wait = await limit.retry_after(client) if limit is not None else None
    if wait is not None:
        raise ApiError(429, "rate_limited",
                       f"over {state.settings.serve_rate_limit} for this client; retry in {wait} s",
                       {"Retry-After": str(wait)})
    if keys.secrets and kid is None:
        raise ApiError(401, "unauthorized", "missing or wrong API key (X-API-Key header)")
    return client


def _given_key(headers: dict[bytes, bytes]) -> str:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get(b"x-api-key", b"").decode("latin-1")


class KeyGate:
    """Admits each /v1/ request by its headers alone, before any of its body is read: FastAPI
    parses a body before it runs a route's dependencies, so without this a client with no key
    could still make the service read (and parse) a body of up to MAX_BODY_BYTES. `admit`
    then finds the admitted client in the request's state."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", ()))
        client = scope.get("client")
        try:
            admitted = await admission(scope["app"].state, _given_key(headers),
                                       client[0] if client else None)
        except ApiError as e:
            return await error_response(e.status, e.error, e.detail, e.headers)(
                scope, receive, send)
        scope.setdefault("state", {})["admitted_client"] = admitted
        return await self.app(scope, receive, send)


async def admit(request: Request, settings: SettingsDep,
                key: Annotated[str | None, Security(api_key_header)],
                token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> str:
    """The client of this request, as KeyGate admitted it (the schemes above declare the key
    in the OpenAPI document); without the gate (an app built otherwise), admitted here."""
    admitted = getattr(request.state, "admitted_client", None)
    if admitted is not None:
        return admitted
    return await admission(request.app.state, token.credentials if token is not None else key or "",
                           request.client.host if request.client else None)


ClientDep = Annotated[str, Depends(admit)]
