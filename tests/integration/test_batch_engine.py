"""The batch engine on a real PostgreSQL and a real ledger: what the operations team checks of a night — jobs in DAG
order, the day closing only when every mandatory job is done, holds and releases, concentrated postings posted once
whatever happens (reruns, holds mid-run, a process that dies), and the books balanced."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kanjo.accounting import JPY, ensure_chart
from kanjo.bank import build_bank, build_hub
from kanjo.batch import (
    Batch,
    BatchError,
    BusinessDay,
    Item,
    JobContext,
    JobState,
    Kind,
    bank_kinds,
    bulk_runner,
    day_plan,
    submit,
)
from kanjo.batch import store as batch_store
from kanjo.books import verify_books
from kanjo.hub import Hub
from kanjo.ledger import Account, Ledger
from kanjo.platform import db

DAY = dt.date(2026, 7, 1)  # a Wednesday
NEXT = dt.date(2026, 7, 2)
JST = dt.timezone(dt.timedelta(hours=9))
NIGHT = dt.datetime(2026, 7, 1, 22, 0, tzinfo=JST)  # past the 21:00 cut-off of DAY, before NEXT's
SOURCE, FIRST_TARGET = 9_000_001, 9_100_001
TARGETS = 50


@dataclass
class World:
    ledger: Ledger
    hub: Hub
    day: BusinessDay
    batch: Batch
    extra_kinds: dict[str, Kind]

    def engine(self, **kw: Any) -> Batch:
        """Another engine on the same database (another process, as far as the jobs can tell)."""
        return Batch(self.batch.pool, self.batch.kinds, self.day, self.batch.calendar, self.batch.plan_day,
                     now=lambda: NIGHT, tick_s=0.05, **kw)

    async def job(self, name: str, day: dt.date = DAY) -> dict[str, Any]:
        return await self.batch.job_report(day, name)

    async def balances(self) -> dict[int, int]:
        ids = [SOURCE] + [FIRST_TARGET + i for i in range(TARGETS)]
        return {a.id: a.credits_posted - a.debits_posted for a in await self.ledger.lookup_accounts(ids)}

    async def books_ok(self, on: dt.date = DAY) -> None:
        conn = await db.connect(self.ledger.dsn)
        try:
            report = await verify_books(conn, on)
        finally:
            await conn.close()
        assert report["ok"], report


@pytest.fixture
async def world(ledger_dsn: str) -> AsyncIterator[World]:
    day = BusinessDay(DAY)
    ledger = await Ledger.start(ledger_dsn, business_date=day, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    day.moved_to((await BusinessDay.load(ledger.pool, DAY))())
    bank = build_bank(ledger)
    hub = build_hub()
    hub.start()
    await ledger.create_accounts([Account(id=SOURCE, ledger=JPY, code=1001)] + [
        Account(id=FIRST_TARGET + i, ledger=JPY, code=2001) for i in range(TARGETS)])
    kinds = {**bank_kinds(bank), "bulk_posting": Kind(bulk_runner(ledger, hub))}
    batch = Batch(ledger.pool, kinds, day, bank.calendar, day_plan(), now=lambda: NIGHT, tick_s=0.05)
    w = World(ledger, hub, day, batch, kinds)
    await batch.ensure_planned()
    try:
        yield w
    finally:
        await batch.stop()
        await hub.stop()
        await ledger.stop()


async def _until(read: Callable[[], Awaitable[dict[str, Any]]], holds: Callable[[dict[str, Any]], bool]) -> None:
    for _ in range(3_000):
        if holds(await read()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the job never got there")


def items(n: int, amount: int = 1_000) -> list[Item]:
    return [Item(SOURCE, FIRST_TARGET + i % TARGETS, amount, 77) for i in range(n)]


async def test_the_day_runs_in_dag_order_moves_online_and_closes(world: World) -> None:
    await world.batch.run_until_idle(60)
    report = await world.batch.day_report(DAY)
    assert report["state"] == "closed" and report["gate"] == []
    jobs = {j["name"]: j for j in report["jobs"]}
    assert jobs["deposit_interest_payout"]["state"] == "skipped"  # July 1 is not an interest payout day
    assert all(j["state"] in ("succeeded", "skipped") for j in jobs.values()), jobs
    cut_off = jobs["cut_off"]
    for before in ("time_deposit_maturity", "card_loan_collection"):
        assert jobs[before]["finished_at"] <= cut_off["started_at"]
    for after in ("deposit_interest_accrual", "card_loan_accrual", "overdraft_interest_accrual", "dormancy"):
        assert jobs[after]["started_at"] >= cut_off["finished_at"]
    assert jobs["overdraft_interest_charge"]["started_at"] >= jobs["overdraft_interest_accrual"]["finished_at"]
    assert jobs["day_close"]["started_at"] >= max(jobs[n]["finished_at"] for n in jobs if n != "day_close")
    # online moved on: the process posts on the next business date, which has its own plan waiting for its night
    assert world.day() == NEXT and world.ledger.business_date() == NEXT
    following = await world.batch.day_report(NEXT)
    assert following["state"] == "open" and {j["state"] for j in following["jobs"]} <= {"waiting", "succeeded",
                                                                                         "skipped"}
    assert next(j for j in following["jobs"] if j["name"] == "cut_off")["state"] == "waiting"  # before 21:00
    async with world.batch.pool.acquire() as conn:
        snapshot = await batch_store.snapshot(conn, DAY)
    assert snapshot and all({"ledger", "code", "debits_posted", "credits_posted"} <= set(row) for row in snapshot)
    await world.books_ok()


async def test_a_held_mandatory_job_keeps_the_day_open_until_it_is_released(world: World) -> None:
    held = await world.batch.hold(DAY, "card_loan_accrual", "ops-1")
    assert held.held
    await world.batch.run_until_idle(60)
    report = await world.batch.day_report(DAY)
    assert report["state"] == "cut_off"  # online moved on; the night of DAY is not over
    assert report["gate"] == [{"job": "card_loan_accrual", "state": "waiting", "held": True, "why": "held"}]
    assert (await world.job("day_close"))["state"] == "waiting"
    await world.batch.release(DAY, "card_loan_accrual", "ops-1")
    await world.batch.run_until_idle(60)
    assert (await world.batch.day_report(DAY))["state"] == "closed"
    events = [e["event"] for e in (await world.job("card_loan_accrual"))["history"]]
    assert events[:4] == ["succeeded", "started", "released", "held"]  # newest first


async def test_a_concentrated_posting_posts_every_item_once_and_a_rerun_changes_nothing(world: World) -> None:
    await submit(world.batch, DAY, "salary_credit", items(5_000), chunk_items=1_000)
    with pytest.raises(BatchError) as again:
        await submit(world.batch, DAY, "salary_credit", items(10))
    assert again.value.code == "job_exists"
    await world.batch.run_until_idle(120)
    job = await world.job("salary_credit")
    assert (job["state"], job["done_items"], job["total_items"]) == ("succeeded", 5_000, 5_000)
    assert job["result"] == {"items": 5_000, "posted_this_run": 5_000, "rejected": 0}
    after = await world.balances()
    assert after[SOURCE] == -5_000_000 and all(after[FIRST_TARGET + i] == 100_000 for i in range(TARGETS))
    # the cut-off waited for it (a mandatory job of the date)
    assert (await world.job("cut_off"))["started_at"] >= job["finished_at"]
    # the day is closed: its jobs are final
    with pytest.raises(BatchError) as closed:
        await world.batch.rerun(DAY, "salary_credit", "ops-1")
    assert closed.value.code == "day_closed"
    await world.books_ok()


async def test_a_rerun_before_the_close_posts_nothing_twice(world: World) -> None:
    await world.batch.hold(DAY, "cut_off", "ops-1")
    await submit(world.batch, DAY, "passbook_switch", items(3_000), chunk_items=500)
    await world.batch.run_until_idle(120)
    before = await world.balances()
    rerun = await world.batch.rerun(DAY, "passbook_switch", "ops-1")
    assert rerun.state is JobState.WAITING and rerun.done_items == 0
    await world.batch.run_until_idle(120)
    job = await world.job("passbook_switch")
    assert job["state"] == "succeeded" and job["result"]["items"] == 3_000
    assert await world.balances() == before  # every transfer already existed: nothing moved
    with pytest.raises(BatchError) as never:
        await world.batch.rerun(DAY, "cut_off", "ops-1")
    assert never.value.code == "not_finished"  # held, never run
    await world.books_ok()


async def test_a_held_running_posting_stops_at_a_chunk_boundary_and_resumes(world: World) -> None:
    await world.batch.hold(DAY, "cut_off", "ops-1")
    slow_pace = asyncio.Event()

    def pace() -> float:
        return 1.0 if not slow_pace.is_set() else 0.01  # a hundredth: chunks of the minimum size
    world.batch.pace = pace
    slow_pace.set()
    await submit(world.batch, DAY, "month_end", items(4_000), chunk_items=2_000)
    runner = asyncio.create_task(world.batch.run_until_idle(120))
    await _until(lambda: world.job("month_end"), lambda j: j["done_items"] > 0)
    await world.batch.hold(DAY, "month_end", "ops-1")
    await runner
    stopped = await world.job("month_end")
    assert stopped["state"] == "waiting" and stopped["held"] and 0 < stopped["done_items"] < 4_000
    slow_pace.clear()
    await world.batch.release(DAY, "month_end", "ops-1")
    await world.batch.run_until_idle(120)
    done = await world.job("month_end")
    assert done["state"] == "succeeded" and done["done_items"] == 4_000
    assert done["result"]["posted_this_run"] == 4_000 - stopped["done_items"]  # resumed, not restarted
    assert (await world.balances())[SOURCE] == -4_000_000
    await world.books_ok()


async def test_a_job_of_a_dead_process_is_resumed_by_another_and_posts_once(world: World) -> None:
    await world.batch.hold(DAY, "cut_off", "ops-1")
    await submit(world.batch, DAY, "bonus_credit", items(6_000), chunk_items=500)
    world.batch.pace = lambda: 0.1  # small chunks, so the process dies mid-run
    first = asyncio.create_task(world.batch.run_until_idle(120))
    await _until(lambda: world.job("bonus_credit"), lambda j: j["done_items"] >= 1_000)
    for task in list(world.batch._tasks.values()):  # the process dies: nothing more is recorded by it
        task.cancel()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    died = await world.job("bonus_credit")
    assert died["state"] == "running"  # as the dead process left it
    other = world.engine(stale_after_s=0.3)
    await asyncio.sleep(0.4)
    await other.run_until_idle(120)
    job = await world.job("bonus_credit")
    assert (job["state"], job["done_items"], job["attempts"]) == ("succeeded", 6_000, 2)
    assert "reclaimed" in [e["event"] for e in job["history"]]
    after = await world.balances()
    assert after[SOURCE] == -6_000_000 and sum(v for k, v in after.items() if k != SOURCE) == 6_000_000
    await other.stop()
    await world.books_ok()


async def test_a_failing_job_fails_alone_and_the_gate_names_it(world: World) -> None:
    calls = {"n": 0}

    async def flaky(ctx: JobContext) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("statement printer offline")
        return {"ok": True}
    world.batch.kinds["card_loan_accrual"] = Kind(flaky)
    await world.batch.run_until_idle(60)
    report = await world.batch.day_report(DAY)
    assert report["state"] == "cut_off"
    assert report["gate"] == [{"job": "card_loan_accrual", "state": "failed", "held": False,
                               "why": "failed: RuntimeError: statement printer offline"}]
    others = [j for j in report["jobs"] if j["name"] not in ("card_loan_accrual", "day_close")]
    assert all(j["state"] in ("succeeded", "skipped") for j in others)  # nothing else noticed
    await world.batch.rerun(DAY, "card_loan_accrual", "ops-1")
    await world.batch.run_until_idle(60)
    assert (await world.batch.day_report(DAY))["state"] == "closed"


async def test_bad_requests_are_refused_and_change_nothing(world: World) -> None:
    with pytest.raises(BatchError) as unknown:
        await world.batch.hold(DAY, "no_such_job", "ops-1")
    assert unknown.value.code == "unknown_job"
    with pytest.raises(BatchError) as wrong_day:
        await submit(world.batch, NEXT, "early", items(10))
    assert wrong_day.value.code == "day_not_open"
    with pytest.raises(BatchError) as bad:
        await submit(world.batch, DAY, "bad", [Item(SOURCE, SOURCE, 1_000, 77)])
    assert bad.value.code == "invalid_item"
    with pytest.raises(BatchError) as running:
        await world.batch.rerun(DAY, "cut_off", "ops-1")
    assert running.value.code == "not_finished"
    assert {j["state"] for j in (await world.batch.day_report(DAY))["jobs"]} == {"waiting"}
