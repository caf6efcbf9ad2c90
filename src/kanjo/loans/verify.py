"""`kanjo verify` for card loans: every contract agrees with its ledger account and with its own records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kanjo.accounting import CARD_LOAN
from kanjo.ledger import AccountFlags, read_accounts
from kanjo.loans import store
from kanjo.loans.service import LOAN_ACCOUNT_FLAGS

CHUNK_IDS = 8190  # ledger lookups per round trip


async def verify_loans(conn: asyncpg.Connection, on: dt.date | None = None) -> dict[str, Any]:
    """Each contract has a guarded card-loan ledger account; what is drawn is within the line; closed in both
    or neither, and a closed contract owes nothing; arrears equal the unpaid collections. Given the business
    date `on` (after the previous business day's day-end), also: interest accrued and collections made."""
    rows = await store.all_contracts(conn)
    missing, wrong_kind, over_line, status_mismatch, closed_owing = 0, 0, 0, 0, 0
    for start in range(0, len(rows), CHUNK_IDS):
        chunk = rows[start:start + CHUNK_IDS]
        found = {a.id: a for a in await read_accounts(conn, [r["id"] for r in chunk])}
        for r in chunk:
            a = found.get(r["id"])
            if a is None:
                missing += 1
                continue
            if a.code != CARD_LOAN.code or a.flags & LOAN_ACCOUNT_FLAGS != LOAN_ACCOUNT_FLAGS:
                wrong_kind += 1
            drawn = a.balance_debit_minor()
            over_line += drawn > r["credit_line_minor"]
            closed = r["status"] == "closed"
            status_mismatch += closed != bool(a.flags & AccountFlags.CLOSED)
            closed_owing += closed and drawn != 0
    checks: dict[str, dict[str, Any]] = {
        "every_contract_in_the_ledger": {"ok": not missing, "missing": missing},
        "ledger_accounts_are_guarded_card_loans": {"ok": not wrong_kind, "wrong": wrong_kind},
        "drawn_within_credit_line": {"ok": not over_line, "over": over_line},
        "closed_in_both_or_neither": {"ok": not status_mismatch, "mismatched": status_mismatch},
        "closed_contracts_owe_nothing": {"ok": not closed_owing, "owing": closed_owing},
    }
    arrears = await store.arrears_mismatches(conn)
    checks["arrears_equal_unpaid_collections"] = {"ok": arrears == 0, "mismatched": arrears}
    if on is not None:
        open_rows = [r for r in rows if r["status"] != "closed"]
        behind = sum(1 for r in open_rows if r["accrued_through"] < on - dt.timedelta(days=1))
        uncollected = sum(1 for r in open_rows if r["collect_on"] < on)
        checks["interest_accrued_through_yesterday"] = {"ok": behind == 0, "behind": behind}
        checks["collections_made"] = {"ok": uncollected == 0, "overdue": uncollected}
    return {"ok": all(c["ok"] for c in checks.values()), "contracts": len(rows), "checks": checks}
