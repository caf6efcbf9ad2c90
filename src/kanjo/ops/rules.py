"""The built-in alert rules: limit usage at 70/85/95 %, a limit forecast to fill, error ratios of the hub's products
and partitions. Pure functions from what the registry, the forecasts and the hub's call counts say to conditions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kanjo.kernel.limits import WARN_RATIOS, LimitRegistry
from kanjo.ops.forecast import Forecast
from kanjo.ops.model import Condition, Severity

USAGE_SEVERITIES = tuple(zip((round(r * 100) for r in WARN_RATIOS),
                             (Severity.WARNING, Severity.MAJOR, Severity.CRITICAL), strict=True))
# The hub's outcomes (kanjo_hub_requests) by whose failure they are (ADR 0004: a product's errors never count
# against a partition, a partition's refusals never against a product). `refused` is a business answer and
# `cancelled` a caller that went away: calls, but nobody's error.
PRODUCT_ERRORS = frozenset({"failed", "timeout", "unavailable"})
PARTITION_ERRORS = frozenset({"busy", "shed", "deadline"})
NOT_COUNTED = frozenset({"cancelled"})
CallCounts = Mapping[tuple[str, str, str], int]  # (partition, product, outcome) → calls since the hub started


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Thresholds of the built-in rules, in whole units."""

    forecast_horizon_s: int = 86_400  # a limit forecast to fill within a day is worth a look today
    error_percent_min: int = 5  # a product or partition failing 5 % of its calls over an interval: major
    error_percent_critical: int = 50  # half its calls: its customers are turned away
    error_calls_min: int = 20  # fewer calls in an interval say nothing (one error in two calls is not an alert)

    def __post_init__(self) -> None:
        if not 0 < self.forecast_horizon_s <= 366 * 86_400:
            raise ValueError("forecast_horizon_s must be in 1..31,622,400 (a year)")
        if not 0 < self.error_percent_min <= self.error_percent_critical <= 100:
            raise ValueError("need 0 < error_percent_min <= error_percent_critical <= 100")
        if not 1 <= self.error_calls_min <= 1_000_000:
            raise ValueError("error_calls_min must be in 1..1,000,000")


def component_of(limit_name: str) -> str:
    """A limit's owner is the first word of its name (hub_…, ops_…, customers_…)."""
    return limit_name.split("_", 1)[0]


def limit_usage(registry: LimitRegistry) -> list[Condition]:
    """Every limit used at 70 % or more of its maximum: warning, at 85 % major, at 95 % critical."""
    found: list[Condition] = []
    for limit in registry.all():
        usage = registry.usage(limit.name)
        level = [s for percent, s in USAGE_SEVERITIES if usage * 100 >= percent * limit.maximum]
        if level:
            component = component_of(limit.name)
            found.append(Condition(
                "limit_usage", component, limit.name, level[-1],
                f"{component}: limit {limit.name} at {usage * 100 // limit.maximum} % "
                f"({usage:,} of {limit.maximum:,} {limit.unit})"))
    return found


def limit_forecasts(forecasts: Iterable[Forecast], policy: AlertPolicy, now_ms: int) -> list[Condition]:
    """Every limit whose trend fills it within the horizon (a full one is the usage rule's)."""
    found: list[Condition] = []
    for f in forecasts:
        if f.time_to_full_s is None or not 0 < f.time_to_full_s <= policy.forecast_horizon_s:
            continue
        component = component_of(f.name)
        full_at = dt.datetime.fromtimestamp(now_ms / 1000 + f.time_to_full_s, dt.UTC).isoformat(timespec="minutes")
        found.append(Condition(
            "limit_forecast", component, f.name, Severity.WARNING,
            f"{component}: limit {f.name} forecast to fill in {duration(f.time_to_full_s)} (about {full_at}): "
            f"{f.usage:,} of {f.maximum:,} {f.unit}, rising {f.slope_per_hour:,.1f} an hour"))
    return found


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def interval_counts(before: CallCounts, now: CallCounts) -> dict[tuple[str, str, str], int]:
    """Calls of the last interval: the difference of two readings (a counter that went back restarted)."""
    return {key: count - before.get(key, 0) if count >= before.get(key, 0) else count for key, count in now.items()}


def error_ratios(counts: CallCounts, policy: AlertPolicy, interval_s: int) -> list[Condition]:
    """Products and partitions whose own errors reached the threshold among enough calls of the interval."""
    calls: dict[tuple[str, str], list[int]] = {}  # (kind, name) → [calls, errors]
    for (partition, product, outcome), count in counts.items():
        if outcome in NOT_COUNTED or count <= 0:
            continue
        for kind, name, own in (("product", product, PRODUCT_ERRORS), ("partition", partition, PARTITION_ERRORS)):
            tally = calls.setdefault((kind, name), [0, 0])
            tally[0] += count
            tally[1] += count if outcome in own else 0
    found: list[Condition] = []
    for (kind, name), (total, errors) in sorted(calls.items()):
        if total < policy.error_calls_min or errors * 100 < policy.error_percent_min * total:
            continue
        critical = errors * 100 >= policy.error_percent_critical * total
        what = "failed or timed out or was refused by its open breaker" if kind == "product" else (
            "was refused busy, shed or past its deadline")
        found.append(Condition(
            f"{kind}_error_ratio", "hub", name, Severity.CRITICAL if critical else Severity.MAJOR,
            f"hub: {kind} {name}: {errors:,} of {total:,} calls ({errors * 100 // total} %) {what} "
            f"in the last {interval_s:,} s"))
    return found
