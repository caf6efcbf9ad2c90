"""Crash of a running concentrated posting (センター集中記帳): kanjo, its batch scheduler on, is SIGKILLed twice while a
bulk-posting job is part way through, each time at a later point; every restart on the same database takes the job
over once the dead process's heartbeat is stale (KANJO_BATCH_STALE_AFTER_S, short here: the new process owns
nothing, so it must wait for that) and resumes it from its checkpoint.

At the end the job has succeeded on its third attempt, the last run posted only what the last checkpoint had not
covered, every item is posted exactly once (each deterministic transfer id found with its accounts and amount; every
account's balance is the sum of its items and nothing else), and the books verify.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from kanjo.batch import transfer_id
from tests.e2e.server import KanjoProcess

pytestmark = pytest.mark.slow

JPY = 392
ITEMS = 10_000  # one request's worth (batch_bulk_items_per_request_max)
CHUNK_ITEMS = 40  # small chunks: the job takes seconds, so it can be caught part way through
CREDITORS = 40
CODE = 90
STALE_AFTER_S = 3  # the dead process's jobs are taken over this long after its last heartbeat
KILL_AT = (0.10, 0.55)  # fractions of the items done when each kill comes (the job's progress, read over HTTP)
POLL_S = 0.02
PROGRESS_DEADLINE_S = 40.0  # from a (re)start to the next kill point, or to the job's end
LOOKUP_PAGE = 5_000  # ids per transfers lookup (under ledger_lookup_ids_max)


def amount_of(item_no: int) -> int:
    return 1 + (item_no * 7_919) % 5_000


@pytest.fixture
def server(ledger_dsn: str) -> Iterator[KanjoProcess]:
    process = KanjoProcess(ledger_dsn, extra_env={"KANJO_BATCH_SCHEDULER": "true",
                                                  "KANJO_BATCH_STALE_AFTER_S": str(STALE_AFTER_S)})
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _account_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _job(http: httpx.Client, day: str, name: str) -> dict[str, Any]:
    r = http.get(f"/v1/batch/days/{day}/jobs/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait_for(http: httpx.Client, day: str, name: str, until: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while time.monotonic() < deadline:
        job = _job(http, day, name)
        if until(job):
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"{what}: not within {PROGRESS_DEADLINE_S} s; the job stands at {_job(http, day, name)}")


def _stored_progress(dsn: str, day: str, name: str) -> tuple[int, str, str | None]:
    """done_items, state and owner as the database holds them (what a restarted process finds)."""
    async def read() -> tuple[int, str, str | None]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow("SELECT done_items, state, owner FROM batch.jobs"
                                      " WHERE business_date = $1::text::date AND name = $2", day, name)
        finally:
            await conn.close()
        assert row is not None
        return int(row[0]), str(row[1]), row[2]
    return asyncio.run(read())


def _kill_when_past(server: KanjoProcess, http: httpx.Client, day: str, name: str, fraction: float,
                    attempt: int) -> int:
    """SIGKILL the server once the job (on its `attempt`) has done `fraction` of its items but not all of them;
    returns the items done when it died (its last checkpoint)."""
    job = _wait_for(http, day, name, lambda j: j["attempts"] == attempt and j["state"] == "running"
                    and j["done_items"] >= fraction * ITEMS, f"attempt {attempt} past {fraction:.0%}")
    assert job["done_items"] < ITEMS, f"the job ran to its end before the kill: make CHUNK_ITEMS smaller ({job})"
    server.kill()
    done, state, owner = _stored_progress(server.dsn, day, name)
    assert state == "running" and owner is not None  # a dead owner, until someone takes the job over
    assert job["done_items"] <= done < ITEMS
    return done


def test_a_killed_batch_job_resumes_and_posts_every_item_exactly_once(server: KanjoProcess) -> None:
    started = time.monotonic()
    debtor, *creditors = _account_ids(1 + CREDITORS)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        r = http.post("/v1/ledger/accounts", json={"accounts": [{"id": a, "ledger": JPY, "code": 1}
                                                                for a in [debtor, *creditors]]})
        assert r.status_code == 200 and {x["result"] for x in r.json()["results"]} == {"ok"}, r.text
        items = [{"debit_account_id": debtor, "credit_account_id": creditors[(n - 1) % CREDITORS],
                  "amount_minor": amount_of(n), "code": CODE} for n in range(1, ITEMS + 1)]
        r = http.post("/v1/batch/bulk-postings", json={"name": "crash_salary", "items": items,
                                                       "chunk_items": CHUNK_ITEMS})
        assert r.status_code == 200, r.text
        day, name = r.json()["business_date"], "crash_salary"

    kills: list[int] = []
    restarts_to_resume_s: list[float] = []
    for attempt, fraction in enumerate(KILL_AT, 1):
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            kills.append(_kill_when_past(server, http, day, name, fraction, attempt))
        server.start()  # same database, same port: a new process that owns nothing
        restarted = time.monotonic()
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            _wait_for(http, day, name, lambda j, a=attempt: j["attempts"] == a + 1 and j["state"] == "running",
                      f"the job taken over after kill {attempt}")
        restarts_to_resume_s.append(round(time.monotonic() - restarted, 2))

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        job = _wait_for(http, day, name, lambda j: j["state"] not in ("waiting", "running"), "the job's end")
        events = Counter(e["event"] for e in job["history"])
        transfers = _lookup(http, [transfer_id(dt.date.fromisoformat(day), name, n) for n in range(1, ITEMS + 1)])
        balances = {a: http.get(f"/v1/ledger/accounts/{a}").json() for a in [debtor, *creditors]}
        verification = http.get("/v1/ops/verify", timeout=120).json()

    assert kills[0] < kills[1], kills  # two different points, the second after the first resume made progress
    assert job["state"] == "succeeded" and job["attempts"] == len(KILL_AT) + 1, job
    assert job["done_items"] == ITEMS and job["result"]["rejected"] == 0, job
    assert job["result"]["posted_this_run"] == ITEMS - kills[-1], (job["result"], kills)  # resumed, not redone
    assert events["reclaimed"] >= len(KILL_AT) and events["started"] == len(KILL_AT) + 1, job["history"]

    assert len(transfers) == ITEMS, f"{ITEMS - len(transfers)} items never posted"
    for n in range(1, ITEMS + 1):
        t = transfers[transfer_id(dt.date.fromisoformat(day), name, n)]
        assert (t["debit_account_id"], t["credit_account_id"], t["amount"]) == (
            debtor, creditors[(n - 1) % CREDITORS], amount_of(n)), (n, t)
    expected = Counter[str]()
    for n in range(1, ITEMS + 1):
        expected[creditors[(n - 1) % CREDITORS]] += amount_of(n)
    for a in creditors:  # posted once each: a second posting under any id would show here
        assert (balances[a]["credits_posted"], balances[a]["debits_posted"]) == (expected[a], 0), a
    assert balances[debtor]["debits_posted"] == sum(expected.values())
    assert balances[debtor]["credits_posted"] == 0
    assert verification["ok"] is True, verification
    elapsed_s = time.monotonic() - started
    print(f"kills at {kills} items done; restart to resume {restarts_to_resume_s} s; {elapsed_s:.1f} s in all")


def _lookup(http: httpx.Client, ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for first in range(0, len(ids), LOOKUP_PAGE):
        page = [str(uuid.UUID(int=i)) for i in ids[first:first + LOOKUP_PAGE]]
        r = http.post("/v1/ledger/transfers/lookup", json={"ids": page})
        assert r.status_code == 200, r.text
        for t in r.json()["transfers"]:
            found[uuid.UUID(t["id"]).int] = t
    return found
