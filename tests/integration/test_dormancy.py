"""The dormancy job against PostgreSQL: who becomes dormant on a given business date, idempotent per day,
set-based in batches, and what the customer then meets (a refusal, a revival at the branch)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from kanjo.accounting import ensure_chart
from kanjo.deposits import (
    Action,
    Deposits,
    Refused,
    Status,
    change_status,
    close_account,
    deposit_cash,
    get_account,
    job_request_id,
    mark_dormant_accounts,
    open_ordinary_account,
    print_passbook,
    withdraw_cash,
)
from kanjo.deposits import dormancy as dormancy_module
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import Ledger

RUN = dt.date(2029, 3, 1)  # 36 months of silence: last activity before 2026-03-01 is dormant


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits

    async def account_active_on(self, day: dt.date, cash_minor: int = 0) -> int:
        self.today[0] = day
        account = await open_ordinary_account(self.deposits, rid(), rid(), "101")
        if cash_minor:
            await deposit_cash(self.deposits, rid(), account.id, cash_minor)
        return account.id

    async def status(self, account_id: int) -> Status:
        return (await get_account(self.deposits, account_id)).status


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [dt.date(2025, 1, 6)]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible))
    finally:
        await ledger.stop()


async def test_silent_accounts_become_dormant_once_and_revive_at_the_branch(bank: Bank) -> None:
    d = bank.deposits
    silent = await bank.account_active_on(dt.date(2026, 2, 27), 30_000)  # last movement Fri 27 Feb 2026
    just_in_time = await bank.account_active_on(dt.date(2026, 3, 2), 10_000)  # Mon 2 Mar 2026: just inside 36 months
    printed = await bank.account_active_on(dt.date(2025, 6, 2), 5_000)
    bank.today[0] = dt.date(2026, 3, 2)
    await print_passbook(d, rid(), printed)  # 記帳 is the customer's activity
    frozen = await bank.account_active_on(dt.date(2025, 1, 6))
    await change_status(d, rid(), frozen, Action.FREEZE, "差押")
    closed = await bank.account_active_on(dt.date(2025, 1, 6))
    await close_account(d, rid(), closed, "解約")

    run = await mark_dormant_accounts(d, RUN)
    assert (run.cutoff, run.marked, run.batches, run.silence_months) == (dt.date(2026, 3, 1), 1, 1, 36)
    assert await bank.status(silent) is Status.DORMANT
    assert [await bank.status(a) for a in (just_in_time, printed, frozen, closed)] == [
        Status.ACTIVE, Status.ACTIVE, Status.FROZEN, Status.CLOSED]
    async with d.pool.acquire() as conn:
        change = await conn.fetchrow(
            "SELECT request_id, action, from_status, to_status, reason FROM deposits.status_changes"
            " WHERE account_id = $1 AND action = 'mark_dormant'", silent)
    assert change["request_id"] == job_request_id(silent, RUN)
    assert (change["action"], change["from_status"], change["to_status"]) == ("mark_dormant", "active", "dormant")
    assert "since 2026-02-27" in change["reason"] and "36 months" in change["reason"]

    again = await mark_dormant_accounts(d, RUN)  # the same day again: nothing changes
    assert (again.marked, again.batches) == (0, 1)
    bank.today[0] = RUN
    with pytest.raises(Refused) as refused:
        await withdraw_cash(d, rid(), silent, 1_000)
    assert refused.value.code == "account_dormant"
    await change_status(d, rid(), silent, Action.REVIVE, "本人確認済 at the branch")
    assert (await mark_dormant_accounts(d, RUN)).marked == 0  # revived today: today's run leaves it alone
    assert await bank.status(silent) is Status.ACTIVE
    # nor the next day's: reviving at the branch starts the silence again, with no money moved
    assert (await mark_dormant_accounts(d, dt.date(2029, 3, 2))).marked == 0
    await withdraw_cash(d, rid(), silent, 1_000)  # and the revived customer's withdrawal is activity
    assert (await mark_dormant_accounts(d, dt.date(2029, 3, 2))).marked == 0

    # a month on, the cut-off is 1 Apr 2026: the accounts last used on 2 Mar 2026 are silent too
    later = await mark_dormant_accounts(d, dt.date(2029, 4, 1))
    assert (later.cutoff, later.marked) == (dt.date(2026, 4, 1), 2)
    assert [await bank.status(a) for a in (just_in_time, printed, silent)] == [
        Status.DORMANT, Status.DORMANT, Status.ACTIVE]


async def test_the_silence_is_configurable_within_its_limits(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account_active_on(dt.date(2027, 9, 30))
    eighteen = await mark_dormant_accounts(d, RUN, silence_months=18)  # silent since before 1 Sep 2027: not yet
    assert (eighteen.cutoff, eighteen.marked) == (dt.date(2027, 9, 1), 0)
    twelve = await mark_dormant_accounts(d, RUN, silence_months=12)  # before 1 Mar 2028: yes
    assert (twelve.cutoff, twelve.marked) == (dt.date(2028, 3, 1), 1)
    assert await bank.status(account) is Status.DORMANT
    with pytest.raises(LimitReached, match="deposit_dormancy_silence_months_max"):
        await mark_dormant_accounts(d, RUN, silence_months=121)
    with pytest.raises(Refused) as refused:
        await mark_dormant_accounts(d, RUN, silence_months=6)
    assert refused.value.code == "silence_too_short"


async def test_sql_and_python_derive_the_same_job_request_id(bank: Bank) -> None:
    ids = [rid() for _ in range(5)] + [1, 2**128 - 1]
    days = [dt.date(2029, 3, 1), dt.date(2000, 12, 31)]
    async with bank.deposits.pool.acquire() as conn:
        for account in ids:
            for day in days:
                sql = await conn.fetchval("SELECT deposits.job_request_id($1, $2, 'mark_dormant')", account, day)
                assert sql == job_request_id(account, day)


async def test_the_job_is_set_based_in_batches(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    """6,000 accounts, 4,492 of them silent, in 1,000-account batches: five statements, not one per account."""
    monkeypatch.setattr(dormancy_module, "DORMANCY_ACCOUNTS_PER_BATCH_MAX", 1_000)
    async with bank.deposits.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO deposits.accounts (id, branch_code, account_number, subject, customer_id, status, opened_on,"
            " last_activity_on, open_request_id)"
            " SELECT gen_random_uuid(), '201', n, 'ordinary', gen_random_uuid(), 'active', DATE '2020-01-06',"
            "        DATE '2020-01-06' + (n % 3000), gen_random_uuid() FROM generate_series(1, 6000) AS n")
        silent = await conn.fetchval("SELECT count(*) FROM deposits.accounts WHERE last_activity_on < '2026-03-01'")
    started = time.perf_counter()
    run = await mark_dormant_accounts(bank.deposits, RUN)
    elapsed_s = time.perf_counter() - started
    # last activity 6 Jan 2020 + (n mod 3,000) days: offsets 0..2,245 fall before 1 Mar 2026, twice each
    assert silent == 4_492
    assert (run.marked, run.batches) == (4_492, 5)
    async with bank.deposits.pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM deposits.status_changes s JOIN deposits.accounts a ON a.id = s.account_id"
            " WHERE s.action = 'mark_dormant' AND a.status = 'dormant'"
            " AND s.request_id = deposits.job_request_id(a.id, $1, 'mark_dormant')", RUN)
    assert recorded == silent
    assert elapsed_s < 10, elapsed_s
    assert (await mark_dormant_accounts(bank.deposits, RUN)).marked == 0
