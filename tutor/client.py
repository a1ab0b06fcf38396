"""Clients of the CMT: over HTTP (the service) or in-process (embedded). Same contract.

`make_client(settings)` picks one from `settings.cmt_url`. Importing this module needs
no torch: the engine in this process comes from `tutor.embedded`, imported only when asked
for. Besides readings, a client compares free-text answers (`similarity`), with the same
engine the turns use.

One turn is analysed once. The wait for an answer grows with the work (the seconds of audio
sent); a request is sent again only when it provably never reached the engine (no connection,
or a full queue that asked to be retried); and a turn falls back only to an engine that is
independent of what failed. In `local` mode the in-process engine is the one behind the
loopback service, so it stands in only when the service is not listening at all: after a
timeout it is still busy with the same turn, and the turn goes on without a reading.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

import httpx
from pydantic import ValidationError

from cmt.contract import (AnalyzeRequest, AnalyzeResponse, ErrorBody, SimilarityRequest,
                          SimilarityResponse)
from tutor.settings import EMBEDDED, LOCAL, Settings

# AnalyzeRequest and AnalyzeResponse, the wire contract's types the views are handed, are
# imported from here by ui (which reaches cmt only through tutor).

log = logging.getLogger("tutor.client")


class CMTError(Exception):
    """The CMT could not give a reading; str(e) is fit to show a person."""


class CMTRejected(CMTError):
    """The CMT refused this input (a 4xx): retrying the same input will not help."""


class CMTUnavailable(CMTError):
    """The CMT is down, slow or broken (connection error, timeout, 5xx)."""


class CMTBusy(CMTUnavailable):
    """The service is up but shedding load (429/503 with Retry-After): not a sign it is down."""


class CMTUnreachable(CMTUnavailable):
    """No connection to the service: the request never reached its engine."""


AUDIO_WAIT_FACTOR = 2.0  # s of waiting per s of audio, beyond the base timeout
WAV_FALLBACK_BYTES_PER_S = 4000  # a lower bound for compressed audio (32 kbit/s), to be generous


def audio_seconds(req: AnalyzeRequest) -> float:
    """How long the request's recording is (0 without one): from a WAV header, else a generous
    estimate from its size; at most MAX_AUDIO_SECONDS (the engine refuses longer)."""
    import io
    import wave

    from cmt.contract import MAX_AUDIO_SECONDS

    if req.audio_b64 is None:
        return 0.0
    data = req.audio_bytes()
    try:
        with wave.open(io.BytesIO(data)) as w:
            seconds = w.getnframes() / max(1, w.getframerate())
    except (wave.Error, EOFError):
        seconds = len(data) / WAV_FALLBACK_BYTES_PER_S
    return min(seconds, MAX_AUDIO_SECONDS)


def wait_for(req: AnalyzeRequest, base_s: float) -> float:
    """The seconds a client waits for this request: the base, plus AUDIO_WAIT_FACTOR per
    second of audio (a 6 s recording on a busy 2-core machine takes seconds to read)."""
    return base_s + AUDIO_WAIT_FACTOR * audio_seconds(req)


class CMTClient(Protocol):
    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse: ...

    def similarity(self, a: str, b: str) -> float: ...


class EmbeddedCMT:
    """The engine in this process."""

    def __init__(self, engine):
        self.engine = engine

    @classmethod
    def load(cls, settings: Settings) -> EmbeddedCMT:
        from tutor.embedded import load_engine

        return cls(load_engine(settings))

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        from tutor.embedded import InputError

        try:
            return self.engine.analyze(req)
        except InputError as e:
            raise CMTRejected(str(e)) from e

    def similarity(self, a: str, b: str) -> float:
        from tutor.embedded import InputError

        try:
            return self.engine.similarity(a, b)
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
    """The service over HTTP: a timeout that grows with the audio sent (`wait_for`), retries
    (with backoff) only of requests the engine never saw, a circuit breaker."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 5.0,
                 retries: int = 1, breaker: CircuitBreaker | None = None,
                 transport: httpx.BaseTransport | None = None):
        headers = {"X-API-Key": api_key} if api_key else {}
        self.timeout_s = timeout_s
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                 timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
                                 transport=transport)
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        self._open_error: type[CMTUnavailable] = CMTUnavailable  # what opened the circuit

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        if not self.breaker.allow():
            raise self._open_error("emotion service is down (circuit open); retrying shortly")
        try:
            result = self._post(req)
        except CMTBusy:
            raise  # up but busy: the circuit stays as it is
        except CMTUnavailable as e:
            self._open_error = type(e)
            self.breaker.failure()
            raise
        self.breaker.success()
        return result

    def _post(self, req: AnalyzeRequest) -> AnalyzeResponse:
        body = req.model_dump_json(exclude_none=True)
        wait = wait_for(req, self.timeout_s)
        timeout = httpx.Timeout(wait, connect=min(self.timeout_s, 2.0))
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.1 * 2 ** (attempt - 1))
            try:
                r = self.http.post("/v1/analyze", content=body, timeout=timeout,
                                   headers={"Content-Type": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                last = CMTUnreachable(f"emotion service unreachable: {e}")
                continue  # never sent: trying again does no work twice
            except httpx.TimeoutException as e:
                # Sent: the engine may be reading it still. Asking again would queue the same
                # work behind itself.
                raise CMTUnavailable(f"the emotion service took longer than {wait:g} s") from e
            except httpx.TransportError as e:
                raise CMTUnavailable(f"emotion service connection failed: {e}") from e
            if r.status_code == 200:
                try:
                    return AnalyzeResponse.model_validate_json(r.content)
                except ValidationError as e:
                    raise CMTUnavailable("the emotion service sent an answer we cannot read") from e
            detail = _detail(r)
            if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                self.breaker.success()  # the service is fine; the input was not
                raise CMTRejected(detail)
            if not (r.status_code in (429, 503) and "retry-after" in r.headers):
                raise CMTUnavailable(f"emotion service answered {r.status_code}: {detail}")
            # shed before it was read (queue full, rate limit): asking again does no work twice
            last = CMTBusy(f"emotion service answered {r.status_code}: {detail}")
            if _retry_after(r) > 2:
                break  # the service asked for more patience than a chat turn has
        assert last is not None
        raise last

    def similarity(self, a: str, b: str) -> float:
        """POST /v1/similarity: no retry and no breaker of its own (a failed comparison falls
        back to word overlap at once; readings keep the circuit)."""
        body = SimilarityRequest(a=a, b=b).model_dump_json()
        try:
            r = self.http.post("/v1/similarity", content=body,
                               headers={"Content-Type": "application/json"})
        except httpx.HTTPError as e:
            raise CMTUnavailable(f"emotion service unreachable for a comparison: {e}") from e
        if r.status_code != 200:
            error = CMTRejected if 400 <= r.status_code < 500 else CMTUnavailable
            raise error(f"emotion service answered {r.status_code}: {_detail(r)}")
        try:
            return SimilarityResponse.model_validate_json(r.content).similarity
        except ValidationError as e:
            raise CMTUnavailable("the emotion service sent an answer we cannot read") from e

    def close(self) -> None:
        self.http.close()


class LazyEmbeddedCMT:
    """An embedded engine loaded on first use (the fallback of a remote client)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: EmbeddedCMT | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> EmbeddedCMT:
        with self._lock:
            if self._client is None:
                try:
                    self._client = EmbeddedCMT.load(self.settings)
                except ImportError as e:
                    raise CMTUnavailable("no embedded model here (install attune[cmt])") from e
        return self._client

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        return self._loaded().analyze(req)

    def similarity(self, a: str, b: str) -> float:
        return self._loaded().similarity(a, b)


class PendingCMT:
    """A client still being made (the app serves its page while the model loads). Meanwhile a
    camera frame or a typed turn is not read (CMTBusy, as a busy service skips frames): the
    tutor answers a typed turn at once, without an emotion reading, rather than keep the student
    waiting for the load. A spoken turn waits for it: its words come from the model.
    Whoever makes the client sets `future` (by default a new one) to it, or to why it failed."""

    def __init__(self, future: Future | None = None):
        self.future = future if future is not None else Future()

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        if not self.future.done() and req.audio_b64 is None:
            raise CMTBusy("the emotion model is still loading")
        try:
            client = self.future.result()
        except Exception as e:  # noqa: BLE001 - the load's own failure, said once per turn
            raise CMTUnavailable(f"the emotion model did not load: {e}") from e
        return client.analyze(req)

    def similarity(self, a: str, b: str) -> float:
        try:
            client = self.future.result()  # a comparison waits for the model, as a turn does
        except Exception as e:  # noqa: BLE001
            raise CMTUnavailable(f"the emotion model did not load: {e}") from e
        return client.similarity(a, b)


class FallbackCMT:
    """The remote service first; when it fails with one of `on`, the fallback, marked degraded.

    `on` says which failures the fallback is independent of: any unavailability for an engine
    of its own (the default), only CMTUnreachable for the engine behind the service itself
    (`local` mode), which is busy with the very request that timed out."""

    def __init__(self, primary: CMTClient, fallback: CMTClient,
                 on: type[CMTUnavailable] = CMTUnavailable):
        self.primary, self.fallback, self.on = primary, fallback, on

    def analyze(self, req: AnalyzeRequest) -> AnalyzeResponse:
        try:
            return self.primary.analyze(req)
        except CMTUnavailable as e:
            if not isinstance(e, self.on):
                raise
            if isinstance(e, CMTBusy) and req.text is None and req.audio_b64 is None:
                raise  # a busy service skips camera frames; turns get the fallback
            log.warning("CMT unavailable, answering from the fallback model: %s", e)
            return self.fallback.analyze(req).model_copy(update={"degraded": True})

    def similarity(self, a: str, b: str) -> float:
        """The primary's; a failed comparison is not worth loading a fallback model for."""
        return self.primary.similarity(a, b)


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
    key = settings.cmt_api_key.get_secret_value() if settings.cmt_api_key else None
    if settings.cmt_url == EMBEDDED:
        return EmbeddedCMT.load(settings)
    if settings.cmt_url == LOCAL:
        from tutor.embedded import serve_engine

        embedded = EmbeddedCMT.load(settings)
        url = serve_engine(settings, embedded.engine)
        # The same engine answers directly only when the loopback server itself is gone.
        return FallbackCMT(RemoteCMT(url, api_key=key, timeout_s=settings.cmt_timeout_s),
                           embedded, on=CMTUnreachable)
    remote = RemoteCMT(settings.cmt_url, api_key=key, timeout_s=settings.cmt_timeout_s)
    return FallbackCMT(remote, LazyEmbeddedCMT(settings))


def answer_similarity(cmt: CMTClient) -> Callable[[str, str], float]:
    """Free-text answers: the better of word overlap and the engine's comparison (through the
    client the turns use); word overlap alone where the engine cannot compare or fails."""
    from tutor.answers import lexical_similarity

    warned = threading.Event()

    def similarity(a: str, b: str) -> float:
        lexical = lexical_similarity(a, b)
        try:
            return max(lexical, cmt.similarity(a, b))
        except (CMTError, AttributeError) as e:  # AttributeError: a client that cannot compare
            if not warned.is_set():
                warned.set()
                log.warning("free-text answers by word overlap only: %s", e)
            return lexical

    return similarity
