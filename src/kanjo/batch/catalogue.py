"""The bank's day as a job DAG (日次バッチ), per business date D:

    start of day: time_deposit_maturity, deposit_interest_payout (payout days only), card_loan_collection
    cut_off (not before the cut-off time; waits for every mandatory job of D, bulk postings included):
        snapshot the books, move online to the next business date D' (opened and planned)
    end of day of D (online keeps posting on D'): deposit_interest_accrual, overdraft_interest_accrual →
        overdraft_interest_charge, card_loan_accrual, dormancy (not mandatory: housekeeping),
        statements (当座勘定照合表: on the month's last business date only)
    day_close: waits for every mandatory job of D; closes D for good and empties its work areas

Every product job is idempotent per (account, business date, job) by its own construction (see kanjo.daily), so a
rerun or a resumed run changes nothing already done. The cut-off and the close move the day itself: done once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from kanjo import deposits, loans, time_deposits
from kanjo.bank import Bank
from kanjo.batch import store
from kanjo.batch.bulk import LEDGER_SPACE
from kanjo.batch.engine import CLOSING_JOB, JobContext, Kind, Needs
from kanjo.batch.model import BatchError, JobSpec, Rerun, gate
from kanjo.ledger import trial_balance

CUT_OFF = "cut_off"
START_OF_DAY = ("time_deposit_maturity", "deposit_interest_payout", "card_loan_collection")
DEFAULT_CUT_OFF_AT = dt.time(21, 0)


def day_plan(cut_off_at: dt.time | None = DEFAULT_CUT_OFF_AT) -> Callable[[dt.date], list[JobSpec]]:
    """The bank's jobs of one business date (the same every day; a job not due that day is skipped)."""
    def plan(_day: dt.date) -> list[JobSpec]:
        return [
            JobSpec("time_deposit_maturity", "time_deposit_maturity", reads=("time_deposits",),
                    writes=("ledger", "time_deposits"), expected_s=120),
            JobSpec("deposit_interest_payout", "deposit_interest_payout", reads=("deposits",),
                    writes=("ledger", "deposits"), expected_s=300),
            JobSpec("card_loan_collection", "card_loan_collection", reads=("loans", "deposits"),
                    writes=("ledger", "loans"), expected_s=120),
            JobSpec(CUT_OFF, CUT_OFF, after=START_OF_DAY, reads=("ledger",), writes=("batch",), rerun=Rerun.NEVER,
                    expected_s=30, not_before=cut_off_at, barrier=True),
            JobSpec("deposit_interest_accrual", "deposit_interest_accrual", after=(CUT_OFF,), reads=("ledger",),
                    writes=("deposits",), expected_s=300),
            JobSpec("overdraft_interest_accrual", "overdraft_interest_accrual", after=(CUT_OFF,),
                    reads=("ledger", "deposits"), writes=("deposits",), expected_s=120),
            JobSpec("overdraft_interest_charge", "overdraft_interest_charge", after=("overdraft_interest_accrual",),
                    reads=("deposits",), writes=("ledger", "deposits"), expected_s=120),
            JobSpec("card_loan_accrual", "card_loan_accrual", after=(CUT_OFF,), reads=("ledger", "loans"),
                    writes=("loans",), expected_s=120),
            JobSpec("dormancy", "dormancy", after=(CUT_OFF,), mandatory=False, reads=("deposits",),
                    writes=("deposits",), expected_s=120),
            JobSpec("statements", "statements", after=(CUT_OFF,), reads=("ledger", "deposits"), writes=("deposits",),
                    expected_s=300),
            JobSpec(CLOSING_JOB, CLOSING_JOB, after=(CUT_OFF,), reads=("batch",), writes=("batch",),
                    rerun=Rerun.NEVER, expected_s=5, barrier=True),
        ]
    return plan


def report(run: Any) -> dict[str, Any]:
    """A product job's own run report as JSON-ready data."""
    raw = dataclasses.asdict(run) if dataclasses.is_dataclass(run) and not isinstance(run, type) else dict(run)
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in raw.items()
            if isinstance(v, int | float | str | bool | dt.date) or v is None}


