"""Per-client rate limits with the `limits` library (moving window).

The count lives in this process's memory by default, or in Redis
(`settings.serve_rate_limit_storage = "redis://..."`), so that every replica behind one
Service counts against the same limit. If Redis cannot be reached the request is let
through and a warning logged: a limit is a guard, not a reason to stop serving.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger("cmt.serve")
REDIS_TIMEOUT_S = 0.5  # a slow Redis must not slow every request down


class RateLimit:
    """`rate` is a `limits` string ("120/minute", "10/second;600/minute"); empty: no limit."""

    def __init__(self, rate: str, storage_uri: str = "memory://"):
        self.items: list[RateLimitItem] = parse_many(rate) if rate else []
        options = {}
        if storage_uri.startswith("redis"):
            options = dict(implementation="redispy", wrap_exceptions=True,
                           socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
        self.limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_uri}",
                                                                   **options))

    async def retry_after(self, client: str) -> int | None:
        """Count one request of `client`: None within the limit, else the seconds to wait."""
        try:
            for item in self.items:
                if not await self.limiter.hit(item, client):
                    stats = await self.limiter.get_window_stats(item, client)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError as e:
            log.warning("rate limit not counted (storage unreachable: %s)",
                        type(e.storage_error).__name__)
        return None
