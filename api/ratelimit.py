"""Per-client rate limits (moving window, from the ``limits`` library), answered with 429.

Counters live in each process's memory: with N workers a client gets at most N times the
limit. A shared store (``limits`` supports Redis and others) would make it exact; we keep the
embedded default free of extra services.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from fastapi import HTTPException, Request, status
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

_storage = MemoryStorage()
_limiter = MovingWindowRateLimiter(_storage)


@lru_cache(maxsize=64)
def _parse(text: str):
    return parse(text)  # "100/minute" -> a RateLimitItem, once per distinct string


def reset() -> None:
    _storage.reset()


def client_key(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers so request.client is the real client.
    return request.client.host if request.client else "unknown"


def limit(setting_name: str):
    """A dependency enforcing the limit named by a setting (e.g. ``rate_limit_predict``)."""

    # async: the limiter is in memory and never blocks, and a sync dependency would cost a
    # thread-pool hop on every /predict (see api/deps.py).
    async def dependency(request: Request) -> None:
        settings = request.app.state.runtime.settings
        if not settings.rate_limit_enabled:
            return
        item = _parse(getattr(settings, setting_name))
        key = (setting_name, client_key(request))
        if not _limiter.hit(item, *key):
            reset_at = _limiter.get_window_stats(item, *key).reset_time
            retry_after = max(1, math.ceil(reset_at - time.time()))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit exceeded: {item} per client; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    return dependency
