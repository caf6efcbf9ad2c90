"""HTTP shapes of the hub's operations routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OpsIn(BaseModel):
    """An operator's action on a product's breaker, with the reason recorded in the log."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, pattern=r"\S", description="why, e.g. the incident number")


class BreakerOut(BaseModel):
    product: str
    status: str = Field(description="up, degraded (half-open) or down (open)")
    breaker: str = Field(description="closed, half_open or open")
    error_ratio: float
    since: str
    forced_reason: str | None
