"""Ordinary deposits against a real ledger and PostgreSQL: what a teller and a customer would check."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from kanjo.accounting import ensure_chart
from kanjo.deposits import (
    Action,
    Deposits,
    IllegalTransition,
    Refused,
    Status,
    balance,
    change_status,
    close_account,
    deposit_cash,
    open_ordinary_account,
    statement,
    transfer,
    withdraw_cash,
)
from kanjo.ledger import Ledger, verify_ledger
from kanjo.platform import db

TODAY = dt.date(2026, 2, 27)


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None  # these tests are about deposits; the customer check is exercised end to end elsewhere


@pytest.fixture
async def deposits(ledger_dsn: str) -> AsyncIterator[Deposits]:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: TODAY, customer_check=eligible)
    finally:
        await ledger.stop()


async def test_open_deposit_withdraw_and_a_refused_overdraft(deposits: Deposits) -> None:
    customer = rid()
    account = await open_ordinary_account(deposits, rid(), customer, "101")
    assert account.status is Status.ACTIVE and account.label.startswith("101-")
    await deposit_cash(deposits, rid(), account.id, 50_000)
    await withdraw_cash(deposits, rid(), account.id, 12_000)
    with pytest.raises(Refused) as refused:
        await withdraw_cash(deposits, rid(), account.id, 38_001)
    assert refused.value.code == "insufficient_funds"
    now = await balance(deposits, account.id)
    assert (now.balance_minor, now.available_minor) == (38_000, 38_000)


async def test_a_retried_request_moves_money_once(deposits: Deposits) -> None:
    account = await open_ordinary_account(deposits, rid(), rid(), "001")
    request = rid()
    first = await deposit_cash(deposits, request, account.id, 10_000)
    again = await deposit_cash(deposits, request, account.id, 10_000)
    assert not first.replayed and again.replayed and again.timestamp == first.timestamp
    assert (await balance(deposits, account.id)).balance_minor == 10_000
    with pytest.raises(Refused) as refused:
        await deposit_cash(deposits, request, account.id, 20_000)
    assert refused.value.code == "request_reused" and "amount" in str(refused.value)
    # the same open request answers the same account; numbers are never reused
    opened = rid()
    a1 = await open_ordinary_account(deposits, opened, 7, "001")
    a2 = await open_ordinary_account(deposits, opened, 7, "001")
    a3 = await open_ordinary_account(deposits, rid(), 7, "001")
    assert a1 == a2 and a3.account_number == a1.account_number + 1


async def test_transfers_statements_and_running_balances(deposits: Deposits) -> None:
    sato = await open_ordinary_account(deposits, rid(), rid(), "001")
    suzuki = await open_ordinary_account(deposits, rid(), rid(), "001")
    await deposit_cash(deposits, rid(), sato.id, 100_000)
    await transfer(deposits, rid(), sato.id, suzuki.id, 30_000)
    await withdraw_cash(deposits, rid(), sato.id, 5_000)
    lines = await statement(deposits, sato.id)
    assert [(ln.description, ln.deposit_minor, ln.withdrawal_minor, ln.balance_minor) for ln in lines] == [
        ("現金入金", 100_000, 0, 100_000), ("振替", 0, 30_000, 70_000), ("現金出金", 0, 5_000, 65_000)]
    assert all(ln.business_date == TODAY for ln in lines)
    page = await statement(deposits, sato.id, after_timestamp=lines[0].timestamp, limit=1)
    assert [ln.balance_minor for ln in page] == [70_000]
    assert (await balance(deposits, suzuki.id)).balance_minor == 30_000


async def test_frozen_accounts_move_nothing_until_unfrozen(deposits: Deposits) -> None:
    account = await open_ordinary_account(deposits, rid(), rid(), "001")
    await deposit_cash(deposits, rid(), account.id, 1_000)
    frozen = await change_status(deposits, rid(), account.id, Action.FREEZE, "police request")
    assert frozen.status is Status.FROZEN
    for move in (deposit_cash, withdraw_cash):
        with pytest.raises(Refused) as refused:
            await move(deposits, rid(), account.id, 100)
        assert refused.value.code == "account_frozen"
    with pytest.raises(IllegalTransition):
        await change_status(deposits, rid(), account.id, Action.REVIVE, "not dormant")
    await change_status(deposits, rid(), account.id, Action.UNFREEZE, "cleared")
    await withdraw_cash(deposits, rid(), account.id, 1_000)


async def test_closing_needs_a_zero_balance_and_then_the_ledger_refuses(deposits: Deposits) -> None:
    account = await open_ordinary_account(deposits, rid(), rid(), "001")
    await deposit_cash(deposits, rid(), account.id, 500)
    with pytest.raises(Refused) as refused:
        await close_account(deposits, rid(), account.id, "customer request")
    assert refused.value.code == "balance_not_zero"
    await withdraw_cash(deposits, rid(), account.id, 500)
    request = rid()
    closed = await close_account(deposits, request, account.id, "customer request")
    assert closed.status is Status.CLOSED and closed.closed_on == TODAY
    assert (await close_account(deposits, request, account.id, "customer request")).status is Status.CLOSED
    with pytest.raises(Refused) as refused:
        await deposit_cash(deposits, rid(), account.id, 1)
    assert refused.value.code == "account_closed"
    conn = await db.connect(deposits.ledger.dsn)
    try:
        report = await verify_ledger(conn)
    finally:
        await conn.close()
    assert report["ok"], report


async def test_verify_finds_a_product_account_that_disagrees_with_the_ledger(deposits: Deposits) -> None:
    from kanjo.deposits import verify_deposits

    healthy = await open_ordinary_account(deposits, rid(), rid(), "001")
    tampered = await open_ordinary_account(deposits, rid(), rid(), "001")
    conn = await db.connect(deposits.ledger.dsn)
    try:
        report = await verify_deposits(conn)
        assert report["ok"] and report["accounts"] == 2, report
        # closed in the product but still open in the ledger: money could still move
        await conn.execute("UPDATE deposits.accounts SET status = 'closed', closed_on = $2 WHERE id = $1",
                           tampered.id, TODAY)
        report = await verify_deposits(conn)
        assert not report["ok"] and report["checks"]["closed_in_both_or_neither"]["mismatched"] == 1
        ledger_report = await verify_ledger(conn)
        assert "2001" in ledger_report["trial_balance"]["392"]
    finally:
        await conn.close()
    assert healthy.status is Status.ACTIVE
