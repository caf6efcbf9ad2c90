"""Per-client token buckets: a sustained rate (requests/s) and a burst, on a monotonic clock the caller passes.

Pure standard library. Each client has its own bucket, so one client spending its rate never slows another. A
refused request takes nothing from the bucket and is told how long until a token is there (Retry-After).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`burst` tokens at most, refilled at `rate_per_s`; a request takes one."""

    rate_per_s: float
    burst: int
    tokens: float
    updated_s: float

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")

    def take(self, now_s: float) -> float:
        """0.0 when a token was taken; else the seconds until one will be there (nothing taken)."""
        elapsed = max(0.0, now_s - self.updated_s)  # a clock that steps back never mints tokens
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
        self.updated_s = max(self.updated_s, now_s)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def reconfigure(self, rate_per_s: float, burst: int) -> None:
        """New settings from operations take effect at once; tokens above the new burst are dropped."""
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate_per_s, self.burst = rate_per_s, burst
        self.tokens = min(self.tokens, float(burst))


class RateLimiter:
    """One bucket per client, created full on the client's first request; at most `clients_max` buckets (the
    registry's own limit on clients bounds them)."""

    def __init__(self, clients_max: int) -> None:
        self.clients_max = clients_max
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, client_id: str, rate_per_s: float, burst: int, now_s: float) -> float:
        """0.0 when the client may go ahead; else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None:
                if len(self._buckets) >= self.clients_max:
                    self._buckets.pop(next(iter(self._buckets)))  # the oldest: it is made again, full, if it returns
                bucket = self._buckets[client_id] = TokenBucket(rate_per_s, burst, float(burst), now_s)
            elif (bucket.rate_per_s, bucket.burst) != (rate_per_s, burst):
                bucket.reconfigure(rate_per_s, burst)
            return bucket.take(now_s)

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._buckets.pop(client_id, None)

    def __len__(self) -> int:
        return len(self._buckets)
