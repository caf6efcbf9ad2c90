"""Verification of the whole bank's books: the ledger's invariants, then each product's agreement with the ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kanjo.cards import verify_cards
from kanjo.channels import verify_teller_audit
from kanjo.deposits import verify_deposits
from kanjo.fees import verify_fees
from kanjo.ledger import verify_ledger
from kanjo.loans import verify_loans
from kanjo.time_deposits import pledges, verify_time_deposits


async def verify_books(conn: asyncpg.Connection, business_date: dt.date) -> dict[str, Any]:
    """One report; `ok` only when the ledger and every product hold."""
    report = await verify_ledger(conn)
    products = {
        "deposits": await verify_deposits(conn, collateral=pledges),
        "time_deposits": await verify_time_deposits(conn, business_date),
        "fees": await verify_fees(conn),
        "loans": await verify_loans(conn, on=business_date),
        "cards": _problems(await verify_cards(conn)),
    }
    report["products"] = products
    report["business_date"] = str(business_date)
    report["ok"] = bool(report["ok"]) and all(p["ok"] for p in products.values())
    # The teller channel's audit trail: its hash chain recomputed (tampering with any entry is a break).
    report["teller_audit"] = await verify_teller_audit(conn)
    report["ok"] = report["ok"] and report["teller_audit"]["ok"]
    return report


def _problems(problems: list[str]) -> dict[str, Any]:
    return {"ok": not problems, "problems": problems}
