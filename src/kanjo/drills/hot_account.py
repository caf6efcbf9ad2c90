"""`kanjo drill hot-account`: a donation drive (seed 000, 2011: donations into a few accounts after the earthquake
outran the night batch and stopped ATMs nationwide) — a flood of small transfers from many donors into one account,
alongside normal traffic.

Phases: `baseline` (normal traffic alone), then the drive in rounds, each a `spread` slice (the drive's clients send
donations from the donors to many recipients: the bank's throughput over many accounts) and a `hot` slice (the same
clients, every donation into one account); alternating, so that whatever else loads the machine falls on both alike.
Normal traffic runs throughout: ordinary transfers among other customers' accounts at a fixed rate, each latency kept
with its phase, and the ATM fleet. Pass: the other customers' transfers keep their latency objective during the hot
slices and are no slower than during the spread slices (a factor, with a slack for a shared machine's noise); the ATM
operations keep their objective; the hot account takes donations nearly as fast as many accounts do; nothing reaches
a named limit and nothing is refused or lost; every donation is posted exactly once (each donor, funded with exactly
its donations, ends at zero; the hot account and the recipients are credited the donations' sum); the journals
reconcile; the books verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from kanjo.drills.fleet import FleetRuns, operations_of, prepare_bank
from kanjo.drills.limits import PHASE_SECONDS_MAX, PROBE_SAMPLES_MAX
from kanjo.drills.model import (
    AT_LEAST,
    AT_MOST,
    EQUALS,
    Criterion,
    FleetOptions,
    drill_report,
    percentile_ms,
    verification_summary,
)
from kanjo.drills.server import DrillError, Ops, Target, progress
from kanjo.kernel.limits import limits
from kanjo.platform.http_client import HttpConnection, ProtocolError

DONATIONS_MAX = limits.declare(
    "drill_hot_donations_max", 5_000_000, "transfers",
    "donations of one drive (amounts are derived from their number, not kept; one request latency kept per request)",
).maximum
ACCOUNTS_MAX = limits.declare(
    "drill_hot_accounts_max", 1_000_000, "accounts",
    "donors, recipients or other customers one hot-account drill opens (their ids are kept in memory)",
).maximum
CLIENTS_MAX = limits.declare(
    "drill_hot_clients_max", 256, "connections", "the drive's concurrent clients, one connection each",
).maximum
TRANSFERS_PER_REQUEST_MAX = limits.declare(
    "drill_hot_transfers_per_request_max", 1_000, "transfers",
    "donations a drive client sends in one request; well under the ledger's batch maximum",
).maximum
OTHER_PER_S_MAX = limits.declare(
    "drill_hot_other_transfers_per_s_max", 2_000, "requests/s", "the normal traffic's offered transfers per second",
).maximum
ROUNDS_MAX = limits.declare(
    "drill_hot_rounds_max", 1_000, "rounds", "alternating spread and hot slices of one drive (a timeline entry each)",
).maximum
REQUEST_LATENCIES_MAX = limits.declare(
    "drill_hot_request_latencies_max", 1_000_000, "samples",
    "donation request latencies kept for the report (8 bytes each); later requests are counted, not timed",
).maximum

JPY = 392
CODE = 1
PAGE = 1_000  # accounts created, funded or looked up per setup request
AMOUNT_MIN_MINOR, AMOUNT_SPAN_MINOR = 100, 9_901  # a donation: ¥100 … ¥10,000
OTHER_BALANCE_MINOR = 10_000_000
OTHER_AMOUNT_MAX_MINOR = 5_000
REQUEST_TIMEOUT_S = 10.0
RESENDS_MAX = 50  # a donation request resent (same ids) after a 503 or a lost connection, at most this often
RESEND_WAIT_S = 0.05
OTHER_TIMEOUT_S = 5.0  # as long as a customer's app waits
OTHER_CONNECTIONS = 8
FLEET_SEGMENT_S = 3.0  # the fleet runs in segments of this length while a drive lasts
DRIVES = ("spread", "hot")


@dataclass(frozen=True, slots=True)
class HotAccountOptions:
    """`kanjo drill hot-account`: a donation drive into one account alongside normal traffic."""

    fleet: FleetOptions = field(default_factory=lambda: FleetOptions(
        atms=50, cards=200, withdrawals_per_s=5.0, mix="withdrawal=60,inquiry=20,deposit=15,transfer=5"))
    donations: int = 200_000  # into the hot account
    spread_donations: int = 50_000  # the same drive over many recipients: the bank's throughput over many
    donors: int = 10_000
    recipients: int = 1_000
    rounds: int = 5  # the spread and hot drives alternate in this many slices each
    clients: int = 32  # the drive's concurrent clients (closed loop: each sends its next request on an answer)
    transfers_per_request: int = 1
    other_accounts: int = 1_000
    other_per_s: float = 50.0  # ordinary transfers among the other accounts, open loop
    baseline_s: float = 5.0
    latency_ms_p99_max: float = 500.0  # other customers' transfers and ATM operations during the drives
    latency_factor_max: float = 2.0  # other transfers' p99, hot drive over spread drive …
    latency_slack_ms: float = 20.0  # … or the spread drive's p99 plus this, whichever is larger
    throughput_ratio_min: float = 0.8  # hot donations/s over spread donations/s

    def check(self) -> None:
        self.fleet.check()
        _within("donations", self.donations, 1, DONATIONS_MAX)
        _within("spread_donations", self.spread_donations, 1, DONATIONS_MAX)
        for name in ("donors", "recipients", "other_accounts"):
            _within(name, getattr(self, name), 2, ACCOUNTS_MAX)
        _within("rounds", self.rounds, 1, min(ROUNDS_MAX, self.donations, self.spread_donations))
        _within("clients", self.clients, 1, CLIENTS_MAX)
        _within("transfers_per_request", self.transfers_per_request, 1, TRANSFERS_PER_REQUEST_MAX)
        _within("other_per_s", self.other_per_s, 0.5, OTHER_PER_S_MAX)
        _within("baseline_s", self.baseline_s, 0.5, PHASE_SECONDS_MAX)
        _within("latency_factor_max", self.latency_factor_max, 1, 100)
        _within("throughput_ratio_min", self.throughput_ratio_min, 0, 10)


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low:g}..{high:,g}, not {value}")


def amount_of(seed: int, k: int) -> int:
    """Donation k's amount: a cheap deterministic hash of (seed, k), so that none is kept in memory."""
    return AMOUNT_MIN_MINOR + ((k * 2_654_435_761 + seed * 40_503) % 2**32) % AMOUNT_SPAN_MINOR


