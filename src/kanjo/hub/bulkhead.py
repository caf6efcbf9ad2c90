"""A partition's bulkhead: at most `concurrency_max` calls run, at most `queue_max` wait (first come, first served).

A full queue refuses at once; a waiter whose deadline passes leaves the queue without running. A released slot is
handed straight to the oldest waiter, so a newcomer cannot overtake the queue. Cancellation at any point (the
caller's, or a timeout's) gives the slot back: nothing leaks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from kanjo.hub.model import PartitionBusy, PartitionPolicy
from kanjo.kernel.invariants import invariant

BUSY_RETRY_AFTER_S = 1.0  # a full queue drains within about a deadline; one second is the channels' usual retry


class DeadlinePassed(Exception):
    """Internal: the waiter's deadline passed before a slot was free (the hub turns it into DeadlineExceeded)."""


class Bulkhead:
    def __init__(self, policy: PartitionPolicy, on_change: Callable[[Bulkhead], None] | None = None) -> None:
        self.policy = policy
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def queue_ratio(self) -> float:
        return len(self._waiters) / self.policy.queue_max if self.policy.queue_max else 0.0

    async def acquire(self, deadline_at: float) -> None:
        """Take a slot before `deadline_at` (event-loop time) or raise PartitionBusy / DeadlinePassed."""
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline_at:
            raise DeadlinePassed
        if self.in_flight < self.policy.concurrency_max and not self._waiters:
            self.in_flight += 1
            self._changed()
            return
        if len(self._waiters) >= self.policy.queue_max:
            raise PartitionBusy(self.policy.partition, BUSY_RETRY_AFTER_S)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._changed()
        try:
            async with asyncio.timeout_at(deadline_at):
                await waiter
        except BaseException as exc:
            self._leave(waiter)
            if isinstance(exc, TimeoutError):
                raise DeadlinePassed from None
            raise

    def release(self) -> None:
        """Give the slot to the oldest waiter still waiting, or free it."""
        invariant(self.in_flight > 0, f"{self.policy.partition}: a slot was released that was not held")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_flight is unchanged
                self._changed()
                return
        self.in_flight -= 1
        self._changed()

    def _leave(self, waiter: asyncio.Future[None]) -> None:
        """A waiter gives up. If the slot had already been handed to it, pass the slot on."""
        if waiter.done() and not waiter.cancelled():
            self.release()
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):  # already handed a slot and removed
            self._waiters.remove(waiter)  # O(queue_max), bounded by the partition's queue limit
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)
