"""Reading a deposit account by id — every movement's first step, on the ATMs' busiest path — grouped across
concurrent callers (one statement for many: platform/coalesce.py); it answers as store.account does."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from kanjo.deposits import store
from kanjo.deposits.model import DepositAccount
from kanjo.platform.coalesce import Coalescer


async def _account_one(conn: asyncpg.Connection, account_id: int) -> DepositAccount | None:
    return await store.account(conn, account_id)


async def _accounts_many(conn: asyncpg.Connection, ids: Sequence[int]) -> list[DepositAccount | None]:
    found = {a.id: a for a in await store.accounts_by_id(conn, list(set(ids)))}
    return [found.get(account_id) for account_id in ids]


class Grouped:
    """The context's grouped statements, on its pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.account = Coalescer("deposits_account", pool, _accounts_many, _account_one)
