"""Smoke test of `kanjo bench atm` at tiny sizes: a real kanjo (subprocess) on real PostgreSQL, the ATM simulator in
its own process; both scenarios report the contract, keep the books and make no system error."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest

from kanjo.bench import run_atm_bench

KEYS = ("scenario", "atms", "withdrawals_per_s_offered", "withdrawals_per_s_achieved", "latency_ms_p50",
        "latency_ms_p99", "latency_ms_by_message", "system_errors", "cards_retained_by_system_error", "verified",
        "durability", "passed")


async def test_every_scenario_reports_verified_books_and_no_system_errors(
    pg_server_dsn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    database = f"kanjo_bench_atm_smoke_{os.getpid()}"
    emitted: list[dict[str, Any]] = []
    try:
        returned = await run_atm_bench(dsn=pg_server_dsn, atms=20, rate=40.0, seconds=3.0, cards=40,
                                       emit=emitted.append, database=database, warmup_seconds=0.0)
    finally:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    assert emitted == returned
    assert [r["scenario"] for r in emitted] == ["atm", "atm-withdrawals", "atm-time-deposit-down"]
    for result in emitted:
        assert set(KEYS) <= result.keys(), result
        assert next(iter(result)) == "scenario"
        assert result["verified"] is True, result
        assert result["system_errors"] == 0, result
        assert result["cards_retained_by_system_error"] == 0, result
        assert result["transactions"]["unfinished"] == 0, result
        assert result["withdrawals_per_s_offered"] == 40.0
        assert result["latency_ms_by_message"]["withdrawal"]["count"] == 120  # open loop: every one was sent
        assert (result["warmup_s"], result["warmup_withdrawals"]) == (0.0, 0)  # no warm-up asked
        assert result["system_errors_by_operation"].get("withdrawal", 0) == 0
        assert result["withdrawal_ack_codes"].get("posted", 0) > 0, result
        assert result["reconciliation"]["errors"] == 0 and result["reconciliation"]["breaks"] == 0, result
        assert result["durability"] == {"fsync": "on", "synchronous_commit": "on"}
    normal, withdrawals, down = emitted
    assert normal["system_errors_by_operation"] == {}, normal
    # the realistic mix draws on the card loans the seeding gave every tenth holder: cash out, posted, reconciled
    assert normal["results_by_operation"]["loan_draw"].get("approved/ok", 0) > 0, normal
    assert normal["loan_draw_ack_codes"].get("posted", 0) > 0, normal
    assert withdrawals["loan_draw_ack_codes"] == {}, withdrawals
    assert set(withdrawals["latency_ms_by_message"]) <= {"withdrawal", "withdrawal_ack", "journal"}, withdrawals
    # 207 transactions, two of them time deposits: refused as unavailable, or not offered at another bank's machine
    time_deposits = down["results_by_operation"]["time_deposit"]
    assert sum(time_deposits.values()) == 2 and set(time_deposits) <= {"unavailable/unavailable",
                                                                        "refused/not_offered_here"}, time_deposits
    assert down["unavailable_while_down"] == time_deposits.get("unavailable/unavailable", 0) >= 1, down
    assert down["system_errors_by_operation"] == {"time_deposit": down["unavailable_while_down"]}, down
    assert capfd.readouterr().out == ""  # stdout is reserved for the emitted JSON lines
