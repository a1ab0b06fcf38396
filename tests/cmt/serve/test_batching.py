from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from cmt.serve.app import create_app, serve_in_thread
from cmt.serve.batching import MicroBatcher, Overloaded
from cmt.settings import Settings


def _slow_double(items, delay=0.05):
    time.sleep(delay)
    return [x * 2 for x in items]


def test_concurrent_requests_share_batches_and_keep_their_order():
    sizes = []

    async def main():
        b = MicroBatcher(_slow_double, max_batch=8, max_wait_ms=0, on_batch=lambda n, w: sizes.append(n))
        await b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(20)))
        await b.stop()
        return out

    assert asyncio.run(main()) == [i * 2 for i in range(20)]
    assert max(sizes) == 8 and sum(sizes) == 20 and len(sizes) < 20


def test_a_lone_request_is_not_held_back():
    async def main():
        b = MicroBatcher(lambda items: items, max_batch=16, max_wait_ms=50)
        await b.start()
        t = time.perf_counter()
        await b.submit(1)
        elapsed = time.perf_counter() - t
        await b.stop()
        return elapsed

    assert asyncio.run(main()) < 0.04  # well under the 50 ms linger


def test_a_full_queue_is_refused_not_piled_up():
    async def main():
        b = MicroBatcher(lambda items: _slow_double(items, 0.2), max_batch=1, max_queue=2)
        await b.start()
        tasks = [asyncio.create_task(b.submit(i)) for i in range(6)]
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await b.stop()
        return done

    done = asyncio.run(main())
    assert any(isinstance(d, Overloaded) for d in done) and 0 in done


def test_service_batches_under_load_and_reports_metrics(keyword_engine):
    server, url = serve_in_thread(create_app(Settings(), engine_factory=lambda: keyword_engine))
    try:
        async def burst():
            async with httpx.AsyncClient(base_url=url) as c:
                rs = await asyncio.gather(*(c.post("/v1/analyze", json={"text": f"happy {i}"})
                                            for i in range(32)))
                return rs

        rs = asyncio.run(burst())
        assert all(r.status_code == 200 and r.json()["label"] == "joy" for r in rs)
        metrics = httpx.get(f"{url}/metrics").text
        assert 'cmt_requests_total{path="/v1/analyze",status="200"} 32.0' in metrics
        assert "cmt_batch_size_count" in metrics and 'cmt_stage_seconds_count{stage="model"}' in metrics
        assert max(keyword_engine.model.batch_sizes) > 1
    finally:
        server.should_exit = True


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz"])
def test_service_documents_itself(keyword_engine, path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(), engine_factory=lambda: keyword_engine)) as c:
        r = c.get(path)
        assert r.status_code == 200
        if path == "/openapi.json":
            assert "/v1/analyze" in r.json()["paths"]
