"""Smoke test of `kanjo bench products`: every scenario runs at tiny sizes and checks its own books."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest

from kanjo.bench import products

COMMON_KEYS = ("scenario", "seconds", "verified", "durability", "load_average_1m", "cpus")


async def test_every_scenario_runs_and_verifies_its_books(pg_server_dsn: str,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    database = f"kanjo_bench_products_smoke_{os.getpid()}"
    emitted: list[dict[str, Any]] = []
    try:
        returned = await products.run_products_bench(dsn=pg_server_dsn, accounts=400, time_deposits=60,
                                                     emit=emitted.append, database=database)
    finally:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    assert emitted == returned
    assert [r["scenario"] for r in emitted] == ["accrual", "payout", "maturity"]
    for result in emitted:
        assert set(COMMON_KEYS) <= result.keys(), result
        assert result["verified"] is True, result
        assert result["durability"] == {"fsync": "on", "synchronous_commit": "on"}
    accrual, payout, maturity = emitted
    assert [r["new"] for r in accrual["runs"]] == [400, 0]
    assert accrual["runs"][1]["changed"] == 40 and accrual["rerun_replayed"] is True
    assert payout["failed"] == 0 and 0 < payout["credited"] <= 400
    assert payout["gross_minor"] == payout["net_minor"] + payout["national_tax_minor"] + payout["local_tax_minor"]
    assert payout["verify_ledger_ok"] is True and payout["matches_recomputation"] is True
    assert maturity["renewed"] + maturity["paid_out"] == 60 and maturity["failed"] == 0
    assert maturity["matches_recomputation"] is True and maturity["ledger_agrees"] is True
    assert capfd.readouterr().out == ""  # stdout is reserved for the emitted JSON lines
