"""Crash drill: concurrent clients move money while the kanjo process is SIGKILLed and restarted.

Every client chooses its ids before the first attempt and retries the exact same body until it gets
an answer (connection refused or broken, timeout, 503: sleep briefly and send it again). Meanwhile the
process is killed at random moments and restarted on the same port. At the end, with kanjo up:
`kanjo verify` holds; money is conserved and every balance is what the acknowledged answers imply;
every acknowledged transfer exists exactly once and no refused one does; a replay of every
acknowledged request gets the first outcome (`ok` becomes `exists`, a refusal the same refusal).

Workload: singles, batches of independent transfers, linked chains, two-phase holds (posted in
full or in part, or voided, in a later request or in the same chain), and short-lived holds left
to expire. Restricted accounts (`debits_must_not_exceed_credits`) make refusals happen.

A linked chain here has at most one event that can fail for a state-dependent reason (a debit of a
restricted account). State-dependent failures burn the id, and a chain that fails that way burns
every member (docs/ledger-semantics.md), so a replay's answer is fixed by the first one whatever the
balances have become in between.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from kanjo.ledger.model import CreateTransferResult
from tests.e2e.server import ROOT, KanjoProcess, free_port

pytestmark = pytest.mark.slow

JPY = 392
CLIENTS = 6
KILLS_MIN, KILLS_MAX = 4, 6
KILL_GAP_S = (2.0, 4.5)  # time the process runs between a restart and the next kill
DOWN_S = (0.0, 0.4)  # time the process stays dead before its restart
TAIL_S = 1.5  # clients keep going after the last restart
REQUEST_TIMEOUT_S = 2.0
RETRY_SLEEP_S = (0.02, 0.15)
ACK_DEADLINE_S = 40.0  # one request must get its answer within this, across restarts
CHAOS_DEADLINE_S = 75.0
SETTLE_DEADLINE_S = 10.0  # short holds expire by the sweep after the chaos
TIMED_HOLD_S = 1
FUNDING = 3_000

MIN_ACKED_TRANSFERS = 300
MIN_KILLS_WITH_REQUESTS_IN_FLIGHT = 3
MIN_BROKEN_REQUESTS = 3

OK, EXISTS = "ok", "exists"
SUCCEEDED = (OK, EXISTS)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Stats:
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    refused: int = 0  # connection refused: the process was down
    broken: int = 0  # connection broken mid-request: the process died while the request was in flight
    timeouts: int = 0
    unavailable: int = 0  # 503
    in_flight: int = 0
    kills: int = 0
    kills_with_requests_in_flight: int = 0
    restart_s: list[float] = field(default_factory=list)


@dataclass
class Acked:
    path: str
    body: dict[str, Any]
    answer: dict[str, Any]
    after_broken: bool = False  # an earlier attempt broke mid-request: it may have been applied then


@dataclass
class Books:
    bank: str
    unrestricted: list[str]  # the bank first
    restricted: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.unrestricted, *self.restricted]


async def send_until_answered(http: httpx.AsyncClient, path: str, body: dict[str, Any], stats: Stats,
                              rng: random.Random) -> tuple[dict[str, Any], bool]:
    """POST the same body until a 200 comes back; every failure on the way is retried as is.

    Returns the answer, and whether an earlier attempt broke mid-request (it may have been applied).
    """
    stats.requests += 1
    broken = False
    deadline = time.monotonic() + ACK_DEADLINE_S
    first = True
    while True:
        if not first:
            stats.retries += 1
        first = False
        stats.attempts += 1
        stats.in_flight += 1
        try:
            response = await http.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            stats.refused += 1
        except httpx.TimeoutException:
            stats.timeouts += 1
            broken = True
        except httpx.TransportError:
            stats.broken += 1
            broken = True
        else:
            if response.status_code == 200:
                return response.json(), broken
            if response.status_code != 503:
                raise AssertionError(f"{path} answered {response.status_code}: {response.text[:500]}")
            stats.unavailable += 1
        finally:
            stats.in_flight -= 1
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer to {path} within {ACK_DEADLINE_S}s: {json.dumps(body)[:500]}")
        await asyncio.sleep(rng.uniform(*RETRY_SLEEP_S))


# -- the workload ---------------------------------------------------------------------------------


def amount(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(1, 200)
    if roll < 0.95:
        return rng.randint(200, 1_500)
    return rng.randint(1_500, 6_000)


def plain(dr: str, cr: str, value: int, *, linked: bool = False, pending: bool = False,
          timeout: int = 0) -> dict[str, Any]:
    flags = (["linked"] if linked else []) + (["pending"] if pending else [])
    event: dict[str, Any] = {"id": new_id(), "debit_account_id": dr, "credit_account_id": cr, "amount": value,
                             "ledger": JPY, "code": 1, "flags": flags}
    if timeout:
        event["timeout"] = timeout
    return event


def other(rng: random.Random, books: Books, not_this: str) -> str:
    return rng.choice([a for a in books.all if a != not_this])


def any_transfer(rng: random.Random, books: Books) -> dict[str, Any]:
    if rng.random() < 0.4:  # spending from a restricted account: they drain, so refusals keep happening
        return plain(rng.choice(books.restricted), rng.choice(books.unrestricted), amount(rng))
    dr = rng.choice(books.all)
    return plain(dr, other(rng, books, dr), amount(rng))


def resolution(rng: random.Random, hold: dict[str, Any], held: int, *, linked: bool = False) -> dict[str, Any]:
    roll = rng.random()
    flags = ["linked"] if linked else []
    if roll < 0.4:  # post all of it
        return {"id": new_id(), "pending_id": hold["id"], "flags": [*flags, "post_pending_transfer"]}
    if roll < 0.75:  # post a part
        return {"id": new_id(), "pending_id": hold["id"], "amount": rng.randint(1, held),
                "flags": [*flags, "post_pending_transfer"]}
    return {"id": new_id(), "pending_id": hold["id"], "flags": [*flags, "void_pending_transfer"]}


def chain(rng: random.Random, books: Books) -> list[dict[str, Any]]:
    """2-4 linked events; only one of them (a debit of a restricted account) can fail."""
    n = rng.randint(2, 4)
    fallible = rng.randrange(n)
    events = []
    for k in range(n):
        linked = k < n - 1
        if k == fallible:
            dr = rng.choice(books.restricted)
            events.append(plain(dr, other(rng, books, dr), amount(rng), linked=linked,
                                pending=rng.random() < 0.3))
        else:
            dr = rng.choice(books.unrestricted)
            events.append(plain(dr, other(rng, books, dr), amount(rng), linked=linked))
    return events


class Client:
    def __init__(self, index: int, seed: int, base_url: str, books: Books, stats: Stats,
                 acked: list[Acked]) -> None:
        self.rng = random.Random(seed * 1_000 + index)
        self.base_url = base_url
        self.books = books
        self.stats = stats
        self.acked = acked
        self.open_holds: list[tuple[dict[str, Any], int]] = []  # (pending event, amount held)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as http:
            while not stop.is_set():
                await self.transfers(http, self.next_request())
                await asyncio.sleep(self.rng.uniform(0, 0.01))

    def next_request(self) -> list[dict[str, Any]]:
        rng, books = self.rng, self.books
        if self.open_holds and rng.random() < 0.35:
            hold, held = self.open_holds.pop(rng.randrange(len(self.open_holds)))
            events = [resolution(rng, hold, held)]
            if rng.random() < 0.4:  # with independent others in the same request
                events += [any_transfer(rng, books) for _ in range(rng.randint(1, 3))]
                rng.shuffle(events)
            return events
        roll = rng.random()
        if roll < 0.35:
            return [any_transfer(rng, books)]
        if roll < 0.55:
            return [any_transfer(rng, books) for _ in range(rng.randint(2, 6))]
        if roll < 0.75:
            events = chain(rng, books)
            if rng.random() < 0.3:
                events = [any_transfer(rng, books), *events, any_transfer(rng, books)]
            return events
        if roll < 0.88:  # a hold, resolved in a later request
            dr = rng.choice(books.all)
            return [plain(dr, other(rng, books, dr), amount(rng), pending=True)]
        if roll < 0.95:  # a hold and its post or void in one chain
            dr = rng.choice(books.all)
            hold = plain(dr, other(rng, books, dr), amount(rng), linked=True, pending=True)
            return [hold, resolution(rng, hold, hold["amount"])]
        dr = rng.choice(books.all)  # a short hold, left to expire
        return [plain(dr, other(rng, books, dr), amount(rng), pending=True, timeout=TIMED_HOLD_S)]

    async def transfers(self, http: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
        body = {"transfers": events}
        answer, broken = await send_until_answered(http, "/v1/ledger/transfers", body, self.stats, self.rng)
        results = answer["results"]
        assert [r["id"] for r in results] == [e["id"] for e in events], answer
        self.acked.append(Acked("/v1/ledger/transfers", body, answer, broken))
        for event, result in zip(events, results, strict=True):
            if "pending" in event["flags"] and not event.get("timeout") and result["result"] in SUCCEEDED:
                resolved_here = any(e.get("pending_id") == event["id"] for e in events)
                if not resolved_here:
                    self.open_holds.append((event, result["amount"]))


async def killer(server: KanjoProcess, rng: random.Random, stats: Stats) -> None:
    for _ in range(rng.randint(KILLS_MIN, KILLS_MAX)):
        await asyncio.sleep(rng.uniform(*KILL_GAP_S))
        in_flight = stats.in_flight
        await asyncio.to_thread(server.kill)
        stats.kills += 1
        if in_flight:
            stats.kills_with_requests_in_flight += 1
        await asyncio.sleep(rng.uniform(*DOWN_S))
        started = time.monotonic()
        await asyncio.to_thread(server.start)
        stats.restart_s.append(time.monotonic() - started)


# -- the expectations -----------------------------------------------------------------------------


def expected_balances(books: Books, acked: list[Acked]) -> dict[str, list[int]]:
    """[debits_pending, debits_posted, credits_pending, credits_posted] per account, from the answers."""
    balances = {a: [0, 0, 0, 0] for a in books.all}
    events: dict[str, tuple[dict[str, Any], str, int]] = {}
    for item in acked:
        if item.path != "/v1/ledger/transfers":
            continue
        for event, result in zip(item.body["transfers"], item.answer["results"], strict=True):
            events[event["id"]] = (event, result["result"], result["amount"])
    succeeded = {i: (e, a) for i, (e, code, a) in events.items() if code in SUCCEEDED}
    for event, value in succeeded.values():
        flags = event["flags"]
        if "post_pending_transfer" in flags or "void_pending_transfer" in flags:
            hold, held = succeeded[event["pending_id"]]
            dr, cr = balances[hold["debit_account_id"]], balances[hold["credit_account_id"]]
            dr[0] -= held
            cr[2] -= held
            if "post_pending_transfer" in flags:
                assert 0 < value <= held, (event, value, held)
                dr[1] += value
                cr[3] += value
            else:
                assert value == held, (event, value, held)
        elif "pending" in flags:
            if not event.get("timeout"):  # a timed hold has expired by now
                balances[event["debit_account_id"]][0] += value
                balances[event["credit_account_id"]][2] += value
        else:
            balances[event["debit_account_id"]][1] += value
            balances[event["credit_account_id"]][3] += value
    return balances


async def actual_balances(http: httpx.AsyncClient, books: Books) -> dict[str, list[int]]:
    out = {}
    for account_id in books.all:
        response = await http.get(f"/v1/ledger/accounts/{account_id}")
        assert response.status_code == 200, response.text
        a = response.json()
        out[account_id] = [a["debits_pending"], a["debits_posted"], a["credits_pending"], a["credits_posted"]]
    return out


def run_verify(dsn: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "KANJO_DATABASE_URL": dsn, "KANJO_ENVIRONMENT": "test"}
    done = subprocess.run([sys.executable, "-m", "kanjo", "verify"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    return done.returncode, report, done.stdout + done.stderr


# -- the drill ------------------------------------------------------------------------------------


async def test_kill_and_restart_under_concurrent_clients_loses_and_doubles_nothing(ledger_dsn: str) -> None:
    seed = int(os.environ.get("KANJO_CRASH_SEED", str(random.randrange(2**31))))
    print(f"crash drill seed {seed} (KANJO_CRASH_SEED to rerun the same schedule)")
    rng = random.Random(seed)
    stats = Stats()
    acked: list[Acked] = []
    server = KanjoProcess(ledger_dsn, port=free_port())
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            books = await open_books(http, rng, stats, acked)

            stop = asyncio.Event()
            clients = [Client(i, seed, server.base_url, books, stats, acked) for i in range(CLIENTS)]
            started = time.monotonic()
            async with asyncio.timeout(CHAOS_DEADLINE_S):
                async with asyncio.TaskGroup() as tasks:
                    for client in clients:
                        tasks.create_task(client.run(stop))
                    await killer(server, rng, stats)
                    await asyncio.sleep(TAIL_S)
                    stop.set()
            chaos_s = time.monotonic() - started
            assert server.proc is not None and server.proc.poll() is None, "kanjo is not running after the drill"

            transfers_acked = sum(len(a.body["transfers"]) for a in acked if a.path.endswith("/transfers"))
            codes = Counter(r["result"] for a in acked if a.path.endswith("/transfers")
                            for r in a.answer["results"])
            after_broken = Counter(r["result"] for a in acked if a.after_broken for r in a.answer["results"])
            print(f"chaos {chaos_s:.1f}s: kills {stats.kills} ({stats.kills_with_requests_in_flight} with requests"
                  f" in flight), restarts {[round(s, 2) for s in stats.restart_s]}s, requests {stats.requests},"
                  f" attempts {stats.attempts}, retries {stats.retries}, refused {stats.refused},"
                  f" broken {stats.broken}, timeouts {stats.timeouts}, 503 {stats.unavailable},"
                  f" transfer events acked {transfers_acked}, results {dict(codes)},"
                  f" results of requests retried after a broken attempt {dict(after_broken)}")

            # the drill really crashed the process under load
            assert KILLS_MIN <= stats.kills <= KILLS_MAX
            assert stats.kills_with_requests_in_flight >= MIN_KILLS_WITH_REQUESTS_IN_FLIGHT, stats
            assert stats.broken + stats.timeouts >= MIN_BROKEN_REQUESTS, stats
            assert transfers_acked >= MIN_ACKED_TRANSFERS, stats
            assert codes[OK] + codes[EXISTS] >= MIN_ACKED_TRANSFERS // 2, codes
            assert codes["exceeds_credits"] > 0, codes

            ids = [e["id"] for a in acked if a.path.endswith("/transfers") for e in a.body["transfers"]]
            assert len(ids) == len(set(ids)), "the workload reused a transfer id"

            # (1) the books verify
            code, report, output = await asyncio.to_thread(run_verify, ledger_dsn)
            assert code == 0 and report.get("ok") is True, output

            # (2) money is conserved, and each balance is what the acknowledged answers imply
            expected = expected_balances(books, acked)
            assert sum(b[3] - b[1] for b in expected.values()) == 0
            assert sum(b[2] - b[0] for b in expected.values()) == 0
            settle = time.monotonic() + SETTLE_DEADLINE_S
            while True:
                actual = await actual_balances(http, books)
                if actual == expected or time.monotonic() > settle:
                    break
                await asyncio.sleep(0.2)
            assert sum(b[3] - b[1] for b in actual.values()) == 0
            assert sum(b[2] - b[0] for b in actual.values()) == 0
            wrong = {a: {"expected": expected[a], "actual": actual[a]} for a in books.all if actual[a] != expected[a]}
            assert not wrong, f"balances (dpe, dpo, cpe, cpo) differ from the acknowledged answers: {wrong}"

            # (3) every acknowledged transfer exists exactly once; no refused one does
            await check_rows(ledger_dsn, acked)

            # (4) a replay of every acknowledged request gets the first outcome
            await replay_all(server.base_url, acked, stats)

            # the books still verify after the replays (which changed nothing)
            code, report, output = await asyncio.to_thread(run_verify, ledger_dsn)
            assert code == 0 and report.get("ok") is True, output
            assert await actual_balances(http, books) == expected
    finally:
        await asyncio.to_thread(server.stop)


async def open_books(http: httpx.AsyncClient, rng: random.Random, stats: Stats, acked: list[Acked]) -> Books:
    """Eight accounts: a bank and two other unrestricted ones, five that may not overdraw (funded)."""
    books = Books(bank=new_id(), unrestricted=[], restricted=[new_id() for _ in range(5)])
    books.unrestricted = [books.bank, new_id(), new_id()]
    accounts = [{"id": a, "ledger": JPY, "code": 1} for a in books.unrestricted]
    accounts += [{"id": a, "ledger": JPY, "code": 2, "flags": ["debits_must_not_exceed_credits"]}
                 for a in books.restricted]
    body: dict[str, Any] = {"accounts": accounts}
    answer, _ = await send_until_answered(http, "/v1/ledger/accounts", body, stats, rng)
    assert [r["result"] for r in answer["results"]] == [OK] * len(accounts), answer
    acked.append(Acked("/v1/ledger/accounts", body, answer))
    body = {"transfers": [plain(books.bank, a, FUNDING) for a in books.restricted]}
    answer, _ = await send_until_answered(http, "/v1/ledger/transfers", body, stats, rng)
    assert [r["result"] for r in answer["results"]] == [OK] * len(books.restricted), answer
    acked.append(Acked("/v1/ledger/transfers", body, answer))
    return books


async def check_rows(dsn: str, acked: list[Acked]) -> None:
    succeeded: dict[str, int] = {}
    refused: dict[str, str] = {}
    for item in acked:
        if not item.path.endswith("/transfers"):
            continue
        for event, result in zip(item.body["transfers"], item.answer["results"], strict=True):
            if result["result"] in SUCCEEDED:
                succeeded[event["id"]] = result["amount"]
            else:
                refused[event["id"]] = result["result"]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text AS id, count(*) AS n, min(amount) AS amount"
                                " FROM ledger.transfers GROUP BY id")
        rejected = await conn.fetch("SELECT id::text AS id, result FROM ledger.rejected_transfers")
    finally:
        await conn.close()
    stored = {r["id"]: r for r in rows}
    doubled = [r["id"] for r in rows if r["n"] != 1]
    assert not doubled, f"transfers stored more than once: {doubled[:10]}"
    lost = sorted(set(succeeded) - set(stored))
    assert not lost, f"{len(lost)} acknowledged transfers are missing, e.g. {lost[:10]}"
    unacked = sorted(set(stored) - set(succeeded))
    assert not unacked, f"{len(unacked)} stored transfers were never acknowledged as ok/exists: {unacked[:10]}"
    wrong_amount = {i: (a, stored[i]["amount"]) for i, a in succeeded.items() if stored[i]["amount"] != a}
    assert not wrong_amount, f"stored amounts differ from the answers (answer, stored): {wrong_amount}"
    stored_refused = sorted(set(refused) & set(stored))
    assert not stored_refused, f"refused transfers were stored: {[(i, refused[i]) for i in stored_refused[:10]]}"
    # a burned id is remembered with its first code; in this workload every failed chain failed for a
    # state-dependent reason, so its other members are remembered as linked_event_failed
    burned = {r["id"]: CreateTransferResult(r["result"]).name.lower() for r in rejected}
    assert not set(burned) & set(succeeded), "an id both succeeded and failed"
    for transfer_id, code in refused.items():
        if CreateTransferResult[code.upper()].burns_id:
            assert burned.get(transfer_id) == code, (transfer_id, code, burned.get(transfer_id))
        elif code == "linked_event_failed":
            assert burned.get(transfer_id) == code, (transfer_id, code, burned.get(transfer_id))
        else:
            assert transfer_id not in burned, (transfer_id, code, burned[transfer_id])


async def replay_all(base_url: str, acked: list[Acked], stats: Stats) -> None:
    queue: asyncio.Queue[Acked] = asyncio.Queue()
    for item in acked:
        queue.put_nowait(item)
    mismatches: list[dict[str, Any]] = []

    async def worker(index: int) -> None:
        rng = random.Random(index)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            while not queue.empty():
                item = queue.get_nowait()
                again, _ = await send_until_answered(http, item.path, item.body, stats, rng)
                for first, second in zip(item.answer["results"], again["results"], strict=True):
                    want = EXISTS if first["result"] == OK else first["result"]
                    same = second["id"] == first["id"] and second["result"] == want
                    if "amount" in first:
                        same = same and second["amount"] == first["amount"]
                    if want == EXISTS:
                        same = same and second["timestamp"] == first["timestamp"]
                    if not same:
                        mismatches.append({"first": first, "replay": second})

    async with asyncio.timeout(60):
        await asyncio.gather(*(worker(i) for i in range(8)))
    assert not mismatches, f"{len(mismatches)} replays answered differently from the first time: {mismatches[:10]}"
