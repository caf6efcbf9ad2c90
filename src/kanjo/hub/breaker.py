"""A product's circuit breaker: opens on the system-error ratio of a rolling time window, probes, closes.

Pure (time is injected). Closed → open when the last `window_ms` saw at least `window_requests_min` answered calls
and system errors / answered calls ≥ `failure_ratio_to_open`. Open → half-open after `open_ms` (unless an operator
forced it open). Half-open lets `half_open_probes` calls through: all of them answering closes the breaker, any
system error re-opens it. Business refusals are answers: they count as successful calls.

Every state begins a new generation; the result of a call admitted in an earlier generation is ignored, so a slow
call from before the breaker opened cannot close it, nor a late failure re-open a breaker that probes have closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kanjo.hub.model import BreakerState, ProductPolicy

BUCKETS = 10  # the window is kept as ten buckets: bounded memory, and the ratio forgets old errors gradually

OnChange = Callable[["Breaker", BreakerState, BreakerState, str], None]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call the product, tied to the breaker state that granted it."""

    generation: int
    probe: bool


class Breaker:
    def __init__(self, policy: ProductPolicy, now_s: Callable[[], float], on_change: OnChange | None = None) -> None:
        self.policy = policy
        self._now_s = now_s
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self.since_s = now_s()
        self.generation = 0
        self.forced_reason: str | None = None
        self._open_until_s = 0.0
        self._bucket_s = policy.window_ms / 1000 / BUCKETS
        self._stamp = [-1] * BUCKETS
        self._calls = [0] * BUCKETS
        self._failures = [0] * BUCKETS
        self._probes_started = 0
        self._probes_ok = 0

    @property
    def product(self) -> str:
        return self.policy.product

    # -- admission ------------------------------------------------------------------------------------------

    def is_open(self) -> bool:
        self._tick()
        return self.state is BreakerState.OPEN

    def refuses_now(self) -> bool:
        """Would a call be refused right now? (No probe is reserved: a fast check before queueing.)"""
        self._tick()
        if self.state is BreakerState.OPEN:
            return True
        return self.state is BreakerState.HALF_OPEN and self._probes_started >= self.policy.half_open_probes

    def permit(self) -> Permit | None:
        """Leave to call, or None when the breaker refuses. In half-open, reserves one probe."""
        self._tick()
        if self.state is BreakerState.CLOSED:
            return Permit(self.generation, probe=False)
        if self.state is BreakerState.HALF_OPEN and self._probes_started < self.policy.half_open_probes:
            self._probes_started += 1
            return Permit(self.generation, probe=True)
        return None

    def retry_after_s(self) -> float | None:
        """Seconds until the breaker lets probes through; None when an operator holds it open."""
        if self.forced_reason is not None:
            return None
        return round(max(self._open_until_s - self._now_s(), 0.0), 3)

    # -- results ---------------------------------------------------------------------------------------------

    def record(self, permit: Permit, *, failed: bool) -> None:
        """The product answered (failed=False; a business refusal is an answer) or had a system error."""
        if permit.generation != self.generation:
            return
        if permit.probe:
            self._record_probe(failed)
            return
        self._count(failed)
        if failed and self._should_open():
            self._open(f"system errors {self.error_ratio():.0%} of {self._sum(self._calls)} calls "
                       f"in {self.policy.window_ms:,} ms")

    def abandon(self, permit: Permit) -> None:
        """The call was cancelled by its caller before an answer: it says nothing about the product."""
        if permit.probe and permit.generation == self.generation:
            self._probes_started -= 1

    def _record_probe(self, failed: bool) -> None:
        if failed:
            self._open("a half-open probe failed")
            return
        self._probes_ok += 1
        if self._probes_ok >= self.policy.half_open_probes:
            self._transition(BreakerState.CLOSED, f"{self._probes_ok} probes answered")

    # -- operations ------------------------------------------------------------------------------------------

    def force_open(self, reason: str) -> None:
        """Held open until `reset`: an operator took the product out of service."""
        self.forced_reason = reason
        self._open_until_s = float("inf")
        self._transition(BreakerState.OPEN, f"forced open: {reason}")

    def reset(self, reason: str) -> None:
        self.forced_reason = None
        self._transition(BreakerState.CLOSED, f"reset: {reason}")

    # -- window ------------------------------------------------------------------------------------------------

    def error_ratio(self) -> float:
        calls = self._sum(self._calls)
        return self._sum(self._failures) / calls if calls else 0.0

    def window_calls(self) -> int:
        return self._sum(self._calls)

    def _should_open(self) -> bool:
        calls = self._sum(self._calls)
        return calls >= self.policy.window_requests_min and self.error_ratio() >= self.policy.failure_ratio_to_open

    def _count(self, failed: bool) -> None:
        index = int(self._now_s() / self._bucket_s)
        slot = index % BUCKETS
        if self._stamp[slot] != index:
            self._stamp[slot], self._calls[slot], self._failures[slot] = index, 0, 0
        self._calls[slot] += 1
        self._failures[slot] += failed

    def _sum(self, counts: list[int]) -> int:
        oldest = int(self._now_s() / self._bucket_s) - BUCKETS + 1
        return sum(n for stamp, n in zip(self._stamp, counts, strict=True) if stamp >= oldest)

    # -- states ------------------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.state is BreakerState.OPEN and self._now_s() >= self._open_until_s:
            self._transition(BreakerState.HALF_OPEN, f"{self.policy.open_ms:,} ms open: probing")

    def _open(self, reason: str) -> None:
        self._open_until_s = self._now_s() + self.policy.open_ms / 1000
        self._transition(BreakerState.OPEN, reason)

    def _transition(self, new: BreakerState, reason: str) -> None:
        old = self.state
        self.state = new
        self.since_s = self._now_s()
        self.generation += 1
        self._probes_started = self._probes_ok = 0
        if new is BreakerState.CLOSED:
            self._stamp = [-1] * BUCKETS  # a closed breaker starts from a clean window
        if self._on_change is not None:
            self._on_change(self, old, new, reason)
