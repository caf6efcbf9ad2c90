"""Smoke test of `kanjo bench month-end`: both scenarios run at tiny sizes, post every item once, close the day and
verify their books; the figures carry their targets and say whether they were met."""

from __future__ import annotations

from typing import Any

import asyncpg

from kanjo.bench.month_end import run_month_end_bench


async def test_both_scenarios_run_and_check_their_books(pg_server_dsn: str) -> None:
    emitted: list[dict[str, Any]] = []
    try:
        returned = await run_month_end_bench(server_dsn=pg_server_dsn, items=12_000, atms=20, rate=5.0, cards=50,
                                             accounts=100, day_change_accounts=300,
                                             scenarios=["month-end-posting", "day-change"], emit=emitted.append)
    finally:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            for database in ("kanjo_bench_month_end", "kanjo_bench_day_change"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    assert emitted == returned
    posting, day_change = emitted
    assert posting["scenario"] == "month-end-posting" and posting["job_state"] == "succeeded"
    assert posting["items_posted_once"] is True and posting["verified"] is True
    assert posting["posting_s"] > 0 and posting["items_per_s"] > 0
    assert posting["system_errors"] == 0 and posting["journal_breaks"] == 0
    assert posting["met"] is False  # 5 withdrawals/s is not the target's 500: never reported as met
    assert day_change["scenario"] == "day-change" and day_change["day_state"] == "closed"
    assert day_change["online_date_after"] == "2026-08-03" and day_change["verified"] is True
    assert {j["state"] for j in day_change["jobs"].values()} <= {"succeeded", "skipped"}
    assert day_change["jobs"]["deposit_interest_accrual"]["state"] == "succeeded"
