"""Card loans (カードローン): terms, the legal rate ceiling, interest by 積数, collection, arrears, the state machine.

Pure standard library (and the kernel's invariant). Stated rules (a banker should find each one here,
not in the handlers):
- Credit line (限度額): ¥100,000 to ¥8,000,000 in steps of ¥10,000.
- Rate: percent a year, quoted to 0.001 %, at most the Interest Rate Restriction Act's ceiling
  (利息制限法 第1条): 20 % below ¥100,000, 18 % from ¥100,000 to below ¥1,000,000, 15 % from
  ¥1,000,000. For a revolving line the principal is deemed to be the line (第5条), so the ceiling
  follows the credit line, not what is drawn.
- Interest accrues on each day's end-of-day drawn balance (片端: the day of a draw counts, the day
  of a repayment does not), actual/365 — 365 also in leap years, as Japanese banks compute 日割.
  It is kept as 積数 (the sum of balance × days, an exact integer) and turned into yen once per
  period: interest = 積数 × rate % / 365, rounded down to the yen (円未満切捨て).
- A non-business day takes the balance of the business day before it: the day-end run of a
  business day covers every day up to the next business day.
- Collection (利息徴求, 口座振替): monthly on the contract's collection day (1st to 28th, so every
  month has it), or the next business day when the bank is closed. The period's interest covers the
  days from the previous collection date to the day before this one. The first collection day is
  the one in the month after the contract opens.
- What the linked account cannot pay is arrears (延滞): the contract becomes delinquent and draws
  are refused until they are paid. Arrears are paid oldest first — by each day's collection retry,
  or by a repayment, which pays arrears before principal (民法 第489条: interest before principal).
  No default interest (遅延損害金) is charged on unpaid interest: that would be compound interest,
  which 民法 第405条 allows only after a year's delay and a demand.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from kanjo.kernel.invariants import invariant

CREDIT_LINE_MIN_MINOR = 100_000  # 10万円: the smallest line offered
CREDIT_LINE_STEP_MINOR = 10_000  # lines are set in 万円
COLLECTION_DAY_MAX = 28  # so that every month has the day
DAYS_PER_YEAR = 365  # actual/365, also in leap years
PERCENT = Decimal(100)
RATE_QUANTUM = Decimal("0.001")  # rates are quoted to 0.001 % a year
ACCRUED_QUANTUM = Decimal("0.01")  # accrued interest is shown to the sen, rounded down; it is charged in yen
CASH_NOTE_MINOR = 1_000  # ATMs pay out and take in ¥1,000 notes

# 利息制限法 第1条: (credit line below this, ceiling percent a year), lowest band first; then the last ceiling.
RATE_CEILINGS: tuple[tuple[int, Decimal], ...] = ((100_000, Decimal("20")), (1_000_000, Decimal("18")))
RATE_CEILING_TOP = Decimal("15")


class Refused(Exception):
    """A business rule refused the request; `code` is machine-readable. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


# -- terms ------------------------------------------------------------------------------------------

def rate_ceiling_percent(credit_line_minor: int) -> Decimal:
    """The highest rate the Interest Rate Restriction Act allows on a line of this size."""
    for below_minor, ceiling in RATE_CEILINGS:
        if credit_line_minor < below_minor:
            return ceiling
    return RATE_CEILING_TOP


