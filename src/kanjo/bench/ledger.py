"""`kanjo bench ledger`: transfers per second and latency of the posting engine and of the HTTP API, as JSON lines.

A fresh database per run. The batch scenarios (uniform, zipf, hot) drive the in-process engine with
concurrent clients submitting full batches; `http` runs `kanjo up` as a subprocess and offers single
transfers at a fixed rate. After each scenario the books are checked: debits equal credits, and the
transfers table grew by exactly the transfers reported OK. Durability stays on and is reported.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import gc
import itertools
import math
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from kanjo.bench import loadgen
from kanjo.kernel import invariant, limits, new_id
from kanjo.ledger import Account, CreateTransferResult, Ledger, LedgerBusy, LedgerUnavailable, Transfer
from kanjo.platform import db, processes
from kanjo.platform.logging import ensure_logging

SCENARIOS = ("uniform", "zipf", "hot", "http")  # also the order they run in
BATCH_SCENARIOS = frozenset({"uniform", "zipf", "hot"})
BENCH_DATABASE = "kanjo_bench"
JPY = 392
ACCOUNT_CODE = 1
TRANSFER_CODE = 1
ZIPF_S = 1.0
SEED = 20_261_121  # the same accounts and transfers every run
AMOUNTS_DISTINCT = 1024  # transfer amounts cycle through this many random values (minor units)
AMOUNT_MAX_MINOR = 100_000
PREGENERATED_RATE_PER_S = 100_000  # pre-generate enough for the window at this rate (4x what the engine does)
PREGENERATED_TRANSFERS_MAX = 3_000_000  # about 200 B each: ~0.6 GB; past it batches are made in the window
BUSY_BACKOFF_S = 0.01
HTTP_CONNECTIONS = 32  # keep-alive; at 1,000 requests/s and ~10 ms each, ~10 are busy
HTTP_PATH = "/v1/ledger/transfers"
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Emit = Callable[[dict[str, Any]], None]
Pick = Callable[[], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Books:
    """What the verification compares before and after a scenario."""

    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    transfers: int

    def balanced(self) -> bool:
        return self.debits_posted == self.credits_posted and self.debits_pending == self.credits_pending


@dataclass(slots=True)
class BatchStats:
    transfers: int = 0  # OK results only
    amount_minor: int = 0  # sum of the OK transfers' amounts
    errors: int = 0
    batches_made_in_window: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # per create_transfers call, submit to answer


async def run_ledger_bench(*, dsn: str, seconds: float = 10.0, accounts: int = 100_000, clients: int = 4,
                           batch_size: int = 8190, http_rate: float = 1000.0, http_seconds: float | None = None,
                           scenarios: Sequence[str] = SCENARIOS, emit: Emit,
                           database: str = BENCH_DATABASE) -> list[dict[str, Any]]:
    """Run the scenarios against a fresh database `database` on the server at `dsn`; emit one object each."""
    _check_arguments(seconds, accounts, clients, batch_size, http_rate, scenarios, database)
    _log_to_stderr()
    wanted = [name for name in SCENARIOS if name in scenarios]
    bench_dsn = await _fresh_database(dsn, database)
    durability = await _durability(bench_dsn)
    account_ids = list(range(1, accounts + 1))  # the HTTP API names them str(uuid.UUID(int=i))
    ids = itertools.count(new_id())  # unique, increasing, far from 0 and 2**128 - 1
    rng = random.Random(SEED)
    results: list[dict[str, Any]] = []
    ledger = await Ledger.start(bench_dsn)
    try:
        await _open_accounts(ledger, account_ids)
        for name in wanted:
            if name in BATCH_SCENARIOS:
                result = await _batch_scenario(ledger, bench_dsn, name, account_ids, ids, rng,
                                               seconds=seconds, clients=clients, batch_size=batch_size)
                _finish(result, results, durability, emit)
    finally:
        await ledger.stop()  # the HTTP server takes the writer lease next
    if "http" in wanted:
        result = await _http_scenario(bench_dsn, account_ids, ids, rng, rate_per_s=http_rate,
                                      seconds=seconds if http_seconds is None else http_seconds)
        _finish(result, results, durability, emit)
    return results


def _check_arguments(seconds: float, accounts: int, clients: int, batch_size: int, http_rate: float,
                     scenarios: Sequence[str], database: str) -> None:
    events_per_batch_max = limits.get("ledger_events_per_batch_max").maximum
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if not 0 < batch_size <= events_per_batch_max:
        raise ValueError(f"batch_size must be 1..{events_per_batch_max}")
    if accounts < 2:
        raise ValueError("a transfer needs two different accounts: accounts >= 2")
    if clients < 1 or seconds <= 0 or http_rate <= 0:
        raise ValueError("clients, seconds and http_rate must be positive")
    if not _DATABASE_NAME.match(database):
        raise ValueError("database must be a lower-case SQL identifier")


def _finish(result: dict[str, Any], results: list[dict[str, Any]], durability: dict[str, str], emit: Emit) -> None:
    if result["scenario"] == "hot":
        uniform = next((r for r in results if r["scenario"] == "uniform"), None)
        if uniform is not None and uniform["transfers_per_s"]:
            ratio = round(result["transfers_per_s"] / uniform["transfers_per_s"], 3)
            items = list(result.items())
            at = [k for k, _ in items].index("transfers_per_s") + 1
            result = dict([*items[:at], ("ratio_to_uniform", ratio), *items[at:]])
    result["durability"] = durability
    results.append(result)
    emit(result)


def _log_to_stderr() -> None:
    """stdout carries only the JSON lines: structlog's default logger prints to stdout."""
    ensure_logging()


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- the database --------------------------------------------------------------------------------

