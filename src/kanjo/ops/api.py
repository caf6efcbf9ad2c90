"""HTTP routes of the ops context: the alerts (open by default) and every limit's capacity forecast. The service is
read from `request.app.state.ops`."""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kanjo.kernel.limits import limits
from kanjo.ops.limits import ALERT_HISTORY_MAX, ALERTS_PAGE_ROWS_MAX, OPEN_ALERTS_MAX
from kanjo.ops.model import AlertState
from kanjo.ops.schemas import AlertOut, AlertsOut, CapacityOut, ForecastOut, iso
from kanjo.ops.service import Ops
from kanjo.platform.http import ERROR_RESPONSES

router = APIRouter(tags=["operations"], responses=ERROR_RESPONSES)
log = structlog.get_logger("kanjo.ops")
STATES: dict[str, AlertState | None] = {"open": AlertState.OPEN, "resolved": AlertState.RESOLVED, "all": None}


def _ops(request: Request) -> Ops:
    ops: Ops | None = getattr(request.app.state, "ops", None)
    if ops is None:
        raise HTTPException(503, {"error": "ops_not_configured", "message": "this process evaluates no alerts"})
    return ops


@router.get("/v1/alerts", response_model=AlertsOut, summary="Alerts, newest first: open (default), resolved or all")
async def alerts(
    request: Request,
    state: Annotated[Literal["open", "resolved", "all"], Query(description="which alerts")] = "open",
    limit: Annotated[int, Query(ge=1, le=ALERTS_PAGE_ROWS_MAX, description="alerts per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=ALERT_HISTORY_MAX + OPEN_ALERTS_MAX, description="alerts skipped")] = 0,
) -> AlertsOut:
    page = await _ops(request).list_alerts(STATES[state], limit + 1, offset)
    return AlertsOut(state=state, limit=limit, offset=offset, more=len(page) > limit,
                     alerts=[AlertOut.of(a) for a in page[:limit]])


@router.get("/v1/capacity", response_model=CapacityOut,
            summary="Every named limit: usage, ratio, trend per hour and estimated time to full")
async def capacity(request: Request) -> CapacityOut:
    snapshot = _ops(request).capacity_snapshot()
    return CapacityOut(sampled_at=iso(snapshot.sampled_at_ms),
                       limits=[ForecastOut.of(f, snapshot.sampled_at_ms) for f in snapshot.forecasts])


class ProvisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maximum: Annotated[int, Field(strict=True, ge=1, le=2**62, description="the capacity now provisioned")]
    by: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
                             description="the operator, for the log")]


@router.put("/v1/capacity/{name}", summary="Provision a capacity limit anew (storage grown): only adjustable limits;"
            " what a job's pre-flight and the alerts judge by from now on")
async def provision(name: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")], body: ProvisionIn) -> dict[str, object]:
    try:
        before = limits.get(name).maximum
        limit = limits.set_maximum(name, body.maximum)
    except KeyError:
        raise HTTPException(404, {"error": "unknown_limit", "message": f"no limit named {name}"}) from None
    except ValueError as e:
        raise HTTPException(409, {"error": "not_adjustable", "message": str(e)}) from None
    usage = (await limits.measure([name]))[name]
    log.warning("capacity_provisioned", limit=name, maximum_before=before, maximum=limit.maximum, by=body.by,
                usage=usage)
    return {"name": name, "maximum": limit.maximum, "maximum_before": before, "unit": limit.unit, "usage": usage,
            "usage_ratio": round(usage / limit.maximum, 6), "by": body.by}
