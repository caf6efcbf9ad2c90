"""The job engine: plans each business date's DAG, starts what may start, runs it, and keeps its standing in
PostgreSQL so that a killed process resumes every job from its checkpoint and starts none twice.

Jobs run as tasks of this process, at most `batch_jobs_running_max` at once. A job reports progress through its
context (`save`), which is also where it learns it was held or the engine is stopping: it then stops at that chunk
boundary and waits, its checkpoint kept. A job that raises fails alone — nothing else in the bank notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from kanjo.batch import store
from kanjo.batch.limits import HISTORY_ROWS_PER_JOB_MAX, JOBS_PER_DAY_MAX, JOBS_RUNNING_MAX
from kanjo.batch.model import (
    BatchError,
    DayState,
    JobRun,
    JobSpec,
    JobState,
    check_dag,
    check_rerun,
    gate,
    startable,
)
from kanjo.business_calendar import BankCalendar
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.batch")
JST = dt.timezone(dt.timedelta(hours=9))
JOBS_FINISHED = Counter("kanjo_batch_jobs_finished_total", "batch jobs that ended, by job kind and state",
                        ["kind", "state"])
JOBS_RUNNING = Gauge("kanjo_batch_jobs_running", "batch jobs running in this process")
ITEMS_DONE = Counter("kanjo_batch_items_total", "items batch jobs processed, by job kind", ["kind"])
PREFLIGHT_REFUSED = Counter("kanjo_batch_preflight_refused_total",
                            "jobs refused before starting because they would pass a capacity limit", ["kind"])


class Stopped(Exception):
    """The job stopped at a chunk boundary: held, or the engine is stopping. It waits, checkpoint kept."""


@dataclass
class JobContext:
    """What a running job sees: its date, its spec and checkpoint, and the way to report progress."""

    engine: Batch
    business_date: dt.date
    spec: JobSpec
    checkpoint: dict[str, Any] | None
    done_items: int = 0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.spec.params)

    async def save(self, checkpoint: dict[str, Any] | None, done_items: int, total_items: int | None) -> None:
        """Record where the job stands; raises Stopped when it must stop here (held, or the engine stopping)."""
        ITEMS_DONE.labels(self.spec.kind).inc(max(0, done_items - self.done_items))
        self.checkpoint, self.done_items = checkpoint, done_items
        async with self.engine.pool.acquire() as conn:
            held = await store.progress(conn, self.business_date, self.spec.name, self.engine.owner, checkpoint,
                                        done_items, total_items)
        if held is None:
            raise Stopped("another process took the job over")
        if held or self.engine.stopping:
            raise Stopped("held" if held else "the engine is stopping")

    def pace(self) -> float:
        """How fast batch work may go now: 0 (wait) … 1 (full speed), from the online latency."""
        return self.engine.pace()

    async def ensure_room(self, needs: dict[str, int]) -> None:
        """Before the next chunk: raises LimitReached when it would pass a capacity limit (the job then stops alone,
        at this chunk boundary, everything before it done)."""
        shortfalls = await shortfall(needs)
        if shortfalls:
            s = shortfalls[0]
            raise LimitReached(limits.get(s["limit"]), s["usage"] + s["need"])


Runner = Callable[[JobContext], Awaitable[dict[str, Any]]]
Needs = Callable[[JobContext], Awaitable[dict[str, int]]]


@dataclass(frozen=True, slots=True)
class Kind:
    """How a kind of job is carried out, on which dates it is due (a reason when it is not: it is skipped), and
    what it will add to each capacity limit it touches (its pre-flight)."""

    run: Runner
    not_due: Callable[[dt.date], str | None] = lambda _day: None
    needs: Needs | None = None


async def shortfall(needs: dict[str, int]) -> list[dict[str, Any]]:
    """The capacity limits `needs` would pass, each with its usage measured now, the need and the maximum."""
    usage = await limits.measure(needs)
    out: list[dict[str, Any]] = []
    for name, need in sorted(needs.items()):
        limit = limits.get(name)
        if need > 0 and usage[name] + need > limit.maximum:
            out.append({"limit": name, "usage": usage[name], "need": need, "maximum": limit.maximum,
                        "unit": limit.unit})
    return out


def refusal_message(shortfalls: list[dict[str, Any]]) -> str:
    return "refused before posting anything: " + "; ".join(
        f"limit {s['limit']} would be passed: usage {s['usage']:,} + this job's {s['need']:,} {s['unit']}"
        f" > maximum {s['maximum']:,}" for s in shortfalls)


class BusinessDay:
    """The business date online posts on (日付): the open date of the batch's calendar, kept in memory for the hot
    path and moved only by the cut-off."""

    def __init__(self, day: dt.date) -> None:
        self._day = day

    def __call__(self) -> dt.date:
        return self._day

    def moved_to(self, day: dt.date) -> None:
        self._day = day

    @classmethod
    async def load(cls, pool: asyncpg.Pool, first: dt.date) -> BusinessDay:
        """The open date; on a new database, `first` is opened."""
        async with pool.acquire() as conn:
            day = await store.open_day(conn)
            if day is None:
                await store.insert_open_day(conn, first)
                day = await store.open_day(conn)
        assert day is not None
        return cls(day)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Batch:
    """The engine's handle. `plan_day` gives the jobs of a newly opened date (the bank's catalogue)."""

    pool: asyncpg.Pool
    kinds: dict[str, Kind]
    business_day: BusinessDay
    calendar: BankCalendar
    plan_day: Callable[[dt.date], Sequence[JobSpec]]
    pace: Callable[[], float] = lambda: 1.0
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(JST))
    tick_s: float = 1.0  # a job's end or an operator's act wakes the engine at once; the tick is for the clock
    stale_after_s: float = 30.0
    scheduled: bool = True  # off: only the jobs an operator runs start
    owner: str = field(default_factory=_owner)
    stopping: bool = False
    _tasks: dict[tuple[dt.date, str], asyncio.Task[None]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # -- planning ------------------------------------------------------------------------------------------------

    async def plan(self, day: dt.date, specs: Sequence[JobSpec]) -> int:
        """Add jobs to a date's plan (idempotent by name); the whole plan must stay a DAG of known kinds."""
        async with self.pool.acquire() as conn, conn.transaction():
            added = await self.plan_in(conn, day, specs)
        self.wake()
        return added

    async def plan_in(self, conn: asyncpg.Connection, day: dt.date, specs: Sequence[JobSpec]) -> int:
        """`plan` inside the caller's transaction."""
        unknown = sorted({s.kind for s in specs} - set(self.kinds))
        if unknown:
            raise BatchError("unknown_kind", f"no runner for job kinds: {', '.join(unknown)}")
        state = await store.day_state(conn, day)
        if state is None:
            raise BatchError("unknown_day", f"{day} is not a business date of the batch")
        if state is DayState.CLOSED:
            raise BatchError("day_closed", f"{day} is closed: no jobs are added to it")
        existing = await store.jobs(conn, day)
        known = {r.name for r in existing}
        new = [s for s in specs if s.name not in known]
        if len(existing) + len(new) > JOBS_PER_DAY_MAX:
            raise LimitReached(limits.get("batch_jobs_per_day_max"), len(existing) + len(new))
        check_dag([r.spec for r in existing] + new)
        added = await store.add_jobs(conn, day, new)
        for s in new:
            await store.record(conn, day, s.name, "planned", s.describe(), HISTORY_ROWS_PER_JOB_MAX)
        return added

    def wake(self) -> None:
        """Look for startable jobs now rather than at the next tick."""
        self._wake.set()

    async def ensure_planned(self) -> None:
        """The open date (and any date cut off but not closed) has the catalogue's jobs."""
        async with self.pool.acquire() as conn:
            open_days = await store.days(conn, 10, [DayState.OPEN, DayState.CUT_OFF])
        for r in open_days:
            await self.plan(r["business_date"], self.plan_day(r["business_date"]))

    # -- running -------------------------------------------------------------------------------------------------

    async def tick(self) -> list[str]:
        """Reclaim the jobs of dead processes, then start what may start; returns what was started."""
        async with self.pool.acquire() as conn:
            if self._tasks:
                await store.beat(conn, self.owner)
            for day, name in await store.reclaim_stale(conn, self.stale_after_s):
                log.warning("batch_job_reclaimed", business_date=str(day), job=name)
                await store.record(conn, day, name, "reclaimed", None, HISTORY_ROWS_PER_JOB_MAX)
            runs = await store.jobs_of_days(conn, [DayState.OPEN, DayState.CUT_OFF])
        started: list[str] = []
        by_day: dict[dt.date, list[JobRun]] = {}
        for r in runs:
            by_day.setdefault(r.business_date, []).append(r)
        for day_runs in by_day.values():
            for r in startable(day_runs, self.now(), scheduled=self.scheduled):
                if self.stopping or len(self._tasks) >= JOBS_RUNNING_MAX:
                    return started
                if (r.business_date, r.name) in self._tasks:
                    continue
                if await self._start(r):
                    started.append(f"{r.business_date}:{r.name}")
        return started

    async def _start(self, r: JobRun) -> bool:
        async with self.pool.acquire() as conn:
            if not await store.claim(conn, r.business_date, r.name, self.owner):
                return False
            await store.record(conn, r.business_date, r.name, "started", {"attempt": r.attempts + 1,
                                                                         "owner": self.owner},
                               HISTORY_ROWS_PER_JOB_MAX)
        key = (r.business_date, r.name)
        self._tasks[key] = asyncio.create_task(self._run(r), name=f"batch:{r.business_date}:{r.name}")
        JOBS_RUNNING.set(len(self._tasks))
        return True

    async def _run(self, r: JobRun) -> None:
        kind = self.kinds[r.spec.kind]
        day, name = r.business_date, r.name
        try:
            reason = kind.not_due(day)
            if reason is not None:
                await self._end(day, name, r.spec.kind, JobState.SKIPPED, {"skipped": reason}, None)
                return
            ctx = JobContext(self, day, r.spec, r.checkpoint, r.done_items)
            if kind.needs is not None:  # pre-flight: refused before it starts rather than stopped at a limit
                shortfalls = await shortfall(await kind.needs(ctx))
                if shortfalls:
                    PREFLIGHT_REFUSED.labels(r.spec.kind).inc()
                    log.warning("batch_job_refused", business_date=str(day), job=name, shortfalls=shortfalls)
                    await self._end(day, name, r.spec.kind, JobState.FAILED,
                                    {"preflight": shortfalls, "limit": shortfalls[0]["limit"]},
                                    refusal_message(shortfalls))
                    return
            try:
                result = await kind.run(ctx)
            except Stopped as e:
                async with self.pool.acquire() as conn:
                    await store.stop(conn, day, name, self.owner)
                    await store.record(conn, day, name, "stopped", {"why": str(e), "done_items": ctx.done_items},
                                       HISTORY_ROWS_PER_JOB_MAX)
                log.info("batch_job_stopped", business_date=str(day), job=name, why=str(e))
                return
            except LimitReached as e:  # only this job stops, at its chunk boundary, naming the limit
                log.warning("batch_job_stopped_at_limit", business_date=str(day), job=name, limit=e.limit.name)
                await self._end(day, name, r.spec.kind, JobState.FAILED,
                                {"limit": e.limit.name, "done_items": ctx.done_items,
                                 "checkpoint": ctx.checkpoint}, str(e))
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("batch_job_failed", business_date=str(day), job=name, error=repr(e))
                await self._end(day, name, r.spec.kind, JobState.FAILED, None, f"{type(e).__name__}: {e}")
                return
            await self._end(day, name, r.spec.kind, JobState.SUCCEEDED, result, None)
        finally:
            self._tasks.pop((day, name), None)
            JOBS_RUNNING.set(len(self._tasks))
            self._wake.set()

    async def _end(self, day: dt.date, name: str, kind: str, state: JobState, result: dict[str, Any] | None,
                   error: str | None) -> None:
        async with self.pool.acquire() as conn:
            if await store.finish(conn, day, name, self.owner, state, result, error):
                await store.record(conn, day, name, state.value, {"result": result, "error": error},
                                   HISTORY_ROWS_PER_JOB_MAX)
        JOBS_FINISHED.labels(kind, state.value).inc()
        log.info("batch_job_finished", business_date=str(day), job=name, state=state.value, error=error)

    async def run_forever(self) -> None:
        """Tick until stopped; a failed tick is logged and retried."""
        await self.ensure_planned()
        while not self.stopping:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("batch_tick_failed", error=repr(e))
            await self._nap()

    async def _nap(self) -> None:
        """Until the next tick, or sooner when a job ends or an operator acts."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.tick_s)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Running jobs stop at their next chunk boundary (cancelled after `grace_s`)."""
        self.stopping = True
        self._wake.set()
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def run_until_idle(self, timeout_s: float = 600.0) -> None:
        """Tick until nothing runs and nothing may start (tests and the `kanjo batch run` command)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            started = await self.tick()
            if not started and not self._tasks:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the batch was still busy after {timeout_s} s")
            await self._nap()

    # -- operators -----------------------------------------------------------------------------------------------

    async def _job(self, conn: asyncpg.Connection, day: dt.date, name: str, *, for_update: bool = False) -> JobRun:
        r = await store.job(conn, day, name, for_update=for_update)
        if r is None:
            raise BatchError("unknown_job", f"no job {name} on {day}")
        return r

    async def hold(self, day: dt.date, name: str, by: str) -> JobRun:
        """Keep a job from starting; a running one stops at its next chunk boundary."""
        async with self.pool.acquire() as conn, conn.transaction():
            r = await self._job(conn, day, name, for_update=True)
            if r.state in (JobState.SUCCEEDED, JobState.SKIPPED):
                raise BatchError("finished", f"job {name} of {day} is {r.state.value}: there is nothing to hold")
            await store.set_held(conn, day, name, True)
            await store.record(conn, day, name, "held", {"by": by}, HISTORY_ROWS_PER_JOB_MAX)
            return await self._job(conn, day, name)

    async def release(self, day: dt.date, name: str, by: str) -> JobRun:
        async with self.pool.acquire() as conn, conn.transaction():
            r = await self._job(conn, day, name, for_update=True)
            if r.held:
                await store.set_held(conn, day, name, False)
                await store.record(conn, day, name, "released", {"by": by}, HISTORY_ROWS_PER_JOB_MAX)
            released = await self._job(conn, day, name)
        self._wake.set()
        return released

    async def run_now(self, day: dt.date, name: str, by: str) -> JobRun:
        """Start a waiting job without waiting for its not-before time (its predecessors and holds still rule)."""
        async with self.pool.acquire() as conn, conn.transaction():
            r = await self._job(conn, day, name, for_update=True)
            if r.state is not JobState.WAITING:
                raise BatchError("not_waiting", f"job {name} of {day} is {r.state.value}: only a waiting job is"
                                 " started (rerun a finished one)")
            await store.waive_not_before(conn, day, name)
            await store.record(conn, day, name, "run_requested", {"by": by}, HISTORY_ROWS_PER_JOB_MAX)
            again = await self._job(conn, day, name)
        self.wake()
        return again

    async def rerun(self, day: dt.date, name: str, by: str) -> JobRun:
        """Run a finished job again from the start, a failed one from where it stopped (every job is idempotent:
        what was done stays done once)."""
        async with self.pool.acquire() as conn, conn.transaction():
            r = await self._job(conn, day, name, for_update=True)
            if await store.day_state(conn, day) is DayState.CLOSED:
                raise BatchError("day_closed", f"{day} is closed: its jobs are final")
            check_rerun(r)
            resume = r.state is JobState.FAILED
            await store.rerun(conn, day, name, resume=resume)
            await store.record(conn, day, name, "rerun", {"by": by, "was": r.state.value, "resumes": resume},
                               HISTORY_ROWS_PER_JOB_MAX)
            again = await self._job(conn, day, name)
        self._wake.set()
        return again

    # -- reads ------------------------------------------------------------------------------------------------------

    async def day_report(self, day: dt.date) -> dict[str, Any]:
        """A date's jobs with their standing, progress and estimated finish, and what keeps the day open."""
        async with self.pool.acquire() as conn:
            state = await store.day_state(conn, day)
            if state is None:
                raise BatchError("unknown_day", f"{day} is not a business date of the batch")
            runs = await store.jobs(conn, day)
        now = self.now()
        return {"business_date": day.isoformat(), "state": state.value, "online_date": self.business_day().isoformat(),
                "jobs": [job_view(r, now) for r in runs], "gate": gate(runs, closing_job=CLOSING_JOB)}

    async def job_report(self, day: dt.date, name: str, history_limit: int = 50) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            r = await self._job(conn, day, name)
            events = await store.history(conn, day, name, history_limit)
        return {**job_view(r, self.now()), "history": events}

    async def days(self, limit: int = 10) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await store.days(conn, limit)
        return [{"business_date": r["business_date"].isoformat(), "state": r["state"],
                 "opened_at": r["opened_at"].isoformat(),
                 "cut_off_at": r["cut_off_at"].isoformat() if r["cut_off_at"] else None,
                 "closed_at": r["closed_at"].isoformat() if r["closed_at"] else None} for r in rows]


CLOSING_JOB = "day_close"


def job_view(r: JobRun, now: dt.datetime) -> dict[str, Any]:
    eta = r.eta(now)
    return {"business_date": r.business_date.isoformat(), "name": r.name, "kind": r.spec.kind,
            "state": r.state.value, "held": r.held, "mandatory": r.spec.mandatory, "after": list(r.spec.after),
            "attempts": r.attempts, "expected_s": r.spec.expected_s,
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "done_items": r.done_items, "total_items": r.total_items,
            "eta": eta.isoformat() if eta else None, "overrun_s": round(r.overrun_s(now), 1),
            "result": r.result, "error": r.error}