def check_terms(credit_line_minor: int, rate_percent: Decimal, collection_day: int, credit_line_max_minor: int) -> None:
    """Refuse terms the product or the law does not allow (the line's maximum is checked by the caller)."""
    if credit_line_minor < CREDIT_LINE_MIN_MINOR or credit_line_minor % CREDIT_LINE_STEP_MINOR:
        raise Refused("invalid_credit_line", f"a credit line is ¥{CREDIT_LINE_MIN_MINOR:,} to"
                      f" ¥{credit_line_max_minor:,} in steps of ¥{CREDIT_LINE_STEP_MINOR:,},"
                      f" not ¥{credit_line_minor:,}")
    if not rate_percent.is_finite() or rate_percent <= 0:
        raise Refused("invalid_rate", "the rate must be above 0 % a year")
    if rate_percent != rate_percent.quantize(RATE_QUANTUM, rounding=ROUND_DOWN):
        raise Refused("invalid_rate", f"a rate is quoted to {RATE_QUANTUM} %, not {rate_percent} %")
    ceiling = rate_ceiling_percent(credit_line_minor)
    if rate_percent > ceiling:
        raise Refused("rate_above_legal_maximum", f"{rate_percent} % is above the {ceiling} % a year that the"
                      f" Interest Rate Restriction Act (利息制限法) allows on a line of ¥{credit_line_minor:,}")
    if not 1 <= collection_day <= COLLECTION_DAY_MAX:
        raise Refused("invalid_collection_day", f"the collection day is the 1st to the {COLLECTION_DAY_MAX}th"
                      f" of the month, not {collection_day}")


# -- the state machine --------------------------------------------------------------------------------

class Status(enum.StrEnum):
    ACTIVE = "active"  # 利用可能: draws allowed
    DELINQUENT = "delinquent"  # 延滞: arrears unpaid; no draws until they are paid
    SUSPENDED = "suspended"  # 利用停止: stopped by the bank; no draws until resumed
    CLOSED = "closed"  # 解約: final; the ledger account is closed too


class Action(enum.StrEnum):
    SUSPEND = "suspend"
    RESUME = "resume"
    CLOSE = "close"
    FALL_INTO_ARREARS = "fall_into_arrears"  # a collection left something unpaid
    CLEAR_ARREARS = "clear_arrears"  # the last arrears were paid


TRANSITIONS: dict[tuple[Action, Status], Status] = {
    (Action.SUSPEND, Status.ACTIVE): Status.SUSPENDED,
    (Action.SUSPEND, Status.DELINQUENT): Status.SUSPENDED,
    (Action.RESUME, Status.SUSPENDED): Status.ACTIVE,  # DELINQUENT while arrears remain (see transition)
    (Action.CLOSE, Status.ACTIVE): Status.CLOSED,
    (Action.CLOSE, Status.SUSPENDED): Status.CLOSED,
    (Action.FALL_INTO_ARREARS, Status.ACTIVE): Status.DELINQUENT,
    (Action.FALL_INTO_ARREARS, Status.DELINQUENT): Status.DELINQUENT,
    (Action.FALL_INTO_ARREARS, Status.SUSPENDED): Status.SUSPENDED,  # the bank's stop outranks the arrears
    (Action.CLEAR_ARREARS, Status.DELINQUENT): Status.ACTIVE,
    (Action.CLEAR_ARREARS, Status.SUSPENDED): Status.SUSPENDED,
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, status: Status, why: str = "") -> None:
        self.action = action
        self.status = status
        super().__init__(why or f"cannot {action.value.replace('_', ' ')} a card loan that is {status.value}")


def transition(status: Status, action: Action, *, arrears_minor: int = 0) -> Status:
    target = TRANSITIONS.get((action, status))
    if target is None:
        if action is Action.CLOSE and status is Status.DELINQUENT:
            raise IllegalTransition(action, status, "cannot close a card loan that is delinquent: pay the arrears"
                                    " first")
        raise IllegalTransition(action, status)
    if action is Action.RESUME and arrears_minor > 0:
        return Status.DELINQUENT
    return target


def after_arrears(status: Status, arrears_minor: int) -> Status:
    """The status once the arrears are `arrears_minor` (after a collection or a repayment)."""
    if arrears_minor > 0:
        return transition(status, Action.FALL_INTO_ARREARS)
    if status is Status.ACTIVE:
        return status
    return transition(status, Action.CLEAR_ARREARS)


