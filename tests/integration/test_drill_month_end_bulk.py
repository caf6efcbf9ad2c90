"""The month-end-bulk drill at tiny sizes against a real kanjo (a subprocess on real PostgreSQL): the concentrated
posting meets a ledger space provisioned too small, is refused before posting anything with the limit named, an
alert names the limit, the day's gate names the job, and after the raise every item posts exactly once while the
ATM fleet runs; the command line's defaults are the drill's own."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

import typer

from kanjo.business_calendar import BankCalendar
from kanjo.cli import app
from kanjo.drills import FleetOptions, MonthEndBulkOptions, run_drill
from kanjo.drills.month_end_bulk import SPACE, month_end
from tests.drill_support import drop_database


def _criteria(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report.get("criteria", [])}


async def test_month_end_bulk_passes_at_tiny_sizes(pg_server_dsn: str) -> None:
    # Latency objective looser than the default: this proves the mechanism on a shared test machine; the figures at
    # the default sizes are in docs/drills.md.
    options = MonthEndBulkOptions(FleetOptions(atms=30, cards=100, withdrawals_per_s=8.0), items=20_000,
                                  accounts=200, baseline_s=2.0, phase_s=2.0, latency_ms_p99_max=1_500.0)
    database = f"kanjo_drill_meb_{os.getpid()}"
    try:
        report = await run_drill("month-end-bulk", options, server_dsn=pg_server_dsn, database=database)
    finally:
        await drop_database(pg_server_dsn, database)

    criteria = _criteria(report)
    assert report["passed"] is True, [c for c in criteria.values() if not c["passed"]] or report
    seen = report["measured"]["month_end"]
    assert seen["refusal"]["preflight"][0]["limit"] == SPACE and seen["refusal"]["done_items"] == 0
    assert seen["provisioned_short"]["maximum"] < seen["provisioned_short"]["usage"] + 20_000
    assert seen["alert"]["rule"] == "job_limit_reached" and SPACE in seen["alert"]["message"]
    assert seen["completion"]["attempts"] == 2 and seen["completion"]["result"]["rejected"] == 0
    totals = seen["totals"]
    assert totals["suspense_debited_minor"] == totals["customers_credited_minor"] == totals["expected_minor"]
    assert {"withdrawal_latency_ms_p99", "other_operations_system_errors", "cards_retained_not_by_business_rule",
            "journal_breaks", "books_verified", "limit_alert_after_s"} <= set(criteria)
    assert len(report["measured"]["phases"]) >= 2  # the fleet ran before and during the posting


def test_the_month_end_is_the_last_business_day() -> None:
    calendar = BankCalendar()
    assert month_end(dt.date(2026, 2, 3), calendar) == dt.date(2026, 2, 27)  # the 28th is a Saturday
    assert month_end(dt.date(2026, 11, 22), calendar) == dt.date(2026, 11, 30)
    assert month_end(dt.date(2026, 12, 1), calendar) == calendar.previous_business_day(dt.date(2027, 1, 1))


def test_the_command_lines_defaults_are_the_drills_own() -> None:
    command = typer.main.get_command(app).commands["drill"].commands["month-end-bulk"]  # type: ignore[attr-defined]
    options = MonthEndBulkOptions()
    expected = {**dataclasses.asdict(options.fleet), **dataclasses.asdict(options)}
    renamed = {"rate": "withdrawals_per_s"}
    checked = 0
    for param in command.params:
        key = renamed.get(param.name, param.name)
        if key in expected:
            assert param.default == expected[key], param.name
            checked += 1
    assert checked >= 15
