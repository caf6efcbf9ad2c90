"""`kanjo verify` for deposits: every product account agrees with its ledger account."""

from __future__ import annotations

from typing import Any

import asyncpg

from kanjo.accounting import GUARDED_DEPOSIT_FLAGS, ORDINARY_DEPOSIT
from kanjo.ledger import AccountFlags, read_accounts

CHUNK_IDS = 8190  # ledger lookups per round trip
SAMPLE_ROWS_MAX = 10


async def verify_deposits(conn: asyncpg.Connection) -> dict[str, Any]:
    """Each deposit account has a ledger account of the ordinary-deposit code with the guard flags;
    closed ⇔ closed in the ledger; no balance below zero (the ledger's flags already forbid it)."""
    rows = await conn.fetch("SELECT id, status FROM deposits.accounts ORDER BY id")
    missing, wrong_kind, status_mismatch = [], [], []
    for start in range(0, len(rows), CHUNK_IDS):
        chunk = rows[start:start + CHUNK_IDS]
        found = {a.id: a for a in await read_accounts(conn, [r["id"] for r in chunk])}
        for r in chunk:
            a = found.get(r["id"])
            if a is None:
                missing.append(r["id"])
                continue
            if a.code != ORDINARY_DEPOSIT.code or a.flags & GUARDED_DEPOSIT_FLAGS != GUARDED_DEPOSIT_FLAGS:
                wrong_kind.append(r["id"])
            if (r["status"] == "closed") != bool(a.flags & AccountFlags.CLOSED):
                status_mismatch.append(r["id"])
    checks = {
        "every_account_in_the_ledger": {"ok": not missing, "missing": len(missing)},
        "ledger_accounts_are_guarded_ordinary_deposits": {"ok": not wrong_kind, "wrong": len(wrong_kind)},
        "closed_in_both_or_neither": {"ok": not status_mismatch, "mismatched": len(status_mismatch)},
    }
    return {"ok": all(c["ok"] for c in checks.values()), "accounts": len(rows), "checks": checks}
