"""Ordinary-deposit interest (普通預金利息), pure: the rate schedule, 積数, interest, withholding tax, payout days.

Pure standard library. Stated rules (a banker should find each one here, not in the handlers):
- Interest accrues daily on the end-of-day balance (最終残高), 付利単位 1 yen: the balance of a business
  day counts for every calendar day up to the day before the next business day (a Friday's balance
  for Saturday and Sunday too). A negative balance (there should be none) earns nothing.
- Day count actual/365, also in leap years. Rates are quoted in percent p.a. to 0.001 %
  (Decimal); a day earns at the rate in force on that day, so a rate change splits a period.
- Nothing is rounded while interest accrues: per account kanjo keeps 積数 (Σ balance × days) and
  Σ balance × days × rate, an exact integer in units of 0.001 % (rate × 1000 is integral). At
  payout, interest = Σ balance × days × rate% / 365 / 100, rounded DOWN to the yen (円未満切捨て);
  the fraction below one yen is dropped and the next period starts from zero.
- Withholding tax on the gross interest: national 15.315 % and local 5 %, each rounded DOWN to
  the yen separately (individuals); corporations bear national tax only; exempt accounts none.
  The customer is credited the net amount as one line, 決算利息.
- Half-yearly payout (決算): on the first business day of February and of August, covering every
  day from the start of the account's period to the day before the payout day. An account that
  closes is paid its interest to the day before closing, and its period starts again.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

DAYS_PER_YEAR = 365  # actual/365
RATE_SCALE = 1000  # rates are held as integers in 0.001 % p.a. (0.200 % → 200)
# Interest in yen = rate-weighted 積数 (balance × days × rate in 0.001 %) / this: 100 % × 1000 × 365 days.
WEIGHTED_PER_YEN = 100 * RATE_SCALE * DAYS_PER_YEAR
NATIONAL_TAX_PER_100000 = 15_315  # 所得税 15 % + 復興特別所得税 0.315 %
LOCAL_TAX_PER_100 = 5  # 住民税利子割
PAYOUT_MONTHS = (2, 8)  # 決算: February and August


class TaxClass(enum.StrEnum):
    INDIVIDUAL = "individual"  # 20.315 %: national 15.315 % + local 5 %
    CORPORATE = "corporate"  # national 15.315 % only
    EXEMPT = "exempt"  # 非課税


class PayoutKind(enum.StrEnum):
    HALF_YEARLY = "half_yearly"  # 決算利息, every account at once
    CLOSING = "closing"  # 解約利息, one account about to close


@dataclass(frozen=True, slots=True)
class RateSchedule:
    """Ordinary-deposit rates (percent p.a.) by the date they take effect; the latest not after a day applies."""

    effective_from: tuple[dt.date, ...]
    rate_percent: tuple[Decimal, ...]

    @classmethod
    def of(cls, rows: list[tuple[dt.date, Decimal]]) -> RateSchedule:
        ordered = sorted(rows)
        if not ordered:
            raise ValueError("an ordinary-deposit rate schedule needs at least one rate")
        for _, rate in ordered:
            if rate < 0 or (rate * RATE_SCALE) != (rate * RATE_SCALE).to_integral_value():
                raise ValueError(f"a rate is quoted to 0.001 % and is not negative, not {rate}")
        return cls(tuple(day for day, _ in ordered), tuple(rate for _, rate in ordered))

    def rate_on(self, day: dt.date) -> Decimal:
        at = bisect.bisect_right(self.effective_from, day) - 1
        if at < 0:
            raise ValueError(f"no ordinary-deposit rate in force on {day}")
        return self.rate_percent[at]

    def rate_days(self, start: dt.date, end: dt.date) -> int:
        """Σ over the days in [start, end) of the day's rate, in 0.001 % units (0 when end <= start)."""
        total = 0
        day = start
        while day < end:
            at = bisect.bisect_right(self.effective_from, day) - 1
            if at < 0:
                raise ValueError(f"no ordinary-deposit rate in force on {day}")
            next_change = self.effective_from[at + 1] if at + 1 < len(self.effective_from) else end
            until = min(end, next_change)
            total += int(self.rate_percent[at] * RATE_SCALE) * (until - day).days
            day = until
        return total

    def rate_days_to(self, end: dt.date, starts: list[dt.date]) -> list[int]:
        """rate_days(start, end) for each start (one factor per distinct segment start, for set-based SQL)."""
        return [self.rate_days(start, end) for start in starts]


@dataclass(frozen=True, slots=True)
class Tax:
    national_minor: int
    local_minor: int

    @property
    def total_minor(self) -> int:
        return self.national_minor + self.local_minor


def withholding_tax(gross_minor: int, tax_class: TaxClass) -> Tax:
    """National and local tax, each rounded down to the yen separately (integers: exact, no float)."""
    if tax_class is TaxClass.EXEMPT or gross_minor <= 0:
        return Tax(0, 0)
    national = gross_minor * NATIONAL_TAX_PER_100000 // 100_000
    local = gross_minor * LOCAL_TAX_PER_100 // 100 if tax_class is TaxClass.INDIVIDUAL else 0
    return Tax(national, local)


