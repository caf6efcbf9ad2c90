"""`kanjo bench atm`: an ATM fleet against the all-in-one kanjo, the simulator in its own process; JSON lines.

A fresh database `kanjo_bench_atm`; `kanjo up` with faults enabled; the bank seeded over HTTP (the ATMs, and
customers with cards and balances); then per scenario, the simulator (`python -m kanjo.sim atm … --json`) offers
withdrawals at a fixed rate from 1,000 ATMs with the realistic mix around them, uploads its journals, and the
books are verified. `atm-withdrawals` offers withdrawals only (the issue's
target counts them); `atm-time-deposit-down` runs the realistic mix while the time-deposit product is failing: only time
deposits may be refused; everything else must be as fast and error-free as before (seed 001, 2/28 and 3/7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from kanjo.bench.ledger import (
    _DATABASE_NAME,
    _durability,
    _fresh_database,
    _log_to_stderr,
    _progress,
)
from kanjo.platform.http_client import HttpConnection, ProtocolError
from kanjo.platform.processes import KanjoServer, free_port
from kanjo.sim import DEFAULT_MIX, Operation, atm_roster

SCENARIOS = ("atm", "atm-withdrawals", "atm-time-deposit-down")  # also the order they run in
# The target counts withdrawals (two messages each): `atm-withdrawals` offers nothing else, `atm` the
# realistic day around them (inquiries, deposits, transfers, time deposits: about 1.7 times the messages).
MIXES = {"atm-withdrawals": "withdrawal=1"}
DOWN_PRODUCTS = {"atm-time-deposit-down": ("time_deposits", "time_deposit")}  # scenario → (product, ATM operation)
BENCH_DATABASE = "kanjo_bench_atm"
SEED = 20_260_301
ATMS_MAX = 100_000
RATE_PER_S_MAX = 5_000.0
CARDS_MAX = 1_000_000
SECONDS_MAX = 3_600.0
WARMUP_SECONDS = 5.0  # a warm-up at the same rate before each measured window (see run_atm_bench)
BALANCE_MINOR = 10_000_000  # ¥10M a customer: a run never empties an account, refusals stay rare
PAGE_MAX = 1_000  # ATMs registered and customers seeded per request (the server's limit)
LATENCY_MS_P99_TARGET = 50.0
HTTP_TIMEOUT_S = 120.0  # one seeding page or the verification of the whole bank
SIMULATOR_SLACK_S = 600.0  # beyond the window: the fleet's drain (at most 10 min) and its journal upload

Emit = Callable[[dict[str, Any]], None]


class EndpointMissing(RuntimeError):
    """The server does not have a route the bench needs (the ATM channel, seeding, faults or verification)."""


async def run_atm_bench(*, dsn: str, atms: int = 1_000, rate: float = 500.0, seconds: float = 30.0,
                        cards: int = 10_000, scenarios: Sequence[str] = SCENARIOS, emit: Emit,
                        database: str = BENCH_DATABASE, seed: int = SEED,
                        warmup_seconds: float = WARMUP_SECONDS) -> list[dict[str, Any]]:
    """Run the scenarios against a fresh database `database` on the server at `dsn`; emit one object each.

    Each scenario first runs `warmup_seconds` at the same rate (a server just started: its pools open, its caches
    fill, each account's first movement of the day writes its activity date); those withdrawals count in every
    figure but the latency percentiles, which are of the `seconds` after — the warm-up's own are reported beside
    them (`warmup_latency_ms_*`)."""
    _check_arguments(atms, rate, seconds, cards, scenarios, database)
    if not 0 <= warmup_seconds <= SECONDS_MAX:
        raise ValueError(f"warmup_seconds must be in [0, {SECONDS_MAX:,.0f}]")
    _log_to_stderr()
    wanted = [name for name in SCENARIOS if name in scenarios]
    bench_dsn = await _fresh_database(dsn, database)
    durability = await _durability(bench_dsn)
    port = free_port()
    results: list[dict[str, Any]] = []
    # seeding and the time-deposit fault need the drill routes (never enabled in production)
    with _cards_path() as cards_path:
        async with KanjoServer(bench_dsn, port, env={"KANJO_FAULTS_ENABLED": "1"}, label="bench",
                               progress=_progress):
            seeded = await seed_atm_bank(port, cards, atms)
            cards_path.write_bytes(orjson.dumps({"cards": seeded}))
            journal_from = 1
            for index, name in enumerate(wanted):
                result, journal_from = await _scenario(name, port, cards_path, seeded, atms=atms, rate=rate,
                                                       seconds=seconds, seed=seed + index, journal_from=journal_from,
                                                       warmup_seconds=warmup_seconds)
                result["durability"] = durability
                results.append(result)
                emit(result)
    return results


def _check_arguments(atms: int, rate: float, seconds: float, cards: int, scenarios: Sequence[str],
                     database: str) -> None:
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if not 1 <= atms <= ATMS_MAX:
        raise ValueError(f"atms must be 1..{ATMS_MAX:,}")
    if not 0 < rate <= RATE_PER_S_MAX:
        raise ValueError(f"rate must be in (0, {RATE_PER_S_MAX:,.0f}] withdrawals/s")
    if not 0 < seconds <= SECONDS_MAX:
        raise ValueError(f"seconds must be in (0, {SECONDS_MAX:,.0f}]")
    if not 2 <= cards <= CARDS_MAX:
        raise ValueError(f"cards must be 2..{CARDS_MAX:,} (a transfer needs another customer)")
    if not _DATABASE_NAME.match(database):
        raise ValueError("database must be a lower-case SQL identifier")


@contextlib.contextmanager
def _cards_path() -> Iterator[Path]:
    """Where the seeded cards wait for the simulator process (PINs included: a bench bank, thrown away after)."""
    handle, name = tempfile.mkstemp(prefix="kanjo-bench-atm-cards-", suffix=".json")
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# -- HTTP to the bank --------------------------------------------------------------------------------

class _Api:
    """Operations calls to the bench's server: one keep-alive connection, a timeout on every call."""

    def __init__(self, port: int) -> None:
        self.conn = HttpConnection("127.0.0.1", port)

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        raw = self.conn.request_bytes(method, path, None if body is None else orjson.dumps(body))
        try:
            async with asyncio.timeout(HTTP_TIMEOUT_S):
                response = await self.conn.send(raw)
        except (OSError, EOFError, TimeoutError, ProtocolError) as exc:
            await self.conn.close()
            raise RuntimeError(f"{method} {path}: no answer ({exc!r})") from exc
        if response.status in (404, 405):
            raise EndpointMissing(f"{method} {path}: {response.status} — the server has no such route yet")
        try:
            return response.status, orjson.loads(response.body) if response.body else None
        except orjson.JSONDecodeError:
            return response.status, response.body[:200].decode("utf-8", "replace")

    async def expect(self, method: str, path: str, body: object = None) -> Any:
        status, answer = await self.call(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {str(answer)[:300]}")
        return answer


@contextlib.asynccontextmanager
async def _api(port: int) -> AsyncIterator[_Api]:
    api = _Api(port)
    try:
        yield api
    finally:
        await api.conn.close()


async def seed_atm_bank(port: int, cards: int, atms: int, *,
                        balance_minor: int = BALANCE_MINOR) -> list[dict[str, Any]]:
    """Register the fleet's ATMs (POST /v1/atms) and seed `cards` customers with a funded account and a cash card
    (POST /v1/ops/seed/atm-customers, pages of ≤ 1,000 numbered from 1; idempotent); the cards."""
    started = time.perf_counter()
    roster = [{"atm_id": atm_id, "kind": kind.value, "location": f"bench {atm_id}"}
              for atm_id, kind in atm_roster(atms)]
    seeded: list[dict[str, Any]] = []
    async with _api(port) as api:
        for first in range(0, len(roster), PAGE_MAX):
            await api.expect("POST", "/v1/atms", {"machines": roster[first:first + PAGE_MAX]})
        for first in range(1, cards + 1, PAGE_MAX):
            count = min(PAGE_MAX, cards + 1 - first)
            answer = await api.expect("POST", "/v1/ops/seed/atm-customers",
                                      {"count": count, "balance_minor": balance_minor, "first": first})
            page = answer.get("cards") if isinstance(answer, dict) else None
            if not isinstance(page, list) or len(page) != count:
                raise RuntimeError(f"seeding customers {first}..{first + count - 1}: expected {count} cards")
            seeded.extend(page)
    _progress(f"{atms:,} ATMs registered and {cards:,} customers seeded in {time.perf_counter() - started:.1f} s")
    return seeded


# -- one scenario ----------------------------------------------------------------------------------

async def _scenario(name: str, port: int, cards_path: Path, cards: list[dict[str, Any]], *, atms: int, rate: float,
                    seconds: float, seed: int, journal_from: int,
                    warmup_seconds: float = 0.0) -> tuple[dict[str, Any], int]:
    """(the scenario's result, where the next scenario's journal numbers start)."""
    down = DOWN_PRODUCTS.get(name)
    if down:  # each call on a fresh connection: the server drops keep-alive connections idle through a run
        async with _api(port) as api:
            await api.expect("POST", "/v1/ops/faults", {"product": down[0], "mode": "error"})
        _progress(f"{name}: product {down[0]} failing on purpose")
    try:
        _progress(f"{name}: {atms:,} ATMs offering {rate:,} withdrawals/s for {seconds} s; load average"
                  f" {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        report = await _simulate(port, cards_path, atms=atms, rate=rate, seconds=seconds, seed=seed,
                                 journal_from=journal_from, mix=MIXES.get(name) or _mix_for(cards),
                                 warmup_seconds=warmup_seconds)
    finally:
        if down:
            async with _api(port) as api:
                await api.expect("DELETE", f"/v1/ops/faults/{down[0]}")
    async with _api(port) as api:
        status, verification = await api.call("GET", "/v1/ops/verify")
    verified = status == 200 and isinstance(verification, dict) and verification.get("ok") is True
    result = scenario_result(name, report, verified=verified, down_operations=(down[1],) if down else ())
    _progress(f"{name}: {result['withdrawals_per_s_achieved']:,} withdrawals/s, p99 {result['latency_ms_p99']} ms,"
              f" system errors {result['system_errors']}, verified={verified}, passed={result['passed']}")
    return result, int(report["journal_no_next"])


def _mix_for(cards: list[dict[str, Any]]) -> str | None:
    """The simulator's default mix, without what the seeded cards cannot do: transfers when they carry no payee
    numbers, loan draws when no holder has a card loan."""
    left_out = set()
    if not any(card.get("branch_code") and card.get("account_number") for card in cards):
        left_out.add(Operation.TRANSFER)
    if not any(card.get("card_loan") is True for card in cards):
        left_out.add(Operation.LOAN_DRAW)
    if not left_out:
        return None
    _progress(f"the seeded cards cannot do {', '.join(sorted(left_out))}: left out of the mix")
    return ",".join(f"{operation}={weight:g}" for operation, weight in DEFAULT_MIX if operation not in left_out)


async def _simulate(port: int, cards_path: Path, *, atms: int, rate: float, seconds: float, seed: int,
                    journal_from: int, mix: str | None, warmup_seconds: float = 0.0) -> dict[str, Any]:
    """`python -m kanjo.sim atm … --json` as a child process; its report (its progress goes to our stderr)."""
    command = [sys.executable, "-m", "kanjo.sim", "atm", "--port", str(port), "--atms", str(atms),
               "--rate", str(rate), "--seconds", str(seconds), "--cards", str(cards_path), "--seed", str(seed),
               "--journal-from", str(journal_from), "--upload-journal", "--json",
               "--warmup-seconds", str(warmup_seconds)]
    running_s = warmup_seconds + seconds
    if mix is not None:
        command += ["--mix", mix]
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), running_s + SIMULATOR_SLACK_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"the simulator did not finish within {running_s + SIMULATOR_SLACK_S:.0f} s") from None
    if process.returncode != 0:
        raise RuntimeError(f"the simulator exited with {process.returncode}")
    report = json.loads(out)
    if not isinstance(report, dict):
        raise RuntimeError("the simulator's report is not a JSON object")
    return report


