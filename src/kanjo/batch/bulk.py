"""Concentrated posting (センター集中記帳): a file of postings (salary credits, passbook switch-overs, month-end
transfers…) loaded into a job's work area and posted in resumable chunks.

Each item posts once, whatever happens: its transfer id derives from (business date, job, item number), so a chunk
posted again after a crash or a rerun finds its transfers (the ledger answers `exists`) and moves nothing twice. The
checkpoint after each chunk is only where to resume. Each chunk goes through the hub's batch partition — shed first
when the machine saturates — and its size follows the online latency (the hub's batch pace): when ATM p99 rises,
batch slows; when online is quiet, it goes at full speed. An item the ledger refuses is recorded as a reject (named
by the ledger's result), never retried blindly; the job goes on.

A file larger than one request is sent in parts: the first declares the file's item count (its trailer's count) and
the job waits, held, until every part has arrived in order; a part sent twice is recognised and changes nothing.

Capacity: the work area's space is checked when the file arrives (refused whole, naming the limit, before anything is
loaded); the ledger's provisioned transfers space is checked before the job starts (its pre-flight: refused before
posting anything) and again before every chunk (stopped alone at a chunk boundary, resumable once raised).
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
from kanjo.batch.limits import BULK_CHUNK_ITEMS_MAX, BULK_ITEMS_PER_JOB_MAX, HISTORY_ROWS_PER_JOB_MAX, WORK_AREA_ITEMS
from kanjo.batch.model import BatchError, DayState, JobSpec, JobState, Rerun
from kanjo.hub import Hub, HubError, Partition
from kanjo.kernel.ids import name_id
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import CreateTransferResult, Ledger, Transfer

R = CreateTransferResult
KIND = "bulk_posting"
PRODUCT = "bulk_posting"  # the hub product (its own breaker and timeout) the chunks go through
CHUNK_ITEMS_DEFAULT = 2_000  # about a tenth of a second of the ledger's work: online never waits long behind it
NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-62756c6b0000")
PACE_WAIT_S = 0.05  # while online needs every cycle (pace 0), look again this often
CHUNK_ITEMS_MIN = 100  # the smallest chunk when online slows batch down
LEDGER_SPACE = "ledger_transfers_stored_max"  # the capacity limit every posted item adds one transfer to


@dataclass(frozen=True, slots=True)
class Item:
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    code: int


def transfer_id(day: dt.date, job: str, item_no: int) -> int:
    """The id of an item's transfer: the same on every run of the job, never the same for two items."""
    return name_id(NAMESPACE, f"{day.isoformat()}:{job}:{item_no}")


async def submit(engine: Batch, day: dt.date, name: str, items: Sequence[Item], *, mandatory: bool = True,
                 expected_s: float = 600.0, chunk_items: int = CHUNK_ITEMS_DEFAULT,
                 items_total: int | None = None) -> dict[str, Any]:
    """Plan a concentrated posting on the open business date with its items, in one transaction (the job cannot
    start before its work area is whole). `items_total` larger than the items given: more parts follow (`append`),
    and the job is held until the last arrives. A second posting under the same name is refused (`job_exists`)."""
    total = len(items) if items_total is None else items_total
    _check_items(items, 1)
    if total < len(items):
        raise BatchError("invalid_item", f"items_total {total} is less than the {len(items)} items sent")
    if total > BULK_ITEMS_PER_JOB_MAX:
        raise LimitReached(limits.get("batch_bulk_items_per_job_max"), total)
    if not 1 <= chunk_items <= BULK_CHUNK_ITEMS_MAX:
        raise LimitReached(limits.get("batch_bulk_chunk_items_max"), chunk_items)
    await _ensure_work_area(total)
    spec = JobSpec(name, KIND, reads=("batch",), writes=("ledger",), mandatory=mandatory, expected_s=expected_s,
                   rerun=Rerun.ANY_TIME, params={"chunk_items": chunk_items, "items": total})
    async with engine.pool.acquire() as conn, conn.transaction():
        if await store.day_state(conn, day) is not DayState.OPEN:
            raise BatchError("day_not_open", f"{day} is not the open business date: postings go on"
                             f" {engine.business_day()}")
        if await store.job(conn, day, name) is not None:
            raise BatchError("job_exists", f"a job {name} is already planned on {day}")
        await engine.plan_in(conn, day, [spec])
        await _load(conn, day, name, 1, items)
        if total > len(items):
            await store.set_held(conn, day, name, True)
            await store.record(conn, day, name, "loading", {"items": len(items), "of": total},
                               HISTORY_ROWS_PER_JOB_MAX)
        else:
            await store.record(conn, day, name, "loaded", {"items": total}, HISTORY_ROWS_PER_JOB_MAX)
    engine.wake()
    return {"business_date": day.isoformat(), "job": name, "items": total, "loaded": len(items),
            "complete": total == len(items)}


