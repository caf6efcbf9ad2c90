"""Japanese bank business days: weekends, national holidays (with substitute days) and 12/31-1/3.

Pure domain: a `BankCalendar` answers which dates a bank is open, the next and previous business
day, month ends and 五十日 (gotōbi). National holidays come from the `holidays` package, which
follows the Japanese holiday law (振替休日, 国民の休日, the equinox days).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import holidays

from kanjo.kernel.limits import LimitReached, limits

YEAR_MIN = 1990
YEAR_MAX = 2099  # the holiday law is computed up to here; beyond, holidays would silently be missing
CALENDAR_YEARS = limits.declare(
    "calendar_year_max", YEAR_MAX, "year",
    "national holidays (equinox days) are published and computed up to 2099; later dates are refused",
)
SEARCH_DAYS_MAX = 30  # the longest run of bank holidays is far shorter (year end + a weekend: 6 days)
BANK_YEAR_END_CLOSURES = ((12, 31), (1, 2), (1, 3))  # 1/1 is a national holiday
GOTOBI_DAYS = (5, 10, 15, 20, 25)


class DateOutOfRange(ValueError):
    """A date the calendar cannot answer for (outside YEAR_MIN..YEAR_MAX)."""


@dataclass(frozen=True, slots=True)
class DayInfo:
    date: dt.date
    business_day: bool
    reason: str | None  # why the bank is closed: "Saturday", "Sunday", a holiday's name, "year-end closure"
    next_business_day: dt.date
    previous_business_day: dt.date
    month_end_business_day: dt.date
    gotobi: bool  # a 5th, 10th, 15th, 20th, 25th or the last day of the month


class BankCalendar:
    """Business days of a Japanese bank. Immutable; safe to share."""

    def __init__(self, extra_closures: frozenset[dt.date] = frozenset()) -> None:
        self._extra = extra_closures  # e.g. a bank's own system holiday

    # -- questions about one day ------------------------------------------------------------------

    def closed_reason(self, day: dt.date) -> str | None:
        _check(day)
        if day in self._extra:
            return "bank holiday"
        if day.weekday() == 5:
            return "Saturday"
        if day.weekday() == 6:
            return "Sunday"
        name = _national_holidays(day.year).get(day)
        if name:
            return name
        if (day.month, day.day) in BANK_YEAR_END_CLOSURES:
            return "year-end closure"
        return None

    def is_business_day(self, day: dt.date) -> bool:
        return self.closed_reason(day) is None

    def next_business_day(self, day: dt.date, *, include_today: bool = False) -> dt.date:
        return self._walk(day, +1, include_today)

    def previous_business_day(self, day: dt.date, *, include_today: bool = False) -> dt.date:
        return self._walk(day, -1, include_today)

    def add_business_days(self, day: dt.date, count: int) -> dt.date:
        """`count` business days after (or before, if negative) `day`."""
        step = 1 if count >= 0 else -1
        for _ in range(abs(count)):
            day = self._walk(day, step, False)
        return day

    def month_end_business_day(self, day: dt.date) -> dt.date:
        """The last business day of the month `day` is in (月末営業日)."""
        return self.previous_business_day(_last_of_month(day), include_today=True)

    def is_month_end_business_day(self, day: dt.date) -> bool:
        return self.is_business_day(day) and self.month_end_business_day(day) == day

    def is_gotobi(self, day: dt.date) -> bool:
        """五十日: the 5th, 10th, 15th, 20th, 25th and the last day of the month (calendar days)."""
        return day.day in GOTOBI_DAYS or day == _last_of_month(day)

    def gotobi_settlement_days(self, year: int, month: int) -> list[dt.date]:
        """The business days on which 五十日 payments settle that month: a 五十日 that is not a
        business day settles on the previous business day (the usual practice for payments)."""
        first = dt.date(year, month, 1)
        days = [dt.date(year, month, d) for d in GOTOBI_DAYS] + [_last_of_month(first)]
        settled = sorted({self.previous_business_day(d, include_today=True) for d in days})
        return settled

    def info(self, day: dt.date) -> DayInfo:
        reason = self.closed_reason(day)
        return DayInfo(
            date=day, business_day=reason is None, reason=reason,
            next_business_day=self.next_business_day(day),
            previous_business_day=self.previous_business_day(day),
            month_end_business_day=self.month_end_business_day(day),
            gotobi=self.is_gotobi(day),
        )

    def business_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Business days from `start` to `end`, both included."""
        out = []
        day = start
        while day <= end:
            if self.is_business_day(day):
                out.append(day)
            day += dt.timedelta(days=1)
        return out

    # -- internals ---------------------------------------------------------------------------------

    def _walk(self, day: dt.date, step: int, include_today: bool) -> dt.date:
        if include_today and self.is_business_day(day):
            return day
        for _ in range(SEARCH_DAYS_MAX):
            day = day + dt.timedelta(days=step)
            if self.is_business_day(day):
                return day
        raise AssertionError(f"no business day within {SEARCH_DAYS_MAX} days of {day}")


def _check(day: dt.date) -> None:
    if not YEAR_MIN <= day.year <= YEAR_MAX:
        if day.year > YEAR_MAX:
            raise LimitReached(CALENDAR_YEARS, day.year)
        raise DateOutOfRange(f"{day.isoformat()} is before {YEAR_MIN}: the calendar starts in {YEAR_MIN}")


def _last_of_month(day: dt.date) -> dt.date:
    following = day.replace(day=28) + dt.timedelta(days=4)
    return following - dt.timedelta(days=following.day)


@lru_cache(maxsize=YEAR_MAX - YEAR_MIN + 1)
def _national_holidays(year: int) -> dict[dt.date, str]:
    return dict(holidays.Japan(years=year, language="ja"))
