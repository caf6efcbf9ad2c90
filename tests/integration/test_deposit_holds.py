"""Holds (two-phase cash out) on deposit accounts, against a real ledger and PostgreSQL: what the ATM channel and an
auditor rely on — a hold reserves, posts once, voids once, expires by itself, and on a 総合口座 a voided hold leaves
the overdraft as it was."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from kanjo.accounting import ATM_CASH, JPY, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Deposits,
    Refused,
    Subject,
    balance,
    deposit_cash,
    hold_status,
    open_ordinary_account,
    place_atm_hold,
    post_hold,
    statement,
    verify_deposits,
    void_hold,
    withdraw_cash,
)
from kanjo.deposits.overdraft import overdraft_account_id
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import Ledger, PendingStatus, Transfer, verify_ledger
from kanjo.platform import db
from kanjo.time_deposits import Instruction, TimeDeposits, place_time_deposit, pledges

TODAY = dt.date(2026, 7, 1)


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    deposits: Deposits
    td: TimeDeposits

    async def account(self, cash_minor: int, subject: Subject = Subject.ORDINARY) -> tuple[int, int]:
        customer = rid()
        account = await open_ordinary_account(self.deposits, rid(), customer, "001", subject)
        if cash_minor:
            await deposit_cash(self.deposits, rid(), account.id, cash_minor)
        return customer, account.id

    async def atm_cash(self) -> int:
        [a] = await self.deposits.ledger.lookup_accounts([gl_account_id(ATM_CASH)])
        return a.debits_posted - a.credits_posted

    async def verified(self) -> None:
        conn = await db.connect(self.deposits.ledger.dsn)
        try:
            ledger_report = await verify_ledger(conn)
            report = await verify_deposits(conn, collateral=pledges)
        finally:
            await conn.close()
        assert ledger_report["ok"], ledger_report
        assert report["ok"], report


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: TODAY, customer_check=eligible,
                            collateral=pledges),
                   TimeDeposits(pool=ledger.pool, ledger=ledger, business_date=lambda: TODAY,
                                calendar=BankCalendar()))
    finally:
        await ledger.stop()


async def test_a_hold_reserves_then_posts_once(bank: Bank) -> None:
    _, account = await bank.account(50_000)
    request = rid()
    hold = await place_atm_hold(bank.deposits, request, account, 20_110, timeout_s=60)
    assert hold.status is PendingStatus.PENDING and hold.amount_minor == 20_110
    b = await balance(bank.deposits, account)
    assert (b.balance_minor, b.held_minor, b.available_minor) == (50_000, 20_110, 29_890)
    # the reserved funds cannot be spent twice
    assert (await _refused(withdraw_cash(bank.deposits, rid(), account, 29_891))).code == "insufficient_funds"
    again = await place_atm_hold(bank.deposits, request, account, 20_110, timeout_s=60)
    assert again.hold_id == hold.hold_id and again.replayed
    assert (await balance(bank.deposits, account)).held_minor == 20_110  # the retry held nothing more
    cash_before = await bank.atm_cash()
    posted = await post_hold(bank.deposits, request, 20_000)  # the fee part is released, the cash part posted
    assert (posted.amount_minor, posted.replayed) == (20_000, False)
    assert (await hold_status(bank.deposits, request)).status is PendingStatus.POSTED
    b = await balance(bank.deposits, account)
    assert (b.balance_minor, b.held_minor, b.available_minor) == (30_000, 0, 30_000)
    assert cash_before - await bank.atm_cash() == 20_000
    assert (await post_hold(bank.deposits, request, 20_000)).replayed  # an acknowledgement retried: nothing moves
    assert (await balance(bank.deposits, account)).balance_minor == 30_000
    assert (await _refused(void_hold(bank.deposits, request))).code == "hold_posted"
    page = await statement(bank.deposits, account)
    assert [line.description for line in page][-1] == "カード"
    await bank.verified()


async def test_a_linked_transfer_moves_with_the_post_or_not_at_all(bank: Bank) -> None:
    """The fee for the cash in the same ledger request as the post: both move once, or the hold is posted alone and
    the linked transfer does not move (the caller charges it its own way)."""
    _, account = await bank.account(50_000)
    _, other = await bank.account(0)
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 20_110, timeout_s=60)
    fee = Transfer(id=rid(), debit_account_id=account, credit_account_id=other, amount=110, ledger=JPY, code=31)
    posted = await post_hold(bank.deposits, request, 20_000, linked=fee)
    assert (posted.amount_minor, posted.replayed, posted.linked_moved) == (20_000, False, True)
    assert (await balance(bank.deposits, account)).balance_minor == 50_000 - 20_000 - 110
    assert (await balance(bank.deposits, other)).balance_minor == 110
    again = await post_hold(bank.deposits, request, 20_000, linked=fee)  # the acknowledgement retried
    assert (again.replayed, again.linked_moved) == (True, True)
    assert (await balance(bank.deposits, account)).balance_minor == 29_890  # nothing moved twice

    # the linked transfer refused (more than the account has once the cash is out): the hold posts alone
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 29_000, timeout_s=60)
    too_much = Transfer(id=rid(), debit_account_id=account, credit_account_id=other, amount=900, ledger=JPY, code=31)
    posted = await post_hold(bank.deposits, request, 29_000, linked=too_much)
    assert (posted.amount_minor, posted.linked_moved) == (29_000, False)
    assert (await balance(bank.deposits, account)).balance_minor == 890
    assert (await balance(bank.deposits, other)).balance_minor == 110
    again = await post_hold(bank.deposits, request, 29_000, linked=too_much)  # a retry: the same answer
    assert (again.replayed, again.linked_moved) == (True, False)
    assert (await bank.deposits.ledger.lookup_transfers([too_much.id])) == []

    # a hold posted alone before (an earlier acknowledgement): the chain moves nothing more
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 500, timeout_s=60)
    await post_hold(bank.deposits, request)
    fee = Transfer(id=rid(), debit_account_id=account, credit_account_id=other, amount=100, ledger=JPY, code=31)
    late = await post_hold(bank.deposits, request, linked=fee)
    assert (late.replayed, late.linked_moved) == (True, False)
    assert (await balance(bank.deposits, account)).balance_minor == 390

    # a voided hold cannot be posted, linked or not, and the linked transfer does not move
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 300, timeout_s=60)
    await void_hold(bank.deposits, request)
    fee = Transfer(id=rid(), debit_account_id=account, credit_account_id=other, amount=100, ledger=JPY, code=31)
    assert (await _refused(post_hold(bank.deposits, request, linked=fee))).code == "hold_voided"
    assert (await balance(bank.deposits, account)).balance_minor == 390
    await bank.verified()


async def test_a_voided_hold_moves_nothing_and_cannot_be_posted(bank: Bank) -> None:
    _, account = await bank.account(10_000)
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 10_000, timeout_s=60)
    voided = await void_hold(bank.deposits, request)
    assert voided.status is PendingStatus.VOIDED
    assert (await void_hold(bank.deposits, request)).replayed
    b = await balance(bank.deposits, account)
    assert (b.balance_minor, b.held_minor, b.available_minor) == (10_000, 0, 10_000)
    assert (await _refused(post_hold(bank.deposits, request))).code == "hold_voided"
    await bank.verified()


async def test_a_hold_nobody_settles_expires_by_itself(bank: Bank) -> None:
    _, account = await bank.account(10_000)
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 7_000, timeout_s=1)
    for _ in range(60):  # the ledger's expiry sweep runs every 50 ms here
        await asyncio.sleep(0.05)
        status = await hold_status(bank.deposits, request)
        if status is not None and status.status is PendingStatus.EXPIRED:
            break
    assert status is not None and status.status is PendingStatus.EXPIRED
    assert (await balance(bank.deposits, account)).available_minor == 10_000
    assert (await _refused(post_hold(bank.deposits, request))).code == "hold_expired"
    released = await void_hold(bank.deposits, request)  # voiding an expired hold is a harmless no-op
    assert released.status is PendingStatus.EXPIRED
    await bank.verified()


async def test_refusals_change_nothing(bank: Bank) -> None:
    _, account = await bank.account(5_000)
    assert (await _refused(place_atm_hold(bank.deposits, rid(), account, 5_001, timeout_s=60))).code == \
        "insufficient_funds"
    with pytest.raises(LimitReached):
        await place_atm_hold(bank.deposits, rid(), account, 1_000, timeout_s=3_601)
    assert (await _refused(post_hold(bank.deposits, rid()))).code == "unknown_hold"
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 3_000, timeout_s=60)
    assert (await _refused(post_hold(bank.deposits, request, 3_001))).code == "invalid_amount"
    assert (await _refused(place_atm_hold(bank.deposits, request, account, 2_000, timeout_s=60))).code == \
        "request_reused"
    b = await balance(bank.deposits, account)
    assert (b.balance_minor, b.held_minor) == (5_000, 3_000)
    await bank.verified()


async def test_a_general_account_hold_draws_the_overdraft_and_a_void_gives_it_back(bank: Bank) -> None:
    customer, account = await bank.account(100_000, Subject.SOGO)
    await deposit_cash(bank.deposits, rid(), account, 1_000_000)
    await place_time_deposit(bank.td, rid(), customer, account, 1_000_000, 12, Instruction.PAY_OUT)
    # ¥100,000 in the account, a ¥1,000,000 time deposit pledged: the overdraft lends up to ¥900,000
    request = rid()
    await place_atm_hold(bank.deposits, request, account, 150_000, timeout_s=60)
    assert await _drawn(bank, account) == 50_000
    assert (await balance(bank.deposits, account)).available_minor == 0
    await void_hold(bank.deposits, request)
    assert await _drawn(bank, account) == 0  # repaid from the funds the void released
    b = await balance(bank.deposits, account)
    assert (b.balance_minor, b.held_minor, b.available_minor) == (100_000, 0, 100_000)
    # posted, the draw stays: the customer took the cash
    posted_request = rid()
    await place_atm_hold(bank.deposits, posted_request, account, 150_000, timeout_s=60)
    await post_hold(bank.deposits, posted_request)
    assert await _drawn(bank, account) == 50_000
    assert (await balance(bank.deposits, account)).balance_minor == 0
    await bank.verified()


async def _drawn(bank: Bank, account: int) -> int:
    [a] = await bank.deposits.ledger.lookup_accounts([overdraft_account_id(account)])
    return a.balance_debit_minor()


async def _refused(coro: object) -> Refused:
    with pytest.raises(Refused) as caught:
        await coro  # type: ignore[misc]
    return caught.value
