"""The limits registry (DESIGN §1.5): every bounded quantity declared once, with its maximum and why.

Usage is observed by the code that owns the quantity and exported as a ratio; reaching a limit
raises `LimitReached`, which callers turn into a clean refusal that names the limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

WARN_RATIOS = (0.70, 0.85, 0.95)


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # unit or qualifier last: transfers_per_batch_max
    maximum: int
    unit: str
    reason: str


class LimitReached(Exception):
    """A named limit refused work. The message names the limit and its maximum."""

    def __init__(self, limit: Limit, requested: int) -> None:
        self.limit = limit
        self.requested = requested
        super().__init__(
            f"limit {limit.name} reached: {requested:,} {limit.unit} requested, maximum {limit.maximum:,}"
            f" ({limit.reason})"
        )


@dataclass
class LimitRegistry:
    _limits: dict[str, Limit] = field(default_factory=dict)
    _usage: dict[str, int] = field(default_factory=dict)
    _peak: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def declare(self, name: str, maximum: int, unit: str, reason: str) -> Limit:
        if maximum <= 0:
            raise ValueError(f"limit {name} must have a positive maximum")
        limit = Limit(name, maximum, unit, reason)
        existing = self._limits.get(name)
        if existing is not None and existing != limit:
            raise ValueError(f"limit {name} declared twice with different values")
        self._limits[name] = limit
        return limit

    def get(self, name: str) -> Limit:
        return self._limits[name]

    def all(self) -> list[Limit]:
        return sorted(self._limits.values(), key=lambda limit: limit.name)

    def observe(self, name: str, usage: int) -> None:
        """Record the current usage of a limit (gauge semantics)."""
        with self._lock:
            self._usage[name] = usage
            if usage > self._peak.get(name, 0):
                self._peak[name] = usage

    def check(self, name: str, requested: int) -> None:
        limit = self._limits[name]
        if requested > limit.maximum:
            raise LimitReached(limit, requested)

    def usage(self, name: str) -> int:
        return self._usage.get(name, 0)

    def peak(self, name: str) -> int:
        return self._peak.get(name, 0)

    def ratio(self, name: str) -> float:
        return self._usage.get(name, 0) / self._limits[name].maximum

    def snapshot(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for limit in self.all():
            usage = self._usage.get(limit.name, 0)
            ratio = usage / limit.maximum
            rows.append(
                {
                    "name": limit.name,
                    "maximum": limit.maximum,
                    "unit": limit.unit,
                    "reason": limit.reason,
                    "usage": usage,
                    "peak": self._peak.get(limit.name, 0),
                    "usage_ratio": round(ratio, 6),
                    "warning_level": next((w for w in reversed(WARN_RATIOS) if ratio >= w), None),
                }
            )
        return rows


limits = LimitRegistry()
