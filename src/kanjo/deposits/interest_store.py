"""SQL of ordinary-deposit interest (the deposits schema only): accrual state, payments and job runs.

Set-based: the day-end accrual COPYs the balances it read into a temporary table and changes every
account in one statement; the payout reads accounts page by page and COPYs its payments. The rules
(rates per day, rounding, tax) stay in interest_model and arrive here as numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from kanjo.deposits.interest_model import Accrual, InterestPayment, PayoutKind, RateSchedule, Tax, TaxClass

# Advisory lock of the interest jobs: the bulk jobs take it exclusive, one-account work shared.
JOBS_LOCK_KEY = 0x6B616E6A6F_0015  # "kanjo" + the interest code


async def lock_jobs(conn: asyncpg.Connection, *, exclusive: bool) -> None:
    """For the current transaction."""
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(f"SELECT {fn}($1)", JOBS_LOCK_KEY)


async def lock_jobs_for_session(conn: asyncpg.Connection) -> None:
    """Exclusive until `unlock_jobs_for_session` (or the connection's end): a payout spans many transactions."""
    await conn.execute("SELECT pg_advisory_lock($1)", JOBS_LOCK_KEY)


async def unlock_jobs_for_session(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", JOBS_LOCK_KEY)


async def rate_schedule(conn: asyncpg.Connection) -> RateSchedule:
    rows = await conn.fetch("SELECT effective_from, rate_percent FROM deposits.interest_rates")
    return RateSchedule.of([(r[0], r[1]) for r in rows])


# -- job runs ----------------------------------------------------------------------------------------

async def run(conn: asyncpg.Connection, job: str, day: dt.date) -> tuple[str, dict[str, Any]] | None:
    row = await conn.fetchrow("SELECT status, counts FROM deposits.interest_runs WHERE job = $1 AND business_date = $2",
                              job, day)
    return (row[0], json.loads(row[1])) if row else None


async def last_run_date(conn: asyncpg.Connection, job: str) -> dt.date | None:
    return await conn.fetchval("SELECT max(business_date) FROM deposits.interest_runs WHERE job = $1", job)


async def running_payout(conn: asyncpg.Connection) -> dt.date | None:
    """The day of a payout that started and has not finished (its process died), if any."""
    return await conn.fetchval(
        "SELECT min(business_date) FROM deposits.interest_runs WHERE job = 'payout' AND status = 'running'")


async def last_payout(conn: asyncpg.Connection, on_or_before: dt.date) -> dt.date | None:
    """The latest completed half-yearly payout not after a day: every period restarted on it."""
    return await conn.fetchval(
        "SELECT max(business_date) FROM deposits.interest_runs WHERE job = 'payout' AND status = 'done'"
        " AND business_date <= $1", on_or_before)


async def record_run(conn: asyncpg.Connection, job: str, day: dt.date, status: str, counts: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO deposits.interest_runs (job, business_date, status, counts, finished_at)"
        " VALUES ($1, $2, $3, $4::jsonb, CASE WHEN $3 = 'done' THEN now() END)"
        " ON CONFLICT (job, business_date) DO UPDATE SET status = excluded.status, counts = excluded.counts,"
        " finished_at = excluded.finished_at",
        job, day, status, json.dumps(counts))


# -- accrual ---------------------------------------------------------------------------------------------

BALANCES_TABLE = "interest_balances"
BALANCES_COLUMNS = ("account_id", "balance_minor")


async def create_balances_table(conn: asyncpg.Connection) -> None:
    """A scratch table for one run's end-of-day balances; it disappears at commit."""
    await conn.execute(f"CREATE TEMP TABLE {BALANCES_TABLE} (account_id uuid NOT NULL, balance_minor bigint NOT NULL)"
                       " ON COMMIT DROP")


async def copy_balances(conn: asyncpg.Connection, rows: Sequence[tuple[int, int]]) -> None:
    await conn.copy_records_to_table(BALANCES_TABLE, columns=BALANCES_COLUMNS, records=rows)


async def earliest_balance_from(conn: asyncpg.Connection) -> dt.date | None:
    return await conn.fetchval("SELECT min(balance_from) FROM deposits.interest_accruals")


async def apply_balances(conn: asyncpg.Connection, day: dt.date, restarted_on: dt.date | None,
                         starts: list[dt.date], factors: list[int]) -> tuple[int, int]:
    """Crystallise the days of every changed balance up to `day` and start the new one; add new accounts.

    The same rule as interest_model.totals_before, for every changed row at once: a row from before
    the latest payout (`restarted_on`) first restarts on it. `factors[i]` is Σ rate over
    [starts[i], day) in 0.001 % units. Returns (changed, new) accounts.
    """
    await conn.execute(f"ANALYZE {BALANCES_TABLE}")
    restart = restarted_on or dt.date.min
    changed = await conn.execute(
        "UPDATE deposits.interest_accruals a"
        " SET balance_days = CASE WHEN a.period_start < $2 THEN 0 ELSE a.balance_days END"
        "         + a.balance_minor::numeric * ($1::date - greatest(a.balance_from, $2)),"
        "     rate_weighted = CASE WHEN a.period_start < $2 THEN 0 ELSE a.rate_weighted END"
        "         + a.balance_minor::numeric * f.factor,"
        "     period_start = greatest(a.period_start, $2), balance_minor = t.balance_minor, balance_from = $1"
        f" FROM {BALANCES_TABLE} t, unnest($3::date[], $4::numeric[]) AS f (day, factor)"
        " WHERE a.account_id = t.account_id AND f.day = greatest(a.balance_from, $2)"
        " AND a.balance_minor <> t.balance_minor",
        day, restart, starts, factors)
    new = await conn.execute(
        "INSERT INTO deposits.interest_accruals (account_id, period_start, balance_minor, balance_from)"
        f" SELECT t.account_id, $1, t.balance_minor, $1 FROM {BALANCES_TABLE} t"
        " WHERE NOT EXISTS (SELECT 1 FROM deposits.interest_accruals a WHERE a.account_id = t.account_id)"
        " ON CONFLICT (account_id) DO NOTHING", day)
    return _count(changed), _count(new)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


ACCRUAL_COLUMNS = "account_id, tax_class, period_start, balance_minor, balance_from, balance_days, rate_weighted"


def _accrual(r: asyncpg.Record) -> Accrual:
    return Accrual(r[0], TaxClass(r[1]), r[2], r[3], r[4], int(r[5]), int(r[6]))


async def accrual(conn: asyncpg.Connection, account_id: int, *, for_update: bool = False) -> Accrual | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {ACCRUAL_COLUMNS} FROM deposits.interest_accruals WHERE account_id = $1{lock}",
                              account_id)
    return _accrual(row) if row else None


async def set_tax_class(conn: asyncpg.Connection, account_id: int, tax_class: TaxClass, day: dt.date) -> None:
    """Insert the account's row (nothing accrued yet) or change its class; the class applies at the next payout."""
    await conn.execute(
        "INSERT INTO deposits.interest_accruals (account_id, tax_class, period_start, balance_minor, balance_from)"
        " VALUES ($1, $2, $3, 0, $3) ON CONFLICT (account_id) DO UPDATE SET tax_class = excluded.tax_class",
        account_id, tax_class.value, day)


async def restart_period(conn: asyncpg.Connection, account_id: int, day: dt.date) -> None:
    """After paying an account to the day before `day`: its period starts again on `day`."""
    await conn.execute(
        "UPDATE deposits.interest_accruals SET period_start = $2, balance_from = $2, balance_days = 0,"
        " rate_weighted = 0 WHERE account_id = $1", account_id, day)


# -- payout ----------------------------------------------------------------------------------------------

async def due_page(conn: asyncpg.Connection, day: dt.date, after_id: int, limit: int,
                   *, resuming: bool) -> list[asyncpg.Record]:
    """Accounts whose period started before `day`, in id order after `after_id`.

    Resuming a payout that died, the accounts it already recorded are left out. Closed accounts need
    no filter: paid when they closed, their balance has been zero since (and the ledger refuses a credit).
    """
    done = (" AND NOT EXISTS (SELECT 1 FROM deposits.interest_payments p WHERE p.paid_on = $2"
            " AND p.kind = 'half_yearly' AND p.account_id = a.account_id)") if resuming else ""
    return await conn.fetch(
        f"SELECT {ACCRUAL_COLUMNS} FROM deposits.interest_accruals a"
        f" WHERE a.account_id > $1 AND a.period_start < $2{done} ORDER BY a.account_id LIMIT $3",
        after_id, day, limit)


PAYMENT_COLUMNS = ("paid_on", "kind", "account_id", "tax_class", "period_start", "period_end", "balance_days",
                   "gross_minor", "national_tax_minor", "local_tax_minor", "net_minor", "status", "failure")


async def copy_payments(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """Payments as tuples in PAYMENT_COLUMNS order."""
    await conn.copy_records_to_table("interest_payments", schema_name="deposits", columns=PAYMENT_COLUMNS,
                                     records=rows)


def payment_row(p: InterestPayment, status: str, failure: str | None) -> tuple:
    return (p.paid_on, p.kind.value, p.account_id, p.tax_class.value, p.period_start, p.period_end, p.balance_days,
            p.gross_minor, p.tax.national_minor, p.tax.local_minor, p.net_minor, status, failure)


async def payout_totals(conn: asyncpg.Connection, kind: PayoutKind, paid_on: dt.date) -> dict[str, int]:
    """What the payments of one payout day add up to: the tax posted is the sum over the paid ones."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'paid'), count(*) FILTER (WHERE status = 'failed'),"
        " coalesce(sum(gross_minor) FILTER (WHERE status = 'paid'), 0),"
        " coalesce(sum(net_minor) FILTER (WHERE status = 'paid'), 0),"
        " coalesce(sum(national_tax_minor) FILTER (WHERE status = 'paid'), 0),"
        " coalesce(sum(local_tax_minor) FILTER (WHERE status = 'paid'), 0)"
        " FROM deposits.interest_payments WHERE paid_on = $1 AND kind = $2", paid_on, kind.value)
    return {"credited": int(row[0]), "failed": int(row[1]), "gross_minor": int(row[2]), "net_minor": int(row[3]),
            "national_tax_minor": int(row[4]), "local_tax_minor": int(row[5])}


_PAYMENT_SELECT = ("SELECT account_id, kind, paid_on, period_start, balance_days, gross_minor, national_tax_minor,"
                   " local_tax_minor, tax_class, status, failure FROM deposits.interest_payments")


def _payment(r: asyncpg.Record) -> tuple[InterestPayment, str, str | None]:
    p = InterestPayment(r[0], PayoutKind(r[1]), r[2], r[3], r[2] - dt.timedelta(days=1), int(r[4]), r[5],
                        Tax(r[6], r[7]), TaxClass(r[8]))
    return p, r[9], r[10]


async def payment(conn: asyncpg.Connection, account_id: int, paid_on: dt.date,
                  kind: PayoutKind) -> tuple[InterestPayment, str, str | None] | None:
    """A payment with its status and the ledger's refusal, if any."""
    row = await conn.fetchrow(f"{_PAYMENT_SELECT} WHERE paid_on = $1 AND kind = $2 AND account_id = $3",
                              paid_on, kind.value, account_id)
    return _payment(row) if row else None


async def insert_payment(conn: asyncpg.Connection, p: InterestPayment, status: str) -> None:
    await conn.execute(
        f"INSERT INTO deposits.interest_payments ({', '.join(PAYMENT_COLUMNS)})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)", *payment_row(p, status, None))


async def mark_payment(conn: asyncpg.Connection, p: InterestPayment, failure: str | None) -> None:
    await conn.execute(
        "UPDATE deposits.interest_payments SET status = $4, failure = $5"
        " WHERE paid_on = $1 AND kind = $2 AND account_id = $3 AND status = 'planned'",
        p.paid_on, p.kind.value, p.account_id, "failed" if failure else "paid", failure)


async def payments_of(conn: asyncpg.Connection, account_id: int) -> list[tuple[InterestPayment, str, str | None]]:
    rows = await conn.fetch(f"{_PAYMENT_SELECT} WHERE account_id = $1 ORDER BY paid_on, kind", account_id)
    return [_payment(r) for r in rows]
