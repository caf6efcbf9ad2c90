"""Read-only questions a clerk asks about time deposits: the rate table in force, what early withdrawal would pay."""

from __future__ import annotations

import datetime as dt
import uuid

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
