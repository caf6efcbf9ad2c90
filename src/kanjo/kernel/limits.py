"""The limits registry (DESIGN §1.5): every bounded quantity declared once, with its maximum and why.

Usage is observed by the code that owns the quantity and exported as a ratio; reaching a limit
raises `LimitReached`, which callers turn into a clean refusal that names the limit.

Capacity limits (tables, work areas, disk, the database's size) are *adjustable*: their maximum is what the
operator provisioned, set from configuration at start and raised at run time when storage grows. Their usage is
*measured* by a probe the owning context registers (a count, a size), so a job's pre-flight sees it fresh.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

WARN_RATIOS = (0.70, 0.85, 0.95)
PROBE_TIMEOUT_S = 5.0  # a probe whose store does not answer within this is skipped: its last usage stands


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # unit or qualifier last: transfers_per_batch_max
    maximum: int
    unit: str
    reason: str
    adjustable: bool = False  # a provisioned capacity the operator sets (configuration, `PUT /v1/capacity/...`)


Probe = Callable[[], Awaitable[int]]


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
    _probes: dict[str, Probe] = field(default_factory=dict)
    _declared: dict[str, int] = field(default_factory=dict)  # adjustable limits: the maximum as declared
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def declare(self, name: str, maximum: int, unit: str, reason: str, *, adjustable: bool = False) -> Limit:
        if maximum <= 0:
            raise ValueError(f"limit {name} must have a positive maximum")
        limit = Limit(name, maximum, unit, reason, adjustable)
        existing = self._limits.get(name)
        if existing is not None and replace(existing, maximum=self._declared.get(name, existing.maximum)) != limit:
            raise ValueError(f"limit {name} declared twice with different values")
        if existing is None:
            self._limits[name] = limit
            if adjustable:
                self._declared[name] = maximum
        return self._limits[name]

    def set_maximum(self, name: str, maximum: int) -> Limit:
        """Provision an adjustable limit anew (configuration at start, an operator at run time). Code that checks
        an adjustable limit reads `get(name).maximum` each time, so the new maximum holds at once."""
        limit = self._limits.get(name)
        if limit is None:
            raise KeyError(f"no limit named {name}")
        if not limit.adjustable:
            raise ValueError(f"limit {name} is fixed by design ({limit.reason}); only capacity limits are adjusted")
        if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum <= 0:
            raise ValueError(f"limit {name} needs a positive whole maximum")
        with self._lock:
            self._limits[name] = replace(limit, maximum=maximum)
        return self._limits[name]

    def register_probe(self, name: str, probe: Probe) -> None:
        """How the usage of `name` is measured (a count, a size), by the context that owns the structure."""
        if name not in self._limits:
            raise KeyError(f"no limit named {name}")
        self._probes[name] = probe

    def measured(self) -> list[str]:
        return sorted(self._probes)

    async def measure(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Measure (and observe) the usage of the probed limits named, or of all; a probe that fails is skipped and
        its last observed usage stands."""
        usage: dict[str, int] = {}
        for name in sorted(self._probes) if names is None else names:
            probe = self._probes.get(name)
            if probe is None:
                usage[name] = self.usage(name)
                continue
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    usage[name] = int(await probe())
            except Exception:  # a probe's store unreachable: the last measurement stands, alerts say the rest
                usage[name] = self.usage(name)
                continue
            self.observe(name, usage[name])
        return usage

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
                    "adjustable": limit.adjustable,
                    "usage": usage,
                    "peak": self._peak.get(limit.name, 0),
                    "usage_ratio": round(ratio, 6),
                    "warning_level": next((w for w in reversed(WARN_RATIOS) if ratio >= w), None),
                }
            )
        return rows


limits = LimitRegistry()