def check_can_draw(status: Status) -> None:
    """Only an active line can be drawn; the refusal names the state and what lifts it."""
    if status is Status.ACTIVE:
        return
    if status is Status.DELINQUENT:
        raise Refused("contract_delinquent", "the card loan is delinquent (延滞): no draws until the arrears are paid")
    if status is Status.SUSPENDED:
        raise Refused("contract_suspended", "the card loan is suspended (利用停止): no draws until the bank resumes it")
    raise Refused("contract_closed", "the card loan is closed")


def check_can_repay(status: Status) -> None:
    if status is Status.CLOSED:
        raise Refused("contract_closed", "the card loan is closed")


class Channel(enum.StrEnum):
    """Where a draw goes to, or a repayment comes from."""

    ACCOUNT = "account"  # the linked ordinary deposit account
    CASH = "cash"  # an ATM


def check_amount(amount_minor: int, channel: Channel, *, cash_max_minor: int | None = None) -> None:
    """Amounts are at least ¥1; at an ATM in whole ¥1,000 notes (the maximum is checked by the caller)."""
    if amount_minor < 1:
        raise Refused("invalid_amount", "the amount must be at least ¥1")
    if channel is Channel.CASH and amount_minor % CASH_NOTE_MINOR:
        raise Refused("invalid_amount", f"cash at an ATM is in ¥{CASH_NOTE_MINOR:,} notes, not ¥{amount_minor:,}")