# -- the accounts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Books:
    """The drill's accounts (UUID text): the hot account, donors and recipients, the other customers, and the
    bank's own account that funds them."""

    funding: str
    hot: str
    donors: tuple[str, ...]
    recipients: tuple[str, ...]
    others: tuple[str, ...]


def _ids(n: int) -> tuple[str, ...]:
    return tuple(str(uuid.uuid4()) for _ in range(n))


async def open_books(ops: Ops, options: HotAccountOptions) -> Books:
    """Open every account (donors and other customers may not go below zero), fund each donor with exactly its
    donations and each other customer generously."""
    started = time.perf_counter()
    books = Books(str(uuid.uuid4()), str(uuid.uuid4()), _ids(options.donors), _ids(options.recipients),
                  _ids(options.other_accounts))
    guarded = {*books.donors, *books.others}
    every = [books.funding, books.hot, *books.donors, *books.recipients, *books.others]
    for first in range(0, len(every), PAGE):
        page = [{"id": a, "ledger": JPY, "code": CODE, "flags": ["debits_must_not_exceed_credits"] if a in guarded
                 else []} for a in every[first:first + PAGE]]
        await _all_ok(ops, "/v1/ledger/accounts", {"accounts": page})
    owed = Counter[int]()
    for k in range(options.spread_donations + options.donations):
        owed[k % options.donors] += amount_of(options.fleet.seed, k)
    funding = [(books.donors[d], owed[d]) for d in range(options.donors) if owed[d]]
    funding += [(a, OTHER_BALANCE_MINOR) for a in books.others]
    for first in range(0, len(funding), PAGE):
        page = [{"id": str(uuid.uuid4()), "debit_account_id": books.funding, "credit_account_id": a, "amount": n,
                 "ledger": JPY, "code": CODE} for a, n in funding[first:first + PAGE]]
        await _all_ok(ops, "/v1/ledger/transfers", {"transfers": page})
    progress(f"{len(every):,} accounts opened and {len(funding):,} funded in {time.perf_counter() - started:.1f} s")
    return books


