"""Clients of the CMT: over HTTP (the service) or in-process (embedded). Same contract.

`make_client(settings)` picks one from `settings.cmt_url`. Importing this module needs
no torch: the embedded engine is imported only when asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import httpx
from pydantic import ValidationError

from cmt.contract import AnalyzeRequest, AnalyzeResponse, ErrorBody
from cmt.settings import Settings

log = logging.getLogger("tutor.client")


class CMTError(Exception):
    """The CMT could not give a reading; str(e) is fit to show a person."""


class CMTRejected(CMTError):
    """The CMT refused this input (a 4xx): retrying the same input will not help."""


class CMTUnavailable(CMTError):
    """The CMT is down, slow or broken (connection error, timeout, 5xx)."""


class CMTBusy(CMTUnavailable):
    """The service is up but shedding load (429/503 with Retry-After): not a sign it is down."""


class CMTClient(Protocol):
    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse: ...


class EmbeddedCMT:
    """The engine in this process."""

    def __init__(self, engine):
        self.engine = engine

    @classmethod
    def load(cls, settings: Settings) -> EmbeddedCMT:
        from cmt.engine import Engine

        return cls(Engine.load(settings.checkpoint, device=settings.device,
                               biometrics=settings.biometrics))

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        from cmt.engine import InputError

        try:
            return self.engine.analyze(req)
        except InputError as e:
            raise CMTRejected(str(e)) from e


class CircuitBreaker:
    """Closed → (n failures in a row) → open for reset_s → half-open: one trial call → closed/open.

    While open, calls fail at once instead of waiting on a dead service.
    """

    def __init__(self, failures: int = 3, reset_s: float = 10.0, clock=time.monotonic):
        self.threshold, self.reset_s, self.clock = failures, reset_s, clock
        self.failures, self.opened_at = 0, None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        with self._lock:
            state = self.state
            if state == "half-open":
                self.opened_at = self.clock()  # one trial per reset period
            return state != "open"

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = self.clock()


class RemoteCMT:
    """The service over HTTP: timeouts, bounded retries with backoff, a circuit breaker."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 5.0,
                 retries: int = 1, breaker: CircuitBreaker | None = None,
                 transport: httpx.BaseTransport | None = None):
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                 timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
                                 transport=transport)
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        if not self.breaker.allow():
            raise CMTUnavailable("emotion service is down (circuit open); retrying shortly")
        try:
            result = self._post(req)
        except CMTBusy:
            raise  # up but busy: the circuit stays as it is
        except CMTUnavailable:
            self.breaker.failure()
            raise
        self.breaker.success()
        return result

    def _post(self, req: AnalyzeRequest) -> AnalyzeResponse:
        body = req.model_dump_json(exclude_none=True)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.1 * 2 ** (attempt - 1))
            try:
                r = self.http.post("/v1/analyze", content=body,
                                   headers={"Content-Type": "application/json"})
            except httpx.TransportError as e:
                last = e
                continue
            if r.status_code == 200:
                try:
                    return AnalyzeResponse.model_validate_json(r.content)
                except ValidationError as e:
                    raise CMTUnavailable("the emotion service sent an answer we cannot read") from e
            detail = _detail(r)
            if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                self.breaker.success()  # the service is fine; the input was not
                raise CMTRejected(detail)
            busy = r.status_code in (429, 503) and "retry-after" in r.headers
            last = (CMTBusy if busy else CMTUnavailable)(
                f"emotion service answered {r.status_code}: {detail}")
            if busy and _retry_after(r) > 2:
                break  # the service asked for more patience than a chat turn has
        if isinstance(last, CMTBusy):
            raise last
        raise CMTUnavailable(f"emotion service unreachable: {last}") from last

    def close(self) -> None:
        self.http.close()


class LazyEmbeddedCMT:
    """An embedded engine loaded on first use (the fallback of a remote client)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: EmbeddedCMT | None = None
        self._lock = threading.Lock()

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        with self._lock:
            if self._client is None:
                try:
                    self._client = EmbeddedCMT.load(self.settings)
                except ImportError as e:
                    raise CMTUnavailable("no embedded model here (install attune[cmt])") from e
        return self._client.analyze(req)


class FallbackCMT:
    """The remote service first; when it is unavailable, the embedded engine, marked degraded."""

    def __init__(self, primary: CMTClient, fallback: CMTClient):
        self.primary, self.fallback = primary, fallback

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        try:
            return self.primary.analyze(req)
        except CMTUnavailable as e:
            if isinstance(e, CMTBusy) and req.text is None and req.audio_b64 is None:
                raise  # a busy service skips camera frames; turns get the fallback
            log.warning("CMT unavailable, answering from the embedded model: %s", e)
            return self.fallback.analyze(req).model_copy(update={"degraded": True})


def _retry_after(r: httpx.Response) -> float:
    try:
        return float(r.headers.get("retry-after", "0"))
    except ValueError:
        return 0.0


def _detail(r: httpx.Response) -> str:
    try:
        return ErrorBody.model_validate_json(r.content).detail
    except ValidationError:
        return r.text[:200] or r.reason_phrase


def make_client(settings: Settings) -> CMTClient:
    """The client `settings.cmt_url` asks for (see Settings.cmt_url)."""
    from cmt.settings import EMBEDDED, LOCAL

    key = settings.cmt_api_key.get_secret_value() if settings.cmt_api_key else None
    if settings.cmt_url == EMBEDDED:
        return EmbeddedCMT.load(settings)
    if settings.cmt_url == LOCAL:
        from cmt.serve.app import create_app, serve_in_thread

        embedded = EmbeddedCMT.load(settings)
        _server, url = serve_in_thread(create_app(settings, engine_factory=lambda: embedded.engine))
        return FallbackCMT(RemoteCMT(url, api_key=key, timeout_s=settings.cmt_timeout_s), embedded)
    remote = RemoteCMT(settings.cmt_url, api_key=key, timeout_s=settings.cmt_timeout_s)
    return FallbackCMT(remote, LazyEmbeddedCMT(settings))