def bank_kinds(bank: Bank) -> dict[str, Kind]:
    """Runners of the bank's jobs (the engine passes the date; each product job takes it explicitly)."""
    def product(job: Callable[[dt.date], Any]) -> Callable[[JobContext], Any]:
        async def run(ctx: JobContext) -> dict[str, Any]:
            return report(await job(ctx.business_date))
        return run

    def not_payout_day(day: dt.date) -> str | None:
        return None if deposits.is_interest_payout_day(bank.calendar, day) else "not an interest payout day"

    def not_month_end(day: dt.date) -> str | None:
        return None if deposits.is_statement_day(bank.calendar, day) else "not the month's last business day"

    def ledger_transfers(count: Callable[[dt.date], Awaitable[int]]) -> Needs:
        """A product job's pre-flight: at most `count(date)` transfers added to the ledger (an upper bound its
        context computes with a count query; see each function for what it counts)."""
        async def needs(ctx: JobContext) -> dict[str, int]:
            return {LEDGER_SPACE: await count(ctx.business_date)}
        return needs

    return {
        "time_deposit_maturity": Kind(
            product(lambda d: time_deposits.mature_due(bank.time_deposits, d)),
            needs=ledger_transfers(lambda d: time_deposits.transfers_needed_for_maturity(bank.time_deposits, d))),
        "deposit_interest_payout": Kind(
            product(lambda d: deposits.pay_interest(bank.deposits, bank.calendar, d)), not_payout_day,
            needs=ledger_transfers(lambda d: deposits.transfers_needed_for_interest_payout(bank.deposits,
                                                                                          bank.calendar, d))),
        "card_loan_collection": Kind(
            product(lambda d: loans.collect_interest(bank.loans, d)),
            needs=ledger_transfers(lambda d: loans.transfers_needed_for_collection(bank.loans, d))),
        CUT_OFF: Kind(cut_off),
        "deposit_interest_accrual": Kind(product(lambda d: deposits.accrue_interest(bank.deposits, bank.calendar,
                                                                                    d))),
        "overdraft_interest_accrual": Kind(
            product(lambda d: deposits.accrue_overdraft_interest(bank.deposits, d)),
            needs=ledger_transfers(lambda d: deposits.transfers_needed_for_overdraft_accrual(bank.deposits, d))),
        "overdraft_interest_charge": Kind(
            product(lambda d: deposits.charge_overdraft_interest(bank.deposits, d)),
            needs=ledger_transfers(lambda d: deposits.transfers_needed_for_overdraft_charge(bank.deposits, d))),
        "card_loan_accrual": Kind(product(lambda d: loans.accrue_interest(bank.loans, d))),
        "dormancy": Kind(product(lambda d: deposits.mark_dormant_accounts(bank.deposits, d))),
        "statements": Kind(product(lambda d: deposits.issue_statements(bank.deposits, bank.calendar, d)),
                           not_month_end),
        CLOSING_JOB: Kind(close_day),
    }


async def cut_off(ctx: JobContext) -> dict[str, Any]:
    """日付変更: the books' trial balance as they stand, then online moves to the next business date (opened with its
    plan) in one transaction; the process's business date follows. Resumed after a crash, it finds the date moved
    and only brings the process along."""
    engine, day = ctx.engine, ctx.business_date
    following = engine.calendar.next_business_day(day)
    async with engine.pool.acquire() as conn, conn.transaction():
        if await store.cut_off_day(conn, day):
            await store.record_snapshot(conn, day, [{"ledger": ledger, "code": code, **figures}
                                                    for ledger, codes in (await trial_balance(conn)).items()
                                                    for code, figures in codes.items()])
        await store.insert_open_day(conn, following)
    await engine.plan(following, engine.plan_day(following))
    engine.business_day.moved_to(following)
    return {"online_date": following.isoformat()}


async def close_day(ctx: JobContext) -> dict[str, Any]:
    """The gate: the date closes only when every mandatory job is done (the barrier already waited for them; this
    checks again under the day's row, naming what blocks)."""
    engine, day = ctx.engine, ctx.business_date
    async with engine.pool.acquire() as conn, conn.transaction():
        blocking = gate(await store.jobs(conn, day), closing_job=CLOSING_JOB)
        if blocking:
            raise BatchError("day_not_ready", "mandatory jobs not done: " + ", ".join(
                f"{b['job']} ({b['why']})" for b in blocking))
        await store.close_day(conn, day)
        purged = await store.purge_work_areas(conn, day)
    return {"closed": day.isoformat(), "work_area_items_purged": purged}