async def _fresh_database(server_dsn: str, database: str) -> str:
    bench_dsn = await processes.fresh_database(server_dsn, database)
    _progress(f"fresh database {database}")
    return bench_dsn


async def _durability(bench_dsn: str) -> dict[str, str]:
    conn = await db.connect(bench_dsn)
    try:
        return {"fsync": await conn.fetchval("SHOW fsync"),
                "synchronous_commit": await conn.fetchval("SHOW synchronous_commit")}
    finally:
        await conn.close()


async def _books(bench_dsn: str) -> Books:
    conn = await db.connect(bench_dsn)
    try:
        sums = await conn.fetchrow(
            "SELECT coalesce(sum(debits_posted), 0), coalesce(sum(credits_posted), 0),"
            " coalesce(sum(debits_pending), 0), coalesce(sum(credits_pending), 0) FROM ledger.accounts"
        )
        count = await conn.fetchval("SELECT count(*) FROM ledger.transfers")
    finally:
        await conn.close()
    return Books(int(sums[0]), int(sums[1]), int(sums[2]), int(sums[3]), int(count))


def _verified(before: Books, after: Books, transfers: int, amount_minor: int | None) -> bool:
    """Debits equal credits, and the table grew by exactly the OK transfers (and their amounts)."""
    moved_ok = amount_minor is None or after.debits_posted - before.debits_posted == amount_minor
    return after.balanced() and after.transfers - before.transfers == transfers and moved_ok


async def _settle(bench_dsn: str) -> None:
    """Start each scenario from the same footing: fresh planner statistics and no dead rows left behind.

    No CHECKPOINT here: right after one, every first touch of a page writes a full-page image, which a
    short window would over-weight (a server under steady load checkpoints every 15 min or 8 GB of WAL).
    """
    conn = await db.connect(bench_dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) ledger.accounts")
    finally:
        await conn.close()


async def _open_accounts(ledger: Ledger, account_ids: list[int]) -> None:
    size = limits.get("ledger_events_per_batch_max").maximum
    started = time.perf_counter()
    for first in range(0, len(account_ids), size):
        chunk = account_ids[first:first + size]
        outcomes = await ledger.create_accounts([Account(id=i, ledger=JPY, code=ACCOUNT_CODE) for i in chunk])
        failed = [o.result.name for o in outcomes if o.result.name != "OK"]
        invariant(not failed, f"bench accounts must open: {failed[:3]}")
    _progress(f"{len(account_ids):,} accounts opened in {time.perf_counter() - started:.1f} s")


# -- account choice ------------------------------------------------------------------------------