def scenario_result(scenario: str, report: dict[str, Any], *, verified: bool,
                    down_operations: Sequence[str] = ()) -> dict[str, Any]:
    """The bench's line for one scenario, from the simulator's report. Operations whose product is down on purpose
    are left out of `system_errors` (their refusals are the point) and counted in `unavailable_while_down`."""
    e2e = report["latency_ms"]["withdrawal_end_to_end"]
    warmup = report.get("warmup_latency_ms", {}).get("withdrawal_end_to_end", {})
    by_operation: dict[str, int] = report["system_errors_by_operation"]
    system_errors = sum(n for op, n in by_operation.items() if op not in down_operations)
    result: dict[str, Any] = {
        "scenario": scenario, "atms": report["atms"], "cards": report["cards"], "seconds": report["seconds"],
        "elapsed_s": report["elapsed_s"],
        "withdrawals_per_s_offered": report["offered"]["withdrawals_per_s"],
        "withdrawals_per_s_achieved": report["achieved"]["withdrawals_per_s"],
        "operations_per_s_offered": report["offered"]["operations_per_s"],
        "operations_per_s_achieved": report["achieved"]["operations_per_s"],
        "latency_ms_p50": e2e["p50"], "latency_ms_p99": e2e["p99"], "latency_ms_max": e2e["max"],
        "withdrawals_measured": e2e["count"],
        "warmup_s": report.get("warmup_s", 0.0),
        "warmup_latency_ms_p50": warmup.get("p50"), "warmup_latency_ms_p99": warmup.get("p99"),
        "warmup_latency_ms_max": warmup.get("max"), "warmup_withdrawals": warmup.get("count", 0),
        "latency_ms_by_message": {k: v for k, v in report["latency_ms"].items() if k != "withdrawal_end_to_end"},
        "system_errors": system_errors, "system_errors_by_operation": by_operation,
        "results_by_operation": {op: detail["results"]
                                 for op, detail in report["operations"]["by_operation"].items()},
        "system_error_samples": report.get("system_error_samples", {}),
        "cards_retained": report["cards_retained"],
        "cards_retained_by_system_error": report["cards_retained_by_system_error"],
        "retain_asked_on_system_error": report["retain_asked_on_system_error"],
        "transactions": report["transactions"], "withdrawal_ack_codes": report["withdrawals"]["ack_codes"],
        "loan_draw_ack_codes": report["loan_draws"]["ack_codes"],
        "reconciliation": report.get("reconciliation"), "mix": report["mix"],
    }
    if down_operations:
        result["unavailable_while_down"] = sum(
            n for op in down_operations
            for key, n in report["operations"]["by_operation"].get(op, {}).get("results", {}).items()
            if key.startswith("unavailable/"))
    result["target"] = {"latency_ms_p99_max": LATENCY_MS_P99_TARGET, "system_errors_max": 0,
                        "cards_retained_by_system_error_max": 0}
    result["passed"] = _passed(result, verified=verified, down=bool(down_operations))
    result["verified"] = verified
    return result


def _passed(result: dict[str, Any], *, verified: bool, down: bool) -> bool:
    p99 = result["latency_ms_p99"]
    return (verified and p99 is not None and p99 <= LATENCY_MS_P99_TARGET and result["system_errors"] == 0
            and result["cards_retained_by_system_error"] == 0 and result["retain_asked_on_system_error"] == 0
            and result["transactions"]["unfinished"] == 0
            and (not down or result["unavailable_while_down"] > 0))  # the product really was down
