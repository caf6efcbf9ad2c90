"""`kanjo verify` for deposits: every product account agrees with its ledger account (the code of its subject);
総合口座 overdrafts hold."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from kanjo.accounting import GUARDED_DEPOSIT_FLAGS, OVERDRAFT_RECEIVABLE
from kanjo.deposits.model import Subject
from kanjo.deposits.overdraft import (
    CEILING_MINOR,
    DAYS_PER_YEAR,
    OVERDRAFT_ACCOUNT_FLAGS,
    PERCENT,
    Collateral,
    available_minor,
    drawn_minor,
    overdraft_account_id,
    overdraft_limit,
)
from kanjo.deposits.service import ledger_code
from kanjo.ledger import AccountFlags, read_accounts

CHUNK_IDS = 8190  # ledger lookups per round trip
SAMPLE_ROWS_MAX = 10


async def verify_deposits(conn: asyncpg.Connection, collateral: Collateral | None = None) -> dict[str, Any]:
    """Each deposit account has a ledger account of its subject's code (当座預金 2002, the others 2001) with the
    guard flags;
    closed ⇔ closed in the ledger; no balance below zero (the ledger's flags already forbid it).
    Each 総合口座 has its overdraft (see `_verify_overdrafts`); without `collateral` the limit checked
    is the ¥2,000,000 ceiling."""
    rows = await conn.fetch("SELECT id, status, subject FROM deposits.accounts ORDER BY id")
    missing, wrong_kind, status_mismatch = [], [], []
    for start in range(0, len(rows), CHUNK_IDS):
        chunk = rows[start:start + CHUNK_IDS]
        found = {a.id: a for a in await read_accounts(conn, [r["id"] for r in chunk])}
        for r in chunk:
            a = found.get(r["id"])
            if a is None:
                missing.append(r["id"])
                continue
            if a.code != ledger_code(Subject(r["subject"])) or a.flags & GUARDED_DEPOSIT_FLAGS != GUARDED_DEPOSIT_FLAGS:
                wrong_kind.append(r["id"])
            if (r["status"] == "closed") != bool(a.flags & AccountFlags.CLOSED):
                status_mismatch.append(r["id"])
    checks: dict[str, dict[str, Any]] = {
        "every_account_in_the_ledger": {"ok": not missing, "missing": len(missing)},
        # The name predates current accounts: the check is "guarded, and of the code of the account's subject".
        "ledger_accounts_are_guarded_ordinary_deposits": {"ok": not wrong_kind, "wrong": len(wrong_kind),
                                                          "sample": [str(uuid.UUID(int=i))
                                                                     for i in wrong_kind[:SAMPLE_ROWS_MAX]]},
        "closed_in_both_or_neither": {"ok": not status_mismatch, "mismatched": len(status_mismatch)},
    }
    general, info = await _verify_overdrafts(conn, collateral)
    checks.update(general)
    return {"ok": all(c["ok"] for c in checks.values()), "accounts": len(rows), "checks": checks, **info}


async def _verify_overdrafts(conn: asyncpg.Connection,
                             collateral: Collateral | None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """What must hold for every 総合口座:
    - it has its overdraft row and ledger account (derived id, code 1301, repayment capped by the drawn
      amount, the customer's), and no other account has one;
    - closed ⇔ its overdraft account closed, and a closed account owes nothing;
    - its overdraft, net of the spare funds the day-end sweep will use, is within the limit, plus
      interest added to it and not yet repaid (the only excess banks allow);
    - every charge equals its days' accruals, summed and rounded down.
    Overdrawn accounts holding spare funds (credits that await the sweep) are counted, not failed."""
    rows = await conn.fetch(
        "SELECT a.id, a.status, a.customer_id, o.overdraft_account_id, o.interest_unpaid_minor"
        " FROM deposits.accounts a LEFT JOIN deposits.overdrafts o ON o.account_id = a.id"
        " WHERE a.subject = 'sogo' ORDER BY a.id")
    strays = await conn.fetchval("SELECT count(*) FROM deposits.overdrafts o JOIN deposits.accounts a"
                                 " ON a.id = o.account_id WHERE a.subject <> 'sogo'")
    no_overdraft, wrong_kind, closed_mismatch, closed_owing, over_limit, spare = [], [], [], [], [], []
    chunk_rows = CHUNK_IDS // 2
    for start in range(0, len(rows), chunk_rows):
        chunk = rows[start:start + chunk_rows]
        ids = [i for r in chunk for i in (r["id"], r["overdraft_account_id"]) if i is not None]
        found = {a.id: a for a in await read_accounts(conn, ids)}
        for r in chunk:
            deposit, lent = found.get(r["id"]), found.get(r["overdraft_account_id"])
            if r["overdraft_account_id"] != overdraft_account_id(r["id"]) or lent is None or deposit is None:
                no_overdraft.append(r["id"])
                continue
            capped = lent.flags & OVERDRAFT_ACCOUNT_FLAGS == OVERDRAFT_ACCOUNT_FLAGS
            if lent.code != OVERDRAFT_RECEIVABLE.code or not capped or lent.user_data_128 != r["customer_id"]:
                wrong_kind.append(r["id"])
            drawn, available = drawn_minor(lent), available_minor(deposit)
            if (r["status"] == "closed") != bool(lent.flags & AccountFlags.CLOSED):
                closed_mismatch.append(r["id"])
            if r["status"] == "closed" and drawn:
                closed_owing.append(r["id"])
            if drawn > 0 and available > 0:
                spare.append(r["id"])
            net = max(0, drawn - max(0, available))
            if net:
                limit = overdraft_limit(await collateral(conn, r["id"])) if collateral else CEILING_MINOR
                if net > limit + r["interest_unpaid_minor"]:
                    over_limit.append(r["id"])
    wrong_charges = await conn.fetchval(
        "SELECT count(*) FROM (SELECT c.interest_minor, coalesce(sum(x.interest_product), 0) AS product"
        " FROM deposits.overdraft_charges c LEFT JOIN deposits.overdraft_accruals x ON x.account_id = c.account_id"
        " AND x.business_date >= c.period_start AND x.business_date < c.period_end"
        " GROUP BY c.account_id, c.period_end, c.interest_minor) s"
        " WHERE s.interest_minor <> floor(s.product / $1)", Decimal(PERCENT * DAYS_PER_YEAR))  # as interest_of
    checks = {
        "every_general_account_has_its_overdraft": {"ok": not no_overdraft and not strays,
                                                    "missing": len(no_overdraft), "strays": strays},
        "overdraft_ledger_accounts_are_capped_receivables": {"ok": not wrong_kind, "wrong": len(wrong_kind)},
        "overdraft_closed_with_its_account": {"ok": not closed_mismatch and not closed_owing,
                                              "mismatched": len(closed_mismatch), "closed_owing": len(closed_owing)},
        "overdrafts_within_their_limits": {"ok": not over_limit, "over": len(over_limit),
                                           "sample": [str(uuid.UUID(int=i)) for i in over_limit[:SAMPLE_ROWS_MAX]],
                                           "limit": "collateral" if collateral else "ceiling"},
        "overdraft_interest_charged_as_accrued": {"ok": not wrong_charges, "wrong": wrong_charges},
    }
    return checks, {"general_accounts": len(rows), "overdrawn_with_spare_funds_awaiting_sweep": len(spare)}