def _picker(name: str, account_ids: list[int], rng: random.Random) -> Pick:
    """(debit, credit) pairs, never the same account twice."""
    n = len(account_ids)
    draw = rng.random
    if name == "uniform":
        def uniform() -> tuple[int, int]:
            d = int(draw() * n)
            c = int(draw() * (n - 1))
            return account_ids[d], account_ids[c + 1 if c >= d else c]
        return uniform
    if name == "hot":
        hot, rest = account_ids[0], account_ids[1:]  # every transfer credits the hot account: a donation drive

        def donation() -> tuple[int, int]:
            return rest[int(draw() * (n - 1))], hot
        return donation
    if name == "zipf":
        return _zipf_picker(account_ids, rng)
    raise ValueError(f"no account choice for scenario {name}")


def _zipf_picker(account_ids: list[int], rng: random.Random) -> Pick:
    """Zipf (s = ZIPF_S) over account ranks by inverse CDF: bisect into the cumulative weights."""
    ranked = list(account_ids)
    rng.shuffle(ranked)  # rank 1 is some account, not the lowest id: no accidental index locality
    n = len(ranked)
    cumulative = list(itertools.accumulate(1.0 / k**ZIPF_S for k in range(1, n + 1)))
    total = cumulative[-1]
    draw = rng.random
    find = bisect.bisect_right
    last = n - 1

    def zipf() -> tuple[int, int]:
        d = min(last, find(cumulative, draw() * total))
        c = d
        while c == d:
            c = min(last, find(cumulative, draw() * total))
        return ranked[d], ranked[c]
    return zipf


# -- batch scenarios -----------------------------------------------------------------------------

def _batch_maker(pick: Pick, ids: Iterator[int], batch_size: int, rng: random.Random) -> Callable[[], list[Transfer]]:
    amounts = [rng.randint(1, AMOUNT_MAX_MINOR) for _ in range(AMOUNTS_DISTINCT)]
    mask = AMOUNTS_DISTINCT - 1
    invariant(AMOUNTS_DISTINCT & mask == 0, "AMOUNTS_DISTINCT is a power of two")
    make = Transfer
    take_id = ids.__next__

    def batch() -> list[Transfer]:
        out = []
        for k in range(batch_size):
            debit, credit = pick()
            out.append(make(take_id(), debit, credit, amounts[k & mask], JPY, TRANSFER_CODE))
        return out
    return batch


async def _batch_scenario(ledger: Ledger, bench_dsn: str, name: str, account_ids: list[int], ids: Iterator[int],
                          rng: random.Random, *, seconds: float, clients: int, batch_size: int) -> dict[str, Any]:
    make_batch = _batch_maker(_picker(name, account_ids, rng), ids, batch_size, rng)
    planned = min(PREGENERATED_TRANSFERS_MAX, int(seconds * PREGENERATED_RATE_PER_S))
    count = max(clients, math.ceil(planned / batch_size))
    started = time.perf_counter()
    with _collector_paused():
        batches = collections.deque(make_batch() for _ in range(count))
    _progress(f"{name}: {count * batch_size:,} transfers generated in {time.perf_counter() - started:.1f} s")
    await _settle(bench_dsn)
    before = await _books(bench_dsn)
    _progress(f"{name}: {seconds} s window starts; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with _pregenerated_frozen():
        stats = await _drive(ledger, batches, make_batch, clients=clients, seconds=seconds)
        batches.clear()
    after = await _books(bench_dsn)
    if stats.batches_made_in_window:
        _progress(f"{name}: pre-generated transfers ran out; {stats.batches_made_in_window} batches made in window")
    latencies = sorted(stats.latencies_s)
    result = {
        "scenario": name, "accounts": len(account_ids), "clients": clients, "batch_size": batch_size,
        "seconds": float(seconds), "elapsed_s": round(stats.elapsed_s, 3), "transfers": stats.transfers,
        "transfers_per_s": round(stats.transfers / stats.elapsed_s, 1) if stats.elapsed_s else 0.0,
        "batches": len(latencies),
        "latency_ms_p50": _percentile_ms(latencies, 50), "latency_ms_p99": _percentile_ms(latencies, 99),
        "latency_ms_max": _percentile_ms(latencies, 100), "errors": stats.errors,
        "verified": _verified(before, after, stats.transfers, stats.amount_minor),
    }
    _progress(f"{name}: {result['transfers_per_s']:,} transfers/s, verified={result['verified']}")
    return result


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of small allocations: without this the cyclic collector rescans them over and over."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _pregenerated_frozen() -> Iterator[None]:
    """Keep the pre-generated transfers out of the engine's garbage collections during the window."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _drive(ledger: Ledger, batches: collections.deque[list[Transfer]],
                 make_batch: Callable[[], list[Transfer]], *, clients: int, seconds: float) -> BatchStats:
    """`clients` tasks submit batches back to back until the window closes; the last ones finish after it."""
    stats = BatchStats()
    latencies = stats.latencies_s
    ok = CreateTransferResult.OK
    clock = time.perf_counter

    async def client() -> None:
        while clock() < deadline:
            if batches:
                batch = batches.popleft()
            else:
                batch = make_batch()
                stats.batches_made_in_window += 1
            submitted = clock()
            try:
                outcomes = await ledger.create_transfers(batch)
            except LedgerBusy:
                stats.errors += len(batch)
                await asyncio.sleep(BUSY_BACKOFF_S)
                continue
            except LedgerUnavailable:
                stats.errors += len(batch)  # outcome unknown: the verification will say if any committed
                continue
            latencies.append(clock() - submitted)
            for outcome in outcomes:
                if outcome.result is ok:
                    stats.transfers += 1
                    stats.amount_minor += outcome.amount
                else:
                    stats.errors += 1

    start = clock()
    deadline = start + seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(clients):
            group.create_task(client())
    stats.elapsed_s = clock() - start
    return stats


def _percentile_ms(sorted_s: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile in ms; None when nothing was measured."""
    if not sorted_s:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_s)))
    return round(sorted_s[rank - 1] * 1000, 3)


