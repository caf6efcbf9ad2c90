"""The business date: the bank's accounting day, separate from the wall clock and injected everywhere.

Online postings carry the current business date; the day change (batch) rolls it. Tests and
drills move it by hand to travel through month ends, leap days, holidays and year end.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

from kanjo.business_calendar.model import BankCalendar
from kanjo.kernel.clock import Clock

JST = ZoneInfo("Asia/Tokyo")


class BusinessDate(Protocol):
    def __call__(self) -> dt.date: ...


class FixedBusinessDate:
    """A business date moved only on purpose (by the day change, or by a test)."""

    def __init__(self, date: dt.date, calendar: BankCalendar | None = None) -> None:
        self._calendar = calendar or BankCalendar()
        self._date = date

    def __call__(self) -> dt.date:
        return self._date

    def set(self, date: dt.date) -> None:
        self._date = date

    def roll(self) -> dt.date:
        """The day change: move to the next business day."""
        self._date = self._calendar.next_business_day(self._date)
        return self._date


def business_date_of(clock: Clock, calendar: BankCalendar) -> dt.date:
    """The business date a wall-clock instant belongs to: the day in Japan, or the next business day
    when the bank is closed that day (a transfer on a Sunday is booked on Monday)."""
    today = dt.datetime.fromtimestamp(clock.now_ns() / 1e9, JST).date()
    return calendar.next_business_day(today, include_today=True)
