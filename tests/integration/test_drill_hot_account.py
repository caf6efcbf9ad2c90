"""The hot-account drill at tiny sizes against a real kanjo (a subprocess on real PostgreSQL, started by the drill):
`kanjo drill hot-account --json` passes and exits 0 with every criterion there and the evidence behind them; bad
options are refused before anything starts; the command line's defaults are the drill's own."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys

import typer

from kanjo.cli import app
from kanjo.drills import HotAccountOptions
from kanjo.drills.hot_account import amount_of
from tests.drill_support import drill_cli, drop_database

DATABASE = "kanjo_drill_hot_account"




def test_a_donation_drive_into_one_account_passes_at_tiny_sizes(pg_server_dsn: str) -> None:
    # Thresholds looser than the defaults where tiny windows are noisy (a drive of a second or two on a shared test
    # machine); the figures at the default sizes are in docs/drills.md.
    code, report, stderr = drill_cli(
        "hot-account", "--json", "--atms", "10", "--cards", "20", "--rate", "2", "--donations", "4000",
        "--spread-donations", "3000", "--donors", "300", "--recipients", "40", "--rounds", "2", "--clients", "8",
        "--other-accounts", "40", "--other-rate", "20", "--baseline-s", "2", "--latency-ms-p99-max", "1000",
        "--latency-slack-ms", "100", "--throughput-ratio-min", "0.5",
        env={"KANJO_DATABASE_URL": pg_server_dsn})
    asyncio.run(drop_database(pg_server_dsn, DATABASE))

    failed = [c for c in report.get("criteria", []) if not c["passed"]]
    assert code == 0 and report["passed"] is True, (failed or report, stderr[-3000:])
    criteria = {c["name"]: c for c in report["criteria"]}
    assert {"other_transfers_latency_ms_p99_hot", "other_transfers_latency_ms_p99_hot_vs_spread",
            "other_transfers_system_errors", "other_transfers_refused", "atm_withdrawal_latency_ms_p99",
            "atm_system_errors", "hot_over_spread_throughput_ratio", "donations_refused_or_lost",
            "ledger_busy_refusals", "limits_at_maximum", "hot_account_credited_minor", "recipients_credited_minor",
            "donors_not_at_zero", "journal_breaks", "books_verified"} <= set(criteria)
    hot_sum = sum(amount_of(20_260_303, k) for k in range(3_000, 7_000))
    assert criteria["hot_account_credited_minor"]["measured"] == hot_sum  # every donation, once
    drives = report["measured"]["drives"]
    assert drives["hot"]["donations_posted"] == 4_000 and drives["spread"]["donations_posted"] == 3_000
    assert drives["hot"]["donations_per_s"] > 0 and drives["hot"]["bank_transfers_per_s"] >= \
        drives["hot"]["donations_per_s"]  # the bank's count includes the donations
    others = report["measured"]["other_transfers"]
    assert {"baseline", "spread", "hot"} <= set(others)
    assert all(others[p]["sent"] > 0 for p in ("baseline", "spread", "hot"))
    assert drives["hot"]["donations_per_s_by_slice"] and len(drives["spread"]["donations_per_s_by_slice"]) == 2
    assert report["measured"]["fleet"]["beside_the_drives"]["segments"] >= 1  # the ATMs ran beside the drive


def test_bad_options_are_refused_before_anything_starts() -> None:
    done = subprocess.run([sys.executable, "-m", "kanjo", "drill", "hot-account", "--json", "--clients", "0",
                           "--url", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    assert "clients must be in 1..256" in done.stderr


def test_the_command_lines_defaults_are_the_drills_own() -> None:
    command = typer.main.get_command(app).commands["drill"].commands["hot-account"]  # type: ignore[attr-defined]
    options = HotAccountOptions()
    expected = {**dataclasses.asdict(options.fleet), **dataclasses.asdict(options)}
    renamed = {"rate": "withdrawals_per_s", "other_rate": "other_per_s"}
    checked = 0
    for param in command.params:
        key = renamed.get(param.name, param.name)
        if key in expected:
            assert param.default == expected[key], param.name
            checked += 1
    assert checked >= 20
