"""HTTP routes of the business calendar: one day's status, and the business days of a range."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from kanjo.business_calendar.model import YEAR_MAX, YEAR_MIN, BankCalendar, DateOutOfRange
from kanjo.kernel.limits import LimitReached, limits
from kanjo.platform.http import ERROR_RESPONSES

RANGE_DAYS_MAX = limits.declare(
    "calendar_range_days_max", 732, "days", "two years of days in one answer; page by ranges for more",
)
router = APIRouter(prefix="/v1/calendar", tags=["calendar"], responses=ERROR_RESPONSES)
calendar = BankCalendar()


class DayOut(BaseModel):
    date: dt.date
    business_day: bool
    reason: str | None
    next_business_day: dt.date
    previous_business_day: dt.date
    month_end_business_day: dt.date
    gotobi: bool


class BusinessDaysOut(BaseModel):
    start: dt.date
    end: dt.date
    business_days: list[dt.date]


DateIn = Annotated[dt.date, Path(description=f"YYYY-MM-DD, {YEAR_MIN}-{YEAR_MAX}")]


@router.get("/days/{date}", summary="Is the bank open that day; the neighbouring business days", response_model=DayOut)
async def day(date: DateIn) -> DayOut:
    try:
        info = calendar.info(date)
    except (DateOutOfRange, LimitReached) as exc:
        raise HTTPException(422, f"date: {exc}") from None
    return DayOut(**{f: getattr(info, f) for f in DayOut.model_fields})


@router.get("/business-days", summary="The business days from start to end (both included)",
            response_model=BusinessDaysOut)
async def business_days(
    start: Annotated[dt.date, Query(description="YYYY-MM-DD")],
    end: Annotated[dt.date, Query(description="YYYY-MM-DD, not before start")],
) -> BusinessDaysOut:
    if end < start:
        raise HTTPException(422, "end is before start")
    span = (end - start).days + 1
    if span > RANGE_DAYS_MAX.maximum:
        raise LimitReached(RANGE_DAYS_MAX, span)
    try:
        days = calendar.business_days(start, end)
    except (DateOutOfRange, LimitReached) as exc:
        raise HTTPException(422, f"start/end: {exc}") from None
    return BusinessDaysOut(start=start, end=end, business_days=days)
