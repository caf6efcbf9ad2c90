"""`kanjo verify` for the ledger: every invariant of docs/ledger-semantics.md, checked in SQL."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

SAMPLE_ROWS_MAX = 10  # mismatching rows shown per check; the count is always complete
HOLD_GRACE_S = 30  # the sweep runs every second; a hold this far past its expiry is a failure


async def verify_ledger(conn: asyncpg.Connection, now_ns: int | None = None) -> dict[str, Any]:
    now_ns = now_ns or time.time_ns()
    checks: dict[str, dict[str, Any]] = {}

    rows = await conn.fetch(
        "SELECT ledger, count(*) AS accounts, sum(debits_posted)::numeric AS dpo, sum(credits_posted)::numeric AS cpo,"
        " sum(debits_pending)::numeric AS dpe, sum(credits_pending)::numeric AS cpe"
        " FROM ledger.accounts GROUP BY ledger ORDER BY ledger"
    )
    ledgers = {
        str(r["ledger"]): {"accounts": r["accounts"], "debits_posted": int(r["dpo"]),
                           "credits_posted": int(r["cpo"]), "debits_pending": int(r["dpe"]),
                           "credits_pending": int(r["cpe"])}
        for r in rows
    }
    unbalanced = [k for k, v in ledgers.items()
                  if v["debits_posted"] != v["credits_posted"] or v["debits_pending"] != v["credits_pending"]]
    checks["debits_equal_credits_per_ledger"] = {"ok": not unbalanced, "unbalanced_ledgers": unbalanced}

    mismatches = await conn.fetch(
        """
        WITH live AS (
            SELECT t.* FROM ledger.transfers t
            WHERE t.flags & 2 <> 0
              AND NOT EXISTS (SELECT 1 FROM ledger.pending_resolutions r WHERE r.pending_id = t.id)
        ), sums AS (
            SELECT id, sum(dpo) dpo, sum(cpo) cpo, sum(dpe) dpe, sum(cpe) cpe FROM (
                SELECT debit_account_id id, amount dpo, 0 cpo, 0 dpe, 0 cpe FROM ledger.transfers WHERE flags & 10 = 0
                UNION ALL
                SELECT credit_account_id, 0, amount, 0, 0 FROM ledger.transfers WHERE flags & 10 = 0
                UNION ALL
                SELECT debit_account_id, 0, 0, amount, 0 FROM live
                UNION ALL
                SELECT credit_account_id, 0, 0, 0, amount FROM live
            ) x GROUP BY id
        )
        SELECT coalesce(a.id, s.id) AS id, a.id IS NULL AS missing_account,
               a.debits_posted, s.dpo, a.credits_posted, s.cpo, a.debits_pending, s.dpe, a.credits_pending, s.cpe
        FROM ledger.accounts a FULL JOIN sums s ON s.id = a.id
        WHERE a.id IS NULL
           OR a.debits_posted <> coalesce(s.dpo, 0) OR a.credits_posted <> coalesce(s.cpo, 0)
           OR a.debits_pending <> coalesce(s.dpe, 0) OR a.credits_pending <> coalesce(s.cpe, 0)
        """
    )
    checks["balances_equal_sum_of_transfers"] = {
        "ok": not mismatches,
        "mismatched_accounts": len(mismatches),
        "sample": [
            {"account_id": str(_uuid(r["id"])), "missing_account": r["missing_account"],
             "debits_posted": [r["debits_posted"], _int(r["dpo"])],
             "credits_posted": [r["credits_posted"], _int(r["cpo"])],
             "debits_pending": [r["debits_pending"], _int(r["dpe"])],
             "credits_pending": [r["credits_pending"], _int(r["cpe"])]}
            for r in mismatches[:SAMPLE_ROWS_MAX]
        ],
    }

    violations = await conn.fetchval(
        "SELECT count(*) FROM ledger.accounts WHERE"
        " (flags & 2 <> 0 AND debits_pending + debits_posted > credits_posted)"
        " OR (flags & 4 <> 0 AND credits_pending + credits_posted > debits_posted)"
        " OR least(debits_pending, debits_posted, credits_pending, credits_posted) < 0"
    )
    checks["account_flags_respected"] = {"ok": violations == 0, "violations": violations}

    overdue = await conn.fetchval(
        "SELECT count(*) FROM ledger.transfers t WHERE t.expires_at IS NOT NULL AND t.expires_at < $1"
        " AND NOT EXISTS (SELECT 1 FROM ledger.pending_resolutions r WHERE r.pending_id = t.id)",
        now_ns - HOLD_GRACE_S * 1_000_000_000,
    )
    checks["no_hold_alive_past_timeout"] = {"ok": overdue == 0, "overdue_holds": overdue,
                                            "grace_s": HOLD_GRACE_S}

    orphans = await conn.fetchval(
        "SELECT count(*) FROM ledger.pending_resolutions r"
        " LEFT JOIN ledger.transfers p ON p.id = r.pending_id"
        " LEFT JOIN ledger.transfers t ON t.id = r.transfer_id"
        " WHERE p.id IS NULL OR p.flags & 2 = 0"
        " OR (r.status IN (2, 3) AND (t.id IS NULL OR t.pending_id <> r.pending_id))"
    )
    unresolved_resolvers = await conn.fetchval(
        "SELECT count(*) FROM ledger.transfers t WHERE t.flags & 12 <> 0"
        " AND NOT EXISTS (SELECT 1 FROM ledger.pending_resolutions r WHERE r.transfer_id = t.id)"
    )
    checks["holds_resolved_once"] = {"ok": orphans == 0 and unresolved_resolvers == 0,
                                     "bad_resolutions": orphans,
                                     "post_or_void_without_resolution": unresolved_resolvers}

    duplicates = await conn.fetchval("SELECT count(*) - count(DISTINCT timestamp) FROM ledger.transfers")
    checks["timestamps_unique"] = {"ok": duplicates == 0, "duplicates": duplicates}

    totals = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM ledger.accounts) accounts, (SELECT count(*) FROM ledger.transfers) transfers,"
        " (SELECT count(*) FROM ledger.rejected_transfers) rejected"
    )
    return {
        "ok": all(c["ok"] for c in checks.values()),
        "trial_balance": await trial_balance(conn),  # by ledger (currency) and account code; each nets to zero
        "accounts": totals["accounts"],
        "transfers": totals["transfers"],
        "rejected_transfers": totals["rejected"],
        "ledgers": ledgers,
        "checks": checks,
    }


def _uuid(value: int):  # type: ignore[no-untyped-def]
    import uuid

    return uuid.UUID(int=value)


def _int(value: object) -> int:
    return int(value) if value is not None else 0  # type: ignore[call-overload]


async def trial_balance(conn: asyncpg.Connection) -> dict[str, dict[str, dict[str, int]]]:
    """Posted debits and credits by ledger (currency) and account code, as the books stand now."""
    trial = await conn.fetch(
        "SELECT ledger, code, count(*) AS accounts, sum(debits_posted)::numeric AS debits,"
        " sum(credits_posted)::numeric AS credits FROM ledger.accounts GROUP BY ledger, code ORDER BY ledger, code"
    )
    balances: dict[str, dict[str, dict[str, int]]] = {}
    for r in trial:
        balances.setdefault(str(r["ledger"]), {})[str(r["code"])] = {
            "accounts": r["accounts"], "debits_posted": int(r["debits"]), "credits_posted": int(r["credits"]),
            "balance_debit": int(r["debits"]) - int(r["credits"]),
        }
    return balances
