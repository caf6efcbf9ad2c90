"""HTTP shapes of the alerts and capacity routes (times as ISO 8601 UTC)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from kanjo.kernel.ids import format_id
from kanjo.ops.forecast import Forecast
from kanjo.ops.model import Alert


def iso(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


class AlertOut(BaseModel):
    id: str
    key: str = Field(description="rule/component/subject: one open alert per key")
    rule: str
    component: str = Field(description="the component at fault")
    subject: str = Field(description="the limit, product, partition or job")
    source: str = Field(description="who reports it: limits, hub, ops or a registered source")
    severity: str = Field(description="warning, major or critical")
    state: str = Field(description="open or resolved")
    message: str
    first_seen: str
    last_seen: str
    resolved_at: str | None
    count: int = Field(description="evaluations in which the condition held")

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(id=format_id(alert.id), key=alert.key, rule=alert.rule, component=alert.component,
                   subject=alert.subject, source=alert.source, severity=alert.severity.value,
                   state=alert.state.value, message=alert.message, first_seen=iso(alert.first_seen_ms) or "",
                   last_seen=iso(alert.last_seen_ms) or "", resolved_at=iso(alert.resolved_at_ms), count=alert.count)


class AlertsOut(BaseModel):
    state: str
    limit: int
    offset: int
    more: bool = Field(description="more alerts follow this page")
    alerts: list[AlertOut]


class ForecastOut(BaseModel):
    name: str
    unit: str
    maximum: int
    usage: int
    usage_ratio: float
    samples: int = Field(description="usage samples in the forecast window")
    slope_per_hour: float | None = Field(description="the least-squares trend; null until enough samples")
    time_to_full_s: int | None = Field(description="null when flat, falling, unknown or beyond a year; 0 when full")
    full_at: str | None

    @classmethod
    def of(cls, forecast: Forecast, sampled_at_ms: int | None) -> ForecastOut:
        full_at = None
        if forecast.time_to_full_s is not None and sampled_at_ms is not None:
            full_at = iso(sampled_at_ms + forecast.time_to_full_s * 1000)
        return cls(name=forecast.name, unit=forecast.unit, maximum=forecast.maximum, usage=forecast.usage,
                   usage_ratio=round(forecast.usage_ratio, 6), samples=forecast.samples,
                   slope_per_hour=forecast.slope_per_hour, time_to_full_s=forecast.time_to_full_s, full_at=full_at)


class CapacityOut(BaseModel):
    sampled_at: str | None = Field(description="the latest sample (null before the first evaluation)")
    limits: list[ForecastOut]
