"""Ordinary-deposit interest, pure: rates by day, 積数, rounding down, withholding tax, payout days."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    PayoutKind,
    RateSchedule,
    TaxClass,
    interest,
    interest_payout_day,
    is_interest_payout_day,
)
from kanjo.deposits.interest import INTEREST_NAMESPACE, credit_transfer_id
from kanjo.deposits.interest_model import (
    Accrual,
    accrual_end,
    accrued_decimal,
    interest_minor,
    payment_for,
    withholding_tax,
)
from kanjo.time_deposits import TaxClass as TimeDepositTaxClass
from kanjo.time_deposits import service as time_deposit_service
from kanjo.time_deposits import withholding_tax as time_deposit_withholding_tax

CALENDAR = BankCalendar()
RATES = RateSchedule.of([(dt.date(2000, 1, 1), Decimal("0.100")), (dt.date(2025, 3, 1), Decimal("0.200"))])


def test_the_rate_of_a_day_is_the_latest_in_force() -> None:
    assert RATES.rate_on(dt.date(2025, 2, 28)) == Decimal("0.100")
    assert RATES.rate_on(dt.date(2025, 3, 1)) == Decimal("0.200")
    with pytest.raises(ValueError):
        RATES.rate_on(dt.date(1999, 12, 31))
    with pytest.raises(ValueError):
        RateSchedule.of([(dt.date(2000, 1, 1), Decimal("0.0005"))])  # quoted to 0.001 % only


def test_rate_days_split_at_a_rate_change() -> None:
    # Friday 28 Feb 2025 to Monday 3 Mar: Fri at 0.100 %, Sat 1 and Sun 2 Mar at 0.200 % (0.001 % units)
    assert RATES.rate_days(dt.date(2025, 2, 28), dt.date(2025, 3, 3)) == 100 + 200 + 200
    assert RATES.rate_days(dt.date(2026, 2, 2), dt.date(2026, 8, 3)) == 182 * 200
    assert RATES.rate_days(dt.date(2026, 2, 2), dt.date(2026, 2, 2)) == 0
    assert RATES.rate_days_to(dt.date(2025, 3, 3), [dt.date(2025, 2, 27), dt.date(2025, 3, 2)]) == [600, 200]


def test_interest_is_rounded_down_once_at_payout() -> None:
    # ¥1,000,000 for 182 days at 0.200 %: 997.26 → ¥997; the unrounded amount is kept until then
    weighted = 1_000_000 * 182 * 200
    assert accrued_decimal(weighted).quantize(Decimal("0.0001")) == Decimal("997.2603")
    assert interest_minor(weighted) == 997
    # ¥1,000 for 182 days: ¥0.997 → nothing
    assert interest_minor(1_000 * 182 * 200) == 0
    # exactly one yen: ¥1 × 365 days × 100 % → ¥1
    assert interest_minor(365 * 100_000) == 1 and interest_minor(365 * 100_000 - 1) == 0


def test_withholding_tax_each_part_rounded_down() -> None:
    assert withholding_tax(997, TaxClass.INDIVIDUAL).national_minor == 152  # 152.69
    assert withholding_tax(997, TaxClass.INDIVIDUAL).local_minor == 49  # 49.85
    assert withholding_tax(653, TaxClass.INDIVIDUAL).national_minor == 100  # 100.007
    assert withholding_tax(997, TaxClass.CORPORATE).local_minor == 0
    assert withholding_tax(997, TaxClass.EXEMPT).total_minor == 0
    assert withholding_tax(6, TaxClass.INDIVIDUAL).total_minor == 0  # 0.92 + 0.30


def test_withholding_tax_agrees_with_time_deposits_for_every_amount_to_20000() -> None:
    classes = {TaxClass.INDIVIDUAL: TimeDepositTaxClass.INDIVIDUAL, TaxClass.CORPORATE: TimeDepositTaxClass.CORPORATE,
               TaxClass.EXEMPT: TimeDepositTaxClass.EXEMPT}
    for ours, theirs in classes.items():
        for gross in range(20_001):
            mine = withholding_tax(gross, ours)
            other = time_deposit_withholding_tax(gross, theirs)
            assert (mine.national_minor, mine.local_minor) == (other.national_minor, other.local_minor), gross


def test_a_payment_conserves_every_yen() -> None:
    p = payment_for(7, PayoutKind.HALF_YEARLY, dt.date(2026, 8, 3), dt.date(2026, 2, 2), 182_000_000,
                    182_000_000 * 200, TaxClass.INDIVIDUAL)
    assert (p.gross_minor, p.tax.national_minor, p.tax.local_minor, p.net_minor) == (997, 152, 49, 796)
    assert p.period_end == dt.date(2026, 8, 2)


def test_an_accrual_counts_its_last_balance_to_the_day_before() -> None:
    # 積数 500,000 × 88 days crystallised; ¥800,000 from Friday 1 May
    a = Accrual(1, TaxClass.INDIVIDUAL, dt.date(2026, 2, 2), 800_000, dt.date(2026, 5, 1), 44_000_000,
                44_000_000 * 200)
    assert a.totals_before(dt.date(2026, 5, 7), RATES, None) == (48_800_000, 48_800_000 * 200)
    assert a.totals_before(dt.date(2026, 8, 3), RATES, None) == (119_200_000, 119_200_000 * 200)
    # A payout on 3 Aug paid all that; without rewriting the row, the next period counts from 3 Aug.
    assert a.period_from(dt.date(2026, 8, 3)) == dt.date(2026, 8, 3)
    assert a.totals_before(dt.date(2027, 2, 1), RATES, dt.date(2026, 8, 3)) == (800_000 * 182, 800_000 * 182 * 200)
    # A payout before the row's period started changes nothing.
    assert a.totals_before(dt.date(2026, 8, 3), RATES, dt.date(2026, 2, 2)) == (119_200_000, 119_200_000 * 200)


def test_derived_ids_are_uuid5() -> None:
    account = 0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0
    name = f"{account:032x}:2026-08-03:half_yearly:credit"
    assert credit_transfer_id(account, dt.date(2026, 8, 3), PayoutKind.HALF_YEARLY) == uuid.uuid5(
        INTEREST_NAMESPACE, name).int
    derive = interest._credit_ids(dt.date(2026, 8, 3), PayoutKind.HALF_YEARLY)
    for other in (account, 1, 2**128 - 2):
        assert derive(other) == credit_transfer_id(other, dt.date(2026, 8, 3), PayoutKind.HALF_YEARLY)


def test_payout_days_are_the_first_business_days_of_february_and_august() -> None:
    assert interest_payout_day(CALENDAR, 2026, 2) == dt.date(2026, 2, 2)  # 1 Feb is a Sunday
    assert interest_payout_day(CALENDAR, 2026, 8) == dt.date(2026, 8, 3)  # 1 Aug is a Saturday
    assert interest_payout_day(CALENDAR, 2027, 2) == dt.date(2027, 2, 1)
    assert is_interest_payout_day(CALENDAR, dt.date(2026, 8, 3))
    assert not is_interest_payout_day(CALENDAR, dt.date(2026, 8, 4))
    with pytest.raises(ValueError):
        interest_payout_day(CALENDAR, 2026, 3)


def test_a_business_days_balance_counts_until_the_next_business_day() -> None:
    assert accrual_end(CALENDAR, dt.date(2026, 7, 31)) == dt.date(2026, 8, 3)  # Friday → Monday
    assert accrual_end(CALENDAR, dt.date(2026, 5, 1)) == dt.date(2026, 5, 7)  # across Golden Week


def test_time_deposit_settlement_ids_are_still_uuid5() -> None:
    """Maturity derives its ids without UUID objects now: the same ids as before, so replays still match."""
    deposit = 0x0FED_CBA9_8765_4321_0FED_CBA9_8765_4321
    for generation, leg in ((1, "interest"), (7, "early-payout")):
        assert time_deposit_service.settlement_transfer_id(deposit, generation, leg) == uuid.uuid5(
            time_deposit_service.REQUEST_NAMESPACE, f"{deposit:032x}:{generation}:{leg}").int
