"""`kanjo verify` for fees: the tariff has no defect, and fee income in the ledger is what was charged less refunds."""

from __future__ import annotations

from typing import Any

import asyncpg

from kanjo.accounting import FEE_INCOME, gl_account_id
from kanjo.fees.model import STANDARD_TARIFF, Tariff
from kanjo.ledger import read_accounts


async def verify_fees(conn: asyncpg.Connection, tariff: Tariff = STANDARD_TARIFF) -> dict[str, Any]:
    """Fee income (credits less debits of the GL account) equals Σ charges − Σ refunds in the fees schema;
    every refund refunds exactly its fee; the tariff in force has no rule that could charge an implausible fee."""
    charged = int(await conn.fetchval("SELECT coalesce(sum(amount_minor), 0) FROM fees.charges"))
    refunded = int(await conn.fetchval("SELECT coalesce(sum(amount_minor), 0) FROM fees.refunds"))
    wrong_refunds = int(await conn.fetchval(
        "SELECT count(*) FROM fees.refunds r JOIN fees.charges c USING (fee_id)"
        " WHERE r.amount_minor <> c.amount_minor"))
    found = await read_accounts(conn, [gl_account_id(FEE_INCOME)])
    income = (found[0].credits_posted - found[0].debits_posted) if found else 0
    defects = tariff.defects()
    checks: dict[str, dict[str, Any]] = {
        "fee_income_is_charges_less_refunds": {"ok": income == charged - refunded, "ledger_minor": income,
                                               "charged_minor": charged, "refunded_minor": refunded},
        "each_refund_is_its_fee": {"ok": wrong_refunds == 0, "wrong": wrong_refunds},
        "tariff_without_defects": {"ok": not defects, "tariff": tariff.name,
                                   "defects": [f"{rule}: {why}" for rule, why in defects]},
    }
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
