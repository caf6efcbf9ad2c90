"""Random sequences of product operations (real ledger, real PostgreSQL): the books always balance.

Each example is a small bank branch's day-to-day: accounts opened, cash in and out, transfers, time
deposits placed, withdrawn early or matured by the daily job, fees charged and refunded in bulk, accounts
frozen, retries of any earlier request, days and months passing. After every step:
- the trial balance is zero: Σ debits = Σ credits over every ledger account, posted and pending;
- every customer account the test knows has exactly the balance the operations so far imply
  (a refused request changes nothing; a retried one answers the first outcome and moves nothing);
- no deposit is below zero;
- the customers' money moved only through the bank's own accounts: Σ customer balances changed by
  cash in − cash out − fees + refunds + deposit interest − withholding tax, read off the GL accounts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kanjo.accounting import (
    CASH_VAULT,
    DEPOSIT_INTEREST_EXPENSE,
    FEE_INCOME,
    ORDINARY_DEPOSIT,
    TIME_DEPOSIT,
    WITHHOLDING_TAX_PAYABLE,
    ensure_chart,
    gl_account_id,
)
from kanjo.bank import Bank, build_bank
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Action, balance, change_status, deposit_cash, open_ordinary_account, transfer, withdraw_cash
from kanjo.deposits import IllegalTransition as DepositIllegal
from kanjo.deposits import Refused as DepositRefused
from kanjo.fees import Channel, Kind, RefundSelection, charge_fee, quote, refund_fees
from kanjo.fees import Refused as FeeRefused
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import Ledger
from kanjo.time_deposits import IllegalTransition as TDIllegal
from kanjo.time_deposits import Instruction, get_time_deposit, mature_due, place_time_deposit, withdraw_early
from kanjo.time_deposits import Refused as TDRefused

START = dt.date(2026, 3, 2)  # a Monday
REFUSALS = (DepositRefused, DepositIllegal, FeeRefused, TDRefused, TDIllegal, LimitReached)
ACCOUNTS = 3
COVERED: Counter[str] = Counter()  # what the examples did: the test must have exercised each
SETTINGS = settings(max_examples=40, derandomize=True, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

amounts = st.one_of(st.integers(1, 3_000), st.integers(1, 2_000_000), st.sampled_from([1, 999_999, 1_000_000]))


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


class BranchDay(RuleBasedStateMachine):
    loop: ClassVar[asyncio.AbstractEventLoop]
    bank: ClassVar[Bank]
    today: ClassVar[list[dt.date]]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def ledger_balance(self, account_id: int) -> int:
        [a] = self.run(self.bank.ledger.lookup_accounts([account_id]))
        return a.credits_posted - a.debits_posted

    def gl(self) -> dict[str, int]:
        accounts = {a.id: a for a in self.run(self.bank.ledger.lookup_accounts(
            [gl_account_id(x) for x in (CASH_VAULT, FEE_INCOME, DEPOSIT_INTEREST_EXPENSE, WITHHOLDING_TAX_PAYABLE)]))}

        def debit_balance(x: Any) -> int:
            a = accounts[gl_account_id(x)]
            return a.debits_posted - a.credits_posted

        return {"cash": debit_balance(CASH_VAULT), "fees": -debit_balance(FEE_INCOME),
                "interest": debit_balance(DEPOSIT_INTEREST_EXPENSE), "tax": -debit_balance(WITHHOLDING_TAX_PAYABLE)}

    @initialize()
    def open_accounts(self) -> None:
        self.today[0] = START
        self.customers = [rid(), rid()]
        self.accounts: list[int] = []
        self.expected: dict[int, int] = {}  # ledger account id -> balance the operations imply
        self.frozen: set[int] = set()
        self.time_deposits: dict[int, int] = {}  # id -> the ordinary account it pays
        self.fees: dict[int, tuple[int, int]] = {}  # fee id -> (account, amount), not yet refunded
        self.requests: list[tuple[str, tuple[Any, ...]]] = []  # done requests, for retries
        for i in range(ACCOUNTS):
            owner = self.customers[0 if i < 2 else 1]
            account = self.run(open_ordinary_account(self.bank.deposits, rid(), owner, "001"))
            self.accounts.append(account.id)
            self.run(deposit_cash(self.bank.deposits, rid(), account.id, 200_000))  # a salary, so fees can be paid
            self.expected[account.id] = 200_000
        # Every example starts with a one-month time deposit, so maturities are met whenever a month passes.
        first = self.run(place_time_deposit(self.bank.time_deposits, rid(), self.customers[0], self.accounts[0],
                                            50_000, 1, Instruction.PAY_OUT))
        self.expected[self.accounts[0]] -= 50_000
        self.expected[first.id] = 50_000
        self.time_deposits[first.id] = self.accounts[0]

    def owner(self, account_id: int) -> int:
        return self.customers[0 if self.accounts.index(account_id) < 2 else 1]

    # -- money ----------------------------------------------------------------------------------------

    def attempt(self, kind: str, args: tuple[Any, ...], call: Any) -> Any:
        """Run one request; a refusal must change nothing. Returns the answer, or None when refused."""
        before = dict(self.expected)
        try:
            answer = self.run(call)
        except REFUSALS:
            self.expected = before
            return None
        self.requests.append((kind, args))
        return answer

    @rule(i=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def cash_in(self, i: int, amount: int) -> None:
        account = self.accounts[i]
        args = (rid(), account, amount)
        if self.attempt("cash_in", args, deposit_cash(self.bank.deposits, *args)) is not None:
            self.expected[account] += amount
        else:
            assert account in self.frozen

    @rule(i=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def cash_out(self, i: int, amount: int) -> None:
        account = self.accounts[i]
        args = (rid(), account, amount)
        if self.attempt("cash_out", args, withdraw_cash(self.bank.deposits, *args)) is not None:
            self.expected[account] -= amount
        else:
            assert account in self.frozen or amount > self.expected[account]

    @rule(i=st.integers(0, ACCOUNTS - 1), j=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def move(self, i: int, j: int, amount: int) -> None:
        source, target = self.accounts[i], self.accounts[j]
        args = (rid(), source, target, amount)
        if self.attempt("transfer", args, transfer(self.bank.deposits, *args)) is not None:
            self.expected[source] -= amount
            self.expected[target] += amount
        else:
            assert i == j or {source, target} & self.frozen or amount > self.expected[source]

    @rule(i=st.integers(0, ACCOUNTS - 1), freeze=st.booleans())
    def freeze_or_unfreeze(self, i: int, freeze: bool) -> None:
        account = self.accounts[i]
        action = Action.FREEZE if freeze else Action.UNFREEZE
        if self.attempt("status", (), change_status(self.bank.deposits, rid(), account, action, "test")) is not None:
            (self.frozen.add if freeze else self.frozen.discard)(account)

    @precondition(lambda self: self.requests)
    @rule(pick=st.integers(0, 10_000))
    def retry_a_request(self, pick: int) -> None:
        """Any earlier request, sent again: it answers as the first time and moves nothing."""
        kind, args = self.requests[pick % len(self.requests)]
        calls = {"cash_in": deposit_cash, "cash_out": withdraw_cash, "transfer": transfer}
        if kind in calls:
            posting = self.run(calls[kind](self.bank.deposits, *args))
            assert posting.replayed
        elif kind == "place":
            self.run(place_time_deposit(self.bank.time_deposits, *args))
        elif kind == "fee":
            charged = self.run(charge_fee(self.bank.fees, *args))
            assert charged is None or charged.replayed

    # -- time deposits --------------------------------------------------------------------------------

    @rule(i=st.integers(0, ACCOUNTS - 1), amount=amounts, term=st.sampled_from([1, 1, 3, 12, 13]),
          instruction=st.sampled_from(list(Instruction)))
    def place(self, i: int, amount: int, term: int, instruction: Instruction) -> None:
        account = self.accounts[i]
        args = (rid(), self.owner(account), account, amount, term, instruction)
        placed = self.attempt("place", args, place_time_deposit(self.bank.time_deposits, *args))
        if placed is None:
            assert term == 13 or amount > self.expected[account] or account in self.frozen
            return
        self.expected[account] -= amount
        self.expected[placed.id] = amount
        self.time_deposits[placed.id] = account

    @precondition(lambda self: self.time_deposits)
    @rule(pick=st.integers(0, 10_000))
    def withdraw_early(self, pick: int) -> None:
        deposit_id = sorted(self.time_deposits)[pick % len(self.time_deposits)]
        request = rid()
        s = self.attempt("early", (), withdraw_early(self.bank.time_deposits, request, deposit_id))
        if s is None:
            return
        account = self.time_deposits[deposit_id]
        assert s.principal_minor == self.expected[deposit_id]
        assert s.paid_out_minor == s.principal_minor + s.interest_minor - s.tax.total_minor
        self.expected[account] += s.paid_out_minor
        self.expected[deposit_id] = 0
        COVERED["withdrawn early"] += 1
        assert self.run(withdraw_early(self.bank.time_deposits, request, deposit_id)) == s  # a retry

    @rule(days=st.sampled_from([1, 3, 35, 95]))
    def days_pass(self, days: int) -> None:
        """Business days pass; each day's maturity run settles what fell due that day, exactly once."""
        last = self.bank.calendar.next_business_day(self.today[0] + dt.timedelta(days=days - 1))
        before = {d: self.run(get_time_deposit(self.bank.time_deposits, d)) for d in self.time_deposits}
        while self.today[0] < last:
            self.today[0] = self.bank.calendar.next_business_day(self.today[0])
            run = self.run(mature_due(self.bank.time_deposits, self.today[0]))
            assert run.failed == [], run.failed
            again = self.run(mature_due(self.bank.time_deposits, self.today[0]))
            assert (again.renewed, again.paid_out, again.failed) == (0, 0, [])
        self.settle_expectations(before)

    def settle_expectations(self, before: dict[int, Any]) -> None:
        settled: dict[int, list[tuple[Any, Any]]] = {}
        for deposit_id, old in before.items():
            new = self.run(get_time_deposit(self.bank.time_deposits, deposit_id))
            if old.status.value != "placed" or old.pays_on > self.today[0]:
                assert new == old
            else:
                settled.setdefault(self.time_deposits[deposit_id], []).append((old, new))
        for account, pairs in settled.items():
            # What the generations that fell due paid to their ordinary account, and what each keeps.
            paid = self.ledger_balance(account) - self.expected[account]
            kept_total = 0
            for old, new in pairs:
                kept = new.principal_minor if new.status.value == "placed" else 0
                if old.instruction is Instruction.PAY_OUT:
                    assert kept == 0 and new.status.value == "matured"
                elif old.instruction is Instruction.RENEW_PRINCIPAL:
                    assert kept == old.principal_minor and new.generation > old.generation
                else:
                    assert kept >= old.principal_minor and new.generation > old.generation
                kept_total += kept
                self.expected[new.id] = kept
            assert paid >= 0 and paid + kept_total >= sum(old.principal_minor for old, _ in pairs)
            self.expected[account] += paid
            COVERED["settled at maturity"] += len(pairs)

    # -- fees -----------------------------------------------------------------------------------------

    @rule(i=st.integers(0, ACCOUNTS - 1), hour=st.sampled_from([10, 21]), what=st.sampled_from([
        (Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL), (Channel.ATM_OWN, Kind.WITHDRAWAL),
        (Channel.INTERNET, Kind.TRANSFER_OTHER_BANK)]))
    def fee(self, i: int, hour: int, what: tuple[Channel, Kind]) -> None:
        account = self.accounts[i]
        channel, kind = what
        at = dt.datetime.combine(self.today[0], dt.time(hour), tzinfo=dt.timezone(dt.timedelta(hours=9)))
        q = quote(self.bank.fees, channel, kind, 50_000, at)
        args = (rid(), account, q, at)
        try:
            charged = self.run(charge_fee(self.bank.fees, *args))
        except FeeRefused as refused:
            assert refused.code == "insufficient_funds" and q.amount_minor > self.expected[account]
            return
        self.requests.append(("fee", args))
        if charged is None:
            assert q.amount_minor == 0  # a free transaction: nothing moves
            return
        assert charged.amount_minor == q.amount_minor > 0
        self.expected[account] -= charged.amount_minor
        self.fees[charged.fee_id] = (account, charged.amount_minor)

    @precondition(lambda self: self.fees)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        """A bulk refund of some fees not yet refunded; the same request again refunds nothing more."""
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.fees)), min_size=1, max_size=4, unique=True))
        request = rid()
        report = self.run(refund_fees(self.bank.fees, request, RefundSelection(fee_ids=tuple(chosen)), "障害"))
        assert (report.requested, report.refunded, report.already_refunded, report.not_refunded) == (
            len(chosen), len(chosen), 0, [])
        assert report.refunded_minor == sum(self.fees[f][1] for f in chosen)
        COVERED["fees refunded"] += len(chosen)
        for fee_id in chosen:
            account, amount = self.fees.pop(fee_id)
            self.expected[account] += amount
        assert self.run(refund_fees(self.bank.fees, request, RefundSelection(fee_ids=tuple(chosen)), "障害")
                        ) == report

    # -- invariants -----------------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        pool = self.bank.ledger.pool
        assert pool is not None
        row = self.run(pool.fetchrow(
            "SELECT sum(debits_posted) - sum(credits_posted) AS posted,"
            " sum(debits_pending) - sum(credits_pending) AS pending,"
            " count(*) FILTER (WHERE flags & 2 <> 0 AND debits_posted + debits_pending > credits_posted) AS overdrawn"
            " FROM ledger.accounts"))
        assert (row["posted"], row["pending"], row["overdrawn"]) == (Decimal(0), Decimal(0), 0)

    @invariant()
    def balances_are_what_the_operations_imply(self) -> None:
        if not hasattr(self, "expected"):
            return
        got = {a.id: a.credits_posted - a.debits_posted
               for a in self.run(self.bank.ledger.lookup_accounts(list(self.expected)))}
        assert got == self.expected
        for account in self.accounts:
            assert self.run(balance(self.bank.deposits, account)).balance_minor == self.expected[account]

    @invariant()
    def money_moved_only_through_the_banks_accounts(self) -> None:
        """Bank-wide: all customers' deposits = cash taken in − fees + refunds + interest − withholding tax."""
        pool = self.bank.ledger.pool
        assert pool is not None
        customers = self.run(pool.fetchval(
            "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger.accounts WHERE code = ANY($1)",
            [ORDINARY_DEPOSIT.code, TIME_DEPOSIT.code]))
        gl = self.gl()
        assert customers == gl["cash"] - gl["fees"] + gl["interest"] - gl["tax"]


def test_any_sequence_of_product_operations_keeps_the_books_balanced(ledger_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    today = [START]
    try:
        ledger = loop.run_until_complete(Ledger.start(ledger_dsn, business_date=lambda: today[0]))
        loop.run_until_complete(ensure_chart(ledger))
        bank = build_bank(ledger, BankCalendar(), business_date=lambda: today[0], customer_check=eligible)
        try:
            machine = type("BranchDayOnThisBank", (BranchDay,), {"loop": loop, "bank": bank, "today": today})
            run_state_machine_as_test(machine, settings=SETTINGS)
            assert min(COVERED[k] for k in ("settled at maturity", "fees refunded", "withdrawn early")) > 0, COVERED
        finally:
            loop.run_until_complete(ledger.stop())
    finally:
        loop.close()
