"""Time deposits (定期預金): terms, the rate table, interest, withholding tax, maturity and the state machine.

Pure standard library. Stated rules (a banker should find each one here, not in the handlers):
- Day count actual/365: interest = principal × rate% × days / 365, also in leap years (the usual
  Japanese practice); days run from the placement date to the contractual maturity date.
- Every interest amount is rounded down to the yen (円未満切捨て), at each half-yearly capitalisation.
- Simple interest below 3 years; half-yearly compound (半年複利) from 3 years, for individuals only.
- Maturity date = placement date + term months; a day the month lacks becomes its last day
  (1/31 + 1 month = 2/28). If the bank is closed that day, the money moves on the next business
  day, but interest runs only to the contractual date. A renewal starts on the contractual date.
- Withholding tax on interest: national 15.315 % and local 5 %, each rounded down separately
  (individuals); corporations bear national tax only; exempt (マル優) bears none.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

TERM_MONTHS_MIN = 1
TERM_MONTHS_MAX = 120  # 10 years
COMPOUND_TERM_MONTHS_MIN = 36  # 半年複利 from 3 years
COMPOUND_PERIOD_MONTHS = 6
DAYS_PER_YEAR = 365  # actual/365
PERCENT = Decimal(100)
RATE_QUANTUM = Decimal("0.001")  # rates are quoted to 0.001 % p.a.

NATIONAL_TAX_PERCENT = Decimal("15.315")  # 所得税 15 % + 復興特別所得税 0.315 %
LOCAL_TAX_PERCENT = Decimal("5")  # 住民税利子割

ORDINARY_DEPOSIT_RATE_PERCENT = Decimal("0.001")  # 普通預金利率: what early withdrawal pays before 6 months
EARLY_MONTHS_AT_ORDINARY_RATE = 6
# Early withdrawal (中途解約) rate: a share of the contract rate by the elapsed share of the term
# (elapsed days / term days), after the first 6 months; never below the ordinary deposit rate.
EARLY_WITHDRAWAL_SHARES: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("0.5"), Decimal("0.5")),  # elapsed < 50 % of the term: 50 % of the contract rate
    (Decimal("1"), Decimal("0.7")),  # elapsed 50 % to < 100 %: 70 % of the contract rate
)

# Amount bands (lower bounds, yen): 定期預金, スーパー定期300, 大口定期.
BAND_MINS_MINOR = (0, 3_000_000, 10_000_000)


class Refused(Exception):
    """A business rule refused the request; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus `months` calendar months; a day the target month lacks becomes its last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class Term:
    months: int

    def __post_init__(self) -> None:
        if not TERM_MONTHS_MIN <= self.months <= TERM_MONTHS_MAX:
            raise Refused("invalid_term", f"a term runs from {TERM_MONTHS_MIN} month to {TERM_MONTHS_MAX // 12}"
                          f" years, not {self.months} months")

    def maturity(self, placed_on: dt.date) -> dt.date:
        return add_months(placed_on, self.months)


class TaxClass(enum.StrEnum):
    INDIVIDUAL = "individual"  # 20.315 %: national 15.315 % + local 5 %
    CORPORATE = "corporate"  # national 15.315 % only (local 利子割 is not withheld from corporations)
    EXEMPT = "exempt"  # 非課税 (マル優 and the like)


class Compounding(enum.StrEnum):
    SIMPLE = "simple"  # 単利
    HALF_YEARLY = "half_yearly"  # 半年複利


def compounding_for(term: Term, tax_class: TaxClass) -> Compounding:
    if term.months >= COMPOUND_TERM_MONTHS_MIN and tax_class is TaxClass.INDIVIDUAL:
        return Compounding.HALF_YEARLY
    return Compounding.SIMPLE


def band_of(principal_minor: int) -> int:
    """The lower bound of the amount band `principal_minor` falls in."""
    return max(b for b in BAND_MINS_MINOR if principal_minor >= b)


@dataclass(frozen=True, slots=True)
class RateTable:
    """Rates (percent p.a.) by (term months, band lower bound), as in force on one date."""

    rates: dict[tuple[int, int], Decimal]

    def rate(self, term: Term, principal_minor: int) -> Decimal:
        found = self.rates.get((term.months, band_of(principal_minor)))
        if found is None:
            offered = sorted({t for t, _ in self.rates})
            raise Refused("term_not_offered", f"no rate for a {term.months}-month term; offered: {offered} months")
        return found


# -- interest and tax ------------------------------------------------------------------------------

def simple_interest(principal_minor: int, rate_percent: Decimal, days: int) -> int:
    """principal × rate% × days / 365, rounded down to the yen."""
    exact = Decimal(principal_minor) * rate_percent * days / (PERCENT * DAYS_PER_YEAR)
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


