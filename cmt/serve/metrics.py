"""Prometheus metrics of one service instance (its own registry, so tests can make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cmt.contract import AnalyzeResponse

LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 0.8, 1.5, 3, 6)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("cmt_requests", "requests by path and status", ["path", "status"],
                                registry=self.registry)
        self.stage_seconds = Histogram("cmt_stage_seconds", "server-side latency per stage",
                                       ["stage"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.batch_size = Histogram("cmt_batch_size", "requests per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.batch_wait = Histogram("cmt_batch_wait_seconds", "oldest request's wait in queue",
                                    buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.queue_depth = Gauge("cmt_queue_depth", "requests waiting for the model",
                                 registry=self.registry)

    def observe_batch(self, size: int, waited_s: float) -> None:
        self.batch_size.observe(size)
        self.batch_wait.observe(waited_s)

    def observe_response(self, r: AnalyzeResponse) -> None:
        self.stage_seconds.labels("total").observe(r.latency_ms / 1e3)
        for stage, ms in r.stage_ms.items():
            self.stage_seconds.labels(stage).observe(ms / 1e3)

    def render(self) -> bytes:
        return generate_latest(self.registry)
