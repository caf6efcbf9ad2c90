"""Time deposits as collateral (担保) of a 総合口座's overdraft: the placed deposits attached to an ordinary account.

The deposits context asks through its `Collateral` port (wired by the app) and never imports this one;
the query runs on the caller's connection, inside the transaction that holds the account's lock.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

from kanjo.deposits import Pledge
from kanjo.kernel.limits import LimitReached, limits
from kanjo.time_deposits.service import TimeDeposits

Source: TypeAlias = TimeDeposits | asyncpg.Pool | asyncpg.Connection


def _pledges_max() -> int:
    return limits.get("deposit_overdraft_pledges_per_account_max").maximum


async def pledges(source: Source, account_id: int) -> list[Pledge]:
    """The placed time deposits attached to the ordinary account `account_id` (the 総合口座 they were placed from;
    payouts may be named to another account of the customer, which does not move the pledge)."""
    reader = source.pool if isinstance(source, TimeDeposits) else source
    rows = await reader.fetch(
        "SELECT id, principal_minor, rate_percent, placed_on FROM time_deposits.deposits"
        " WHERE ordinary_account_id = $1 AND status = 'placed' ORDER BY rate_percent, placed_on, id LIMIT $2",
        account_id, _pledges_max() + 1)
    if len(rows) > _pledges_max():
        raise LimitReached(limits.get("deposit_overdraft_pledges_per_account_max"), len(rows))
    return [Pledge(r[0], r[1], r[2], r[3]) for r in rows]


async def pledged_principal(source: Source, account_id: int) -> int:
    """The principal of the placed time deposits attached to the ordinary account `account_id`."""
    return sum(p.principal_minor for p in await pledges(source, account_id))
