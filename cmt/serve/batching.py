"""Dynamic micro-batching: concurrent requests share one model call.

One worker runs batches one after another. While a batch runs, new requests queue up;
when it finishes, the worker takes everything queued (up to `max_batch`) at once. A lone
request therefore goes straight through (no fixed wait), and under load the batches grow
by themselves. `max_wait_ms` optionally lingers a little for company once a second
request is already waiting.

`Lanes` keeps one such batcher per lane (per modality cost), side by side.
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
            results = await self._run([j.item for j in jobs])
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    async def _run(self, items: list) -> list:
        """run_batch on the items; if it fails as a whole, each item alone, so that one bad
        item fails alone and the worker never stops."""
        try:
            results = await run_in_threadpool(self.run_batch, items)
        except Exception as e:  # noqa: BLE001  found item by item below
            if len(items) == 1:
                return [e]
        else:
            if len(results) == len(items):
                return list(results)
        out = []
        for item in items:
            try:
                (result,) = await run_in_threadpool(self.run_batch, [item])
            except Exception as e:  # noqa: BLE001  this item's caller hears why
                result = e
            out.append(result)
        return out


class Lanes:
    """One MicroBatcher per lane, each with its own worker: requests of one lane are batched
    together and lanes run side by side, so a cheap request never waits behind a batch of
    costly ones (text behind speech). `lane_of(item)` names an item's lane."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], list[Any]], *,
                 lanes: Sequence[str], lane_of: Callable[[Any], str], **batcher_kw):
        self.lane_of = lane_of
        self.lanes = {name: MicroBatcher(run_batch, **batcher_kw) for name in lanes}

    @property
    def depth(self) -> int:
        return sum(b.depth for b in self.lanes.values())

    async def start(self) -> None:
        for b in self.lanes.values():
            await b.start()

    async def stop(self) -> None:
        for b in self.lanes.values():
            await b.stop()

    async def submit(self, item: Any) -> Any:
        return await self.lanes[self.lane_of(item)].submit(item)