async def append(engine: Batch, day: dt.date, name: str, first_item_no: int, items: Sequence[Item]) -> dict[str, Any]:
    """The next part of a file: its items are numbered from `first_item_no`, which must follow what is loaded (a
    part already loaded is answered as it stands, changing nothing). The last part releases the job."""
    _check_items(items, first_item_no)
    await _ensure_work_area(len(items))
    async with engine.pool.acquire() as conn, conn.transaction():
        job = await store.job(conn, day, name, for_update=True)
        if job is None or job.spec.kind != KIND:
            raise BatchError("unknown_job", f"no concentrated posting {name} on {day}")
        declared = int(job.spec.params.get("items", 0))
        loaded = await store.bulk_item_count(conn, day, name)
        status = {"business_date": day.isoformat(), "job": name, "items": declared}
        if first_item_no + len(items) - 1 <= loaded:
            return {**status, "loaded": loaded, "complete": loaded == declared, "replayed": True}
        if first_item_no != loaded + 1:
            raise BatchError("out_of_order", f"{loaded:,} items of {name} are loaded: the next part starts at item"
                             f" {loaded + 1}, not {first_item_no}")
        if loaded + len(items) > declared:
            raise BatchError("too_many_items", f"{name} declared {declared:,} items; {loaded:,} are loaded and this"
                             f" part has {len(items):,}")
        if job.state is not JobState.WAITING:
            raise BatchError("not_loading", f"{name} is {job.state.value}: its work area is closed")
        await _load(conn, day, name, first_item_no, items)
        loaded += len(items)
        if loaded == declared:
            await store.set_held(conn, day, name, False)
            await store.record(conn, day, name, "loaded", {"items": declared}, HISTORY_ROWS_PER_JOB_MAX)
    engine.wake()
    return {**status, "loaded": loaded, "complete": loaded == declared, "replayed": False}


def _check_items(items: Sequence[Item], first_item_no: int) -> None:
    if not items:
        raise BatchError("no_items", "a concentrated posting needs at least one item")
    if first_item_no < 1:
        raise BatchError("invalid_item", "items are numbered from 1")
    for n, item in enumerate(items, first_item_no):
        if item.amount_minor < 1 or item.debit_account_id == item.credit_account_id:
            raise BatchError("invalid_item", f"item {n}: an amount of at least ¥1 between two different accounts")


async def _ensure_work_area(items: int) -> None:
    """The work areas' provisioned space takes the file, or it is refused whole before anything is loaded."""
    usage = (await limits.measure([WORK_AREA_ITEMS.name]))[WORK_AREA_ITEMS.name]
    limit = limits.get(WORK_AREA_ITEMS.name)
    if usage + items > limit.maximum:
        raise LimitReached(limit, usage + items)


async def _load(conn: Any, day: dt.date, name: str, first_item_no: int, items: Sequence[Item]) -> None:
    await store.load_bulk_items(conn, day, name, [(n, i.debit_account_id, i.credit_account_id, i.amount_minor,
                                                   i.code) for n, i in enumerate(items, first_item_no)])


async def needs(ctx: JobContext) -> dict[str, int]:
    """The pre-flight: every item not yet posted adds one transfer to the ledger's table."""
    declared = int(ctx.params.get("items", 0))
    return {LEDGER_SPACE: max(0, declared - int((ctx.checkpoint or {}).get("after_item", 0)))}


def runner(ledger: Ledger, hub: Hub) -> Any:
    """The bulk-posting runner, posting through `ledger` in the hub's batch partition."""
    async def run(ctx: JobContext) -> dict[str, Any]:
        day, name = ctx.business_date, ctx.spec.name
        chunk_max = int(ctx.params.get("chunk_items", BULK_CHUNK_ITEMS_MAX))
        done = int((ctx.checkpoint or {}).get("after_item", 0))
        async with ctx.engine.pool.acquire() as conn:
            total = await store.bulk_item_count(conn, day, name)
        declared = int(ctx.params.get("items", total))
        if total != declared:
            raise BatchError("work_area_incomplete", f"{total:,} of the file's {declared:,} items are loaded: the"
                             " rest must arrive before it posts")
        posted, rejected = 0, 0
        while done < total:
            size = await _paced_size(ctx, chunk_max)
            async with ctx.engine.pool.acquire() as conn:
                rows = await store.bulk_items_after(conn, day, name, done, size)
            await ctx.ensure_room({LEDGER_SPACE: len(rows)})
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