def interest_minor(rate_weighted: int) -> int:
    """Gross interest of a period: its rate-weighted 積数 / (100 × 1000 × 365), rounded down to the yen."""
    return rate_weighted // WEIGHTED_PER_YEN


def accrued_decimal(rate_weighted: int) -> Decimal:
    """The interest accrued so far, unrounded (for display; the payout rounds down once)."""
    return Decimal(rate_weighted) / Decimal(WEIGHTED_PER_YEN)


@dataclass(frozen=True, slots=True)
class Accrual:
    """One account's running totals: 積数 crystallised up to `balance_from`, then `balance_minor` from it on.

    Only a change of balance is written: the last observed end-of-day balance keeps counting until
    a later day-end observes another one (then its days are added to the totals). A half-yearly
    payout rewrites no row: it restarts every period on its date, so totals from before the latest
    completed payout (`restarted_on`) are ignored, and a balance from before it counts from it.
    """

    account_id: int
    tax_class: TaxClass
    period_start: dt.date  # first day of the period as last written (a payout may have restarted it since)
    balance_minor: int  # the end-of-day balance last observed (never negative)
    balance_from: dt.date  # the first day that balance counts for
    balance_days: int  # 積数 over [period_start, balance_from)
    rate_weighted: int  # Σ balance × days × rate (0.001 %) over [period_start, balance_from)

    def period_from(self, restarted_on: dt.date | None) -> dt.date:
        """The first day of the current period, given the latest completed half-yearly payout."""
        return max(self.period_start, restarted_on) if restarted_on else self.period_start

    def totals_before(self, end: dt.date, rates: RateSchedule, restarted_on: dt.date | None) -> tuple[int, int]:
        """(積数, rate-weighted 積数) of the current period up to the day before `end`."""
        return totals_before(self.period_start, self.balance_minor, self.balance_from, self.balance_days,
                             self.rate_weighted, end, restarted_on, rates.rate_days)


def totals_before(period_start: dt.date, balance_minor: int, balance_from: dt.date, balance_days: int,
                  rate_weighted: int, end: dt.date, restarted_on: dt.date | None,
                  rate_days: Callable[[dt.date, dt.date], int]) -> tuple[int, int]:
    """The rule of `Accrual.totals_before` on plain values (the payout applies it to a million rows)."""
    if restarted_on is not None and period_start < restarted_on:
        balance_days = rate_weighted = 0  # paid by that payout (or dropped: less than a yen, or closed)
        balance_from = max(balance_from, restarted_on)
    days = max(0, (end - balance_from).days)
    return balance_days + balance_minor * days, rate_weighted + balance_minor * rate_days(balance_from, end)


@dataclass(frozen=True, slots=True)
class InterestPayment:
    """What one account is paid for one period: gross interest, the taxes withheld and the net credit."""

    account_id: int
    kind: PayoutKind
    paid_on: dt.date
    period_start: dt.date
    period_end: dt.date  # inclusive: the day before paid_on
    balance_days: int  # 積数
    gross_minor: int
    tax: Tax
    tax_class: TaxClass

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.tax.total_minor


def payment_for(account_id: int, kind: PayoutKind, paid_on: dt.date, period_start: dt.date, balance_days: int,
                rate_weighted: int, tax_class: TaxClass) -> InterestPayment:
    gross = interest_minor(rate_weighted)
    tax = withholding_tax(gross, tax_class)
    if tax.total_minor > gross:
        raise AssertionError("tax never exceeds the interest it is withheld from")
    return InterestPayment(account_id, kind, paid_on, period_start, paid_on - dt.timedelta(days=1), balance_days,
                           gross, tax, tax_class)


class Calendar(Protocol):
    def is_business_day(self, day: dt.date) -> bool: ...
    def next_business_day(self, day: dt.date, *, include_today: bool = False) -> dt.date: ...
    def previous_business_day(self, day: dt.date, *, include_today: bool = False) -> dt.date: ...


def interest_payout_day(calendar: Calendar, year: int, month: int) -> dt.date:
    """The half-yearly payout day of a payout month: its first business day."""
    if month not in PAYOUT_MONTHS:
        raise ValueError(f"interest is paid in months {PAYOUT_MONTHS}, not {month}")
    return calendar.next_business_day(dt.date(year, month, 1), include_today=True)


def is_interest_payout_day(calendar: Calendar, day: dt.date) -> bool:
    return day.month in PAYOUT_MONTHS and interest_payout_day(calendar, day.year, day.month) == day


def accrual_end(calendar: Calendar, business_date: dt.date) -> dt.date:
    """The first day a business day's end-of-day balance no longer counts for: the next business day."""
    return calendar.next_business_day(business_date)
