"""What the loans context says about a deposit account it depends on: may that account close?"""

from __future__ import annotations

import asyncpg


async def account_closing_refusal(pool: asyncpg.Pool, account_id: int) -> str | None:
    """None when no open card loan is linked to the deposit account; else why it must stay open."""
    found = await pool.fetchval(
        "SELECT count(*) FROM loans.contracts WHERE account_id = $1 AND status <> 'closed'", account_id)
    if found:
        return "a card loan is linked to this account (it receives draws and pays the interest): close the loan first"
    return None
