"""Faults a drill injects into a product at the hub: errors, hangs or slowness, without touching the product's code.

The hub applies an injected fault inside the product's timeout, so a drill exercises exactly what a real fault
would: the breaker, the bulkheads, the channels' refusals. An injected error or hang never calls the product, so
no money moves; slowness delays the call, then makes it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class FaultMode(enum.StrEnum):
    ERROR = "error"  # the call fails at once with a system error
    HANG = "hang"  # the call never answers (the product timeout ends it)
    SLOW = "slow"  # the call answers `latency_ms` late


class InjectedFault(RuntimeError):
    """The system error of an injected `error` fault (a drill, not a defect)."""


@dataclass(frozen=True, slots=True)
class Fault:
    product: str
    mode: FaultMode
    latency_ms: int
    since: str  # when it was injected, ISO 8601 UTC


async def apply(fault: Fault, fn: Callable[[], Awaitable[T]]) -> T:
    if fault.mode is FaultMode.ERROR:
        raise InjectedFault(f"a drill made {fault.product} fail")
    if fault.mode is FaultMode.HANG:
        await asyncio.Event().wait()  # cancelled by the hub's timeout
    await asyncio.sleep(fault.latency_ms / 1000)
    return await fn()
