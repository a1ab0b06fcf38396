"""GET /healthz (alive), /readyz (model loaded), /metrics (Prometheus): no key, no limit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from cmt.serve.deps import MetricsDep
from cmt.serve.errors import error_response

router = APIRouter(tags=["probes"])


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return error_response(503, "not_ready", "model is loading")
    return {"status": "ready", "model_version": engine.version}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request, metrics: MetricsDep):
    batcher = getattr(request.app.state, "batcher", None)
    metrics.queue_depth.set(batcher.depth if batcher else 0)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
