"""Capacity forecasts: every named limit's usage sampled into a bounded ring, and when its trend fills it.

The trend is the least-squares slope of the samples in the ring (the forecast window: `ops_capacity_samples_max`
samples, six hours at the one-minute evaluation). A limit whose trend is flat or falling has no time to full.
Pure: time is given by the caller, in milliseconds.
"""

from __future__ import annotations

import math
import statistics
from array import array
from dataclasses import dataclass

from kanjo.kernel.limits import LimitRegistry
from kanjo.ops.limits import CAPACITY_SAMPLES_MAX

FORECAST_SAMPLES_MIN = 30  # half an hour at one sample a minute: a shorter trend is a burst, not a trend
FORECAST_S_MAX = 366 * 86_400  # a limit that fills in more than a year is reported as not filling


class Ring:
    """The latest `capacity` samples (time in ms, usage), the oldest overwritten first; 16 bytes a sample."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("a forecast ring holds at least two samples")
        self._at_ms = array("q", bytes(8 * capacity))
        self._usage = array("q", bytes(8 * capacity))
        self._next = 0
        self._count = 0

    def append(self, at_ms: int, usage: int) -> None:
        self._at_ms[self._next] = at_ms
        self._usage[self._next] = usage
        self._next = (self._next + 1) % len(self._at_ms)
        self._count = min(self._count + 1, len(self._at_ms))

    def __len__(self) -> int:
        return self._count

    def samples(self) -> list[tuple[int, int]]:
        """Oldest first."""
        start = (self._next - self._count) % len(self._at_ms)
        order = [(start + i) % len(self._at_ms) for i in range(self._count)]
        return [(self._at_ms[i], self._usage[i]) for i in order]


def slope_per_s(samples: list[tuple[int, int]]) -> float:
    """The least-squares slope of usage over time, in units per second (0 when every sample has the same time)."""
    if len(samples) < 2:
        return 0.0
    first_ms = samples[0][0]
    seconds = [(at_ms - first_ms) / 1000 for at_ms, _ in samples]
    if min(seconds) == max(seconds):
        return 0.0
    return statistics.linear_regression(seconds, [float(usage) for _, usage in samples]).slope


@dataclass(frozen=True, slots=True)
class Forecast:
    """A limit now and where its trend takes it: `time_to_full_s` is None when the trend is unknown (too few
    samples), flat or falling, or fills it only beyond a year; 0 when it is full now."""

    name: str
    unit: str
    maximum: int
    usage: int
    samples: int
    slope_per_hour: float | None
    time_to_full_s: int | None

    @property
    def usage_ratio(self) -> float:
        return self.usage / self.maximum


def time_to_full_s(usage: int, maximum: int, slope: float) -> int | None:
    if usage >= maximum:
        return 0
    if slope <= 0:
        return None
    seconds = math.ceil((maximum - usage) / slope)
    return seconds if seconds <= FORECAST_S_MAX else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every limit's forecast (by name) as of the latest sample (None before the first)."""

    sampled_at_ms: int | None
    forecasts: list[Forecast]


class Capacity:
    """The rings of every limit of `registry`, sampled by `sample(now_ms)` (the alert evaluation calls it)."""

    def __init__(self, registry: LimitRegistry, *, ring_samples: int = CAPACITY_SAMPLES_MAX,
                 samples_min: int = FORECAST_SAMPLES_MIN) -> None:
        if not 2 <= samples_min <= ring_samples <= CAPACITY_SAMPLES_MAX:
            raise ValueError(f"need 2 <= samples_min <= ring_samples <= {CAPACITY_SAMPLES_MAX} "
                             "(ops_capacity_samples_max)")
        self.registry = registry
        self._ring_samples = ring_samples
        self._samples_min = samples_min
        self._rings: dict[str, Ring] = {}  # one per declared limit: bounded by the registry
        self.sampled_at_ms: int | None = None

    def sample(self, now_ms: int) -> None:
        """One sample of every declared limit's current usage."""
        for limit in self.registry.all():
            ring = self._rings.get(limit.name)
            if ring is None:
                ring = self._rings[limit.name] = Ring(self._ring_samples)
            ring.append(now_ms, self.registry.usage(limit.name))
        self.sampled_at_ms = now_ms

    def forecast(self, name: str) -> Forecast:
        """The forecast of one limit (KeyError when no such limit is declared)."""
        limit = self.registry.get(name)
        usage = self.registry.usage(name)
        ring = self._rings.get(name)
        samples = ring.samples() if ring is not None else []
        if len(samples) < self._samples_min:
            return Forecast(name, limit.unit, limit.maximum, usage, len(samples), None,
                            0 if usage >= limit.maximum else None)
        slope = slope_per_s(samples)
        return Forecast(name, limit.unit, limit.maximum, usage, len(samples), round(slope * 3600, 6),
                        time_to_full_s(usage, limit.maximum, slope))

    def snapshot(self) -> Snapshot:
        return Snapshot(self.sampled_at_ms, [self.forecast(limit.name) for limit in self.registry.all()])
