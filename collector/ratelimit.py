"""Per-agent rate limits: a token bucket per agent id, in memory.

The buckets live in one collector process (``app.state.agent_limiter``): with N uvicorn
workers or N collectors behind a proxy, an agent may get up to N times the limit. That
is enough to stop one broken or hostile agent from hogging a process; it is not a quota.

Each bucket holds up to ``rate_per_minute`` tokens and refills continuously at
``rate_per_minute / 60`` tokens a second, so a burst of a full minute's allowance is
allowed, then one request every ``60 / rate`` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from collector.errors import Problem

MAX_BUCKETS = 100_000  # beyond this, full (idle) buckets are forgotten


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key; :meth:`take` answers how long to wait (0 = allowed)."""

    def __init__(self, rate_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute {rate_per_minute!r} must be positive")
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when allowed, else the seconds until
        a token is back (nothing is spent then)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._forget_idle(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity,
                                bucket.tokens + (now - bucket.updated) * self.per_second)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.per_second

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < MAX_BUCKETS:
            return
        full_after = self.capacity / self.per_second
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]


def limiter_of(request: Request) -> TokenBuckets:
    """This app's per-agent limiter, made on first use from ``agent_rate_per_minute``."""
    state = request.app.state
    limiter: TokenBuckets | None = getattr(state, "agent_limiter", None)
    if limiter is None:
        limiter = state.agent_limiter = TokenBuckets(state.settings.agent_rate_per_minute)
    return limiter


def check_agent_rate(request: Request, agent_id: str, endpoint: str) -> None:
    """A 429 :class:`Problem` with ``Retry-After`` when ``agent_id`` is over its limit on
    ``endpoint`` (each endpoint has its own bucket)."""
    limiter = limiter_of(request)
    wait = limiter.take(f"{agent_id} {endpoint}")
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise Problem(429, f"agent {agent_id} is over its limit of {int(limiter.capacity)} "
                           f"requests per minute to {endpoint} (agent_rate_per_minute, per "
                           f"collector process); retry after {seconds} s",
                      headers={"Retry-After": str(seconds)})
