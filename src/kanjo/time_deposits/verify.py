"""`kanjo verify` for time deposits: each deposit agrees with its ledger account; nothing due is left unprocessed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kanjo.accounting import TIME_DEPOSIT
from kanjo.ledger import read_accounts

CHUNK_IDS = 8190  # ledger lookups per round trip


async def verify_time_deposits(conn: asyncpg.Connection, business_date: dt.date) -> dict[str, Any]:
    """A placed deposit's ledger balance is its current principal; a settled one's is zero; no placed
    deposit's payment day is before the business date (maturity processing ran every day)."""
    rows = await conn.fetch("SELECT id, status, principal_minor FROM time_deposits.deposits ORDER BY id")
    missing, wrong_code, wrong_balance = 0, 0, 0
    for start in range(0, len(rows), CHUNK_IDS):
        chunk = rows[start:start + CHUNK_IDS]
        found = {a.id: a for a in await read_accounts(conn, [r["id"] for r in chunk])}
        for r in chunk:
            a = found.get(r["id"])
            if a is None:
                missing += 1
                continue
            wrong_code += a.code != TIME_DEPOSIT.code
            expected = r["principal_minor"] if r["status"] == "placed" else 0
            wrong_balance += (a.credits_posted - a.debits_posted != expected or a.debits_pending != 0)
    overdue = int(await conn.fetchval(
        "SELECT count(*) FROM time_deposits.deposits WHERE status = 'placed' AND pays_on < $1", business_date))
    checks: dict[str, dict[str, Any]] = {
        "every_deposit_in_the_ledger": {"ok": missing == 0, "missing": missing},
        "ledger_accounts_are_time_deposits": {"ok": wrong_code == 0, "wrong": wrong_code},
        "ledger_balance_is_the_principal": {"ok": wrong_balance == 0, "mismatched": wrong_balance},
        "no_maturity_left_unprocessed": {"ok": overdue == 0, "overdue": overdue, "business_date": str(business_date)},
    }
    return {"ok": all(c["ok"] for c in checks.values()), "deposits": len(rows), "checks": checks}
