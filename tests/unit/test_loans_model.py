"""Card loans without a database: the legal rate ceiling, terms, 積数 interest, collection dates, arrears, states."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from kanjo.kernel.invariants import InvariantViolation
from kanjo.loans.model import (
    Action,
    Allocation,
    Channel,
    Contract,
    IllegalTransition,
    Outstanding,
    Refused,
    Status,
    accrue,
    accrued,
    after_arrears,
    allocate_repayment,
    check_amount,
    check_can_draw,
    check_terms,
    first_due_on,
    following_due_on,
    interest_minor,
    pay_oldest_first,
    plan_collection,
    rate_ceiling_percent,
    settle_collection,
    transition,
    view_of,
)

LINE_MAX = 8_000_000


def contract(**changes: object) -> Contract:
    c = Contract(id=1, customer_id=2, account_id=3, credit_line_minor=1_000_000, rate_percent=Decimal("14.500"),
                 collection_day=10, status=Status.ACTIVE, opened_on=dt.date(2026, 4, 1), closed_on=None,
                 accrued_through=dt.date(2026, 3, 31), balance_days_current=0, balance_days_next=0,
                 due_on=dt.date(2026, 5, 10), collect_on=dt.date(2026, 5, 11), arrears_minor=0, arrears_since=None,
                 collected_through=None)
    return replace(c, **changes)  # type: ignore[arg-type]


# -- the Interest Rate Restriction Act and the terms ----------------------------------------------------

@pytest.mark.parametrize(("line", "ceiling"), [
    (10_000, "20"), (99_999, "20"), (100_000, "18"), (999_999, "18"), (1_000_000, "15"), (8_000_000, "15"),
])
def test_rate_ceiling_follows_the_credit_line(line: int, ceiling: str) -> None:
    assert rate_ceiling_percent(line) == Decimal(ceiling)


def test_terms_at_the_ceiling_pass_and_above_it_are_refused() -> None:
    check_terms(1_000_000, Decimal("15.000"), 10, LINE_MAX)
    check_terms(990_000, Decimal("18"), 28, LINE_MAX)
    with pytest.raises(Refused) as refused:
        check_terms(1_000_000, Decimal("15.001"), 10, LINE_MAX)
    assert refused.value.code == "rate_above_legal_maximum"
    assert "15 %" in str(refused.value) and "利息制限法" in str(refused.value)
    with pytest.raises(Refused) as refused:
        check_terms(990_000, Decimal("18.001"), 10, LINE_MAX)
    assert refused.value.code == "rate_above_legal_maximum"


@pytest.mark.parametrize(("line", "rate", "day", "code"), [
    (90_000, "14.5", 10, "invalid_credit_line"),  # below the smallest line
    (105_000, "14.5", 10, "invalid_credit_line"),  # not in 万円
    (500_000, "0", 10, "invalid_rate"),
    (500_000, "-1", 10, "invalid_rate"),
    (500_000, "14.5005", 10, "invalid_rate"),  # quoted to 0.001 %
    (500_000, "NaN", 10, "invalid_rate"),
    (500_000, "14.5", 0, "invalid_collection_day"),
    (500_000, "14.5", 29, "invalid_collection_day"),  # not every month has a 29th
])
def test_terms_refused_with_a_reason(line: int, rate: str, day: int, code: str) -> None:
    with pytest.raises(Refused) as refused:
        check_terms(line, Decimal(rate), day, LINE_MAX)
    assert refused.value.code == code


def test_amounts_at_least_one_yen_and_cash_in_thousands() -> None:
    check_amount(1, Channel.ACCOUNT)
    check_amount(30_000, Channel.CASH)
    for amount, channel in [(0, Channel.ACCOUNT), (-5, Channel.CASH), (1_500, Channel.CASH)]:
        with pytest.raises(Refused) as refused:
            check_amount(amount, channel)
        assert refused.value.code == "invalid_amount"


# -- interest ----------------------------------------------------------------------------------------------

def test_interest_is_the_balance_days_at_the_rate_over_365_rounded_down() -> None:
    # ¥500,000 for 14 days, then ¥300,000 for 26 days, at 14.5 %:
    # 積数 7,000,000 + 7,800,000 = 14,800,000; × 14.5 % / 365 = ¥5,879.45… → ¥5,879
    assert interest_minor(500_000 * 14 + 300_000 * 26, Decimal("14.500")) == 5_879
    assert interest_minor(0, Decimal("14.500")) == 0
    # A leap year still divides by 365: ¥1,000,000 all of 2028 (366 days) at 15 % is ¥150,410, not ¥150,000.
    assert interest_minor(1_000_000 * 366, Decimal("15")) == 150_410
    # February 2028 (29 days): 29,000,000 × 15 % / 365 = ¥11,917.8… → ¥11,917
    assert interest_minor(1_000_000 * 29, Decimal("15")) == 11_917


def test_a_fridays_accrual_covers_the_weekend_before_the_collection_date() -> None:
    c = contract(accrued_through=dt.date(2026, 5, 7), balance_days_current=1_000)
    a = accrue(c, 300_000, dt.date(2026, 5, 10))  # Fri 5/8 → Sun 5/10; collected on Mon 5/11
    assert (a.from_date, a.through, a.days) == (dt.date(2026, 5, 8), dt.date(2026, 5, 10), 3)
    assert (a.balance_days_current, a.balance_days_next) == (900_000, 0)
    after = accrued(c, a)
    assert (after.accrued_through, after.balance_days_current, after.balance_days_next) == (
        dt.date(2026, 5, 10), 901_000, 0)


def test_days_from_the_collection_date_on_belong_to_the_next_period() -> None:
    c = contract(accrued_through=dt.date(2026, 5, 7), collect_on=dt.date(2026, 5, 9))
    a = accrue(c, 100_000, dt.date(2026, 5, 10))
    assert (a.balance_days_current, a.balance_days_next) == (100_000, 200_000)  # 5/8 | 5/9, 5/10
    on_the_day = accrue(contract(accrued_through=dt.date(2026, 5, 10)), 100_000, dt.date(2026, 5, 11))
    assert (on_the_day.balance_days_current, on_the_day.balance_days_next) == (0, 100_000)
    with pytest.raises(InvariantViolation):
        accrue(c, 100_000, dt.date(2026, 5, 7))  # already accrued


def test_accrued_interest_is_shown_to_the_sen_rounded_down() -> None:
    c = contract(balance_days_current=14_800_000, balance_days_next=300_000)
    # 15,100,000 × 14.5 % / 365 = 5,998.6301…
    assert c.accrued_interest() == Decimal("5998.63")


# -- collection dates ------------------------------------------------------------------------------------

def test_the_first_collection_is_the_day_in_the_month_after_opening() -> None:
    assert first_due_on(dt.date(2026, 4, 1), 10) == dt.date(2026, 5, 10)
    assert first_due_on(dt.date(2026, 4, 25), 10) == dt.date(2026, 5, 10)
    assert first_due_on(dt.date(2026, 12, 20), 5) == dt.date(2027, 1, 5)
    assert first_due_on(dt.date(2026, 1, 31), 28) == dt.date(2026, 2, 28)
    assert following_due_on(dt.date(2026, 12, 10), 10) == dt.date(2027, 1, 10)


# -- the state machine -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "action", "arrears", "target"), [
    (Status.ACTIVE, Action.SUSPEND, 0, Status.SUSPENDED),
    (Status.DELINQUENT, Action.SUSPEND, 500, Status.SUSPENDED),
    (Status.SUSPENDED, Action.RESUME, 0, Status.ACTIVE),
    (Status.SUSPENDED, Action.RESUME, 500, Status.DELINQUENT),
    (Status.ACTIVE, Action.CLOSE, 0, Status.CLOSED),
    (Status.SUSPENDED, Action.CLOSE, 0, Status.CLOSED),
    (Status.ACTIVE, Action.FALL_INTO_ARREARS, 0, Status.DELINQUENT),
    (Status.SUSPENDED, Action.FALL_INTO_ARREARS, 0, Status.SUSPENDED),
    (Status.DELINQUENT, Action.CLEAR_ARREARS, 0, Status.ACTIVE),
])
def test_transitions(status: Status, action: Action, arrears: int, target: Status) -> None:
    assert transition(status, action, arrears_minor=arrears) is target


@pytest.mark.parametrize(("status", "action", "message"), [
    (Status.ACTIVE, Action.RESUME, "cannot resume a card loan that is active"),
    (Status.SUSPENDED, Action.SUSPEND, "cannot suspend a card loan that is suspended"),
    (Status.CLOSED, Action.SUSPEND, "cannot suspend a card loan that is closed"),
    (Status.CLOSED, Action.CLOSE, "cannot close a card loan that is closed"),
    (Status.DELINQUENT, Action.CLOSE, "cannot close a card loan that is delinquent: pay the arrears first"),
    (Status.CLOSED, Action.FALL_INTO_ARREARS, "cannot fall into arrears a card loan that is closed"),
])
def test_illegal_transitions_name_the_state(status: Status, action: Action, message: str) -> None:
    with pytest.raises(IllegalTransition) as illegal:
        transition(status, action)
    assert str(illegal.value) == message


@pytest.mark.parametrize(("status", "code"), [
    (Status.DELINQUENT, "contract_delinquent"), (Status.SUSPENDED, "contract_suspended"),
    (Status.CLOSED, "contract_closed"),
])
def test_only_an_active_line_can_be_drawn(status: Status, code: str) -> None:
    check_can_draw(Status.ACTIVE)
    with pytest.raises(Refused) as refused:
        check_can_draw(status)
    assert refused.value.code == code


def test_available_is_the_undrawn_line_while_active_and_nothing_otherwise() -> None:
    on = dt.date(2026, 5, 14)
    assert view_of(contract(), 300_000, 0, on).available_minor == 700_000
    assert view_of(contract(status=Status.SUSPENDED), 300_000, 0, on).available_minor == 0
    late = view_of(contract(status=Status.DELINQUENT, arrears_minor=500, arrears_since=dt.date(2026, 5, 11)), 0, 0, on)
    assert (late.available_minor, late.days_past_due) == (0, 3)


def test_cash_on_hold_at_an_atm_is_no_longer_available() -> None:
    on = dt.date(2026, 5, 14)
    assert view_of(contract(), 300_000, 50_000, on).available_minor == 650_000
    assert view_of(contract(), 950_000, 50_000, on).available_minor == 0


# -- repayments and arrears ------------------------------------------------------------------------------

def test_a_repayment_pays_arrears_of_interest_before_principal() -> None:
    assert allocate_repayment(10_000, 3_000, 50_000) == Allocation(3_000, 7_000)
    assert allocate_repayment(2_000, 3_000, 50_000) == Allocation(2_000, 0)
    assert allocate_repayment(50_000, 0, 50_000) == Allocation(0, 50_000)
    with pytest.raises(Refused) as refused:
        allocate_repayment(53_001, 3_000, 50_000)
    assert refused.value.code == "exceeds_owed" and "¥53,000" in str(refused.value)
    with pytest.raises(Refused) as refused:
        allocate_repayment(1, 0, 0)
    assert refused.value.code == "nothing_owed"


def test_arrears_are_paid_oldest_first() -> None:
    june = Outstanding(dt.date(2026, 6, 10), "monthly", dt.date(2026, 6, 10), 5_000)
    may = Outstanding(dt.date(2026, 5, 10), "monthly", dt.date(2026, 5, 11), 2_000)
    paid = pay_oldest_first(3_000, [june, may])
    assert [r.outstanding_minor for r in paid] == [4_000, 0]  # in the order given
    with pytest.raises(InvariantViolation):
        pay_oldest_first(7_001, [june, may])


def test_a_shortfall_makes_the_contract_delinquent_and_the_next_retry_cures_it() -> None:
    c = contract(balance_days_current=14_800_000, balance_days_next=300_000, accrued_through=dt.date(2026, 5, 11))
    plan = plan_collection(c, dt.date(2026, 5, 11))
    assert (plan.due, plan.interest_minor, plan.request_minor) == (True, 5_879, 5_879)
    short = settle_collection(c, plan, 1_000, [], dt.date(2026, 5, 11), dt.date(2026, 6, 10))
    late = short.contract
    assert (late.status, late.arrears_minor, late.arrears_since) == (Status.DELINQUENT, 4_879, dt.date(2026, 5, 11))
    assert (late.balance_days_current, late.balance_days_next) == (300_000, 0)  # the next period begins
    assert (late.due_on, late.collect_on, late.collected_through) == (
        dt.date(2026, 6, 10), dt.date(2026, 6, 10), dt.date(2026, 5, 11))
    assert short.new_row == Outstanding(dt.date(2026, 5, 10), "monthly", dt.date(2026, 5, 11), 4_879)

    retry = plan_collection(late, dt.date(2026, 5, 12))
    assert (retry.due, retry.interest_minor, retry.request_minor) == (False, 0, 4_879)
    cured = settle_collection(late, retry, 4_879, [short.new_row], dt.date(2026, 5, 12), None)
    assert (cured.contract.status, cured.contract.arrears_minor, cured.contract.arrears_since) == (
        Status.ACTIVE, 0, None)
    assert cured.new_row is None and cured.owed[0].outstanding_minor == 0


def test_arrears_do_not_lift_a_suspension() -> None:
    assert after_arrears(Status.SUSPENDED, 100) is Status.SUSPENDED
    assert after_arrears(Status.SUSPENDED, 0) is Status.SUSPENDED
    assert after_arrears(Status.ACTIVE, 0) is Status.ACTIVE
    c = contract(status=Status.SUSPENDED, balance_days_current=365_000, rate_percent=Decimal("10"))
    plan = plan_collection(c, dt.date(2026, 5, 11))
    assert plan.interest_minor == 100
    after = settle_collection(c, plan, 0, [], dt.date(2026, 5, 11), dt.date(2026, 6, 10)).contract
    assert (after.status, after.arrears_minor) == (Status.SUSPENDED, 100)