async def _all_ok(ops: Ops, path: str, body: dict[str, Any]) -> None:
    answer = await ops.expect("POST", path, body)
    results = Counter(r["result"] for r in answer["results"])
    if set(results) != {"ok"}:
        raise DrillError(f"POST {path}: not every event was created: {dict(results)}")


async def lookup_accounts(ops: Ops, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for first in range(0, len(ids), PAGE):
        answer = await ops.expect("POST", "/v1/ledger/accounts/lookup", {"ids": list(ids[first:first + PAGE])})
        found.update({str(uuid.UUID(a["id"])): a for a in answer["accounts"]})
    return found


# -- the drive ----------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Drive:
    """One kind of drive's answers over all its slices: donations posted and their yen, requests and how they were
    answered, the time its slices took and what the ledger committed meanwhile (every kind of traffic)."""

    name: str
    planned: int
    posted: int = 0
    posted_minor: int = 0
    requests: int = 0
    resends: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # every answer ("200", "503", "no_answer", …)
    results: Counter[str] = field(default_factory=Counter)  # every donation's final result
    lost: int = 0  # requests never answered 200 within the resends
    latencies_ms: list[float] = field(default_factory=list)  # per request, first send to final answer
    elapsed_s: float = 0.0  # the slices' time, summed
    committed: float = 0.0  # transfers the ledger committed during the slices
    slices_per_s: list[float] = field(default_factory=list)  # each slice's donations/s: the timeline

    @property
    def per_s(self) -> float:
        return round(self.posted / max(self.elapsed_s, 1e-6), 1)

    def summary(self) -> dict[str, Any]:
        return {"donations_planned": self.planned, "donations_posted": self.posted,
                "donated_minor": self.posted_minor, "elapsed_s": round(self.elapsed_s, 3),
                "donations_per_s": self.per_s, "donations_per_s_by_slice": self.slices_per_s,
                "bank_transfers_per_s": round(self.committed / max(self.elapsed_s, 1e-6), 1),
                "share_of_bank_transfers": round(self.posted / max(self.committed, 1), 3),
                "requests": self.requests, "resends": self.resends, "requests_lost": self.lost,
                "answers": dict(sorted(self.statuses.items())), "results": dict(sorted(self.results.items())),
                "request_latency_ms_p50": percentile_ms(self.latencies_ms, 50),
                "request_latency_ms_p99": percentile_ms(self.latencies_ms, 99),
                "request_latency_ms_max": percentile_ms(self.latencies_ms, 100)}


async def run_slice(target: Target, options: HotAccountOptions, books: Books, drive: Drive, ks: range,
                    credit_of: Callable[[int], str]) -> None:
    """Donations `ks` from their donors to `credit_of(k)`, by `options.clients` closed-loop clients,
    `options.transfers_per_request` a request; a request is resent as is (same ids) after a 503 or a lost
    connection. The slice's time and the ledger's commits meanwhile are added to `drive`."""
    todo = iter(ks)
    posted_before = drive.posted

    async def client() -> None:
        conn = HttpConnection(target.host, target.port)
        try:
            while batch := list(itertools.islice(todo, options.transfers_per_request)):
                transfers = [{"id": str(uuid.uuid4()), "debit_account_id": books.donors[k % len(books.donors)],
                              "credit_account_id": credit_of(k), "amount": amount_of(options.fleet.seed, k),
                              "ledger": JPY, "code": CODE} for k in batch]
                raw = conn.request_bytes("POST", "/v1/ledger/transfers", orjson.dumps({"transfers": transfers}))
                await _send_donations(conn, raw, transfers, drive)
        finally:
            await conn.close()

    committed_before = (await counters(target))[COMMITTED]
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(options.clients):
            group.create_task(client())
    elapsed_s = time.perf_counter() - started
    drive.committed += (await counters(target))[COMMITTED] - committed_before
    drive.elapsed_s += elapsed_s
    drive.slices_per_s.append(round((drive.posted - posted_before) / max(elapsed_s, 1e-6), 1))


async def _send_donations(conn: HttpConnection, raw: bytes, transfers: list[dict[str, Any]], drive: Drive) -> None:
    sent = time.perf_counter()
    drive.requests += 1
    for attempt in range(RESENDS_MAX + 1):
        drive.resends += attempt > 0
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                response = await conn.send(raw)
        except (TimeoutError, OSError, EOFError, ProtocolError, asyncio.IncompleteReadError):
            await conn.close()
            drive.statuses["no_answer"] += 1
            await asyncio.sleep(RESEND_WAIT_S)
            continue
        drive.statuses[str(response.status)] += 1
        if response.status == 200:
            if len(drive.latencies_ms) < REQUEST_LATENCIES_MAX:
                drive.latencies_ms.append(round((time.perf_counter() - sent) * 1000, 3))
            for t, r in zip(transfers, orjson.loads(response.body)["results"], strict=True):
                result = "ok" if r["result"] == "exists" and attempt else r["result"]  # a resend finds its own
                drive.results[result] += 1
                if result == "ok":
                    drive.posted += 1
                    drive.posted_minor += t["amount"]
            return
        if response.status != 503:
            break  # a refusal (413 at a limit, 4xx): resending the same body changes nothing
        await asyncio.sleep(RESEND_WAIT_S)
    drive.lost += 1
    drive.results["not_answered"] += len(transfers)


# -- the normal traffic ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OtherSample:
    phase: str
    latency_ms: float | None  # None: no answer within OTHER_TIMEOUT_S
    status: int | None
    result: str


class OtherTransfers:
    """Ordinary transfers between other customers' accounts, open loop at `per_s` (latency from the scheduled send,
    a wait for a connection included); each answer kept with the phase current when it was sent."""

    def __init__(self, target: Target, accounts: Sequence[str], per_s: float, seed: int) -> None:
        self.target = target
        self.accounts = list(accounts)
        self.per_s = per_s
        self.seed = seed
        self.phase = "baseline"
        self.samples: list[OtherSample] = []
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(OTHER_CONNECTIONS):
            self._idle.put_nowait(HttpConnection(target.host, target.port))

    async def run(self, stop: asyncio.Event) -> None:
        start = time.perf_counter()
        try:
            async with asyncio.TaskGroup() as group:
                for k in range(PROBE_SAMPLES_MAX):
                    scheduled = start + k / self.per_s
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, scheduled - time.perf_counter()))
                    if stop.is_set():
                        break
                    group.create_task(self._one(k, scheduled, self.phase))
        finally:
            while not self._idle.empty():
                await self._idle.get_nowait().close()

    async def _one(self, k: int, scheduled: float, phase: str) -> None:
        n = len(self.accounts)
        debit = (k * 7_919 + self.seed) % n
        credit = (debit + 1 + (k * 104_729) % (n - 1)) % n
        body = orjson.dumps({"transfers": [{
            "id": str(uuid.uuid4()), "debit_account_id": self.accounts[debit],
            "credit_account_id": self.accounts[credit], "amount": 1 + (k * 31 + self.seed) % OTHER_AMOUNT_MAX_MINOR,
            "ledger": JPY, "code": CODE}]})
        conn = await self._idle.get()
        status: int | None = None
        result = "no_answer"
        try:
            async with asyncio.timeout(max(0.001, scheduled + OTHER_TIMEOUT_S - time.perf_counter())):
                response = await conn.send(conn.request_bytes("POST", "/v1/ledger/transfers", body))
            status = response.status
            result = orjson.loads(response.body)["results"][0]["result"] if status == 200 else f"status_{status}"
        except (TimeoutError, OSError, EOFError, ProtocolError, ValueError, KeyError, asyncio.IncompleteReadError):
            await conn.close()
        finally:
            self._idle.put_nowait(conn)
        latency_ms = None if status is None else round((time.perf_counter() - scheduled) * 1000, 3)
        self.samples.append(OtherSample(phase, latency_ms, status, result))


