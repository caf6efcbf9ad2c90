"""The month-end statements job (当座勘定照合表) on a real PostgreSQL and ledger: who gets a statement, its figures
against the ledger, idempotence per (account, period), a run resumed after a crash, the catalogue's month-end rule
and the read route."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import ensure_chart
from kanjo.bank import Bank, build_bank
from kanjo.batch import Batch, BusinessDay, bank_kinds, day_plan
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Action,
    Refused,
    StatementRun,
    change_status,
    close_account,
    deposit_cash,
    issue_statements,
    issued_statements,
    open_current_account,
    open_ordinary_account,
    place_atm_hold,
    post_hold,
    statement,
    transfer,
    void_hold,
    withdraw_cash,
)
from kanjo.deposits import statements_run as job
from kanjo.deposits.statements_api import router as statements_router
from kanjo.kernel.invariants import InvariantViolation
from kanjo.ledger import Ledger, LedgerBusy, LedgerUnavailable
from kanjo.platform.http import FastJSONResponse, install_error_handlers

CALENDAR = BankCalendar()
MAY_END = dt.date(2026, 5, 29)  # Friday: May 30-31 are a weekend
JUNE_FIRST = dt.date(2026, 6, 1)  # Monday
JUNE_END = dt.date(2026, 6, 30)  # Tuesday
JULY_FIRST = dt.date(2026, 7, 1)


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class World:
    today: list[dt.date]
    bank: Bank

    def on(self, day: dt.date) -> None:
        self.today[0] = day

    async def run(self, day: dt.date) -> StatementRun:
        return await issue_statements(self.bank.deposits, CALENDAR, day)

    async def issued(self, account_id: int) -> list[tuple[Any, ...]]:
        """(period_first, period_last, opening, credits, debits, closing, lines, business_date), oldest first."""
        found = await issued_statements(self.bank.deposits, account_id)
        return [(s.period_first, s.period_last, s.opening_minor, s.credits_minor, s.debits_minor, s.closing_minor,
                 s.lines, s.business_date) for s in reversed(found)]

    async def ledger_balance(self, account_id: int) -> int:
        [a] = await self.bank.ledger.lookup_accounts([account_id])
        return a.credits_posted - a.debits_posted


@pytest.fixture
async def world(ledger_dsn: str) -> AsyncIterator[World]:
    today = [dt.date(2026, 5, 20)]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    try:
        yield World(today, build_bank(ledger, CALENDAR, business_date=lambda: today[0], customer_check=eligible))
    finally:
        await ledger.stop()


@dataclass
class Accounts:
    busy: int  # a company's current account with movements in May and June
    quiet: int  # a current account with a movement in May only
    closed: int  # a current account opened and closed in May
    dormant: int  # a current account with a movement in May, dormant since
    ordinary: int  # an ordinary account (it has a passbook)


async def two_months(w: World) -> Accounts:
    """Movements dated in May and June 2026, and one dated July 1 booked before June's statements are issued."""
    d = w.bank.deposits
    w.on(dt.date(2026, 5, 20))
    company = rid()
    busy = (await open_current_account(d, rid(), company, "001")).id
    quiet = (await open_current_account(d, rid(), rid(), "001")).id
    closed = (await open_current_account(d, rid(), rid(), "001")).id
    dormant = (await open_current_account(d, rid(), rid(), "001")).id
    ordinary = (await open_ordinary_account(d, rid(), company, "001")).id
    await deposit_cash(d, rid(), busy, 1_000_000)
    await deposit_cash(d, rid(), quiet, 30_000)
    await deposit_cash(d, rid(), dormant, 5_000)
    await deposit_cash(d, rid(), ordinary, 400_000)
    w.on(dt.date(2026, 5, 25))
    await close_account(d, rid(), closed, "取引終了")
    await change_status(d, rid(), dormant, Action.MARK_DORMANT, "所在不明")
    w.on(dt.date(2026, 6, 3))
    await withdraw_cash(d, rid(), busy, 200_000)
    hold = rid()  # an ATM withdrawal: reserved, then posted — one movement, not two
    await place_atm_hold(d, hold, busy, 30_000, 60)
    await post_hold(d, hold)
    voided = rid()  # an ATM withdrawal that never paid out: no movement at all
    await place_atm_hold(d, voided, busy, 70_000, 60)
    await void_hold(d, voided)
    w.on(dt.date(2026, 6, 15))
    await transfer(d, rid(), ordinary, busy, 50_000)
    await deposit_cash(d, rid(), ordinary, 9_000)
    w.on(JUNE_END)
    await withdraw_cash(d, rid(), busy, 100_000)
    w.on(JULY_FIRST)  # the cut-off of June 30 has moved online to July 1
    await deposit_cash(d, rid(), busy, 7_000)
    return Accounts(busy, quiet, closed, dormant, ordinary)


