"""The drills' vocabulary, pure: pass criteria and the one JSON object a drill prints, the options of each drill,
the breaker timeline a drill observes, and the network-flap schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kanjo.drills.limits import (
    ATMS_MAX,
    CARDS_MAX,
    FLAPS_MAX,
    PHASE_SECONDS_MAX,
    PROBES_PER_S_MAX,
    WITHDRAWALS_PER_S_MAX,
)

AT_MOST, AT_LEAST, EQUALS = "<=", ">=", "=="
LINK_MODES = ("refuse", "blackhole")


# -- criteria and the report ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Criterion:
    """One pass criterion: what was measured, the threshold, how they compare. Nothing measured fails."""

    name: str
    measured: Any
    threshold: Any
    comparison: str = AT_MOST
    unit: str | None = None
    detail: Any = None

    @property
    def passed(self) -> bool:
        if self.measured is None:
            return False
        if self.comparison == AT_MOST:
            return bool(self.measured <= self.threshold)
        if self.comparison == AT_LEAST:
            return bool(self.measured >= self.threshold)
        return bool(self.measured == self.threshold)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "measured": self.measured, "threshold": self.threshold,
                               "comparison": self.comparison, "passed": self.passed}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.detail is not None:
            out["detail"] = self.detail
        return out


def drill_report(drill: str, options: Any, criteria: Sequence[Criterion], measured: dict[str, Any]) -> dict[str, Any]:
    """The drill's one JSON object: passed, every criterion, the options it ran with, and what else it saw."""
    return {"drill": drill, "passed": all(c.passed for c in criteria),
            "failed": [c.name for c in criteria if not c.passed],
            "criteria": [c.as_dict() for c in criteria], "options": asdict(options), "measured": measured}