@contextlib.asynccontextmanager
async def running(other: OtherTransfers) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(other.run(stop), name="drill-other-transfers")
    try:
        yield
    finally:
        stop.set()
        await task


def other_summary(samples: Sequence[OtherSample], phase: str) -> dict[str, Any]:
    mine = [s for s in samples if s.phase == phase]
    answered = [s.latency_ms for s in mine if s.latency_ms is not None]
    return {"sent": len(mine), "results": dict(sorted(Counter(s.result for s in mine).items())),
            "latency_ms_p50": percentile_ms(answered, 50), "latency_ms_p99": percentile_ms(answered, 99),
            "latency_ms_max": percentile_ms(answered, 100)}


# -- what the server says ------------------------------------------------------------------------------------------

COMMITTED, BUSY = "kanjo_ledger_transfers_committed_total", "kanjo_ledger_busy_refusals_total"


async def counters(target: Target) -> dict[str, float]:
    """The ledger's committed transfers and busy refusals, from GET /metrics."""
    conn = HttpConnection(target.host, target.port)
    try:
        async with asyncio.timeout(10):
            response = await conn.send(conn.request_bytes("GET", "/metrics"))
    except (TimeoutError, OSError, EOFError, ProtocolError, asyncio.IncompleteReadError) as exc:
        raise DrillError(f"GET /metrics: no answer ({exc!r})") from exc
    finally:
        await conn.close()
    found = dict.fromkeys((COMMITTED, BUSY), 0.0)
    for line in response.body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    return found


