"""The card-loan collection job's pre-flight: how many ledger transfers a run of it on a date may post."""

from __future__ import annotations

import datetime as dt

from kanjo.loans import store
from kanjo.loans.service import Loans


async def transfers_needed_for_collection(h: Loans, day: dt.date) -> int:
    """An upper bound of the transfers `collect_interest(h, day)` will post: one balancing debit per open contract
    with a collection due (catch-up included) or arrears (a contract with nothing to ask, or an empty linked account,
    posts none).

    Only what is left is counted: a contract collected on `day` has `collected_through = day` and drops out, so a
    rerun or a resumed run counts the contracts still to collect."""
    async with h.pool.acquire() as conn:
        return await store.count_to_collect(conn, day)
