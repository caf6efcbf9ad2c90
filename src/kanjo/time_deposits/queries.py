"""Read-only questions a clerk asks about time deposits: the rate table in force, what early withdrawal would pay,
which placed deposits pay into an ordinary account."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from kanjo.time_deposits import store
from kanjo.time_deposits.model import RateTable, Settlement, settle_early
from kanjo.time_deposits.service import NotFound, TimeDeposits


async def rates_on(t: TimeDeposits, day: dt.date | None = None) -> RateTable:
    """The rate table in force on `day` (the business date when omitted)."""
    async with t.pool.acquire() as conn:
        return await store.rate_table(conn, day or t.business_date())


async def early_withdrawal_quote(t: TimeDeposits, deposit_id: int) -> Settlement:
    """What 中途解約 today would pay, without doing it (refused exactly as the withdrawal itself would be)."""
    async with t.pool.acquire() as conn:
        d = await store.deposit(conn, deposit_id)
    if d is None:
        raise NotFound(f"no time deposit {uuid.UUID(int=deposit_id)}")
    return settle_early(d, t.business_date())


async def paying_into(source: TimeDeposits | asyncpg.Pool | asyncpg.Connection, account_id: int) -> int:
    """How many placed time deposits pay into the ordinary account `account_id` at maturity (入金口座), whether
    or not they are attached to it: an account they pay into should not be closed before they are re-instructed."""
    reader = source.pool if isinstance(source, TimeDeposits) else source
    return int(await reader.fetchval(
        "SELECT count(*) FROM time_deposits.deposits WHERE payout_account_id = $1 AND status = 'placed'",
        account_id))