async def limits_seen(ops: Ops) -> list[dict[str, Any]]:
    answer = await ops.expect("GET", "/v1/limits")
    return [{"name": r["name"], "peak": r["peak"], "maximum": r["maximum"],
             "peak_ratio": round(r["peak"] / r["maximum"], 4)} for r in answer["limits"]]


# -- the drill ----------------------------------------------------------------------------------------------------

async def run_hot_account(options: HotAccountOptions, target: Target) -> dict[str, Any]:
    options.check()
    ops = Ops(target)
    bank = await prepare_bank(ops, options.fleet, drill_atms=0)
    books = await open_books(ops, options)
    runs = FleetRuns(options.fleet, bank)
    other = OtherTransfers(target, books.others, options.other_per_s, options.fleet.seed)
    before = await counters(target)
    async with running(other):
        progress(f"baseline: other customers' transfers at {options.other_per_s:g}/s and the ATM fleet")
        baseline = [await runs.run("baseline", options.baseline_s, target.host, target.port)]
        drives, fleet = await drive_rounds(target, options, books, runs, other)
    after = await counters(target)
    reconciliation = await runs.upload(target)
    balances = await lookup_accounts(ops, [books.hot, *books.donors, *books.recipients])
    seen = await limits_seen(ops)
    verification = await ops.verify()
    evidence = Evidence(drives, other.samples, baseline, fleet, reconciliation, balances, seen,
                        after[BUSY] - before[BUSY], verification)
    return judge(options, books, evidence)


