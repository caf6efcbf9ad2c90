"""Labelled Prometheus children looked up once: `metric.labels(...)` validates and locks on every call, which the
busiest paths (a hub call, an ATM message) would pay several times per request."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

M = TypeVar("M")


class Children(Generic[M]):
    """`children(*label_values)` is `metric.labels(*label_values)`, cached. The label values of a metric are few and
    fixed by code (partitions, products, outcomes, operations), so the cache stays small."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)  # type: ignore[attr-defined]
        return child
