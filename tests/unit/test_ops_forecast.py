"""Capacity forecasts without a database: the bounded ring, the least-squares trend, time to full."""

from __future__ import annotations

import pytest

from kanjo.kernel.limits import LimitRegistry
from kanjo.ops import Capacity
from kanjo.ops.forecast import FORECAST_S_MAX, Ring, slope_per_s, time_to_full_s

MINUTE_MS = 60_000


def test_the_ring_keeps_the_latest_samples_oldest_first() -> None:
    ring = Ring(3)
    for i in range(5):
        ring.append(i * 1000, i * 10)
    assert len(ring) == 3
    assert ring.samples() == [(2000, 20), (3000, 30), (4000, 40)]


def test_the_slope_is_least_squares_over_the_window() -> None:
    assert slope_per_s([(0, 0), (1000, 10), (2000, 20)]) == pytest.approx(10.0)
    # noise around a rising line: the fit, not the last two points
    assert slope_per_s([(0, 0), (1000, 15), (2000, 15), (3000, 30)]) == pytest.approx(9.0)
    assert slope_per_s([(0, 5)]) == 0.0
    assert slope_per_s([(1000, 5), (1000, 9)]) == 0.0  # no time passed: no trend


def test_time_to_full_none_when_flat_or_falling_zero_when_full() -> None:
    assert time_to_full_s(50, 100, 0.0) is None
    assert time_to_full_s(50, 100, -1.0) is None
    assert time_to_full_s(100, 100, -1.0) == 0
    assert time_to_full_s(50, 100, 0.5) == 100
    assert time_to_full_s(0, 100, 1e-300) is None  # beyond a year is not a forecast
    assert time_to_full_s(0, FORECAST_S_MAX, 1.0) == FORECAST_S_MAX


def registry_with(name: str = "test_queue_max", maximum: int = 1000) -> LimitRegistry:
    registry = LimitRegistry()
    registry.declare(name, maximum, "items", "a test limit")
    return registry


def test_a_rising_limit_is_forecast_to_fill() -> None:
    registry = registry_with()
    capacity = Capacity(registry, ring_samples=60, samples_min=5)
    for minute in range(10):  # +10 items a minute: 600 an hour
        registry.observe("test_queue_max", 100 + 10 * minute)
        capacity.sample(minute * MINUTE_MS)
    forecast = capacity.forecast("test_queue_max")
    assert forecast.usage == 190 and forecast.samples == 10
    assert forecast.slope_per_hour == pytest.approx(600.0)
    assert forecast.time_to_full_s == 81 * 60  # 810 items left at 10 a minute
    assert forecast.usage_ratio == pytest.approx(0.19)


def test_no_forecast_before_enough_samples_nor_when_flat_or_falling() -> None:
    registry = registry_with()
    capacity = Capacity(registry, ring_samples=60, samples_min=5)
    registry.observe("test_queue_max", 500)
    capacity.sample(0)
    early = capacity.forecast("test_queue_max")
    assert (early.samples, early.slope_per_hour, early.time_to_full_s) == (1, None, None)
    for minute in range(1, 6):
        registry.observe("test_queue_max", 500 - minute)
        capacity.sample(minute * MINUTE_MS)
    falling = capacity.forecast("test_queue_max")
    assert falling.slope_per_hour is not None and falling.slope_per_hour < 0 and falling.time_to_full_s is None


def test_the_window_is_the_ring_a_past_surge_is_forgotten() -> None:
    registry = registry_with()
    capacity = Capacity(registry, ring_samples=5, samples_min=5)
    for minute, usage in enumerate([0, 200, 400, 600, 600, 600, 600, 600]):
        registry.observe("test_queue_max", usage)
        capacity.sample(minute * MINUTE_MS)
    assert capacity.forecast("test_queue_max").time_to_full_s is None  # the last five samples are flat


def test_the_snapshot_names_every_limit_and_when_it_was_sampled() -> None:
    registry = registry_with()
    registry.declare("test_other_max", 10, "rows", "another")
    capacity = Capacity(registry, ring_samples=10, samples_min=2)
    assert capacity.snapshot().sampled_at_ms is None
    capacity.sample(42)
    snapshot = capacity.snapshot()
    assert snapshot.sampled_at_ms == 42
    assert [f.name for f in snapshot.forecasts] == ["test_other_max", "test_queue_max"]
    with pytest.raises(KeyError):
        capacity.forecast("no_such_limit")


def test_ring_sizes_are_bounded_by_the_declared_limit() -> None:
    with pytest.raises(ValueError, match="ops_capacity_samples_max"):
        Capacity(registry_with(), ring_samples=100_000)
