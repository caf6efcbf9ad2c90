"""The open API channel's handle: its pool (schema `openapi`), the hub through which it reaches the products (the
OPEN_API partition), the clocks, the per-client rate limiter and the client-secret hasher."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
from prometheus_client import Counter, Histogram

from kanjo.cards import Cards
from kanjo.channels.openapi.credentials import SecretHasher
from kanjo.channels.openapi.limits import ACCESS_TOKEN_LIFETIME_S_MAX, CLIENTS_MAX
from kanjo.channels.openapi.ratelimit import RateLimiter
from kanjo.deposits import Deposits
from kanjo.fees import Fees
from kanjo.hub import Hub, Partition

T = TypeVar("T")

# The products each capability needs through the hub (cards: the customer's authorisation of a consent).
PRODUCTS = frozenset({"cards", "deposits", "fees"})

CALLS = Counter("kanjo_openapi_calls_total", "open API calls answered, by route and outcome", ["route", "outcome"])
CALL_SECONDS = Histogram("kanjo_openapi_call_seconds", "time to answer one open API call", ["route"],
                         buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))
THROTTLED = Counter("kanjo_openapi_throttled_total", "calls refused by a client's rate limit or daily quota",
                    ["reason"])
ACCESS_LOG_FAILURES = Counter("kanjo_openapi_access_log_failures_total",
                              "calls answered whose access-log row could not be written")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class OpenApiChannel:
    pool: asyncpg.Pool
    hub: Hub
    deposits: Deposits
    cards: Cards
    fees: Fees
    now: Callable[[], dt.datetime] = field(default=_utc_now)  # wall clock: expiries, quotas' days, the log
    monotonic: Callable[[], float] = field(default=time.monotonic)  # the rate limiter's clock
    token_lifetime_s: int = ACCESS_TOKEN_LIFETIME_S_MAX
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(CLIENTS_MAX))
    hasher: SecretHasher = field(default_factory=SecretHasher)

    def __post_init__(self) -> None:
        if not 1 <= self.token_lifetime_s <= ACCESS_TOKEN_LIFETIME_S_MAX:
            raise ValueError(f"an access token lives 1 to {ACCESS_TOKEN_LIFETIME_S_MAX} s "
                             "(openapi_access_token_lifetime_s_max)")

    async def call(self, product: str, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A product call through the hub, in the open API partition."""
        return await self.hub.call(Partition.OPEN_API, product, operation, fn)
