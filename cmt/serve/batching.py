"""Dynamic micro-batching: concurrent requests share one model call.

One worker runs batches one after another. While a batch runs, new requests queue up;
when it finishes, the worker takes everything queued (up to `max_batch`) at once. A lone
request therefore goes straight through (no fixed wait), and under load the batches grow
by themselves. `max_wait_ms` optionally lingers a little for company once a second
request is already waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool


class Overloaded(Exception):
    """The queue is full: the caller should answer 503 with Retry-After."""


@dataclass
class _Job:
    item: Any
    future: asyncio.Future
    queued_at: float


class MicroBatcher:
    def __init__(self, run_batch: Callable[[Sequence[Any]], list[Any]], *, max_batch: int = 16,
                 max_wait_ms: float = 2.0, max_queue: int = 256,
                 on_batch: Callable[[int, float], None] | None = None):
        self.run_batch = run_batch  # items -> results (or Exception instances), same order
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1e3, max_queue
        self.on_batch = on_batch  # (batch size, seconds the oldest waited) for metrics
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    async def submit(self, item: Any) -> Any:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(f"{self._queue.qsize()} requests waiting")
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(item, fut, time.perf_counter()))
        result = await fut
        if isinstance(result, BaseException):
            raise result
        return result

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            if self.max_wait_s > 0 and not self._queue.empty():
                await asyncio.sleep(self.max_wait_s)  # others are arriving: give them a moment
            while len(jobs) < self.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            if self.on_batch:
                self.on_batch(len(jobs), time.perf_counter() - jobs[0].queued_at)
            try:
                results = await run_in_threadpool(self.run_batch, [j.item for j in jobs])
            except Exception as e:  # the whole batch failed: every caller hears why
                results = [e] * len(jobs)
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)