async def test_each_month_end_issues_one_statement_per_current_account_with_figures_from_the_ledger(
        world: World) -> None:
    a = await two_months(world)
    world.on(JUNE_FIRST)
    may = await world.run(MAY_END)
    assert (may.period_first, may.period_last, may.accounts, may.issued, may.without_movement,
            may.skipped_dormant, may.over_limit, may.opening_differs) == (
        dt.date(2026, 5, 1), MAY_END, 4, 4, 1, 0, 0, 0)  # busy, quiet, closed (its last), dormant (moved in May)
    world.on(JULY_FIRST)
    june = await world.run(JUNE_END)
    # June: busy and quiet (no movement: a balance confirmation); closed in May: none; dormant and silent: none.
    assert (june.period_first, june.accounts, june.issued, june.without_movement, june.skipped_dormant,
            june.opening_differs) == (JUNE_FIRST, 3, 2, 1, 1, 0)
    assert await world.issued(a.busy) == [
        (dt.date(2026, 5, 1), MAY_END, 0, 1_000_000, 0, 1_000_000, 1, MAY_END),
        # 現金出金 200,000, カード 30,000 (the posted hold, not its reservation; the voided hold not at all),
        # 振替 in 50,000, 現金出金 100,000; July's 7,000 belongs to July
        (JUNE_FIRST, JUNE_END, 1_000_000, 50_000, 330_000, 720_000, 4, JUNE_END)]
    assert await world.ledger_balance(a.busy) == 720_000 + 7_000
    # The lines themselves are reprinted from the ledger by period: the last of June ends at the closing balance.
    june_lines = await statement(world.bank.deposits, a.busy, from_date=JUNE_FIRST, to_date=JUNE_END)
    assert june_lines[-1].balance_minor == 720_000
    assert await world.issued(a.quiet) == [
        (dt.date(2026, 5, 1), MAY_END, 0, 30_000, 0, 30_000, 1, MAY_END),
        (JUNE_FIRST, JUNE_END, 30_000, 0, 0, 30_000, 0, JUNE_END)]
    assert await world.issued(a.closed) == [(dt.date(2026, 5, 1), MAY_END, 0, 0, 0, 0, 0, MAY_END)]
    assert await world.issued(a.dormant) == [(dt.date(2026, 5, 1), MAY_END, 0, 5_000, 0, 5_000, 1, MAY_END)]
    assert await world.issued(a.ordinary) == []  # its passbook is its statement


