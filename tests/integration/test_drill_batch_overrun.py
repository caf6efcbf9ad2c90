"""The batch-overrun drill at tiny sizes against a real kanjo (a subprocess on real PostgreSQL): it passes — the
overrun alert named the slow posting while it ran, the held mandatory posting kept the day open and was named by the
gate and an alert, reruns changed nothing, the release let the day close with each posting made once, ATMs kept
their objective; bad options are refused before anything starts; the command line's defaults are the drill's own."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
import typer

from kanjo.cli import app
from kanjo.drills import BatchOverrunOptions, FleetOptions, run_drill
from tests.drill_support import drop_database

TINY_MIX = "withdrawal=60,inquiry=20,deposit=15,time_deposit=5"



def _failed(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report.get("criteria", []) if not c["passed"]]


async def test_batch_overrun_passes_at_tiny_sizes(pg_server_dsn: str) -> None:
    # 10 chunks of 20 items, each delayed 1.2 s: a posting that expects 2 s takes about 12 s (overrun from 7 s).
    # The latency objective is looser than the default: this proves the mechanism on a shared test machine.
    options = BatchOverrunOptions(FleetOptions(atms=20, cards=50, withdrawals_per_s=10.0, mix=TINY_MIX),
                                  items=200, chunk_items=20, expected_s=2.0, slowdown=6.0, held_s=2.0,
                                  close_load_s=3.0, close_timeout_s=30.0, latency_ms_p99_max=1_000.0)
    database = f"kanjo_drill_bo_{os.getpid()}"
    try:
        report = await run_drill("batch-overrun", options, server_dsn=pg_server_dsn, database=database)
    finally:
        await drop_database(pg_server_dsn, database)

    assert report["passed"] is True and report["failed"] == [], _failed(report) or report
    names = {c["name"] for c in report["criteria"]}
    assert {"overrun_alert_after_threshold_s", "overrun_alert_names_job", "overrun_alert_while_job_running",
            "overrun_alert_before_day_close", "day_open_while_held_job_missing", "gate_names_held_job",
            "held_job_alert_open", "rerun_changed_books", "day_closed_after_release_s",
            "postings_made_exactly_once_minor", "withdrawal_latency_ms_p99", "online_system_errors",
            "cards_retained_by_system_error", "journal_breaks", "books_verified"} <= names
    m = report["measured"]
    assert m["chunk_latency_ms"] == 1_200
    assert m["overrun"]["slow_state"] == "succeeded"
    assert m["overrun"]["overrun_alert"]["rule"] == "job_overrun"
    assert m["overrun"]["while_held"]["held_job"]["held"] is True
    assert m["overrun"]["while_held"]["held_alert"]["severity"] == "critical"  # the cut-off was asked to run now
    assert m["rerun"]["changed"] == [] and f"{m['jobs']['slow']}" in m["rerun"]["jobs"]
    assert m["close"]["day_state"] == "closed" and m["close"]["held_job_state"] == "succeeded"
    assert [p["phase"] for p in m["phases"]] == ["overrun", "close"]


def test_options_that_cannot_show_an_overrun_are_refused() -> None:
    with pytest.raises(ValueError, match="must outlast its overrun threshold"):
        BatchOverrunOptions(expected_s=2.0, slowdown=2.0).check()
    with pytest.raises(ValueError, match="chunk latency"):
        BatchOverrunOptions(items=10, chunk_items=10, expected_s=60.0, slowdown=10.0).check()
    with pytest.raises(ValueError, match="items"):
        BatchOverrunOptions(items=10_001).check()


def test_the_command_lines_defaults_are_the_drills_own() -> None:
    command = typer.main.get_command(app).commands["drill"].commands["batch-overrun"]  # type: ignore[attr-defined]
    options = BatchOverrunOptions()
    expected = {**dataclasses.asdict(options.fleet), **dataclasses.asdict(options), "rate": 30.0}
    checked = 0
    for param in command.params:
        if param.name in expected and param.name != "fleet":
            assert param.default == expected[param.name], param.name
            checked += 1
    assert checked >= 15
    assert expected["rate"] == options.fleet.withdrawals_per_s