# -- http ----------------------------------------------------------------------------------------

def _http_bodies(account_ids: list[int], ids: Iterator[int], rng: random.Random, total: int) -> list[bytes]:
    pick = _picker("uniform", account_ids, rng)
    bodies = []
    for _ in range(total):
        debit, credit = pick()
        bodies.append(orjson.dumps({"transfers": [{
            "id": str(uuid.UUID(int=next(ids))), "debit_account_id": str(uuid.UUID(int=debit)),
            "credit_account_id": str(uuid.UUID(int=credit)), "amount": rng.randint(1, AMOUNT_MAX_MINOR),
            "ledger": JPY, "code": TRANSFER_CODE,
        }]}))
    return bodies


async def _http_scenario(bench_dsn: str, account_ids: list[int], ids: Iterator[int], rng: random.Random, *,
                         rate_per_s: float, seconds: float) -> dict[str, Any]:
    total = max(1, round(rate_per_s * seconds))
    bodies = _http_bodies(account_ids, ids, rng, total)
    moved = [0]

    def accept(response: loadgen.Response) -> bool:
        if response.status != 200:
            return False
        try:
            [answer] = orjson.loads(response.body)["results"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return False
        if answer.get("result") != "ok":
            return False
        moved[0] += answer.get("amount", 0)
        return True

    before = await _books(bench_dsn)
    port = processes.free_port()
    async with processes.KanjoServer(bench_dsn, port, label="bench", progress=_progress):
        _progress(f"http: offering {rate_per_s:,} requests/s for {seconds} s on port {port}; load average"
                  f" {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        run = await loadgen.run_open_loop("127.0.0.1", port, HTTP_PATH, bodies, rate_per_s=rate_per_s,
                                          connections=HTTP_CONNECTIONS, accept=accept)
    after = await _books(bench_dsn)
    latencies = sorted(run.latencies_s)
    result = {
        "scenario": "http", "accounts": len(account_ids), "connections": HTTP_CONNECTIONS,
        "seconds": float(seconds), "elapsed_s": round(run.elapsed_s, 3), "requests": run.requests_sent,
        "requests_per_s_offered": float(rate_per_s),
        "requests_per_s_achieved": round(run.requests_accepted / run.elapsed_s, 1) if run.elapsed_s else 0.0,
        "transfers": run.requests_accepted,
        "latency_ms_p50": _percentile_ms(latencies, 50), "latency_ms_p99": _percentile_ms(latencies, 99),
        "latency_ms_max": _percentile_ms(latencies, 100), "errors": run.errors,
        "requests_unanswered": run.requests_unanswered,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "verified": _verified(before, after, run.requests_accepted, moved[0]),
    }
    _progress(f"http: {result['requests_per_s_achieved']:,} requests/s, verified={result['verified']}")
    return result
