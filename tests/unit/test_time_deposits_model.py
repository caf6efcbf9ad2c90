"""Time deposits, pure: terms, maturity dates, rates, interest, tax, early withdrawal and the state machine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kanjo.time_deposits import (
    Action,
    Compounding,
    IllegalTransition,
    Instruction,
    RateTable,
    Refused,
    Status,
    Tax,
    TaxClass,
    Term,
    TimeDeposit,
    add_months,
    early_withdrawal_rate,
    interest_to_maturity,
    withholding_tax,
)
from kanjo.time_deposits.model import settle_at_maturity, settle_early, transition

PLACED = dt.date(2026, 3, 2)  # a Monday


def deposit(principal: int, rate: str, months: int, instruction: Instruction = Instruction.PAY_OUT,
            tax_class: TaxClass = TaxClass.INDIVIDUAL, placed_on: dt.date = PLACED) -> TimeDeposit:
    matures = add_months(placed_on, months)
    return TimeDeposit(1, 2, 3, principal, Decimal(rate), months, tax_class, placed_on, matures, matures,
                       instruction, Status.PLACED, 1)


def test_terms_run_from_one_month_to_ten_years() -> None:
    assert Term(1).months == 1 and Term(120).months == 120
    for bad in (0, 121):
        with pytest.raises(Refused) as refused:
            Term(bad)
        assert refused.value.code == "invalid_term"


def test_maturity_is_the_same_day_or_the_last_day_of_the_month() -> None:
    assert Term(12).maturity(PLACED) == dt.date(2027, 3, 2)
    assert Term(1).maturity(dt.date(2026, 1, 31)) == dt.date(2026, 2, 28)
    assert Term(1).maturity(dt.date(2028, 1, 31)) == dt.date(2028, 2, 29)
    assert Term(12).maturity(dt.date(2028, 2, 29)) == dt.date(2029, 2, 28)
    assert Term(120).maturity(PLACED) == dt.date(2036, 3, 2)


def test_the_rate_comes_from_the_term_and_the_amount_band() -> None:
    table = RateTable({(12, 0): Decimal("0.125"), (12, 3_000_000): Decimal("0.130"),
                       (12, 10_000_000): Decimal("0.150")})
    assert table.rate(Term(12), 2_999_999) == Decimal("0.125")
    assert table.rate(Term(12), 3_000_000) == Decimal("0.130")  # スーパー定期300
    assert table.rate(Term(12), 9_999_999) == Decimal("0.130")
    assert table.rate(Term(12), 10_000_000) == Decimal("0.150")  # 大口定期
    with pytest.raises(Refused) as refused:
        table.rate(Term(7), 1_000_000)
    assert refused.value.code == "term_not_offered"


def test_one_year_simple_interest_and_the_two_taxes() -> None:
    # ¥1,000,000 for 1 year at 0.125 %: 365 days → ¥1,250; 国税 ¥191 (191.4375), 地方税 ¥62 (62.5), net ¥997
    s = settle_at_maturity(deposit(1_000_000, "0.125", 12))
    assert s.interest_minor == 1_250
    assert s.tax == Tax(national_minor=191, local_minor=62)
    assert s.net_interest_minor == 997
    assert s.paid_out_minor == 1_000_997 and s.renewed_principal_minor == 0


def test_actual_365_counts_the_leap_day() -> None:
    # 2027-03-02 → 2028-03-02 is 366 days: 1,000,000 × 0.125 % × 366/365 = 1,253.42 → ¥1,253
    assert interest_to_maturity(1_000_000, Decimal("0.125"), dt.date(2027, 3, 2), Term(12),
                                Compounding.SIMPLE) == 1_253


def test_three_years_compound_half_yearly_rounding_down_at_each_capitalisation() -> None:
    # ¥1,000,000, 3 years at 0.200 %, 半年複利 from 2026-03-02:
    #   184 days → 1,008 (1,001,008); 181 → 992 (1,002,000); 184 → 1,010 (1,003,010);
    #   182 (leap Feb) → 1,000 (1,004,010); 184 → 1,012 (1,005,022); 181 → 996 (1,006,018)
    d = deposit(1_000_000, "0.200", 36)
    assert d.compounding is Compounding.HALF_YEARLY
    s = settle_at_maturity(d)
    assert s.interest_minor == 6_018
    assert s.tax == Tax(921, 300)  # 921.65 and 300.9, each rounded down
    assert s.net_interest_minor == 4_797
    simple = interest_to_maturity(1_000_000, Decimal("0.200"), PLACED, Term(36), Compounding.SIMPLE)
    assert simple == 6_005  # 1,096 days: 6,005.48 — compounding earns ¥13 more


def test_corporations_get_simple_interest_and_national_tax_only() -> None:
    d = deposit(1_000_000, "0.200", 36, tax_class=TaxClass.CORPORATE)
    assert d.compounding is Compounding.SIMPLE
    s = settle_at_maturity(d)
    assert (s.interest_minor, s.tax) == (6_005, Tax(919, 0))  # 919.67 → 919
    assert withholding_tax(6_005, TaxClass.EXEMPT) == Tax(0, 0)


def test_maturity_instructions_decide_where_every_yen_goes() -> None:
    renew_principal = settle_at_maturity(deposit(1_000_000, "0.125", 12, Instruction.RENEW_PRINCIPAL))
    assert (renew_principal.paid_out_minor, renew_principal.renewed_principal_minor) == (997, 1_000_000)
    renew_all = settle_at_maturity(deposit(1_000_000, "0.125", 12, Instruction.RENEW_PRINCIPAL_AND_INTEREST))
    assert (renew_all.paid_out_minor, renew_all.renewed_principal_minor) == (0, 1_000_997)
    pay_out = settle_at_maturity(deposit(1_000_000, "0.125", 12, Instruction.PAY_OUT))
    assert (pay_out.paid_out_minor, pay_out.renewed_principal_minor) == (1_000_997, 0)


def test_early_withdrawal_rates_by_elapsed_share_of_the_term() -> None:
    one_year = add_months(PLACED, 12)
    assert early_withdrawal_rate(Decimal("0.125"), PLACED, one_year, dt.date(2026, 9, 1)) == Decimal("0.001")
    assert early_withdrawal_rate(Decimal("0.125"), PLACED, one_year, dt.date(2026, 9, 2)) == Decimal("0.087")
    two_years = add_months(PLACED, 24)  # 8 months of 24 is under half: 50 %
    assert early_withdrawal_rate(Decimal("0.150"), PLACED, two_years, dt.date(2026, 11, 2)) == Decimal("0.075")
    tiny = Decimal("0.001")  # never below the ordinary deposit rate
    assert early_withdrawal_rate(tiny, PLACED, two_years, dt.date(2027, 11, 2)) == Decimal("0.001")


def test_early_withdrawal_worked_examples() -> None:
    d = deposit(1_000_000, "0.125", 12)
    # after 91 days, at the ordinary rate 0.001 %: 2.49 → ¥2; taxes round down to ¥0
    early = settle_early(d, dt.date(2026, 6, 1))
    assert (early.interest_minor, early.tax, early.paid_out_minor) == (2, Tax(0, 0), 1_000_002)
    # after 245 days (67 % of the term), 70 % of 0.125 % = 0.087 %: 583.97 → ¥583; taxes ¥89 and ¥29
    early = settle_early(d, dt.date(2026, 11, 2))
    assert (early.interest_minor, early.tax, early.paid_out_minor) == (583, Tax(89, 29), 1_000_465)


def test_early_withdrawal_is_refused_at_maturity_and_on_a_settled_deposit() -> None:
    d = deposit(1_000_000, "0.125", 12)
    with pytest.raises(IllegalTransition) as refused:
        settle_early(d, dt.date(2027, 3, 2))
    assert "matured" in str(refused.value)
    with pytest.raises(IllegalTransition):
        settle_early(TimeDeposit(**{**{f: getattr(d, f) for f in d.__slots__}, "status": Status.WITHDRAWN}),
                     dt.date(2026, 6, 1))


def test_the_state_machine() -> None:
    assert transition(Status.PLACED, Action.RENEW) is Status.PLACED
    assert transition(Status.PLACED, Action.PAY_OUT_AT_MATURITY) is Status.MATURED
    assert transition(Status.PLACED, Action.WITHDRAW_EARLY) is Status.WITHDRAWN
    for final in (Status.MATURED, Status.WITHDRAWN):
        for action in Action:
            with pytest.raises(IllegalTransition) as refused:
                transition(final, action)
            assert final.value in str(refused.value)