def percentile_ms(samples_ms: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile in ms, rounded to µs; None when nothing was measured."""
    ordered = sorted(samples_ms)
    if not ordered:
        return None
    return round(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1], 3)


# -- options ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FleetOptions:
    """The ATM fleet every drill drives: its size, offered load and device behaviour."""

    atms: int = 200
    cards: int = 2_000
    withdrawals_per_s: float = 30.0
    mix: str = "withdrawal=58,inquiry=20,deposit=15,transfer=4,loan_draw=2,time_deposit=1"
    seed: int = 20_260_303
    connections: int = 64
    device_timeout_ms: int = 5_000
    retries: int = 2  # resends of a first message (same journal number); acknowledgements get their own
    ack_retries: int = 5

    def check(self) -> None:
        _within("atms", self.atms, 1, ATMS_MAX)
        _within("cards", self.cards, 2, CARDS_MAX)
        _within("withdrawals_per_s", self.withdrawals_per_s, 0.1, WITHDRAWALS_PER_S_MAX)


@dataclass(frozen=True, slots=True)
class ProductDownOptions:
    """`kanjo drill product-down`: the time-deposit product fails (errors, then hangs), then is restored."""

    fleet: FleetOptions = field(default_factory=lambda: FleetOptions(
        mix="withdrawal=60,inquiry=20,deposit=15,time_deposit=5"))
    baseline_s: float = 10.0
    error_s: float = 20.0
    hang_s: float = 20.0
    restored_s: float = 20.0
    probe_per_s: float = 5.0  # the drill's own time-deposit placements from an own ATM, judged one by one
    latency_ms_p99_max: float = 500.0  # withdrawals (end to end), inquiries, deposits, in every phase
    refusal_latency_ms_p99_max: float = 100.0  # time deposits refused while the breaker is open
    recovery_s_max: float = 15.0  # from the product's restoration to its breaker closed, without an operator

    def check(self) -> None:
        self.fleet.check()
        for name in ("baseline_s", "error_s", "hang_s", "restored_s"):
            _within(name, getattr(self, name), 0.5, PHASE_SECONDS_MAX)
        _within("probe_per_s", self.probe_per_s, 0.5, PROBES_PER_S_MAX)


@dataclass(frozen=True, slots=True)
class NetworkFlapOptions:
    """`kanjo drill network-flap`: the link between the ATMs and kanjo drops and comes back, again and again."""

    fleet: FleetOptions = field(default_factory=FleetOptions)
    flap_s: float = 60.0  # how long the link flaps
    period_s: float = 4.0  # one flap every period: up for period - down, then down
    down_s: float = 1.0
    mode: str = "refuse"  # new connections while down: refused (RST) or blackholed (accepted, never answered)
    recovery_s: float = 60.0  # load after the flapping stops, on the restored link
    ack_timeout_s: int = 10  # asked of the server (KANJO_ATM_ACK_TIMEOUT_S) when the drill starts it
    wait_ack_deadline: bool = True  # upload the journals only once every acknowledgement deadline has passed
    latency_ms_p99_max: float = 500.0  # withdrawals end to end during the recovery load

    def check(self) -> None:
        self.fleet.check()
        _within("flap_s", self.flap_s, 0.5, PHASE_SECONDS_MAX)
        _within("recovery_s", self.recovery_s, 0.5, PHASE_SECONDS_MAX)
        _within("down_s", self.down_s, 0.05, PHASE_SECONDS_MAX)
        if not self.down_s < self.period_s:
            raise ValueError("down_s must be shorter than period_s (the link comes back up within each period)")
        _within("flap_s / period_s", self.flap_s / self.period_s, 0, FLAPS_MAX)
        if self.mode not in LINK_MODES:
            raise ValueError(f"mode is one of {', '.join(LINK_MODES)}")
        _within("ack_timeout_s", self.ack_timeout_s, 1, 60)


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low:g}..{high:,g}, not {value}")


# -- the link's schedule -----------------------------------------------------------------------------------------

def flap_windows(flap_s: float, period_s: float, down_s: float) -> list[tuple[float, float]]:
    """[start, end) seconds of every link-down window: each period is up first, then down; none past `flap_s`."""
    windows = []
    start_s = period_s - down_s
    while start_s + down_s <= flap_s + 1e-9:
        windows.append((round(start_s, 6), round(start_s + down_s, 6)))
        start_s += period_s
    return windows


# -- what the drill saw of a breaker ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BreakerSample:
    at_s: float  # monotonic seconds
    state: str  # closed / open / half_open, or "unknown" when /health did not answer


@dataclass(slots=True)
class BreakerTimeline:
    """A product's breaker as polled every `interval_s`: when it opened and closed, and what held over a span."""

    interval_s: float
    samples: list[BreakerSample] = field(default_factory=list)

    def first(self, state: str, after_s: float) -> float | None:
        """When `state` was first seen at or after `after_s`."""
        return next((s.at_s for s in self.samples if s.at_s >= after_s and s.state == state), None)

    def held(self, state: str, start_s: float, end_s: float) -> bool:
        """Whether every poll from one interval before `start_s` to one after `end_s` saw `state` (and there was
        at least one): a request in that span met the breaker in that state, whatever the polls missed."""
        seen = [s.state for s in self.samples
                if start_s - self.interval_s <= s.at_s <= end_s + self.interval_s]
        return bool(seen) and all(state_seen == state for state_seen in seen)

    def states_between(self, start_s: float, end_s: float) -> list[str]:
        return sorted({s.state for s in self.samples if start_s <= s.at_s <= end_s})


def verification_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The books' verification as a drill reports it: every check and product by name with its verdict, the full
    finding only where one failed (`kanjo verify` on the drill's database prints the whole report)."""
    def verdicts(parts: dict[str, Any]) -> dict[str, Any]:
        return {name: True if part.get("ok") is True else part for name, part in parts.items()}

    keep = ("ok", "accounts", "transfers", "rejected_transfers", "ledgers", "business_date")
    return {**{k: report[k] for k in keep if k in report}, "checks": verdicts(report.get("checks", {})),
            "products": verdicts(report.get("products", {}))}
