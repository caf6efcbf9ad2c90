"""総合口座 overdraft rules without a database: limit, drawing and repayment, secured rates, interest, charge days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kanjo.deposits.overdraft import (
    Fold,
    Movement,
    Pledge,
    charge_point,
    drawn_after_money_out,
    end_of_day_drawn,
    interest_of,
    interest_product,
    overdraft_account_id,
    overdraft_limit,
    repaid_by_money_in,
)
from kanjo.kernel.invariants import InvariantViolation

D = dt.date


def pledge(principal: int, rate: str, placed_on: dt.date = D(2026, 1, 5), deposit_id: int = 1) -> Pledge:
    return Pledge(deposit_id, principal, Decimal(rate), placed_on)


def test_the_limit_is_90_percent_of_the_pledged_principal_rounded_down_and_at_most_two_million() -> None:
    assert overdraft_limit([]) == 0
    assert overdraft_limit([pledge(1_000_000, "0.125")]) == 900_000
    assert overdraft_limit([pledge(333_333, "0.125")]) == 299_999  # 299,999.7 → ¥299,999
    assert overdraft_limit([pledge(1_000_000, "0.125"), pledge(1_000_000, "0.250", deposit_id=2)]) == 1_800_000
    assert overdraft_limit([pledge(2_222_222, "0.125")]) == 1_999_999
    assert overdraft_limit([pledge(2_222_223, "0.125")]) == 2_000_000  # 2,000,000.7: the ceiling
    assert overdraft_limit([pledge(3_000_000, "0.125"), pledge(5_000_000, "0.2", deposit_id=2)]) == 2_000_000


def test_money_out_draws_only_the_shortfall_and_spare_funds_count_first() -> None:
    assert drawn_after_money_out(available_minor=100_000, drawn_minor=0, amount_minor=300_000) == 200_000
    assert drawn_after_money_out(available_minor=100_000, drawn_minor=0, amount_minor=100_000) == 0
    assert drawn_after_money_out(available_minor=0, drawn_minor=200_000, amount_minor=50_000) == 250_000
    # ¥400,000 of a time deposit's payout arrived while ¥500,000 was drawn: ¥50,000 out leaves ¥150,000 drawn
    assert drawn_after_money_out(available_minor=400_000, drawn_minor=500_000, amount_minor=50_000) == 150_000
    assert drawn_after_money_out(available_minor=600_000, drawn_minor=500_000, amount_minor=50_000) == 0


def test_money_in_repays_first_up_to_what_is_drawn() -> None:
    assert repaid_by_money_in(available_minor=0, drawn_minor=200_000, amount_minor=150_000) == 150_000
    assert repaid_by_money_in(available_minor=0, drawn_minor=50_000, amount_minor=80_000) == 50_000
    assert repaid_by_money_in(available_minor=30_000, drawn_minor=0, amount_minor=80_000) == 0
    assert repaid_by_money_in(available_minor=10_000, drawn_minor=50_000, amount_minor=20_000) == 30_000


def test_deposits_secure_the_overdraft_lowest_rate_first_each_at_its_rate_plus_half_a_percent() -> None:
    one_year = pledge(1_000_000, "0.125", D(2026, 3, 6), 1)
    five_years = pledge(1_000_000, "0.250", D(2026, 1, 6), 2)
    # ¥1,200,000 drawn: ¥900,000 on the 0.125 % deposit at 0.625 %, ¥300,000 on the 0.250 % one at 0.750 %
    assert interest_product(1_200_000, [five_years, one_year]) == Decimal("787500.000")
    # ten days of it: 7,875,000 / 36,500 = 215.75 → ¥215
    assert interest_of(interest_product(1_200_000, [one_year, five_years]) * 10) == 215
    # the same rate: the older placement secures first (it does not change the amount, only the order)
    assert interest_product(500_000, [pledge(1_000_000, "0.125", D(2026, 5, 1), 3), one_year]) == Decimal(
        "312500.000")
    # interest added beyond the cover bears the highest pledged rate; without any pledge, the spread alone
    assert interest_product(900_102, [one_year]) == 900_000 * Decimal("0.625") + 102 * Decimal("0.625")
    assert interest_product(1_800_010, [one_year, five_years]) == (
        900_000 * Decimal("0.625") + 900_000 * Decimal("0.750") + 10 * Decimal("0.750"))
    assert interest_product(1_000, []) == Decimal("500.0")


def test_interest_is_actual_365_rounded_down_once_for_the_period() -> None:
    # ¥500,000 for 12 days at 0.625 %: 3,750,000 / 36,500 = 102.74 → ¥102
    assert interest_of(interest_product(500_000, [pledge(1_000_000, "0.125")]) * 12) == 102
    # a leap year still divides by 365: ¥900,000 for 366 days at 0.625 %: 205,875,000 / 36,500 = 5,640.4 → ¥5,640
    assert interest_of(interest_product(900_000, [pledge(1_000_000, "0.125")]) * 366) == 5_640
    # rounded once for the period: 4 days of ¥0.32 are ¥1, not 4 × ¥0
    tiny = interest_product(23_360, [])  # 23,360 × 0.5 / 36,500 = ¥0.32 a day
    assert interest_of(tiny) == 0 and interest_of(tiny * 4) == 1


def test_interest_is_charged_for_the_days_before_1_february_and_1_august() -> None:
    assert charge_point(D(2026, 8, 1)) == D(2026, 8, 1)
    assert charge_point(D(2026, 8, 3)) == D(2026, 8, 1)
    assert charge_point(D(2026, 7, 31)) == D(2026, 2, 1)
    assert charge_point(D(2026, 1, 31)) == D(2025, 8, 1)
    assert charge_point(D(2027, 2, 1)) == D(2027, 2, 1)


def test_end_of_day_balances_count_movements_by_business_date_and_carry_over_weekends() -> None:
    fold = Fold(timestamp=10, volume_minor=200_000, drawn_minor=200_000)
    moves = [Movement(11, D(2026, 7, 17), 50_000), Movement(12, D(2026, 7, 17), -30_000),  # Friday
             Movement(13, D(2026, 7, 20), -220_000),  # Monday: repaid in full
             Movement(14, D(2026, 7, 21), 5_000)]  # booked after the last day accrued
    days = [D(2026, 7, 16), D(2026, 7, 17), D(2026, 7, 18), D(2026, 7, 19), D(2026, 7, 20)]
    eods, after = end_of_day_drawn(fold, moves, days)
    assert eods == [200_000, 220_000, 220_000, 220_000, 0]
    assert after == Fold(13, 200_000 + 50_000 + 30_000 + 220_000, 0)
    # nothing new: the fold stays; no day: nothing
    assert end_of_day_drawn(after, [], days) == ([0] * 5, after)
    assert end_of_day_drawn(fold, moves, []) == ([], fold)


def test_a_movement_booked_out_of_order_stays_unfolded_until_its_day() -> None:
    fold = Fold(0, 0, 0)
    moves = [Movement(1, D(2026, 7, 21), 10_000), Movement(2, D(2026, 7, 20), 7_000)]  # a back-dated posting
    eods, after = end_of_day_drawn(fold, moves, [D(2026, 7, 20)])
    assert eods == [7_000]
    assert after == fold  # the first movement in ledger order is after the day: both are read again next time
    eods, after = end_of_day_drawn(fold, moves, [D(2026, 7, 20), D(2026, 7, 21)])
    assert (eods, after) == ([7_000, 17_000], Fold(2, 17_000, 17_000))


def test_an_overdraft_never_goes_below_zero() -> None:
    with pytest.raises(InvariantViolation):
        end_of_day_drawn(Fold(0, 0, 0), [Movement(1, D(2026, 7, 20), -1)], [D(2026, 7, 20)])


def test_each_general_account_has_its_own_overdraft_account_id() -> None:
    assert overdraft_account_id(1) == overdraft_account_id(1) != overdraft_account_id(2)
    assert overdraft_account_id(1) not in (0, 1)
