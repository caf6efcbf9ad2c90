"""The drills at tiny sizes against a real kanjo (a subprocess on real PostgreSQL): product-down and network-flap pass
and exit 0; a drill with a criterion that cannot hold exits 1 and says which; the flapping link really resets,
refuses and blackholes connections; the command line's defaults are the drills' own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import typer

from kanjo.cli import app
from kanjo.drills import FlappingLink, FleetOptions, NetworkFlapOptions, ProductDownOptions, run_drill
from tests.drill_support import drill_cli, drop_database
from tests.e2e.server import KanjoProcess

TINY_MIX = "withdrawal=60,inquiry=20,deposit=15,time_deposit=5"




def _failed(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report.get("criteria", []) if not c["passed"]]


async def test_product_down_passes_at_tiny_sizes(pg_server_dsn: str) -> None:
    # Latency thresholds looser than the defaults: this proves the mechanism on a shared test machine; the figures
    # at the default sizes are in docs/drills.md.
    options = ProductDownOptions(FleetOptions(atms=20, cards=50, withdrawals_per_s=10.0, mix=TINY_MIX),
                                 baseline_s=2.0, error_s=6.0, hang_s=4.0, restored_s=8.0,
                                 latency_ms_p99_max=1_000.0, refusal_latency_ms_p99_max=300.0)
    database = f"kanjo_drill_pd_{os.getpid()}"
    try:
        report = await run_drill("product-down", options, server_dsn=pg_server_dsn, database=database)
    finally:
        await drop_database(pg_server_dsn, database)

    assert report["passed"] is True and report["failed"] == [], _failed(report) or report
    names = {c["name"] for c in report["criteria"]}
    assert {"withdrawal_latency_ms_p99", "inquiry_latency_ms_p99", "deposit_latency_ms_p99",
            "other_operations_system_errors", "time_deposit_refusal_latency_ms_p99_breaker_open",
            "time_deposit_refusals_unclear", "time_deposit_breaker_closed_after_restore_s",
            "time_deposits_approved_after_restore", "cards_retained_not_by_business_rule", "journal_breaks",
            "books_verified"} <= names
    probe = report["measured"]["probe"]["by_phase"]
    assert set(probe["td_error"]["results"]) == {"unavailable/unavailable"}  # the product really was down
    assert probe["baseline"]["results"].get("approved/ok", 0) > 0
    assert [p["phase"] for p in report["measured"]["phases"]] == ["baseline", "td_error", "td_hang", "restored"]


def test_network_flap_command_passes_and_exits_zero(pg_server_dsn: str) -> None:
    code, report, stderr = drill_cli(
        "network-flap", "--json", "--atms", "20", "--cards", "50", "--rate", "10", "--flap-s", "6", "--period-s",
        "3", "--down-s", "1", "--recovery-s", "4", "--no-wait-ack-deadline",
        env={"KANJO_DATABASE_URL": pg_server_dsn})
    asyncio.run(drop_database(pg_server_dsn, "kanjo_drill_network_flap"))

    assert code == 0 and report["passed"] is True, (_failed(report) or report, stderr[-3000:])
    link = report["measured"]["link"]
    assert link["flaps"] == 2 and link["connections_reset"] > 0
    flapping, recovery = report["measured"]["phases"]
    assert sum(flapping["system_errors_by_operation"].values()) > 0  # messages really were lost mid-flight
    assert recovery["system_errors_by_operation"] == {}
    journals = report["measured"]["journals"]
    assert journals["dispensed_minor"] > 0
    assert report["measured"]["atm_cash_account"]["credits_posted"] == journals["dispensed_minor"]


@pytest.fixture
def running_kanjo(ledger_dsn: str) -> Any:
    """A kanjo started outside the drill, with faults enabled: what `--url` names."""
    process = KanjoProcess(ledger_dsn, extra_env={"KANJO_FAULTS_ENABLED": "1"})
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_a_criterion_that_cannot_hold_exits_one_and_is_named(running_kanjo: KanjoProcess) -> None:
    code, report, stderr = drill_cli(
        "product-down", "--json", "--url", running_kanjo.base_url, "--atms", "10", "--cards", "20", "--rate", "5",
        "--baseline-s", "1", "--error-s", "1", "--hang-s", "1", "--restored-s", "1", "--latency-ms-p99-max", "0")

    assert code == 1, (report, stderr[-3000:])
    assert report["passed"] is False and "withdrawal_latency_ms_p99" in report["failed"]
    latency = next(c for c in report["criteria"] if c["name"] == "withdrawal_latency_ms_p99")
    assert latency["threshold"] == 0 and latency["measured"] > 0 and latency["passed"] is False
    assert next(c for c in report["criteria"] if c["name"] == "books_verified")["passed"] is True
    faults = httpx.get(f"{running_kanjo.base_url}/v1/ops/faults", timeout=5).json()
    assert faults == {"faults": {}}  # the drill leaves no fault behind on a kanjo it did not start


def test_a_drill_refuses_a_target_off_the_loopback_interface() -> None:
    code, report, _ = drill_cli("network-flap", "--json", "--url", "http://192.0.2.1:8000")
    assert code == 2 and report["passed"] is False and "127.0.0.1" in report["error"]


@contextlib.asynccontextmanager
async def _echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def _ping(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
    return reader, writer


async def test_the_link_resets_open_connections_and_refuses_new_ones_while_down() -> None:
    async with _echo_server() as upstream_port:
        link = FlappingLink(upstream_port, "refuse")
        port = await link.start()
        reader, writer = await _ping(port)
        await link.down()
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            writer.write(b"lost")
            await asyncio.wait_for(reader.readexactly(4), 2)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await link.up()
        _, again = await _ping(port)
        again.close()
        await link.close()
    assert link.counters.flaps == 1 and link.counters.connections_reset == 1


async def test_a_blackholed_connection_never_answers_even_after_the_link_returns() -> None:
    async with _echo_server() as upstream_port:
        link = FlappingLink(upstream_port, "blackhole")
        port = await link.start()
        await link.down()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # accepted...
        writer.write(b"ping")
        with pytest.raises(TimeoutError):  # ...and silent
            await asyncio.wait_for(reader.readexactly(4), 0.3)
        await link.up()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.3)
        _, fresh = await _ping(port)
        for w in (writer, fresh):
            w.close()
        await link.close()
    assert link.counters.connections_blackholed == 1


def test_the_command_lines_defaults_are_the_drills_own() -> None:
    commands = typer.main.get_command(app).commands["drill"].commands  # type: ignore[attr-defined]
    renamed = {"rate": "withdrawals_per_s", "probe_rate": "probe_per_s"}
    for name, options in (("product-down", ProductDownOptions()), ("network-flap", NetworkFlapOptions())):
        expected = {**dataclasses.asdict(options.fleet), **dataclasses.asdict(options)}
        for param in commands[name].params:
            key = renamed.get(param.name, param.name)
            if key in expected:
                assert param.default == expected[key], (name, param.name)
