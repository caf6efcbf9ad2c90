"""Injected time: wall-clock nanoseconds for event timestamps, kept separate from business dates."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...


class SystemClock:
    """The real wall clock (UTC nanoseconds since the Unix epoch)."""

    def now_ns(self) -> int:
        return time.time_ns()


class FixedClock:
    """A clock tests move by hand, to travel through timeouts, month ends and year ends."""

    def __init__(self, now_ns: int) -> None:
        self._now_ns = now_ns

    def now_ns(self) -> int:
        return self._now_ns

    def advance(self, seconds: float = 0.0, *, ns: int = 0) -> None:
        self._now_ns += int(seconds * 1_000_000_000) + ns

    def set(self, now_ns: int) -> None:
        self._now_ns = now_ns