# -- the contract -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Contract:
    id: int  # also the ledger account's id (code 1302; its debits are what is drawn)
    customer_id: int
    account_id: int  # the linked ordinary deposit account: draws to it, repayments and collections from it
    credit_line_minor: int
    rate_percent: Decimal
    collection_day: int
    status: Status
    opened_on: dt.date
    closed_on: dt.date | None
    accrued_through: dt.date  # the last day whose interest is in the 積数
    balance_days_current: int  # 積数 of the period collected next (days before collect_on)
    balance_days_next: int  # 積数 of days from collect_on on (accrued before that collection ran)
    due_on: dt.date  # the next collection's contractual day (約定日)
    collect_on: dt.date  # the business day it is collected: due_on, or the next business day
    arrears_minor: int  # unpaid interest of past collections (延滞額)
    arrears_since: dt.date | None  # the collection date of the oldest unpaid amount
    collected_through: dt.date | None  # the last business date the collection job processed

    def available_minor(self, drawn_minor: int) -> int:
        """What can be drawn now (利用可能額): nothing unless active."""
        return max(0, self.credit_line_minor - drawn_minor) if self.status is Status.ACTIVE else 0

    def days_past_due(self, on: dt.date) -> int:
        """延滞日数: days since the collection date of the oldest unpaid amount (0 on that date itself)."""
        return (on - self.arrears_since).days if self.arrears_since is not None else 0

    def accrued_interest(self) -> Decimal:
        """Interest accrued and not yet collected, to the sen (rounded down)."""
        exact = Decimal(self.balance_days_current + self.balance_days_next) * self.rate_percent / (
            PERCENT * DAYS_PER_YEAR)
        return exact.quantize(ACCRUED_QUANTUM, rounding=ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class ContractView:
    """What a screen shows of a contract on a business date: its terms, state and the money it stands at."""

    contract: Contract
    drawn_minor: int  # 利用残高: from the ledger
    available_minor: int  # 利用可能額
    accrued_interest: Decimal  # accrued and not yet collected, to the sen
    arrears_minor: int  # 延滞額
    days_past_due: int  # 延滞日数


def view_of(c: Contract, drawn_minor: int, held_minor: int, on: dt.date) -> ContractView:
    """`held_minor`: cash reserved for ATMs paying out now, not yet drawn but no longer available."""
    return ContractView(c, drawn_minor, c.available_minor(drawn_minor + held_minor), c.accrued_interest(),
                        c.arrears_minor, c.days_past_due(on))


# -- dates --------------------------------------------------------------------------------------------------

def first_due_on(opened_on: dt.date, collection_day: int) -> dt.date:
    """The first collection day: the contract's day in the month after it opens."""
    return following_due_on(opened_on.replace(day=collection_day), collection_day)


def following_due_on(due_on: dt.date, collection_day: int) -> dt.date:
    index = due_on.year * 12 + due_on.month  # the next month, 0-based month
    return dt.date(index // 12, index % 12 + 1, collection_day)


# -- interest -------------------------------------------------------------------------------------------------

def interest_minor(balance_days: int, rate_percent: Decimal) -> int:
    """積数 × rate % / 365, rounded down to the yen."""
    exact = Decimal(balance_days) * rate_percent / (PERCENT * DAYS_PER_YEAR)
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True, slots=True)
class Accrual:
    """One day-end's accrual on one contract: the days it covers at the end-of-day balance."""

    from_date: dt.date
    through: dt.date
    balance_minor: int
    balance_days_current: int  # the part before the next collection date
    balance_days_next: int  # the part from the next collection date on

    @property
    def days(self) -> int:
        return (self.through - self.from_date).days + 1


def accrue(c: Contract, balance_minor: int, through: dt.date) -> Accrual:
    """Accrue the days after `c.accrued_through` up to `through` at the end-of-day balance."""
    invariant(through > c.accrued_through, f"interest is accrued through {c.accrued_through} already")
    invariant(balance_minor >= 0, "a drawn balance is never negative")
    days = (through - c.accrued_through).days
    before = min(days, max(0, (c.collect_on - c.accrued_through).days - 1))
    return Accrual(c.accrued_through + dt.timedelta(days=1), through, balance_minor, balance_minor * before,
                   balance_minor * (days - before))


def accrued(c: Contract, a: Accrual) -> Contract:
    return replace(c, accrued_through=a.through, balance_days_current=c.balance_days_current + a.balance_days_current,
                   balance_days_next=c.balance_days_next + a.balance_days_next)


# -- arrears and repayments ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outstanding:
    """What is still unpaid of one past collection."""

    due_on: dt.date
    kind: str
    collect_on: dt.date
    outstanding_minor: int


def pay_oldest_first(paid_minor: int, owed: list[Outstanding]) -> list[Outstanding]:
    """Apply a payment to unpaid collections, oldest first; returns the rows, in the order given, with what
    each now owes."""
    after = list(owed)
    left = paid_minor
    if left:
        order = range(len(owed)) if len(owed) < 2 else sorted(
            range(len(owed)), key=lambda k: (owed[k].collect_on, owed[k].due_on))
        for i in order:
            take = min(left, owed[i].outstanding_minor)
            if take:
                left -= take
                after[i] = replace(owed[i], outstanding_minor=owed[i].outstanding_minor - take)
    invariant(left == 0, f"¥{left:,} paid beyond what is owed")
    return after


def arrears_since(owed: list[Outstanding]) -> dt.date | None:
    unpaid = [r.collect_on for r in owed if r.outstanding_minor > 0]
    return min(unpaid) if unpaid else None


@dataclass(frozen=True, slots=True)
class Allocation:
    """How a repayment is applied: arrears of interest first, then principal."""

    interest_minor: int
    principal_minor: int


def allocate_repayment(amount_minor: int, arrears_minor: int, drawn_minor: int) -> Allocation:
    owed_minor = arrears_minor + drawn_minor
    if owed_minor == 0:
        raise Refused("nothing_owed", "nothing is drawn and nothing is in arrears")
    if amount_minor > owed_minor:
        raise Refused("exceeds_owed", f"¥{amount_minor:,} is more than is owed: ¥{owed_minor:,}"
                      f" (arrears ¥{arrears_minor:,}, drawn ¥{drawn_minor:,})")
    interest = min(amount_minor, arrears_minor)
    return Allocation(interest, amount_minor - interest)


# -- collection -----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CollectionPlan:
    """What the day's collection asks the linked account for: arrears, and the period's interest if due."""

    due: bool
    interest_minor: int  # the period's interest (0 unless due)
    balance_days: int  # the period's 積数 (0 unless due)
    request_minor: int  # arrears + interest: the most the transfer takes


def plan_collection(c: Contract, on: dt.date) -> CollectionPlan:
    due = c.collect_on <= on
    balance_days = c.balance_days_current if due else 0
    interest = interest_minor(balance_days, c.rate_percent) if due else 0
    return CollectionPlan(due, interest, balance_days, c.arrears_minor + interest)


@dataclass(frozen=True, slots=True)
class CollectionOutcome:
    contract: Contract  # the contract after the collection
    new_row: Outstanding | None  # the period's collection (when due), with what it still owes
    owed: list[Outstanding]  # the earlier unpaid rows with what they now owe


def settle_collection(c: Contract, plan: CollectionPlan, collected_minor: int, owed: list[Outstanding],
                      on: dt.date, next_collect_on: dt.date | None) -> CollectionOutcome:
    """Apply what the transfer took: oldest arrears first, then the new period; roll the period if it was due."""
    invariant(0 <= collected_minor <= plan.request_minor,
              f"collected ¥{collected_minor:,} of ¥{plan.request_minor:,} asked")
    invariant(sum(r.outstanding_minor for r in owed) == c.arrears_minor,
              "the unpaid collections add up to the contract's arrears")
    new_row = Outstanding(c.due_on, "monthly", c.collect_on, plan.interest_minor) if plan.due else None
    paid = pay_oldest_first(collected_minor, [*owed, new_row] if new_row is not None else owed)
    if new_row is not None:
        new_row = paid.pop()
    arrears = plan.request_minor - collected_minor
    since = arrears_since([*paid, *([new_row] if new_row is not None else [])]) if arrears else None
    status = after_arrears(c.status, arrears)
    if plan.due:
        invariant(next_collect_on is not None, "a due collection has the next collection date")
        assert next_collect_on is not None
        after = replace(c, arrears_minor=arrears, arrears_since=since, status=status, collected_through=on,
                        balance_days_current=c.balance_days_next, balance_days_next=0,
                        due_on=following_due_on(c.due_on, c.collection_day), collect_on=next_collect_on)
    else:
        after = replace(c, arrears_minor=arrears, arrears_since=since, status=status, collected_through=on)
    return CollectionOutcome(after, new_row, paid)


@dataclass(frozen=True, slots=True)
class Movement:
    """A draw or a repayment, as carried out (and as answered to a retry of its request)."""

    request_id: int
    contract_id: int
    kind: str  # draw_to_account, draw_cash, repay_from_account, repay_cash
    amount_minor: int
    interest_minor: int  # of a repayment: the arrears it paid
    principal_minor: int  # drawn, or repaid
    business_date: dt.date
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Collection:
    """One period's interest collection (or the final settlement at closing) and what is still unpaid."""

    contract_id: int
    due_on: dt.date
    kind: str  # monthly | final
    collect_on: dt.date
    balance_days: int
    rate_percent: Decimal
    interest_minor: int
    outstanding_minor: int

    @property
    def collected_minor(self) -> int:
        return self.interest_minor - self.outstanding_minor


# Ledger transfer codes of the loans context.
DRAW_TO_ACCOUNT_CODE = 41  # カードローン借入 (振込)
DRAW_CASH_CODE = 42  # カードローン借入 (ATM)
REPAY_FROM_ACCOUNT_CODE = 43  # カードローン返済 (口座)
INTEREST_CODE = 44  # カードローン利息 (collected, or paid as arrears by a repayment)
REPAY_CASH_CODE = 45  # カードローン返済 (ATM)
CLOSING_CODE = 46  # カードローン解約
CODE_LABELS = {DRAW_TO_ACCOUNT_CODE: "カードローン借入", DRAW_CASH_CODE: "カードローン借入(ATM)",
               REPAY_FROM_ACCOUNT_CODE: "カードローン返済", INTEREST_CODE: "カードローン利息",
               REPAY_CASH_CODE: "カードローン返済(ATM)", CLOSING_CODE: "カードローン解約"}