def interest_to_maturity(principal_minor: int, rate_percent: Decimal, placed_on: dt.date, term: Term,
                         compounding: Compounding) -> int:
    """Gross interest from placement to the contractual maturity date."""
    matures_on = term.maturity(placed_on)
    if compounding is Compounding.SIMPLE:
        return simple_interest(principal_minor, rate_percent, (matures_on - placed_on).days)
    balance_minor = principal_minor
    start = placed_on
    k = 1
    while start < matures_on:
        end = min(add_months(placed_on, COMPOUND_PERIOD_MONTHS * k), matures_on)
        balance_minor += simple_interest(balance_minor, rate_percent, (end - start).days)  # capitalised
        start, k = end, k + 1
    return balance_minor - principal_minor


@dataclass(frozen=True, slots=True)
class Tax:
    national_minor: int
    local_minor: int

    @property
    def total_minor(self) -> int:
        return self.national_minor + self.local_minor


def withholding_tax(interest_minor: int, tax_class: TaxClass) -> Tax:
    """National and local tax, each rounded down to the yen separately."""
    if tax_class is TaxClass.EXEMPT:
        return Tax(0, 0)
    national = int((Decimal(interest_minor) * NATIONAL_TAX_PERCENT / PERCENT).to_integral_value(ROUND_DOWN))
    local = 0
    if tax_class is TaxClass.INDIVIDUAL:
        local = int((Decimal(interest_minor) * LOCAL_TAX_PERCENT / PERCENT).to_integral_value(ROUND_DOWN))
    return Tax(national, local)


def early_withdrawal_rate(contract_rate_percent: Decimal, placed_on: dt.date, matures_on: dt.date,
                          on: dt.date) -> Decimal:
    """The 中途解約利率 for a withdrawal on `on` (see EARLY_WITHDRAWAL_SHARES)."""
    if on < add_months(placed_on, EARLY_MONTHS_AT_ORDINARY_RATE):
        return ORDINARY_DEPOSIT_RATE_PERCENT
    elapsed = Decimal((on - placed_on).days) / Decimal((matures_on - placed_on).days)
    share = next(s for below, s in EARLY_WITHDRAWAL_SHARES if elapsed < below)
    rate = (contract_rate_percent * share).quantize(RATE_QUANTUM, rounding=ROUND_DOWN)
    return max(rate, ORDINARY_DEPOSIT_RATE_PERCENT)


# -- the deposit and its state machine ------------------------------------------------------------

class Instruction(enum.StrEnum):
    RENEW_PRINCIPAL = "renew_principal"  # 元本継続: interest paid to the payout account
    RENEW_PRINCIPAL_AND_INTEREST = "renew_principal_and_interest"  # 元利継続
    PAY_OUT = "pay_out"  # 自動解約: principal and interest to the payout account


class Status(enum.StrEnum):
    PLACED = "placed"  # running (a renewal keeps it placed, in its next generation)
    MATURED = "matured"  # paid out at maturity; final
    WITHDRAWN = "withdrawn"  # 中途解約; final


class Action(enum.StrEnum):
    RENEW = "renew"
    PAY_OUT_AT_MATURITY = "pay_out_at_maturity"
    WITHDRAW_EARLY = "withdraw_early"
    CHANGE_INSTRUCTION = "change_instruction"  # 満期時の取扱変更: before the maturity date only


TRANSITIONS: dict[tuple[Action, Status], Status] = {
    (Action.RENEW, Status.PLACED): Status.PLACED,
    (Action.PAY_OUT_AT_MATURITY, Status.PLACED): Status.MATURED,
    (Action.WITHDRAW_EARLY, Status.PLACED): Status.WITHDRAWN,
    (Action.CHANGE_INSTRUCTION, Status.PLACED): Status.PLACED,
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, status: Status, why: str = "") -> None:
        self.action = action
        self.status = status
        super().__init__(why or f"cannot {action.value.replace('_', ' ')} a time deposit that is {status.value}")


def transition(status: Status, action: Action) -> Status:
    target = TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition(action, status)
    return target


