"""当座預金 (current accounts) against a real ledger and PostgreSQL: numbering, the ledger code, money, no interest,
no passbook, fees, verification and HTTP — what a teller, an accountant and an auditor would check."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import (
    CURRENT_DEPOSIT,
    DEPOSIT_INTEREST_EXPENSE,
    GUARDED_DEPOSIT_FLAGS,
    ORDINARY_DEPOSIT,
    ensure_chart,
    gl_account_id,
)
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Action,
    Deposits,
    Refused,
    Status,
    Subject,
    TaxClass,
    accrue_interest,
    balance,
    carry_forward,
    change_status,
    close_account,
    convert_to_general_account,
    deposit_cash,
    interest_payments,
    mark_dormant_accounts,
    open_current_account,
    open_ordinary_account,
    passbook_view,
    pay_interest,
    print_passbook,
    reissue_passbook,
    report_lost,
    set_interest_tax_class,
    settle_interest_on_close,
    statement,
    transfer,
    verify_deposits,
    withdraw_cash,
)
from kanjo.deposits.api import router as deposits_router
from kanjo.deposits.passbook_api import router as passbook_router
from kanjo.fees import CODE_LABELS as FEE_LABELS
from kanjo.fees import Channel, Fees, Kind, charge_fee, quote
from kanjo.ledger import Ledger, LedgerBusy, LedgerUnavailable, verify_ledger
from kanjo.platform import db
from kanjo.platform.http import FastJSONResponse, install_error_handlers

START = dt.date(2026, 2, 2)  # Monday: the first business day of February 2026
LAST_BEFORE_PAYOUT = dt.date(2026, 7, 31)  # Friday
PAYOUT = dt.date(2026, 8, 3)  # Monday: the first business day of August 2026, an interest payout day
CALENDAR = BankCalendar()
JST = dt.timezone(dt.timedelta(hours=9))


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    d: Deposits
    fees: Fees

    def on(self, day: dt.date) -> None:
        self.today[0] = day

    async def ledger_balance(self, account_id: int) -> int:
        [a] = await self.d.ledger.lookup_accounts([account_id])
        return a.credits_posted - a.debits_posted

    async def verified(self) -> dict:
        conn = await db.connect(self.d.ledger.dsn)
        try:
            ledger_report = await verify_ledger(conn)
            report = await verify_deposits(conn)
        finally:
            await conn.close()
        assert ledger_report["ok"], ledger_report
        return report


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [START]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible),
                   Fees(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], calendar=CALENDAR))
    finally:
        await ledger.stop()


async def test_a_current_account_takes_the_next_branch_number_and_lives_under_code_2002(bank: Bank) -> None:
    company = rid()
    before = await open_ordinary_account(bank.d, rid(), company, "102")
    opening = rid()
    current = await open_current_account(bank.d, opening, company, "102")
    after = await open_ordinary_account(bank.d, rid(), company, "102")
    # One counter per branch for every subject (科目): 普通 n, 当座 n+1, 普通 n+2; never reused.
    assert (current.account_number, after.account_number) == (before.account_number + 1, before.account_number + 2)
    assert (current.subject, current.status, current.label) == (
        Subject.CURRENT, Status.ACTIVE, f"102-{before.account_number + 1:07d}")
    [ledger_account] = await bank.d.ledger.lookup_accounts([current.id])
    assert (ledger_account.code, ledger_account.user_data_128) == (CURRENT_DEPOSIT.code, company) == (2002, company)
    assert ledger_account.flags & GUARDED_DEPOSIT_FLAGS == GUARDED_DEPOSIT_FLAGS
    [ordinary_ledger] = await bank.d.ledger.lookup_accounts([before.id])
    assert ordinary_ledger.code == ORDINARY_DEPOSIT.code == 2001
    # A retry answers the same account; the same request id cannot open another subject.
    assert await open_current_account(bank.d, opening, company, "102") == current
    assert await open_ordinary_account(bank.d, opening, company, "102", Subject.CURRENT) == current
    with pytest.raises(Refused) as reused:
        await open_ordinary_account(bank.d, opening, company, "102")
    assert reused.value.code == "request_reused" and "current" in str(reused.value)
    async with bank.d.pool.acquire() as conn:
        assert await conn.fetchval("SELECT opened_as FROM deposits.accounts WHERE id = $1", current.id) == "current"
    report = await bank.verified()
    assert report["ok"] and report["accounts"] == 3, report


async def test_cash_transfers_statement_and_closing_work_as_for_an_ordinary_account(bank: Bank) -> None:
    current = await open_current_account(bank.d, rid(), rid(), "001")
    supplier = await open_ordinary_account(bank.d, rid(), rid(), "001")
    await deposit_cash(bank.d, rid(), current.id, 1_000_000)
    await withdraw_cash(bank.d, rid(), current.id, 200_000)
    await transfer(bank.d, rid(), current.id, supplier.id, 300_000)  # paying a supplier (振替)
    await transfer(bank.d, rid(), supplier.id, current.id, 50_000)
    with pytest.raises(Refused) as short:  # no 当座貸越 is offered: a current account never goes below zero
        await withdraw_cash(bank.d, rid(), current.id, 550_001)
    assert short.value.code == "insufficient_funds"
    now = await balance(bank.d, current.id)
    assert (now.balance_minor, now.held_minor, now.available_minor) == (550_000, 0, 550_000)
    assert (await balance(bank.d, supplier.id)).balance_minor == 250_000
    lines = await statement(bank.d, current.id)
    assert [(x.description, x.deposit_minor, x.withdrawal_minor, x.balance_minor) for x in lines] == [
        ("現金入金", 1_000_000, 0, 1_000_000), ("現金出金", 0, 200_000, 800_000), ("振替", 0, 300_000, 500_000),
        ("振替", 50_000, 0, 550_000)]
    # Status: freeze stops money, unfreeze restores it; closing needs a zero balance.
    await change_status(bank.d, rid(), current.id, Action.FREEZE, "差押 (attachment order)")
    with pytest.raises(Refused) as frozen:
        await deposit_cash(bank.d, rid(), current.id, 1)
    assert frozen.value.code == "account_frozen"
    await change_status(bank.d, rid(), current.id, Action.UNFREEZE, "order lifted")
    with pytest.raises(Refused) as not_zero:
        await close_account(bank.d, rid(), current.id, "取引解約")
    assert not_zero.value.code == "balance_not_zero"
    await withdraw_cash(bank.d, rid(), current.id, 550_000)
    closed = await close_account(bank.d, rid(), current.id, "取引解約")
    assert closed.status is Status.CLOSED and closed.closed_on == START
    with pytest.raises(Refused) as gone:
        await deposit_cash(bank.d, rid(), current.id, 1)
    assert gone.value.code == "account_closed"
    assert (await bank.verified())["ok"]


async def test_a_current_account_earns_no_interest(bank: Bank) -> None:
    """¥1,000,000 in each account from 2 Feb to the payout on 3 Aug 2026 (182 days at 0.200 %): the ordinary
    account is credited ¥997 less 国税 ¥152 and 地方税 ¥49 = ¥796; the current account nothing at all."""
    ordinary = await open_ordinary_account(bank.d, rid(), rid(), "001")
    current = await open_current_account(bank.d, rid(), rid(), "001")
    for account in (ordinary, current):
        await deposit_cash(bank.d, rid(), account.id, 1_000_000)
    # Even a tax class set on it by mistake gives the accrual nothing to accrue on.
    await set_interest_tax_class(bank.d, current.id, TaxClass.CORPORATE)
    first = await accrue_interest(bank.d, CALENDAR)
    assert first.accounts == 1  # the accrual reads ordinary deposits (code 2001) only
    bank.on(LAST_BEFORE_PAYOUT)  # the days between were not run: their balance is assumed unchanged
    await accrue_interest(bank.d, CALENDAR)
    bank.on(PAYOUT)
    payout = await pay_interest(bank.d, CALENDAR)
    assert (payout.credited, payout.gross_minor, payout.national_tax_minor, payout.local_tax_minor,
            payout.net_minor) == (1, 997, 152, 49, 796)
    assert await bank.ledger_balance(ordinary.id) == 1_000_796
    assert await bank.ledger_balance(current.id) == 1_000_000
    assert await interest_payments(bank.d, current.id) == []
    assert [x.description for x in await statement(bank.d, current.id)] == ["現金入金"]
    assert -await bank.ledger_balance(gl_account_id(DEPOSIT_INTEREST_EXPENSE)) == 997  # the ordinary account's only
    closing = await settle_interest_on_close(bank.d, CALENDAR, current.id)  # 解約利息: nothing is due
    assert closing.gross_minor == 0 and await bank.ledger_balance(current.id) == 1_000_000


async def test_a_current_account_has_no_passbook_and_never_becomes_a_general_account(bank: Bank) -> None:
    current = await open_current_account(bank.d, rid(), rid(), "001")
    await deposit_cash(bank.d, rid(), current.id, 10_000)
    attempts = [passbook_view(bank.d, current.id), print_passbook(bank.d, rid(), current.id),
                carry_forward(bank.d, rid(), current.id), reissue_passbook(bank.d, rid(), current.id, "汚損"),
                report_lost(bank.d, rid(), current.id, "紛失")]
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            await attempt
        assert refused.value.code == "no_passbook", attempt
    async with bank.d.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deposits.passbooks WHERE account_id = $1", current.id) == 0
    with pytest.raises(Refused) as not_ordinary:
        await convert_to_general_account(bank.d, current.id)
    assert not_ordinary.value.code == "not_an_ordinary_account"
    async with bank.d.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deposits.overdrafts WHERE account_id = $1", current.id) == 0
    assert (await bank.verified())["ok"]


async def test_a_silent_current_account_becomes_dormant_and_revives_at_the_branch(bank: Bank) -> None:
    """The daily dormancy job marks silent current accounts as it does ordinary ones (the dormant-deposits law
    covers both); a branch revives it."""
    current = await open_current_account(bank.d, rid(), rid(), "001")
    ordinary = await open_ordinary_account(bank.d, rid(), rid(), "001")
    bank.on(dt.date(2029, 3, 1))  # 37 months of silence later
    run = await mark_dormant_accounts(bank.d, bank.today[0])
    assert run.marked == 2
    async with bank.d.pool.acquire() as conn:
        statuses = dict(await conn.fetch("SELECT id, status FROM deposits.accounts WHERE id = ANY($1::uuid[])",
                                         [current.id, ordinary.id]))
    assert (statuses[ordinary.id], statuses[current.id]) == ("dormant", "dormant")
    with pytest.raises(Refused) as refused:
        await deposit_cash(bank.d, rid(), current.id, 1)
    assert refused.value.code == "account_dormant"
    revived = await change_status(bank.d, rid(), current.id, Action.REVIVE, "the company's director at the branch")
    assert revived.status is Status.ACTIVE and revived.last_activity_on == bank.today[0]


async def test_a_fee_may_be_charged_to_a_current_account(bank: Bank) -> None:
    current = await open_current_account(bank.d, rid(), rid(), "101")
    await deposit_cash(bank.d, rid(), current.id, 10_000)
    late_evening = dt.datetime(2026, 2, 27, 22, 0, tzinfo=JST)  # a Friday evening at a convenience-store ATM
    fee = quote(bank.fees, Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL, 5_000, late_evening)
    charged = await charge_fee(bank.fees, rid(), current.id, fee)
    assert charged is not None and charged.amount_minor == 220
    assert (await balance(bank.d, current.id)).balance_minor == 9_780
    bank.d.labels = {**bank.d.labels, **FEE_LABELS}  # as kanjo.bank wires the other contexts' labels
    assert [(x.description, x.withdrawal_minor, x.balance_minor) for x in await statement(bank.d, current.id)] == [
        ("現金入金", 0, 10_000), ("手数料", 220, 9_780)]
    assert (await bank.verified())["ok"]


async def test_verify_finds_a_ledger_code_that_does_not_match_the_subject(bank: Bank) -> None:
    current = await open_current_account(bank.d, rid(), rid(), "001")
    ordinary = await open_ordinary_account(bank.d, rid(), rid(), "001")
    report = await bank.verified()
    assert report["ok"] and report["checks"]["ledger_accounts_are_guarded_ordinary_deposits"]["wrong"] == 0
    async with bank.d.pool.acquire() as conn:  # the product rows claim the opposite subjects
        await conn.execute("UPDATE deposits.accounts SET subject = 'ordinary', opened_as = 'ordinary'"
                           " WHERE id = $1", current.id)
        await conn.execute("UPDATE deposits.accounts SET subject = 'current', opened_as = 'current'"
                           " WHERE id = $1", ordinary.id)
    report = await bank.verified()
    check = report["checks"]["ledger_accounts_are_guarded_ordinary_deposits"]
    assert not report["ok"] and check["wrong"] == 2
    assert set(check["sample"]) == {str(uuid.UUID(int=current.id)), str(uuid.UUID(int=ordinary.id))}


async def test_the_database_refuses_a_current_account_that_was_not_opened_as_one(bank: Bank) -> None:
    ordinary = await open_ordinary_account(bank.d, rid(), rid(), "001")
    async with bank.d.pool.acquire() as conn:
        with pytest.raises(Exception, match="current_stays_current"):
            await conn.execute("UPDATE deposits.accounts SET subject = 'current' WHERE id = $1", ordinary.id)


async def test_opening_and_passbook_over_http(bank: Bank) -> None:
    app = FastAPI(default_response_class=FastJSONResponse)
    app.state.deposits = bank.d
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(deposits_router)
    app.include_router(passbook_router)
    customer = str(uuid.uuid4())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        opening = {"request_id": str(uuid.uuid4()), "customer_id": customer, "branch_code": "201",
                   "subject": "current"}
        r = await api.post("/v1/deposits/accounts", json=opening)
        assert r.status_code == 200 and r.json()["subject"] == "current", r.text
        account = r.json()
        assert (await api.post("/v1/deposits/accounts", json=opening)).json() == account  # a retry
        r = await api.post("/v1/deposits/accounts", json={**opening, "request_id": str(uuid.uuid4()),
                                                           "subject": "checking"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "subject", r.text
        base = f"/v1/deposits/accounts/{account['id']}"
        r = await api.post(f"{base}/cash-deposits", json={"request_id": str(uuid.uuid4()), "amount": 120_000})
        assert r.status_code == 200, r.text
        assert (await api.get(f"{base}/balance")).json() == {"balance": 120_000, "held": 0, "available": 120_000}
        r = await api.get(f"{base}/passbook")
        assert r.status_code == 409 and r.json()["error"] == "no_passbook", r.text
        r = await api.post(f"{base}/passbook/print", json={"request_id": str(uuid.uuid4())})
        assert r.status_code == 409 and r.json()["error"] == "no_passbook", r.text


async def test_a_card_loan_cannot_be_linked_to_a_current_account(ledger_dsn: str) -> None:
    from decimal import Decimal

    from kanjo import loans
    from kanjo.bank import build_bank

    day = dt.date(2026, 4, 10)
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: day)
    try:
        await ensure_chart(ledger)

        async def anyone(customer_id: int) -> str | None:
            return None

        bank = build_bank(ledger, BankCalendar(), business_date=lambda: day, customer_check=anyone)
        customer = uuid.uuid4().int
        current = await open_current_account(bank.deposits, uuid.uuid4().int, customer, "001")
        with pytest.raises(loans.Refused) as refused:
            await loans.open_contract(bank.loans, uuid.uuid4().int, customer, current.id, 500_000, Decimal("14.5"), 10)
        assert refused.value.code == "not_an_ordinary_account"
    finally:
        await ledger.stop()
