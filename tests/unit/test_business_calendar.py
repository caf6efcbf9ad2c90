"""The bank calendar against dates a Japanese banker knows by heart."""

from __future__ import annotations

import datetime as dt

import pytest

from kanjo.business_calendar import BankCalendar, DateOutOfRange, FixedBusinessDate, business_date_of
from kanjo.kernel import FixedClock
from kanjo.kernel.limits import LimitReached

cal = BankCalendar()
D = dt.date


def test_weekends_national_holidays_and_year_end_are_closed() -> None:
    assert cal.closed_reason(D(2025, 5, 3)) == "Saturday"
    assert cal.closed_reason(D(2025, 5, 4)) == "Sunday"
    assert cal.closed_reason(D(2025, 4, 29)) == "昭和の日"
    assert cal.closed_reason(D(2025, 5, 6)) == "振替休日"  # Children's Day fell on Monday, Greenery Day on Sunday
    assert cal.closed_reason(D(2024, 12, 31)) == "year-end closure"
    assert cal.closed_reason(D(2025, 1, 1)) == "元日"
    assert cal.closed_reason(D(2025, 1, 2)) == "year-end closure"
    assert cal.closed_reason(D(2025, 1, 3)) == "year-end closure"
    assert cal.is_business_day(D(2025, 1, 6))  # the first business day of 2025 (大発会)
    assert cal.is_business_day(D(2024, 2, 29))  # a leap day on a Thursday


def test_golden_week_2025_next_and_previous_business_days() -> None:
    assert cal.next_business_day(D(2025, 5, 2)) == D(2025, 5, 7)
    assert cal.previous_business_day(D(2025, 5, 7)) == D(2025, 5, 2)
    assert cal.business_days(D(2025, 4, 28), D(2025, 5, 9)) == [
        D(2025, 4, 28), D(2025, 4, 30), D(2025, 5, 1), D(2025, 5, 2), D(2025, 5, 7), D(2025, 5, 8), D(2025, 5, 9),
    ]


def test_year_end_to_the_first_business_day() -> None:
    assert cal.next_business_day(D(2025, 12, 30)) == D(2026, 1, 5)
    assert cal.add_business_days(D(2025, 12, 29), 2) == D(2026, 1, 5)
    assert cal.add_business_days(D(2026, 1, 5), -1) == D(2025, 12, 30)


def test_month_end_business_days() -> None:
    assert cal.month_end_business_day(D(2021, 2, 10)) == D(2021, 2, 26)  # 2/27-28 2021 was a weekend
    assert cal.month_end_business_day(D(2024, 2, 1)) == D(2024, 2, 29)
    assert cal.month_end_business_day(D(2025, 5, 15)) == D(2025, 5, 30)  # 5/31 is a Saturday
    assert cal.is_month_end_business_day(D(2025, 5, 30)) and not cal.is_month_end_business_day(D(2025, 5, 29))


def test_gotobi_settles_on_the_previous_business_day() -> None:
    assert cal.is_gotobi(D(2025, 5, 10)) and cal.is_gotobi(D(2025, 5, 31)) and not cal.is_gotobi(D(2025, 5, 11))
    # May 2025: 5/5 (holiday) -> 5/2, 5/10 (Sat) -> 5/9, 5/15, 5/20, 5/25 (Sun) -> 5/23, 5/31 (Sat) -> 5/30
    assert cal.gotobi_settlement_days(2025, 5) == [
        D(2025, 5, 2), D(2025, 5, 9), D(2025, 5, 15), D(2025, 5, 20), D(2025, 5, 23), D(2025, 5, 30),
    ]


def test_a_bank_holiday_of_its_own() -> None:
    own = BankCalendar(extra_closures=frozenset({D(2025, 3, 21)}))  # a system migration weekend, extended
    assert own.closed_reason(D(2025, 3, 21)) == "bank holiday"
    assert own.next_business_day(D(2025, 3, 19)) == D(2025, 3, 24)  # 3/20 is 春分の日


def test_dates_outside_the_published_law_are_refused() -> None:
    with pytest.raises(LimitReached) as exc:
        cal.is_business_day(D(2100, 1, 4))
    assert exc.value.limit.name == "calendar_year_max"
    with pytest.raises(DateOutOfRange):
        cal.is_business_day(D(1989, 12, 29))


def test_the_business_date_is_not_the_wall_clock() -> None:
    sunday_noon_jst = dt.datetime(2025, 5, 4, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    clock = FixedClock(int(sunday_noon_jst.timestamp()) * 1_000_000_000)
    assert business_date_of(clock, cal) == D(2025, 5, 7)  # booked after Golden Week
    late_friday_utc = dt.datetime(2025, 5, 2, 16, 0, tzinfo=dt.UTC)  # already Saturday 01:00 in Tokyo
    clock.set(int(late_friday_utc.timestamp()) * 1_000_000_000)
    assert business_date_of(clock, cal) == D(2025, 5, 7)
    date = FixedBusinessDate(D(2024, 2, 28))
    assert date.roll() == D(2024, 2, 29) and date.roll() == D(2024, 3, 1)


def test_four_hundred_business_days_cover_every_month_end_once() -> None:
    days = []
    day = D(2023, 12, 1)
    for _ in range(400):
        day = cal.next_business_day(day)
        days.append(day)
    month_ends = [d for d in days if cal.is_month_end_business_day(d)]
    months = {(d.year, d.month) for d in days}
    assert len(month_ends) == len({(d.year, d.month) for d in month_ends})
    assert {(d.year, d.month) for d in month_ends} >= months - {(days[-1].year, days[-1].month)}
    assert len(set(days)) == 400 and all(cal.is_business_day(d) for d in days)