@dataclass(frozen=True, slots=True)
class TimeDeposit:
    """One time deposit in its current generation.

    Two ordinary accounts of the customer: `ordinary_account_id` funded the placement and is the account the
    deposit is attached to (the 総合口座 whose overdraft it secures, see collateral.py); `payout_account_id`
    (入金口座) receives the interest and principal paid out. They are the same account unless one was named.
    """

    id: int  # also the ledger account's id
    customer_id: int
    ordinary_account_id: int  # funded the placement; the 総合口座 the deposit is attached to (collateral)
    principal_minor: int  # of the current generation
    rate_percent: Decimal  # fixed at placement (or renewal)
    term_months: int
    tax_class: TaxClass
    placed_on: dt.date  # of the current generation
    matures_on: dt.date  # contractual maturity date (interest runs to it)
    pays_on: dt.date  # the business day the money moves (matures_on, or the next business day)
    instruction: Instruction
    status: Status
    generation: int  # 1 at placement, +1 at each renewal
    closed_on: dt.date | None = None
    payout_account_id: int = 0  # receives what is paid out; 0 when built means the ordinary account

    def __post_init__(self) -> None:
        if self.payout_account_id == 0:  # not a real account id (the nil UUID): the default, the funding account
            object.__setattr__(self, "payout_account_id", self.ordinary_account_id)

    @property
    def term(self) -> Term:
        return Term(self.term_months)

    @property
    def compounding(self) -> Compounding:
        return compounding_for(self.term, self.tax_class)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a maturity or an early withdrawal of one generation moves, every yen of it."""

    principal_minor: int
    interest_minor: int  # gross
    tax: Tax
    paid_out_minor: int  # to the payout account
    renewed_principal_minor: int  # 0 unless renewed

    @property
    def net_interest_minor(self) -> int:
        return self.interest_minor - self.tax.total_minor


def settle_at_maturity(d: TimeDeposit) -> Settlement:
    interest = interest_to_maturity(d.principal_minor, d.rate_percent, d.placed_on, d.term, d.compounding)
    tax = withholding_tax(interest, d.tax_class)
    net = interest - tax.total_minor
    if d.instruction is Instruction.RENEW_PRINCIPAL:
        return Settlement(d.principal_minor, interest, tax, net, d.principal_minor)
    if d.instruction is Instruction.RENEW_PRINCIPAL_AND_INTEREST:
        return Settlement(d.principal_minor, interest, tax, 0, d.principal_minor + net)
    return Settlement(d.principal_minor, interest, tax, d.principal_minor + net, 0)


def settle_early(d: TimeDeposit, on: dt.date) -> Settlement:
    """中途解約 on `on`: simple interest at the early-withdrawal rate for the days held (even if compound)."""
    if d.status is not Status.PLACED:
        raise IllegalTransition(Action.WITHDRAW_EARLY, d.status)
    if on >= d.matures_on:
        raise IllegalTransition(Action.WITHDRAW_EARLY, d.status,
                                f"the deposit matured on {d.matures_on}: it is settled by maturity processing")
    if on < d.placed_on:
        raise Refused("date_before_placement", f"{on} is before the placement date {d.placed_on}")
    rate = early_withdrawal_rate(d.rate_percent, d.placed_on, d.matures_on, on)
    interest = simple_interest(d.principal_minor, rate, (on - d.placed_on).days)
    tax = withholding_tax(interest, d.tax_class)
    return Settlement(d.principal_minor, interest, tax, d.principal_minor + interest - tax.total_minor, 0)


def reinstructed(d: TimeDeposit, on: dt.date, instruction: Instruction,
                 payout_account_id: int | None = None) -> TimeDeposit:
    """満期時の取扱変更 on `on`: what the coming maturity does, and where it pays (None: the payout account kept).

    Only while the deposit is placed and before its (contractual) maturity date: from that day its maturity
    is being processed as instructed, so a change would race the money already moving.
    """
    if (Action.CHANGE_INSTRUCTION, d.status) not in TRANSITIONS:
        raise IllegalTransition(Action.CHANGE_INSTRUCTION, d.status,
                                f"the time deposit is {d.status.value}: it has no maturity ahead to instruct")
    if on >= d.matures_on:
        raise IllegalTransition(Action.CHANGE_INSTRUCTION, d.status,
                                f"the deposit matures on {d.matures_on}: its instruction can be changed up to the"
                                f" day before, not on {on}")
    return replace(d, instruction=instruction, payout_account_id=d.payout_account_id if payout_account_id is None
                   else payout_account_id)


def renewed(d: TimeDeposit, s: Settlement, rate_percent: Decimal, pays_on: dt.date) -> TimeDeposit:
    """The next generation: placed on the contractual maturity date, same term, the rate of that day."""
    transition(d.status, Action.RENEW)
    matures_on = d.term.maturity(d.matures_on)
    return replace(d, principal_minor=s.renewed_principal_minor, rate_percent=rate_percent, placed_on=d.matures_on,
                   matures_on=matures_on, pays_on=pays_on, generation=d.generation + 1)


# Ledger transfer codes of the time-deposits context.
PLACEMENT_CODE = 21  # 預入
INTEREST_CODE = 22  # 利息
NATIONAL_TAX_CODE = 23  # 国税
LOCAL_TAX_CODE = 24  # 地方税
MATURITY_PAYOUT_CODE = 25  # 満期払出 (principal and/or interest)
EARLY_PAYOUT_CODE = 26  # 中途解約払出
CODE_LABELS = {PLACEMENT_CODE: "定期預入", INTEREST_CODE: "定期利息", NATIONAL_TAX_CODE: "国税",
               LOCAL_TAX_CODE: "地方税", MATURITY_PAYOUT_CODE: "定期満期払出", EARLY_PAYOUT_CODE: "定期中途解約"}
