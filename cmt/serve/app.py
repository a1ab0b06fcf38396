"""The CMT inference service: `create_app(settings)` -> FastAPI, and `serve_in_thread`.

POST /v1/analyze, /v1/similarity, GET /healthz, /readyz, /metrics (cmt.serve.routes). The
model is loaded once, in the lifespan (or handed in by the caller, as the app and the tests
do). Every error answers with the contract's ErrorBody, never a stack trace (cmt.serve.errors).
Each client (its API key, or its IP without a valid one) has a rate limit on /v1/
(settings.serve_rate_limit): beyond it, 429 with Retry-After; probes and /metrics have none
(cmt.serve.deps). Bodies are bounded in size and time, request heads in time
(cmt.serve.limits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from cmt.serve.batching import Lanes
from cmt.serve.deps import KeyGate, Keys
from cmt.serve.engine import LANES, Engine, lane
from cmt.serve.errors import add_error_handlers
from cmt.serve.limits import MAX_BODY_BYTES, BodyLimit, H11WithHeadTimeout
from cmt.serve.metrics import Metrics
from cmt.serve.ratelimit import RateLimit
from cmt.serve.routes import analyze, probes
from cmt.settings import Settings

log = logging.getLogger("cmt.serve")


def create_app(settings: Settings, engine_factory: Callable[[], Engine] | None = None) -> FastAPI:
    """The service for `settings`; `engine_factory` makes its engine (default: the model
    `settings.checkpoint` names), called once in the lifespan."""
    factory = engine_factory or (lambda: Engine.load(settings.checkpoint, device=settings.device,
                                                     biometrics=settings.biometrics,
                                                     text_encoder=settings.text_encoder))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = None
        app.state.rate_limit = RateLimit(settings.serve_rate_limit,
                                         settings.serve_rate_limit_storage)
        engine = await run_in_threadpool(factory)
        batcher = Lanes(engine.analyze_batch, lanes=LANES, lane_of=lane,
                        max_batch=settings.serve_max_batch,
                        max_wait_ms=settings.serve_batch_wait_ms,
                        max_queue=settings.serve_max_queue, on_batch=app.state.metrics.observe_batch)
        await batcher.start()
        app.state.engine, app.state.batcher = engine, batcher
        log.info("model %s loaded", engine.version)
        yield
        await batcher.stop()

    app = FastAPI(title="Attune CMT", version="0.1.0", lifespan=lifespan,
                  description="Cross-Modal Transformer emotion recognition service.")
    app.state.settings, app.state.keys, app.state.metrics = settings, Keys.of(settings), Metrics()
    add_error_handlers(app)
    app.include_router(probes.router)
    analyze.include(app)

    app.add_middleware(KeyGate)  # admits by the headers, before the body is read

    @app.middleware("http")
    async def _count(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            request.app.state.metrics.requests.labels(request.url.path,
                                                      str(response.status_code)).inc()
        return response

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app


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