async def test_a_rerun_adds_nothing_and_a_run_resumed_after_a_crash_continues(world: World,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    d = world.bank.deposits
    world.on(JUNE_FIRST)
    accounts = [(await open_current_account(d, rid(), rid(), "101")).id for _ in range(7)]
    for i, account in enumerate(accounts):
        await deposit_cash(d, rid(), account, 1_000 * (i + 1))
    world.on(JULY_FIRST)
    # Pages of two accounts; the ledger read of the fourth account in id order fails the first run.
    monkeypatch.setattr(job, "ACCOUNTS_PER_PAGE_MAX", 2)
    failing = sorted(accounts)[3]
    real_figures = job._figures

    async def crash_on_failing(deposits: Any, account_id: int, first: dt.date, last: dt.date) -> Any:
        if account_id == failing:
            raise ConnectionResetError("the database went away")
        return await real_figures(deposits, account_id, first, last)

    monkeypatch.setattr(job, "_figures", crash_on_failing)
    with pytest.raises(ConnectionResetError):
        await world.run(JUNE_END)
    assert sum([len(await world.issued(x)) for x in accounts]) == 2  # the first page was written, the second not
    monkeypatch.setattr(job, "_figures", real_figures)
    resumed = await world.run(JUNE_END)
    assert (resumed.accounts, resumed.issued, resumed.pages) == (5, 5, 3)  # only what was left, in pages of two
    for i, account in enumerate(accounts):
        assert await world.issued(account) == [
            (JUNE_FIRST, JUNE_END, 0, 1_000 * (i + 1), 0, 1_000 * (i + 1), 1, JUNE_END)]
    again = await world.run(JUNE_END)
    assert (again.accounts, again.issued, again.pages) == (0, 0, 1)
    assert sum([len(await world.issued(x)) for x in accounts]) == 7


async def test_a_statement_that_does_not_agree_with_the_ledger_is_never_issued(world: World) -> None:
    d = world.bank.deposits
    world.on(JUNE_END)
    account = (await open_current_account(d, rid(), rid(), "201")).id
    await deposit_cash(d, rid(), account, 80_000)
    await withdraw_cash(d, rid(), account, 5_000)
    # The ledger's balance history disagrees with its transfers (a lost or torn write, done here by hand).
    assert d.ledger.pool is not None
    async with d.ledger.pool.acquire() as conn:
        await conn.execute(
            "UPDATE ledger.account_balances SET debits_posted = debits_posted - 1 WHERE account_id = $1"
            " AND timestamp = (SELECT max(timestamp) FROM ledger.account_balances WHERE account_id = $1)", account)
    world.on(JULY_FIRST)
    with pytest.raises(InvariantViolation) as broken:
        await world.run(JUNE_END)
    assert "moved by 75001" in str(broken.value) and "sum to 75000" in str(broken.value)
    assert await world.issued(account) == []


async def test_only_a_month_end_after_its_cut_off_issues_and_the_catalogue_skips_other_days(world: World) -> None:
    not_due = bank_kinds(world.bank)["statements"].not_due
    assert not_due(JUNE_END) is None and not_due(MAY_END) is None
    assert not_due(dt.date(2026, 6, 29)) == "not the month's last business day"
    assert not_due(dt.date(2026, 5, 31)) == "not the month's last business day"  # a Sunday, the calendar's last
    assert not_due(dt.date(2026, 12, 30)) is None  # 12/31 is a bank holiday
    world.on(JULY_FIRST)
    with pytest.raises(Refused) as partial:
        await world.run(dt.date(2026, 6, 29))
    assert partial.value.code == "not_a_statement_day"
    world.on(JUNE_END)
    with pytest.raises(Refused) as early:  # online still books on June 30: its movements are not all in
        await world.run(JUNE_END)
    assert early.value.code == "day_not_cut_off"


async def test_the_day_change_of_a_month_end_issues_the_statements_after_its_cut_off(ledger_dsn: str) -> None:
    day = BusinessDay(JUNE_END)
    ledger = await Ledger.start(ledger_dsn, business_date=day)
    try:
        await ensure_chart(ledger)
        assert ledger.pool is not None
        day.moved_to((await BusinessDay.load(ledger.pool, JUNE_END))())
        bank = build_bank(ledger, CALENDAR, business_date=day, customer_check=eligible)
        account = (await open_current_account(bank.deposits, rid(), rid(), "001")).id
        await deposit_cash(bank.deposits, rid(), account, 12_345)
        night = dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
        batch = Batch(ledger.pool, bank_kinds(bank), day, CALENDAR, day_plan(), now=lambda: night, tick_s=0.05)
        await batch.ensure_planned()
        await batch.run_until_idle(60)
        try:
            jobs = {j["name"]: j for j in (await batch.day_report(JUNE_END))["jobs"]}
        finally:
            await batch.stop()
        run = jobs["statements"]
        assert run["state"] == "succeeded" and run["started_at"] >= jobs["cut_off"]["finished_at"], run
        assert (run["result"]["period_first"], run["result"]["issued"]) == ("2026-06-01", 1)
        found = await issued_statements(bank.deposits, account)
        assert [(s.opening_minor, s.credits_minor, s.closing_minor, s.lines) for s in found] == [(0, 12_345, 12_345, 1)]
    finally:
        await ledger.stop()


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI(default_response_class=FastJSONResponse)
    app.state.deposits = world.bank.deposits
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(statements_router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
        yield client


async def test_the_issued_statements_are_read_newest_first_page_by_page(world: World,
                                                                        api: httpx.AsyncClient) -> None:
    a = await two_months(world)
    world.on(JUNE_FIRST)
    await world.run(MAY_END)
    world.on(JULY_FIRST)
    await world.run(JUNE_END)
    url = f"/v1/deposits/accounts/{uuid.UUID(int=a.busy)}/statements-issued"
    r = await api.get(url, params={"limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    [june] = body["statements"]
    assert (june["period_first"], june["period_last"], june["opening"], june["credits"], june["debits"],
            june["closing"], june["lines"], june["business_date"]) == (
        "2026-06-01", "2026-06-30", 1_000_000, 50_000, 330_000, 720_000, 4, "2026-06-30")
    assert body["next_before"] == "2026-06-30"
    older = (await api.get(url, params={"limit": 1, "before": body["next_before"]})).json()
    assert [s["period_last"] for s in older["statements"]] == ["2026-05-29"]
    assert [s["period_last"] for s in (await api.get(url)).json()["statements"]] == ["2026-06-30", "2026-05-29"]
    # Bad input is a 4xx naming it, never a 500.
    assert (await api.get(url, params={"limit": 0})).status_code == 422
    assert (await api.get(url, params={"limit": 121})).status_code == 422
    assert (await api.get(url, params={"before": "2026-02-30"})).status_code == 422
    assert (await api.get("/v1/deposits/accounts/not-a-uuid/statements-issued")).status_code == 422
    unknown = await api.get(f"/v1/deposits/accounts/{uuid.uuid4()}/statements-issued")
    assert unknown.status_code == 404