async def drive_rounds(target: Target, options: HotAccountOptions, books: Books, runs: FleetRuns,
                       other: OtherTransfers) -> tuple[dict[str, Drive], list[dict[str, Any]]]:
    """The spread and hot drives in alternating slices (`options.rounds` of each: the machine's other load falls on
    both alike), with the fleet running beside them in segments until the last slice is over."""
    spread, hot = Drive("spread", options.spread_donations), Drive("hot", options.donations)
    to_recipient: Callable[[int], str] = lambda k: books.recipients[k % len(books.recipients)]  # noqa: E731
    to_hot: Callable[[int], str] = lambda _k: books.hot  # noqa: E731
    progress(f"{options.rounds} rounds of {options.spread_donations // options.rounds:,} donations into"
             f" {len(books.recipients):,} accounts, then {options.donations // options.rounds:,} into one, from"
             f" {len(books.donors):,} donors by {options.clients} clients")

    async def slices() -> None:
        for r in range(options.rounds):
            for drive, first, total, credit_of in ((spread, 0, options.spread_donations, to_recipient),
                                                   (hot, options.spread_donations, options.donations, to_hot)):
                other.phase = drive.name
                await run_slice(target, options, books, drive, range(first + total * r // options.rounds,
                                                                     first + total * (r + 1) // options.rounds),
                                credit_of)
                other.phase = "between"
            progress(f"round {r + 1}: spread {spread.slices_per_s[-1]:,.0f}/s, hot {hot.slices_per_s[-1]:,.0f}/s")
        other.phase = "after"

    task = asyncio.create_task(slices(), name="drill-donation-drive")
    fleet: list[dict[str, Any]] = []
    try:
        while not task.done():
            fleet.append(await runs.run("drive", FLEET_SEGMENT_S, target.host, target.port))
    finally:
        await task
    for d in (spread, hot):
        progress(f"{d.name}: {d.posted:,} donations in {d.elapsed_s:.1f} s ({d.per_s:,.0f}/s)")
    return {"spread": spread, "hot": hot}, fleet


@dataclass(frozen=True, slots=True)
class Evidence:
    drives: dict[str, Drive]
    others: list[OtherSample]
    baseline: list[dict[str, Any]]
    fleet: list[dict[str, Any]]  # the segments that ran beside the drives
    reconciliation: dict[str, int]
    balances: dict[str, dict[str, Any]]
    limits: list[dict[str, Any]]
    busy_refusals: float
    verification: dict[str, Any]


def judge(options: HotAccountOptions, books: Books, e: Evidence) -> dict[str, Any]:
    hot, spread = e.drives["hot"], e.drives["spread"]
    criteria = [
        *other_latency(options, e.others),
        *other_failures(e.others),
        *atm_operations(options, e.fleet, e.baseline),
        Criterion("hot_over_spread_throughput_ratio", round(hot.per_s / max(spread.per_s, 1e-9), 3),
                  options.throughput_ratio_min, AT_LEAST,
                  detail={"hot_donations_per_s": hot.per_s, "spread_donations_per_s": spread.per_s}),
        Criterion("donations_refused_or_lost", sum(n for d in e.drives.values() for r, n in d.results.items()
                                                   if r != "ok"), 0, EQUALS,
                  detail={name: dict(d.results) for name, d in e.drives.items()}),
        Criterion("ledger_busy_refusals", int(e.busy_refusals), 0, EQUALS),
        limits_reached(e.limits),
        *exactly_once(options, books, e.balances),
        Criterion("journal_breaks", e.reconciliation.get("breaks"), 0, EQUALS, detail=e.reconciliation),
        Criterion("journal_upload_errors", e.reconciliation.get("errors"), 0, EQUALS),
        Criterion("books_verified", e.verification.get("ok") is True, True, EQUALS),
    ]
    measured = {
        "drives": {name: d.summary() for name, d in e.drives.items()},
        "other_transfers": {phase: other_summary(e.others, phase)
                            for phase in dict.fromkeys(s.phase for s in e.others)},
        "fleet": {"baseline": e.baseline[0] if e.baseline else None, "beside_the_drives": fleet_summary(e.fleet)},
        "limits_peak_ratio_at_least_0_7": {r["name"]: r["peak_ratio"] for r in e.limits if r["peak_ratio"] >= 0.7},
        "reconciliation": e.reconciliation, "verification": verification_summary(e.verification),
    }
    return drill_report("hot-account", options, criteria, measured)


def fleet_summary(segments: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fleet's segments beside the drives, condensed: each operation's p99 by segment, answers and errors."""
    return {"segments": len(segments), "seconds_each": FLEET_SEGMENT_S,
            "operations_per_s_achieved": [s["operations_per_s_achieved"] for s in segments],
            "latency_ms_p99_by_operation": {op: [s["latency_ms"].get(op, {}).get("p99") for s in segments]
                                            for op in operations_of(segments)},
            "results_by_operation": _summed([s["results_by_operation"] for s in segments]),
            "system_errors_by_operation": _summed([{"all": s["system_errors_by_operation"]} for s in segments])
            .get("all", {}),
            "system_error_samples": next((s["system_error_samples"] for s in segments
                                          if s["system_error_samples"]), {})}


def _summed(nested: Sequence[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for by_key in nested:
        for key, counts in by_key.items():
            out.setdefault(key, Counter()).update(counts)
    return {key: dict(sorted(c.items())) for key, c in out.items()}


def other_latency(options: HotAccountOptions, samples: Sequence[OtherSample]) -> list[Criterion]:
    """Other customers' transfers during the hot drive: within the objective, and no slower than during the spread
    drive (its p99 times the factor, or plus the slack: a few ms on a shared machine is noise, not harm)."""
    p99 = {phase: other_summary(samples, phase)["latency_ms_p99"] for phase in ("baseline", *DRIVES)}
    hot, spread = p99["hot"], p99["spread"]
    allowed = None if spread is None else round(max(spread * options.latency_factor_max,
                                                    spread + options.latency_slack_ms), 3)
    return [Criterion("other_transfers_latency_ms_p99_hot", hot, options.latency_ms_p99_max, AT_MOST, "ms",
                      {"by_phase": p99}),
            Criterion("other_transfers_latency_ms_p99_hot_vs_spread", hot if allowed is not None else None,
                      allowed if allowed is not None else 0.0, AT_MOST, "ms",
                      {"spread_p99": spread, "factor": options.latency_factor_max,
                       "slack_ms": options.latency_slack_ms})]


def other_failures(samples: Sequence[OtherSample]) -> list[Criterion]:
    """Other customers' transfers: no system error (no answer, 5xx), and none refused (every one is funded)."""
    system = [s for s in samples if s.status is None or s.status >= 500]
    refused = [s for s in samples if s.status is not None and s.status < 500 and s.result != "ok"]
    return [Criterion("other_transfers_system_errors", len(system), 0, EQUALS,
                      detail=dict(Counter(f"{s.phase}/{s.result}" for s in system))),
            Criterion("other_transfers_refused", len(refused), 0, EQUALS,
                      detail=dict(Counter(f"{s.phase}/{s.result}" for s in refused)))]


def atm_operations(options: HotAccountOptions, during: Sequence[dict[str, Any]],
                   baseline: Sequence[dict[str, Any]]) -> list[Criterion]:
    """The ATM fleet beside the drives: every operation's p99 (withdrawals end to end) in its worst segment within
    the objective; no system error, no card kept by one, nothing left unfinished, in any phase."""
    criteria = []
    for op in operations_of(during):
        by_segment = [s["latency_ms"].get(op, {}).get("p99") for s in during]
        measured = [v for v in by_segment if v is not None]
        criteria.append(Criterion(f"atm_{op}_latency_ms_p99", max(measured) if measured else None,
                                  options.latency_ms_p99_max, AT_MOST, "ms", {"by_segment": by_segment}))
    every = [*baseline, *during]
    criteria += [
        Criterion("atm_system_errors", sum(sum(s["system_errors_by_operation"].values()) for s in every), 0, EQUALS),
        Criterion("atm_cards_retained_by_system_error", sum(s["cards_retained_by_system_error"]
                                                            + s["retain_asked_on_system_error"] for s in every),
                  0, EQUALS),
        Criterion("atm_transactions_unfinished", sum(s["transactions"]["unfinished"] for s in every), 0, EQUALS),
    ]
    return criteria


def limits_reached(seen: Sequence[dict[str, Any]]) -> Criterion:
    """No named limit's peak (since the server started) reached its maximum."""
    at_max = [r for r in seen if r["peak"] >= r["maximum"]]
    return Criterion("limits_at_maximum", len(at_max), 0, EQUALS,
                     detail={r["name"]: f"{r['peak']:,} of {r['maximum']:,}" for r in at_max} or None)


def exactly_once(options: HotAccountOptions, books: Books, balances: dict[str, dict[str, Any]]) -> list[Criterion]:
    """Every donation posted once: the hot account and the recipients hold exactly the donations' sum, and every
    donor (funded with exactly its donations, unable to go below zero) ends at zero with nothing pending."""
    def credits(account: str) -> int | None:
        a = balances.get(account)
        return None if a is None else int(a["credits_posted"])

    spread_sum = sum(amount_of(options.fleet.seed, k) for k in range(options.spread_donations))
    hot_sum = sum(amount_of(options.fleet.seed, k) for k in range(options.spread_donations,
                                                              options.spread_donations + options.donations))
    recipients = [credits(a) for a in books.recipients]
    not_zero = [a for a in books.donors if a not in balances or balances[a]["credits_posted"]
                != balances[a]["debits_posted"] or balances[a]["debits_pending"] or balances[a]["credits_pending"]]
    return [
        Criterion("hot_account_credited_minor", credits(books.hot), hot_sum, EQUALS, "yen"),
        Criterion("recipients_credited_minor", None if None in recipients else sum(r or 0 for r in recipients),
                  spread_sum, EQUALS, "yen"),
        Criterion("donors_not_at_zero", len(not_zero), 0, EQUALS,
                  detail={"example": balances.get(not_zero[0]) if not_zero else None}),
    ]
