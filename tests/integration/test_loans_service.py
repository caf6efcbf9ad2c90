"""Card loans against a real ledger and PostgreSQL: contracts, draws, repayments, day-end accrual and collection,
arrears, suspension and closing — with the yen a banker would check."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from kanjo.accounting import ATM_CASH, LOAN_INTEREST_INCOME, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Action as DepositAction
from kanjo.deposits import Deposits, change_status, deposit_cash, open_ordinary_account, withdraw_cash
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import AccountFlags, Ledger, Transfer, TransferFlags, verify_ledger
from kanjo.loans import (
    Channel,
    IllegalTransition,
    Loans,
    NotFound,
    Refused,
    Status,
    accrue_interest,
    close_contract,
    collect_interest,
    collection_transfer_id,
    collections_of,
    contracts_of_customer,
    derived_id,
    draw,
    get_contract,
    open_contract,
    repay,
    resume,
    suspend,
    verify_loans,
)
from kanjo.loans import dayend as loans_dayend
from kanjo.platform import db

OPENED = dt.date(2026, 4, 1)  # a Wednesday; the first collection day, Sunday 5/10, is collected on Monday 5/11
COLLECTED = dt.date(2026, 5, 11)
RATE = Decimal("14.500")


def rid() -> int:
    return uuid.uuid4().int


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits
    loans: Loans
    refused_customers: set[int] = field(default_factory=set)

    def on(self, day: dt.date) -> None:
        self.today[0] = day

    async def balance(self, account_id: int) -> int:
        [a] = await self.loans.ledger.lookup_accounts([account_id])
        return a.balance_credit_minor()

    async def interest_income(self) -> int:
        return await self.balance(gl_account_id(LOAN_INTEREST_INCOME))

    async def customer_with(self, amount_minor: int) -> tuple[int, int]:
        customer = rid()
        account = await open_ordinary_account(self.deposits, rid(), customer, "001")
        if amount_minor:
            await deposit_cash(self.deposits, rid(), account.id, amount_minor)
        return customer, account.id

    async def contract(self, line_minor: int = 1_000_000, rate: Decimal = RATE, deposit_minor: int = 100_000,
                       day: int = 10) -> tuple[int, int]:
        """A new customer with an ordinary account holding `deposit_minor` and a card loan; (contract, account)."""
        customer, account = await self.customer_with(deposit_minor)
        c = await open_contract(self.loans, rid(), customer, account, line_minor, rate, day)
        return c.id, account

    async def day_end(self, start: dt.date, end: dt.date) -> None:
        """The accrual of every business day from `start` to `end`, each on its own business date."""
        for day in self.loans.calendar.business_days(start, end):
            self.on(day)
            await accrue_interest(self.loans, day)


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [OPENED]
    refused: set[int] = set()

    async def customer_check(customer_id: int) -> str | None:
        return "identity not verified (本人確認)" if customer_id in refused else None

    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    deposits = Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], customer_check=customer_check)
    try:
        yield Bank(today, deposits, Loans(pool=ledger.pool, ledger=ledger, deposits=deposits,
                                          business_date=lambda: today[0], calendar=BankCalendar(),
                                          customer_check=customer_check), refused)
    finally:
        await ledger.stop()


async def _verified(bank: Bank, on: dt.date | None = None) -> None:
    conn = await db.connect(bank.loans.ledger.dsn)
    try:
        ledger_report = await verify_ledger(conn)
        loans_report = await verify_loans(conn, on)
    finally:
        await conn.close()
    assert ledger_report["ok"], ledger_report
    assert loans_report["ok"], loans_report


async def _refused(coro, code: str) -> Refused:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as refused:
        await coro
    assert refused.value.code == code, str(refused.value)
    return refused.value


# -- contracts -------------------------------------------------------------------------------------------

async def test_open_checks_the_terms_the_law_the_customer_and_the_linked_account(bank: Bank) -> None:
    customer, account = await bank.customer_with(0)
    request = rid()
    c = await open_contract(bank.loans, request, customer, account, 1_000_000, RATE, 10)
    assert (c.status, c.opened_on, c.accrued_through) == (Status.ACTIVE, OPENED, dt.date(2026, 3, 31))
    assert (c.due_on, c.collect_on) == (dt.date(2026, 5, 10), COLLECTED)  # Sunday → Monday
    v = await get_contract(bank.loans, c.id)
    assert (v.drawn_minor, v.available_minor, v.accrued_interest, v.arrears_minor) == (0, 1_000_000, 0, 0)
    [loan_account] = await bank.loans.ledger.lookup_accounts([c.id])
    assert loan_account.code == 1302 and loan_account.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    assert await open_contract(bank.loans, request, customer, account, 1_000_000, RATE, 10) == c
    await _refused(open_contract(bank.loans, request, customer, account, 2_000_000, RATE, 10), "request_reused")
    await _refused(open_contract(bank.loans, rid(), customer, account, 500_000, RATE, 10), "contract_exists")
    assert [x.contract.id for x in await contracts_of_customer(bank.loans, customer)] == [c.id]

    other, other_account = await bank.customer_with(0)
    await _refused(open_contract(bank.loans, rid(), other, other_account, 1_000_000, Decimal("15.001"), 10),
                   "rate_above_legal_maximum")
    await _refused(open_contract(bank.loans, rid(), other, account, 900_000, Decimal("18"), 10),
                   "not_the_customers_account")
    with pytest.raises(LimitReached) as limit:
        await open_contract(bank.loans, rid(), other, other_account, 8_010_000, RATE, 10)
    assert limit.value.limit.name == "card_loan_credit_line_max_minor"
    with pytest.raises(NotFound):
        await open_contract(bank.loans, rid(), other, rid(), 900_000, RATE, 10)
    bank.refused_customers.add(other)
    await _refused(open_contract(bank.loans, rid(), other, other_account, 900_000, RATE, 10), "customer_not_eligible")
    bank.refused_customers.clear()
    await change_status(bank.deposits, rid(), other_account, DepositAction.FREEZE, "差押え")
    await _refused(open_contract(bank.loans, rid(), other, other_account, 900_000, RATE, 10), "account_frozen")
    assert await contracts_of_customer(bank.loans, other) == []
    await _verified(bank)


# -- draws -----------------------------------------------------------------------------------------------

async def test_draws_move_money_within_the_line_once_per_request(bank: Bank) -> None:
    contract_id, account = await bank.contract(line_minor=500_000, deposit_minor=10_000)
    request = rid()
    first = await draw(bank.loans, request, contract_id, 200_000, Channel.ACCOUNT)
    assert (first.kind, first.principal_minor, first.business_date, first.replayed) == (
        "draw_to_account", 200_000, OPENED, False)
    again = await draw(bank.loans, request, contract_id, 200_000, Channel.ACCOUNT)
    assert again.replayed and again.amount_minor == 200_000
    await draw(bank.loans, rid(), contract_id, 100_000, Channel.CASH)
    assert await bank.balance(account) == 210_000
    [atm] = await bank.loans.ledger.lookup_accounts([gl_account_id(ATM_CASH)])
    assert atm.credits_posted == 100_000
    v = await get_contract(bank.loans, contract_id)
    assert (v.drawn_minor, v.available_minor) == (300_000, 200_000)

    refusal = await _refused(draw(bank.loans, rid(), contract_id, 200_001, Channel.ACCOUNT), "exceeds_available")
    assert "¥200,000 available" in str(refusal)
    await _refused(draw(bank.loans, rid(), contract_id, 1_500, Channel.CASH), "invalid_amount")
    await _refused(draw(bank.loans, rid(), contract_id, 0, Channel.ACCOUNT), "invalid_amount")
    await _refused(draw(bank.loans, request, contract_id, 150_000, Channel.ACCOUNT), "request_reused")
    with pytest.raises(LimitReached) as limit:
        await draw(bank.loans, rid(), contract_id, 600_000, Channel.CASH)
    assert limit.value.limit.name == "card_loan_cash_draw_per_transaction_max_minor"
    with pytest.raises(NotFound):
        await draw(bank.loans, rid(), rid(), 1_000, Channel.ACCOUNT)
    # Nothing of the refused draws moved.
    assert ((await get_contract(bank.loans, contract_id)).drawn_minor, await bank.balance(account)) == (
        300_000, 210_000)
    await draw(bank.loans, rid(), contract_id, 200_000, Channel.ACCOUNT)  # exactly the rest of the line
    assert (await get_contract(bank.loans, contract_id)).available_minor == 0
    await _verified(bank)


async def test_concurrent_draws_never_exceed_the_line(bank: Bank) -> None:
    contract_id, _ = await bank.contract(line_minor=1_000_000, deposit_minor=0)
    results = await asyncio.gather(*(draw(bank.loans, rid(), contract_id, 150_000, Channel.ACCOUNT)
                                     for _ in range(10)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(refused) == 4 and {r.code for r in refused} == {"exceeds_available"}
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 6
    v = await get_contract(bank.loans, contract_id)
    assert (v.drawn_minor, v.available_minor) == (900_000, 100_000)
    await _verified(bank)


# -- a month of interest -----------------------------------------------------------------------------------

@pytest.mark.parametrize("collect_first", [True, False], ids=["collect-then-accrue", "accrue-then-collect"])
async def test_a_month_of_interest_worked_example(bank: Bank, collect_first: bool) -> None:
    """¥500,000 drawn on 4/1; ¥200,000 repaid on 4/15; collected on Monday 5/11 (the 10th is a Sunday).
    Days 4/1–4/14 at ¥500,000 and 4/15–5/10 at ¥300,000 (Golden Week and weekends at the balance of the
    business day before): 積数 500,000 × 14 + 300,000 × 26 = 14,800,000; × 14.5 % / 365 = ¥5,879.45 → ¥5,879."""
    contract_id, account = await bank.contract(deposit_minor=100_000)
    await draw(bank.loans, rid(), contract_id, 500_000, Channel.ACCOUNT)
    await bank.day_end(OPENED, dt.date(2026, 4, 14))
    bank.on(dt.date(2026, 4, 15))
    paid = await repay(bank.loans, rid(), contract_id, 200_000, Channel.ACCOUNT)
    assert (paid.interest_minor, paid.principal_minor) == (0, 200_000)
    await bank.day_end(dt.date(2026, 4, 15), dt.date(2026, 5, 8))
    v = await get_contract(bank.loans, contract_id)
    assert (v.contract.accrued_through, v.accrued_interest) == (dt.date(2026, 5, 10), Decimal("5879.45"))

    bank.on(COLLECTED)
    if collect_first:
        run = await collect_interest(bank.loans, COLLECTED)
        await accrue_interest(bank.loans, COLLECTED)
    else:
        await accrue_interest(bank.loans, COLLECTED)
        run = await collect_interest(bank.loans, COLLECTED)
    assert (run.due, run.interest_due_minor, run.collected_minor, run.fell_into_arrears, run.failed) == (
        1, 5_879, 5_879, 0, [])
    assert await bank.balance(account) == 100_000 + 500_000 - 200_000 - 5_879 == 394_121
    assert await bank.interest_income() == 5_879
    # Twice on the same day changes nothing.
    again = await collect_interest(bank.loans, COLLECTED)
    accrual = await accrue_interest(bank.loans, COLLECTED)
    assert (again.due, again.collected_minor, accrual.contracts) == (0, 0, 0)
    assert (await bank.balance(account), await bank.interest_income()) == (394_121, 5_879)

    v = await get_contract(bank.loans, contract_id)
    c = v.contract
    assert (c.due_on, c.collect_on, c.accrued_through) == (dt.date(2026, 6, 10), dt.date(2026, 6, 10), COLLECTED)
    assert (c.balance_days_current, c.balance_days_next, v.drawn_minor, v.arrears_minor) == (300_000, 0, 300_000, 0)
    [collection] = await collections_of(bank.loans, contract_id)
    assert (collection.due_on, collection.collect_on, collection.balance_days, collection.interest_minor,
            collection.collected_minor, collection.outstanding_minor) == (
        dt.date(2026, 5, 10), COLLECTED, 14_800_000, 5_879, 5_879, 0)
    await _verified(bank, dt.date(2026, 5, 12))


async def test_a_late_accrual_charges_the_days_own_end_of_day_balance(bank: Bank) -> None:
    contract_id, _ = await bank.contract()
    await draw(bank.loans, rid(), contract_id, 100_000, Channel.ACCOUNT)
    bank.on(dt.date(2026, 4, 2))  # the day changed before 4/1's day-end ran
    await draw(bank.loans, rid(), contract_id, 50_000, Channel.CASH)
    await _refused(accrue_interest(bank.loans, dt.date(2026, 4, 3)), "business_date_not_reached")
    first = await accrue_interest(bank.loans, OPENED)
    assert (first.through, first.contracts, first.balance_days) == (OPENED, 1, 100_000)  # not 150,000
    second = await accrue_interest(bank.loans, dt.date(2026, 4, 2))
    assert second.balance_days == 150_000
    c = (await get_contract(bank.loans, contract_id)).contract
    assert (c.accrued_through, c.balance_days_current) == (dt.date(2026, 4, 2), 250_000)


# -- arrears -------------------------------------------------------------------------------------------------

async def test_a_shortfall_is_arrears_until_paid_and_the_line_is_closed_to_draws_meanwhile(bank: Bank) -> None:
    """¥300,000 at 15 % for the 40 days 4/1–5/10: 12,000,000 × 15 % / 365 = ¥4,931.5 → ¥4,931.
    The account holds ¥1,000 on 5/11: ¥3,931 is in arrears."""
    contract_id, account = await bank.contract(line_minor=300_000, rate=Decimal("15"), deposit_minor=0)
    await draw(bank.loans, rid(), contract_id, 300_000, Channel.ACCOUNT)
    await withdraw_cash(bank.deposits, rid(), account, 299_000)
    await bank.day_end(OPENED, dt.date(2026, 5, 8))
    bank.on(COLLECTED)
    run = await collect_interest(bank.loans, COLLECTED)
    assert (run.interest_due_minor, run.collected_minor, run.fell_into_arrears, run.arrears_minor) == (
        4_931, 1_000, 1, 3_931)
    v = await get_contract(bank.loans, contract_id)
    assert (v.contract.status, v.arrears_minor, v.contract.arrears_since, v.days_past_due, v.available_minor) == (
        Status.DELINQUENT, 3_931, COLLECTED, 0, 0)
    await _refused(draw(bank.loans, rid(), contract_id, 1_000, Channel.CASH), "contract_delinquent")
    with pytest.raises(IllegalTransition) as illegal:
        await close_contract(bank.loans, rid(), contract_id, "customer's request")
    assert "delinquent" in str(illegal.value)
    await accrue_interest(bank.loans, COLLECTED)

    day2 = dt.date(2026, 5, 12)
    bank.on(day2)
    assert (await get_contract(bank.loans, contract_id)).days_past_due == 1
    lines = len(await bank.loans.ledger.get_account_transfers(account))
    empty = await collect_interest(bank.loans, day2)  # the account is empty: nothing is asked of it
    assert (empty.collected_minor, empty.arrears_minor, empty.failed) == (0, 3_931, [])
    assert len(await bank.loans.ledger.get_account_transfers(account)) == lines  # no ¥0 line on the passbook
    await accrue_interest(bank.loans, day2)

    day3 = dt.date(2026, 5, 13)
    bank.on(day3)
    await deposit_cash(bank.deposits, rid(), account, 2_000)  # salary of sorts: the daily retry takes it
    retry = await collect_interest(bank.loans, day3)
    assert (retry.due, retry.collected_minor, retry.cleared, retry.arrears_minor) == (0, 2_000, 0, 1_931)
    assert await bank.balance(account) == 0
    await accrue_interest(bank.loans, day3)

    day4 = dt.date(2026, 5, 14)
    bank.on(day4)
    assert (await get_contract(bank.loans, contract_id)).days_past_due == 3
    paid = await repay(bank.loans, rid(), contract_id, 10_000, Channel.CASH)
    assert (paid.interest_minor, paid.principal_minor) == (1_931, 8_069)
    v = await get_contract(bank.loans, contract_id)
    assert (v.contract.status, v.arrears_minor, v.contract.arrears_since, v.days_past_due, v.drawn_minor) == (
        Status.ACTIVE, 0, None, 0, 291_931)
    assert await bank.interest_income() == 1_000 + 2_000 + 1_931 == 4_931
    [collection] = await collections_of(bank.loans, contract_id)
    assert (collection.interest_minor, collection.collected_minor, collection.outstanding_minor) == (4_931, 4_931, 0)
    none_left = await collect_interest(bank.loans, day4)
    assert (none_left.due, none_left.collected_minor) == (0, 0)
    await draw(bank.loans, rid(), contract_id, 8_000, Channel.CASH)  # the line is open again
    await accrue_interest(bank.loans, day4)
    await _verified(bank, dt.date(2026, 5, 15))


async def test_a_repayment_beyond_what_is_owed_or_an_unpayable_one_changes_nothing(bank: Bank) -> None:
    contract_id, account = await bank.contract(deposit_minor=5_000)
    await _refused(repay(bank.loans, rid(), contract_id, 1_000, Channel.ACCOUNT), "nothing_owed")
    await draw(bank.loans, rid(), contract_id, 50_000, Channel.CASH)
    await _refused(repay(bank.loans, rid(), contract_id, 50_001, Channel.ACCOUNT), "exceeds_owed")
    await _refused(repay(bank.loans, rid(), contract_id, 6_000, Channel.ACCOUNT), "insufficient_funds")
    await _refused(repay(bank.loans, rid(), contract_id, 0, Channel.ACCOUNT), "invalid_amount")
    assert ((await get_contract(bank.loans, contract_id)).drawn_minor, await bank.balance(account)) == (50_000, 5_000)
    await _verified(bank)


async def test_a_retry_after_a_crash_between_the_ledger_and_the_contract_moves_money_once(bank: Bank) -> None:
    contract_id, account = await bank.contract(rate=Decimal("14.6"), deposit_minor=2_000)
    await draw(bank.loans, rid(), contract_id, 100_000, Channel.CASH)
    # The ledger took a repayment whose movement was never recorded: the process died in between.
    request = rid()
    [posted] = await bank.loans.ledger.create_transfers([Transfer(
        id=derived_id(request, "repay-principal"), debit_account_id=account, credit_account_id=contract_id,
        amount=1_000, ledger=392, code=43, user_data_128=contract_id, business_date=OPENED)])
    assert posted.result.name == "OK"
    retried = await repay(bank.loans, request, contract_id, 1_000, Channel.ACCOUNT)
    assert (retried.interest_minor, retried.principal_minor, retried.replayed) == (0, 1_000, True)
    assert ((await get_contract(bank.loans, contract_id)).drawn_minor, await bank.balance(account)) == (99_000, 1_000)

    # Likewise the collection: 99,000 × 40 days × 14.6 % / 365 = ¥1,584 due; the ledger took the ¥1,000 the
    # account held before the run died, and the rerun records it (though the account is now empty).
    await bank.day_end(OPENED, dt.date(2026, 5, 8))
    bank.on(COLLECTED)
    [posted] = await bank.loans.ledger.create_transfers([Transfer(
        id=collection_transfer_id(contract_id, COLLECTED), debit_account_id=account,
        credit_account_id=gl_account_id(LOAN_INTEREST_INCOME), amount=1_584, ledger=392, code=44,
        flags=int(TransferFlags.BALANCING_DEBIT), user_data_128=contract_id, business_date=COLLECTED)])
    assert (posted.result.name, posted.amount) == ("OK", 1_000)
    run = await collect_interest(bank.loans, COLLECTED)
    assert (run.interest_due_minor, run.collected_minor, run.arrears_minor) == (1_584, 1_000, 584)
    assert (await bank.balance(account), await bank.interest_income()) == (0, 1_000)
    assert (await get_contract(bank.loans, contract_id)).contract.status is Status.DELINQUENT
    await _verified(bank)


# -- suspension and closing ------------------------------------------------------------------------------

async def test_suspend_resume_and_close_with_the_final_interest(bank: Bank) -> None:
    """¥100,000 drawn on 4/1 and repaid on 4/3 (Friday): 2 days at 15 % → 200,000 × 15 % / 365 = ¥82.19 → ¥82,
    collected from the linked account at closing."""
    contract_id, account = await bank.contract(line_minor=500_000, rate=Decimal("15"), deposit_minor=10_000)
    await draw(bank.loans, rid(), contract_id, 100_000, Channel.CASH)
    stop = rid()
    suspended = await suspend(bank.loans, stop, contract_id, "途上与信: income fell")
    assert (suspended.contract.status, suspended.available_minor) == (Status.SUSPENDED, 0)
    assert (await suspend(bank.loans, stop, contract_id, "途上与信: income fell")).contract.status is Status.SUSPENDED
    await _refused(draw(bank.loans, rid(), contract_id, 1_000, Channel.CASH), "contract_suspended")
    with pytest.raises(IllegalTransition) as illegal:
        await suspend(bank.loans, rid(), contract_id, "again")
    assert str(illegal.value) == "cannot suspend a card loan that is suspended"
    assert (await resume(bank.loans, rid(), contract_id, "reviewed")).contract.status is Status.ACTIVE
    with pytest.raises(IllegalTransition) as illegal:
        await resume(bank.loans, rid(), contract_id, "again")
    assert str(illegal.value) == "cannot resume a card loan that is active"
    await _refused(close_contract(bank.loans, rid(), contract_id, "customer's request"), "balance_outstanding")

    await bank.day_end(OPENED, dt.date(2026, 4, 2))
    bank.on(dt.date(2026, 4, 3))
    await repay(bank.loans, rid(), contract_id, 100_000, Channel.CASH)
    request = rid()
    closed = await close_contract(bank.loans, request, contract_id, "customer's request")
    assert (closed.contract.status, closed.contract.closed_on, closed.drawn_minor) == (
        Status.CLOSED, dt.date(2026, 4, 3), 0)
    assert closed.accrued_interest == 0
    assert (await bank.balance(account), await bank.interest_income()) == (10_000 - 82, 82)
    [final] = await collections_of(bank.loans, contract_id)
    assert (final.kind, final.balance_days, final.interest_minor, final.outstanding_minor) == ("final", 200_000, 82, 0)
    [loan_account] = await bank.loans.ledger.lookup_accounts([contract_id])
    assert loan_account.flags & AccountFlags.CLOSED
    assert (await close_contract(bank.loans, request, contract_id, "customer's request")).contract.status \
        is Status.CLOSED
    assert await bank.balance(account) == 9_918  # the replay took nothing more
    await _refused(draw(bank.loans, rid(), contract_id, 1_000, Channel.CASH), "contract_closed")
    await _refused(repay(bank.loans, rid(), contract_id, 1_000, Channel.CASH), "contract_closed")
    with pytest.raises(IllegalTransition) as illegal:
        await close_contract(bank.loans, rid(), contract_id, "again")
    assert str(illegal.value) == "cannot close a card loan that is closed"
    assert (await accrue_interest(bank.loans, dt.date(2026, 4, 3))).contracts == 0
    await _verified(bank, dt.date(2026, 4, 6))


async def test_closing_is_refused_when_the_accrual_is_behind_or_the_final_interest_cannot_be_paid(
        bank: Bank) -> None:
    contract_id, account = await bank.contract(rate=Decimal("15"), deposit_minor=0)
    await draw(bank.loans, rid(), contract_id, 365_000, Channel.ACCOUNT)
    await accrue_interest(bank.loans, OPENED)  # 365,000 × 15 % / 365 = ¥150 for 4/1
    bank.on(dt.date(2026, 4, 3))
    await repay(bank.loans, rid(), contract_id, 365_000, Channel.ACCOUNT)
    await _refused(close_contract(bank.loans, rid(), contract_id, "customer's request"), "accrual_behind")
    await accrue_interest(bank.loans, dt.date(2026, 4, 2))  # 4/2 at 365,000: ¥300 in all
    await _refused(close_contract(bank.loans, rid(), contract_id, "customer's request"), "insufficient_funds")
    v = await get_contract(bank.loans, contract_id)
    assert (v.contract.status, v.accrued_interest) == (Status.ACTIVE, Decimal("300.00"))
    await deposit_cash(bank.deposits, rid(), account, 300)
    assert (await close_contract(bank.loans, rid(), contract_id, "customer's request")).contract.status \
        is Status.CLOSED
    assert (await bank.balance(account), await bank.interest_income()) == (0, 300)
    await _verified(bank)


# -- day-end at scale ---------------------------------------------------------------------------------------

async def test_day_end_in_pages(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loans_dayend, "CONTRACTS_PER_BATCH_MAX", 2)
    contracts = []
    for i in range(5):
        contract_id, account = await bank.contract(rate=Decimal("14.6"), deposit_minor=10_000)
        await draw(bank.loans, rid(), contract_id, 100_000 * (i + 1), Channel.CASH)
        contracts.append((contract_id, account))
    await bank.day_end(OPENED, dt.date(2026, 5, 8))
    bank.on(COLLECTED)
    run = await collect_interest(bank.loans, COLLECTED)
    # ¥100,000 × 40 days × 14.6 % / 365 = ¥1,600 per ¥100,000 drawn; the accounts hold ¥10,000 each.
    assert (run.due, run.interest_due_minor, run.collected_minor, run.arrears_minor) == (5, 24_000, 24_000, 0)
    for i, (contract_id, account) in enumerate(contracts):
        assert await bank.balance(account) == 10_000 - 1_600 * (i + 1)
        [collection] = await collections_of(bank.loans, contract_id)
        assert (collection.interest_minor, collection.outstanding_minor) == (1_600 * (i + 1), 0)
    assert (await collect_interest(bank.loans, COLLECTED)).due == 0
    accrual = await accrue_interest(bank.loans, COLLECTED)
    assert (accrual.contracts, accrual.balance_days) == (5, 1_500_000)
    assert (await accrue_interest(bank.loans, COLLECTED)).contracts == 0
    await _verified(bank, dt.date(2026, 5, 12))
