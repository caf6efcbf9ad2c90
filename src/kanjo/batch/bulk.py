"""Concentrated posting (センター集中記帳): a file of postings (salary credits, passbook switch-overs, month-end
transfers…) loaded into a job's work area and posted in resumable chunks.

Each item posts once, whatever happens: its transfer id derives from (business date, job, item number), so a chunk
posted again after a crash or a rerun finds its transfers (the ledger answers `exists`) and moves nothing twice. The
checkpoint after each chunk is only where to resume. Each chunk goes through the hub's batch partition — shed first
when the machine saturates — and its size follows the online latency (the hub's batch pace): when ATM p99 rises,
batch slows; when online is quiet, it goes at full speed. An item the ledger refuses is recorded as a reject (named
by the ledger's result), never retried blindly; the job goes on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kanjo.accounting import JPY
from kanjo.batch import store
from kanjo.batch.engine import Batch, JobContext
from kanjo.batch.limits import BULK_CHUNK_ITEMS_MAX, BULK_ITEMS_PER_JOB_MAX, HISTORY_ROWS_PER_JOB_MAX
from kanjo.batch.model import BatchError, DayState, JobSpec, Rerun
from kanjo.hub import Hub, HubError, Partition
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import CreateTransferResult, Ledger, Transfer

R = CreateTransferResult
KIND = "bulk_posting"
PRODUCT = "bulk_posting"  # the hub product (its own breaker and timeout) the chunks go through
CHUNK_ITEMS_DEFAULT = 2_000  # about a tenth of a second of the ledger's work: online never waits long behind it
NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-62756c6b0000")
PACE_WAIT_S = 0.05  # while online needs every cycle (pace 0), look again this often
CHUNK_ITEMS_MIN = 100  # the smallest chunk when online slows batch down


@dataclass(frozen=True, slots=True)
class Item:
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    code: int


def transfer_id(day: dt.date, job: str, item_no: int) -> int:
    """The id of an item's transfer: the same on every run of the job, never the same for two items."""
    return uuid.uuid5(NAMESPACE, f"{day.isoformat()}:{job}:{item_no}").int


async def submit(engine: Batch, day: dt.date, name: str, items: Sequence[Item], *, mandatory: bool = True,
                 expected_s: float = 600.0, chunk_items: int = CHUNK_ITEMS_DEFAULT) -> dict[str, Any]:
    """Plan a concentrated posting on the open business date with its items, in one transaction (the job cannot
    start before its work area is whole). A second posting under the same name is refused (`job_exists`)."""
    if not items:
        raise BatchError("no_items", "a concentrated posting needs at least one item")
    if len(items) > BULK_ITEMS_PER_JOB_MAX:
        raise LimitReached(limits.get("batch_bulk_items_per_job_max"), len(items))
    if not 1 <= chunk_items <= BULK_CHUNK_ITEMS_MAX:
        raise LimitReached(limits.get("batch_bulk_chunk_items_max"), chunk_items)
    for n, item in enumerate(items, 1):
        if item.amount_minor < 1 or item.debit_account_id == item.credit_account_id:
            raise BatchError("invalid_item", f"item {n}: an amount of at least ¥1 between two different accounts")
    spec = JobSpec(name, KIND, reads=("batch",), writes=("ledger",), mandatory=mandatory, expected_s=expected_s,
                   rerun=Rerun.ANY_TIME, params={"chunk_items": chunk_items, "items": len(items)})
    async with engine.pool.acquire() as conn, conn.transaction():
        if await store.day_state(conn, day) is not DayState.OPEN:
            raise BatchError("day_not_open", f"{day} is not the open business date: postings go on"
                             f" {engine.business_day()}")
        if await store.job(conn, day, name) is not None:
            raise BatchError("job_exists", f"a job {name} is already planned on {day}")
        await engine.plan_in(conn, day, [spec])
        await store.load_bulk_items(conn, day, name, [(n, i.debit_account_id, i.credit_account_id, i.amount_minor,
                                                       i.code) for n, i in enumerate(items, 1)])
        await store.record(conn, day, name, "loaded", {"items": len(items)}, HISTORY_ROWS_PER_JOB_MAX)
    engine.wake()
    return {"business_date": day.isoformat(), "job": name, "items": len(items)}


def runner(ledger: Ledger, hub: Hub) -> Any:
    """The bulk-posting runner, posting through `ledger` in the hub's batch partition."""
    async def run(ctx: JobContext) -> dict[str, Any]:
        day, name = ctx.business_date, ctx.spec.name
        chunk_max = int(ctx.params.get("chunk_items", BULK_CHUNK_ITEMS_MAX))
        done = int((ctx.checkpoint or {}).get("after_item", 0))
        async with ctx.engine.pool.acquire() as conn:
            total = await store.bulk_item_count(conn, day, name)
        posted, rejected = 0, 0
        while done < total:
            size = await _paced_size(ctx, chunk_max)
            async with ctx.engine.pool.acquire() as conn:
                rows = await store.bulk_items_after(conn, day, name, done, size)
            transfers = [Transfer(id=transfer_id(day, name, r[0]), debit_account_id=r[1], credit_account_id=r[2],
                                  amount=r[3], ledger=JPY, code=r[4], business_date=day) for r in rows]
            outcomes = await _post(ctx, hub, ledger, transfers)
            rejects = [(r[0], o.result.name.lower()) for r, o in zip(rows, outcomes, strict=True)
                       if o.result not in (R.OK, R.EXISTS)]
            if rejects:
                async with ctx.engine.pool.acquire() as conn:
                    await store.record_rejects(conn, day, name, rejects)
            posted += len(rows) - len(rejects)
            rejected += len(rejects)
            done = rows[-1][0]
            await ctx.save({"after_item": done}, done, total)
        async with ctx.engine.pool.acquire() as conn:
            rejects_total = await store.reject_count(conn, day, name)
        return {"items": total, "posted_this_run": posted, "rejected": rejects_total}
    return run


async def _paced_size(ctx: JobContext, chunk_max: int) -> int:
    """The next chunk's size at the pace online allows now (waits while the pace is 0)."""
    while True:
        pace = ctx.pace()
        if pace > 0:
            return max(min(CHUNK_ITEMS_MIN, chunk_max), int(chunk_max * pace))
        if ctx.engine.stopping:
            await ctx.save(ctx.checkpoint, ctx.done_items, None)  # raises Stopped
        await asyncio.sleep(PACE_WAIT_S)


async def _post(ctx: JobContext, hub: Hub, ledger: Ledger, transfers: list[Transfer]) -> list[Any]:
    """One chunk through the batch partition; shed or busy → wait and send the same chunk again (same ids)."""
    while True:
        try:
            return await hub.call(Partition.BATCH, PRODUCT, "post-chunk",
                                  lambda: ledger.create_transfers(transfers))
        except HubError as e:
            if ctx.engine.stopping:
                raise
            await asyncio.sleep(e.retry_after_s or 0.2)

