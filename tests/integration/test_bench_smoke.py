"""Smoke test of `kanjo bench ledger`: every scenario runs at tiny sizes, keeps the books and reports the contract."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest

from kanjo.bench import run_ledger_bench

COMMON_KEYS = ("scenario", "accounts", "seconds", "transfers", "latency_ms_p50", "latency_ms_p99", "errors",
               "verified", "durability")
BATCH_KEYS = ("clients", "batch_size", "transfers_per_s")
HTTP_KEYS = ("requests_per_s_offered", "requests_per_s_achieved", "latency_ms_max")


async def test_every_scenario_reports_verified_books_and_no_errors(
    pg_server_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    database = f"kanjo_bench_smoke_{os.getpid()}"
    emitted: list[dict[str, Any]] = []
    try:
        returned = await run_ledger_bench(
            dsn=pg_server_dsn, seconds=1, accounts=200, clients=2, batch_size=100, http_rate=50,
            http_seconds=1, scenarios=["uniform", "zipf", "hot", "http"], emit=emitted.append, database=database,
        )
    finally:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    assert emitted == returned
    assert [r["scenario"] for r in emitted] == ["uniform", "zipf", "hot", "http"]
    for result in emitted:
        expected = COMMON_KEYS + (HTTP_KEYS if result["scenario"] == "http" else BATCH_KEYS)
        assert set(expected) <= result.keys(), result
        assert next(iter(result)) == "scenario"
        assert result["verified"] is True, result
        assert result["errors"] == 0, result
        assert result["transfers"] > 0, result
        assert result["durability"] == {"fsync": "on", "synchronous_commit": "on"}
    hot = emitted[2]
    assert hot["ratio_to_uniform"] > 0
    http = emitted[3]
    assert http["requests_per_s_offered"] == 50
    assert http["transfers"] == 50  # open loop: every scheduled request was sent and succeeded
    assert capfd.readouterr().out == ""  # stdout is reserved for the emitted JSON lines
