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
from cmt.serve.errors import ApiError
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


async def admit(request: Request, settings: SettingsDep,
                key: Annotated[str | None, Security(api_key_header)],
                token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> str:
    """The client of this request ("key:<digest>" with a valid key, else "ip:<address>"),
    counted against its rate limit (429), then checked for a key where keys are set (401).
    Wrong keys count against their address, so guessing keys is rate-limited too."""
    keys: Keys = request.app.state.keys
    kid = keys.id_of(token.credentials if token is not None else key or "")
    client = f"key:{kid}" if kid else f"ip:{request.client.host if request.client else 'unknown'}"
    limit: RateLimit | None = getattr(request.app.state, "rate_limit", None)  # from the lifespan
    wait = await limit.retry_after(client) if limit is not None else None
    if wait is not None:
        raise ApiError(429, "rate_limited",
                       f"over {settings.serve_rate_limit} for this client; retry in {wait} s",
                       {"Retry-After": str(wait)})
    if keys.secrets and kid is None:
        raise ApiError(401, "unauthorized", "missing or wrong API key (X-API-Key header)")
    return client


ClientDep = Annotated[str, Depends(admit)]
