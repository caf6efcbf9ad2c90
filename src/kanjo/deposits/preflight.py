"""Pre-flights of the deposits jobs that post to the ledger: how many transfers a run on a date may post."""

from __future__ import annotations

import datetime as dt

from kanjo.business_calendar import BankCalendar
from kanjo.deposits.interest import PAYOUT_JOB
from kanjo.deposits.interest_model import PayoutKind, is_interest_payout_day
from kanjo.deposits.overdraft import charge_point, job_transfer_id
from kanjo.deposits.service import Deposits
from kanjo.kernel.limits import limits

PAYOUT_TAX_TRANSFERS = 2  # the day's withheld tax, national and local, posted once at the end of the payout


async def transfers_needed_for_interest_payout(d: Deposits, calendar: BankCalendar, day: dt.date) -> int:
    """An upper bound of the transfers `pay_interest(d, calendar, day)` will post: one credit per account whose
    period started before `day` (those it reads; an account earning less than a yen gets none), plus the two tax
    transfers. None on a day that is not a payout day, or once the day's payout is done.

    Only what is left is counted: a payout resumed after a crash skips the accounts whose payment it recorded, and so
    does this count. A credit the ledger has but the payment row does not (a crash between the two) is counted
    again, which only overstates the need."""
    if not is_interest_payout_day(calendar, day):
        return 0
    async with d.pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM deposits.interest_runs WHERE job = $1 AND business_date = $2", PAYOUT_JOB, day)
        if status == "done":
            return 0
        credits = await conn.fetchval(
            "SELECT count(*) FROM deposits.interest_accruals a WHERE a.period_start < $1 AND NOT EXISTS (SELECT 1"
            " FROM deposits.interest_payments p WHERE p.paid_on = $1 AND p.kind = $2 AND p.account_id = a.account_id)",
            day, PayoutKind.HALF_YEARLY.value)
    return int(credits) + PAYOUT_TAX_TRANSFERS


async def transfers_needed_for_overdraft_charge(d: Deposits, day: dt.date) -> int:
    """An upper bound of the transfers `charge_overdraft_interest(d, day)` will post: one per 総合口座 not closed
    and not yet charged for the latest charge point (1 February, 1 August) that has interest to charge — an accrual
    of a drawn day since its last charge, or days before the point still to accrue (the job catches them up first).
    None on the days between charge points once every account is charged.

    Only what is left is counted: a charged account's bookmark moves past the point, so a rerun or a resumed run
    counts the accounts still to charge."""
    point = charge_point(day)
    async with d.pool.acquire() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM deposits.overdrafts o JOIN deposits.accounts a ON a.id = o.account_id"
            " WHERE o.charged_before < $1 AND a.status <> 'closed' AND (o.accrued_through < $1 - 1"
            " OR EXISTS (SELECT 1 FROM deposits.overdraft_accruals x WHERE x.account_id = o.account_id"
            " AND x.business_date >= o.charged_before AND x.business_date < $1))", point))


async def transfers_needed_for_overdraft_accrual(d: Deposits, day: dt.date) -> int:
    """An upper bound of the transfers `accrue_overdraft_interest(d, day)` will post: its sweep repays each active
    総合口座's overdraft from spare funds at most once a day (the repayment's id derives from the account, the job and
    the date; the accrual itself posts nothing). Only what is left is counted: an account whose sweep of `day` the
    ledger holds is not counted again (its sweep is recognised by the job's derived id on a rerun)."""
    async with d.pool.acquire() as conn:
        accounts = await conn.fetch(
            "SELECT o.overdraft_account_id FROM deposits.overdrafts o JOIN deposits.accounts a ON a.id = o.account_id"
            " WHERE a.status = 'active'")
    ids = [job_transfer_id(r[0], "sweep", day) for r in accounts]
    step = limits.get("ledger_lookup_ids_max").maximum
    done = 0
    for start in range(0, len(ids), step):
        done += len(await d.ledger.lookup_transfers(ids[start:start + step]))
    return len(ids) - done
