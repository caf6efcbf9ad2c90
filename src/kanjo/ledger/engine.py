"""The posting engine: one serial writer that micro-batches requests and commits each batch atomically.

Callers enqueue requests (accounts or transfers) into a bounded intake; the writer takes as many
as fit in one batch, applies the rules in memory against balances it owns (it holds the shard's
writer lease, so nobody else changes them), writes the batch with COPY and one array-bound UPDATE,
commits, and only then answers. A hot account costs one row update per batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import heapq
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from kanjo.kernel.clock import Clock, SystemClock
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import store, telemetry
from kanjo.ledger.limits import (
    ACCOUNT_CACHE_ENTRIES_MAX,
    EVENTS_PER_BATCH_MAX,
    EXPIRY_QUEUE_ENTRIES_MAX,
    HOLD_CACHE_ENTRIES_MAX,
    INTAKE_EVENTS_MAX,
    LOOKUP_IDS_MAX,
    PAGE_ROWS_MAX,
    REJECTED_IDS_CACHED_MAX,
)
from kanjo.ledger.model import (
    Account,
    AccountBalance,
    AccountOutcome,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferOutcome,
    TransferRecord,
)
from kanjo.ledger.rules import RESOLVING, Batch, Hold
from kanjo.platform import db
from kanjo.platform.logging import ensure_logging

log = structlog.get_logger("kanjo.ledger")
OK = CreateTransferResult.OK
EXISTS = CreateTransferResult.EXISTS
JST = ZoneInfo("Asia/Tokyo")
RECONNECT_BACKOFF_MAX_S = 2.0


class LedgerBusy(Exception):
    """The intake queue is full: retry later with the same ids."""

    retry_after_s = 1


class LedgerUnavailable(Exception):
    """The batch could not be committed (database unreachable, or this writer lost its lease).

    The outcome is not known to the caller: retry with the same ids, which is always safe.
    """


class _Redo(Exception):
    """The fast path met an id it did not know was taken: run the batch again with id lookups."""


APPLY_CHUNK_EVENTS = 32  # events applied between yields to the event loop (so a commit overlaps)


def _chunks(events: Sequence[Transfer]) -> list[tuple[int, int]]:
    """Cut a request into runs of about APPLY_CHUNK_EVENTS, never inside a linked chain."""
    cuts: list[tuple[int, int]] = []
    n = len(events)
    start = 0
    while start < n:
        end = min(start + APPLY_CHUNK_EVENTS, n)
        while end < n and events[end - 1].flags & 1:  # LINKED: the chain continues
            end += 1
        cuts.append((start, end))
        start = end
    return cuts


def _count_results(kind: str, outcomes: list) -> None:
    """Result codes by kind, for /metrics: OK counted in one step, the rest one by one (they are few)."""
    others: collections.Counter = collections.Counter()
    for outcome in outcomes:
        if outcome.result != 0:
            others[outcome.result] += 1
    metric = telemetry.TRANSFER_RESULTS if kind == "transfers" else telemetry.ACCOUNT_RESULTS
    ok = len(outcomes) - sum(others.values())
    if ok:
        metric.labels("ok").inc(ok)
    for code, count in others.items():
        metric.labels(code.name.lower()).inc(count)


class _Requeued(Exception):
    """The newer batch was put back in the intake while an older one was redone."""


_WRITER_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, store.Fenced)


@dataclass(slots=True)
class _Request:
    kind: str  # "accounts" | "transfers"
    events: Sequence[Account] | Sequence[Transfer]
    future: asyncio.Future
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class _Applied:
    """A batch applied to the caches, with its answers, waiting for (or in) its commit."""

    requests: list[_Request]
    batch: Batch
    results: list[list]
    ts_end: int
    lookup: bool
    due: list[tuple[int, int]]
    started: float
    rows: store.AccountRows  # the account values to write, frozen when applied
    sweeps: list[asyncio.Future] = field(default_factory=list)
    task: asyncio.Task | None = None
    undone: bool = False


class Ledger:
    """The ledger's in-process API. Start one per process per database; it takes the writer lease."""

    def __init__(self, dsn: str, *, clock: Clock, business_date: Callable[[], dt.date], pool_size_max: int,
                 sweep_interval_s: float, linger_s: float, holder: str) -> None:
        self.dsn = dsn
        self.clock = clock
        self.business_date = business_date
        self._pool_size_max = pool_size_max
        self._sweep_interval_s = sweep_interval_s
        self._linger_s = linger_s
        self._holder = holder
        self._intake: collections.deque[_Request] = collections.deque()
        self._intake_events = 0
        self._wakeup = asyncio.Event()
        self._sweep_requests: list[asyncio.Future] = []
        self._accounts: dict[int, Account] = {}
        self._holds: dict[int, Hold] = {}
        self._rejected: dict[int, tuple[Transfer, int]] = {}
        self._rejected_complete = True
        self._expiry: list[tuple[int, int]] = []  # heap of (expires_at, pending id)
        self._expiry_complete = True  # every live timed hold is in the heap
        self._epoch = 0
        self._last_ts = 0
        self._stored = 0  # transfers in the table: counted when the writer starts, then kept by the commits
        self._conn: asyncpg.Connection | None = None  # commits
        self._reader: asyncpg.Connection | None = None  # the writer's cache misses, while a commit runs
        self.pool: asyncpg.Pool | None = None
        self._writer: asyncio.Task | None = None
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    async def start(cls, dsn: str, *, clock: Clock | None = None,
                    business_date: Callable[[], dt.date] | None = None, pool_size_max: int = 10,
                    sweep_interval_s: float = 1.0, linger_s: float = 0.0, holder: str | None = None) -> Ledger:
        ensure_logging()
        clock = clock or SystemClock()
        if business_date is None:
            def business_date() -> dt.date:
                return store.today(clock.now_ns(), JST)
        ledger = cls(dsn, clock=clock, business_date=business_date, pool_size_max=pool_size_max,
                     sweep_interval_s=sweep_interval_s, linger_s=linger_s,
                     holder=holder or f"{socket.gethostname()}:{os.getpid()}")
        ledger.pool = await db.create_pool(dsn, size_min=1, size_max=pool_size_max)
        await ledger._connect_writer()
        ledger._writer = asyncio.create_task(ledger._run(), name="kanjo-ledger-writer")
        return ledger

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
        for conn in (self._conn, self._reader):
            if conn is not None:
                await conn.close()
        if self.pool is not None:
            await self.pool.close()

    async def _connect_writer(self) -> None:
        conn = await db.connect(self.dsn)
        await store.prepare_writer_connection(conn)
        self._epoch, self._last_ts = await store.acquire_lease(conn, self._holder)
        reader = await db.connect(self.dsn)
        await store.prepare_writer_connection(reader)
        self._conn, self._reader = conn, reader
        self._reset_state()
        rejected = await store.load_rejected(conn, None, REJECTED_IDS_CACHED_MAX + 1)
        self._rejected = {t.id: (t, code) for t, code in rejected[:REJECTED_IDS_CACHED_MAX]}
        self._rejected_complete = len(rejected) <= REJECTED_IDS_CACHED_MAX
        await self._load_expiry(2**63 - 1)
        self._stored = await store.transfers_stored(reader)
        limits.observe("ledger_transfers_stored_max", self._stored)
        log.info("ledger.writer_started", epoch=self._epoch, holder=self._holder,
                 rejected_ids=len(self._rejected), timed_holds=len(self._expiry))

    def _reset_state(self) -> None:
        self._accounts.clear()
        self._holds.clear()

    async def _load_expiry(self, until_ns: int) -> None:
        conn = self._reader or self._conn
        assert conn is not None
        due = await store.due_holds(conn, until_ns, EXPIRY_QUEUE_ENTRIES_MAX + 1)
        self._expiry = due[:EXPIRY_QUEUE_ENTRIES_MAX]
        heapq.heapify(self._expiry)
        self._expiry_complete = len(due) <= EXPIRY_QUEUE_ENTRIES_MAX

    def transfers_stored(self) -> int:
        """Transfers in the table now (every one is committed by this writer, so the count is exact)."""
        return self._stored

    # -- commands ------------------------------------------------------------------------------

    async def create_accounts(self, events: Sequence[Account]) -> list[AccountOutcome]:
        for a in events:
            invariant(not (a.debits_pending or a.debits_posted or a.credits_pending or a.credits_posted
                           or a.timestamp), "a new account carries no balances or timestamp")
        results = await self._submit("accounts", events)
        return results

    async def create_transfers(self, events: Sequence[Transfer]) -> list[TransferOutcome]:
        for t in events:
            invariant(t.timestamp == 0, "the ledger assigns transfer timestamps")
        return await self._submit("transfers", events)

    async def expire_due(self) -> None:
        """Run the expiry sweep now (it also runs before every batch and on a timer)."""
        future = asyncio.get_running_loop().create_future()
        self._sweep_requests.append(future)
        self._wakeup.set()
        await future

    async def _submit(self, kind: str, events: Sequence) -> list:
        if len(events) > EVENTS_PER_BATCH_MAX:
            raise LimitReached(limits.get("ledger_events_per_batch_max"), len(events))
        if not events:
            return []
        if self._stopping or self._writer is None or self._writer.done():
            raise LedgerUnavailable("the ledger writer is not running")
        if self._intake_events + len(events) > INTAKE_EVENTS_MAX:
            telemetry.BUSY_REFUSALS.inc()
            raise LedgerBusy(f"ledger intake full ({self._intake_events:,} events queued)")
        future = asyncio.get_running_loop().create_future()
        self._intake.append(_Request(kind, events, future))
        self._intake_events += len(events)
        self._wakeup.set()
        return await asyncio.shield(future)

    # -- the writer ----------------------------------------------------------------------------
    #
    # Pipelined: while batch N commits on the writer connection, batch N+1 is applied in memory on
    # top of N's (not yet committed) balances, reading cache misses through a second connection.
    # If N fails or must be redone, N+1 is undone first and its requests go back to the front of
    # the intake; nobody is answered before their own batch has committed.

    async def _run(self) -> None:
        backoff_s = 0.05
        inflight: _Applied | None = None
        while True:
            if self._stopping and not self._intake and not self._sweep_requests:
                break
            if not self._intake and not self._sweep_requests:
                if inflight is not None:
                    keep_running, inflight = await self._drain(inflight), None
                    if not keep_running:
                        break
                    continue
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):  # a timeout is the sweep's tick
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._sweep_timeout())
                if self._linger_s and self._intake:
                    await asyncio.sleep(self._linger_s)
            if inflight is not None and not self._pipelining():
                keep_running, inflight = await self._drain(inflight), None
                if not keep_running:
                    break
            if inflight is None:
                self._trim_caches()
            requests = self._take_batch()
            sweeps, self._sweep_requests = self._sweep_requests, []
            applied: _Applied | None = None
            try:
                if self._conn is None or self._conn.is_closed() or self._reader is None:
                    await self._connect_writer()
                applied = await self._apply(requests, lookup=not self._rejected_complete)
                applied.sweeps = sweeps
                if inflight is not None:
                    previous, inflight = inflight, None
                    await self._settle(previous, applied)
                applied.task = asyncio.create_task(self._commit(applied), name="kanjo-ledger-commit")
                inflight, applied = applied, None
                backoff_s = 0.05
            except _Requeued:
                continue
            except _WRITER_ERRORS as exc:
                if inflight is not None:  # the apply failed while the previous batch was committing
                    # _settle fails that batch's callers itself; the reconnect below handles the cause
                    with contextlib.suppress(*_WRITER_ERRORS):
                        await self._settle(inflight, None)
                    inflight = None
                if applied is not None:
                    self._undo(applied)
                if not await self._after_failure(exc, requests, sweeps):
                    break
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, RECONNECT_BACKOFF_MAX_S)
        if inflight is not None:
            await self._drain(inflight)

    async def _drain(self, inflight: _Applied) -> bool:
        """Finish the batch in flight with nothing newer applied; False when the writer must stop."""
        try:
            await self._settle(inflight, None)
        except _WRITER_ERRORS as exc:
            return await self._after_failure(exc, [], [])
        return True

    def _pipelining(self) -> bool:
        """Overlap apply and commit, except when a cache is over its limit (it is trimmed only when idle)."""
        return (self._rejected_complete and len(self._accounts) <= ACCOUNT_CACHE_ENTRIES_MAX
                and len(self._holds) <= HOLD_CACHE_ENTRIES_MAX)

    async def _settle(self, inflight: _Applied, newer: _Applied | None) -> None:
        """Wait for an in-flight batch's commit and answer its callers; on failure undo `newer` first."""
        assert inflight.task is not None
        try:
            await inflight.task
        except _Redo:
            if newer is not None:
                self._undo(newer)
                self._requeue(newer)
            self._undo(inflight)
            telemetry.BATCH_REDOS.inc()
            await self._process_serial(inflight.requests, inflight.sweeps, lookup=True)
            if newer is not None:
                raise _Requeued() from None
            return None
        except BaseException as exc:
            if newer is not None:
                self._undo(newer)  # newest first: it was applied on top of the failed one
            if isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, asyncpg.PostgresConnectionError):
                self._undo(inflight)  # the server rolled the transaction back: restore the caches
            else:
                self._reset_state()  # the outcome is unknown: forget everything cached, reload from the database
                self._requeue_due(inflight)
            self._fail(inflight.requests, inflight.sweeps, LedgerUnavailable(f"batch not committed: {exc!r}"))
            raise
        self._complete(inflight)
        return None

    async def _after_failure(self, exc: BaseException, requests: list[_Request],
                             sweeps: list[asyncio.Future]) -> bool:
        """Fail what was taken; reconnect later. Returns False when this writer must stop (fenced)."""
        if isinstance(exc, store.Fenced):
            log.error("ledger.fenced", error=str(exc))
            telemetry.BATCH_FAILURES.labels("fenced").inc()
            error = LedgerUnavailable(str(exc))
            self._fail(requests, sweeps, error)
            self._stopping = True
            self._fail(list(self._intake), self._sweep_requests, error)
            self._intake.clear()
            self._intake_events = 0
            self._sweep_requests = []
            return False
        log.warning("ledger.batch_failed", error=repr(exc), requests=len(requests))
        telemetry.BATCH_FAILURES.labels(type(exc).__name__).inc()
        self._fail(requests, sweeps, LedgerUnavailable(f"batch not committed: {exc!r}"))
        await self._drop_connection()
        return True

    def _sweep_timeout(self) -> float:
        if not self._expiry:
            return self._sweep_interval_s
        wait_s = (self._expiry[0][0] - self.clock.now_ns()) / 1e9
        return max(0.001, min(self._sweep_interval_s, wait_s))

    def _take_batch(self) -> list[_Request]:
        taken: list[_Request] = []
        size = 0
        while self._intake and size + len(self._intake[0].events) <= EVENTS_PER_BATCH_MAX:
            request = self._intake.popleft()
            size += len(request.events)
            taken.append(request)
        self._intake_events -= size
        limits.observe("ledger_events_per_batch_max", size)
        telemetry.INTAKE_EVENTS.set(self._intake_events)
        limits.observe("ledger_intake_events_max", self._intake_events)
        return taken

    def _requeue(self, applied: _Applied) -> None:
        """Put a batch that was applied but never committed back at the front of the intake."""
        for request in reversed(applied.requests):
            self._intake.appendleft(request)
            self._intake_events += len(request.events)
        self._sweep_requests = applied.sweeps + self._sweep_requests

    def _requeue_due(self, applied: _Applied) -> None:
        for entry in applied.due:  # not released: sweep them again next time
            heapq.heappush(self._expiry, entry)

    def _undo(self, applied: _Applied) -> None:
        if applied.undone:
            return
        applied.undone = True
        for transfer_id in applied.batch.new_rejected:
            self._rejected.pop(transfer_id, None)
        applied.batch.rollback()
        self._requeue_due(applied)

    def _fail(self, requests: list[_Request], sweeps: list[asyncio.Future], error: Exception) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error)
        for future in sweeps:
            if not future.done():
                future.set_exception(error)

    async def _drop_connection(self) -> None:
        self._reset_state()
        for conn in (self._conn, self._reader):
            if conn is not None:
                with contextlib.suppress(Exception):  # already broken: nothing left to close cleanly
                    conn.terminate()
        self._conn = None
        self._reader = None

    async def _process_serial(self, requests: list[_Request], sweeps: list[asyncio.Future], lookup: bool) -> None:
        """Apply and commit one batch with nothing else in flight (redo path, and when not pipelining)."""
        for _attempt in range(2):
            applied = await self._apply(requests, lookup)
            applied.sweeps = sweeps
            try:
                await self._commit(applied)
            except _Redo:
                self._undo(applied)
                telemetry.BATCH_REDOS.inc()
                lookup = True
                continue
            except BaseException:
                self._undo(applied)
                raise
            self._complete(applied)
            return
        raise AssertionError("batch redo did not converge")  # a lookup batch never asks for a redo

    def _complete(self, applied: _Applied) -> None:
        self._after_commit(applied.batch)
        now = time.perf_counter()
        events = 0
        for request, result in zip(applied.requests, applied.results, strict=True):
            events += len(request.events)
            _count_results(request.kind, result)
            telemetry.REQUEST_SECONDS.observe(now - request.enqueued_at)
            if not request.future.done():
                request.future.set_result(result)
        for future in applied.sweeps:
            if not future.done():
                future.set_result(None)
        if events:
            telemetry.BATCH_EVENTS.observe(events)
            telemetry.BATCH_SECONDS.observe(now - applied.started)

    async def _apply(self, requests: list[_Request], lookup: bool) -> _Applied:
        started = time.perf_counter()
        reader = self._reader
        assert reader is not None
        now_ns = self.clock.now_ns()
        if not self._expiry_complete and not self._expiry:
            await self._load_expiry(2**63 - 1)
        due = self._due_holds(now_ns)
        try:
            await self._load_for(requests, [hold_id for _, hold_id in due])
            known: dict[int, Transfer] = {}
            rejected = self._rejected
            if lookup:
                ids = [t.id for r in requests if r.kind == "transfers" for t in r.events]
                if ids:
                    known = {t.id: t for t in await store.load_transfers(reader, ids)}
                    if not self._rejected_complete:
                        rejected = dict(self._rejected)
                        found = await store.load_rejected(reader, ids, len(ids))
                        rejected.update({t.id: (t, c) for t, c in found})
        except BaseException:
            for entry in due:
                heapq.heappush(self._expiry, entry)
            raise
        batch = Batch(self._accounts, self._holds, rejected, known, self.business_date())
        ts = max(now_ns, self._last_ts + 1)
        for _, hold_id in due:
            hold = self._holds.get(hold_id)
            if hold is not None and hold.status is PendingStatus.PENDING:
                batch.expire(hold, ts)
                ts += 1
        results: list[list] = []
        for request in requests:
            events = request.events
            if request.kind == "transfers":
                answers = []
                for start, end in _chunks(cast(Sequence[Transfer], events)):
                    outcomes = batch.create_transfers(events[start:end], ts + start)  # type: ignore[arg-type]
                    for i, (code, amount) in enumerate(outcomes, start):
                        if code is OK:
                            answers.append(TransferOutcome(code, ts + i, amount))
                        elif code is EXISTS:
                            original = batch.known[events[i].id]
                            answers.append(TransferOutcome(code, original.timestamp, original.amount))
                        else:
                            answers.append(TransferOutcome(code, 0, 0))
                    if end < len(events):
                        await asyncio.sleep(0)  # let the previous batch's commit make progress
                results.append(answers)
            else:
                codes = batch.create_accounts(events, ts)  # type: ignore[arg-type]
                results.append([
                    AccountOutcome(code, ts + i if code is CreateAccountResult.OK
                                   else batch.accounts[events[i].id].timestamp if code is CreateAccountResult.EXISTS
                                   else 0)
                    for i, code in enumerate(codes)
                ])
            ts += len(events)
        self._last_ts = max(self._last_ts, ts - 1)
        if batch.new_rejected and self._rejected_complete:
            self._rejected.update(batch.new_rejected)  # visible to the next batch before this one commits
        return _Applied(requests, batch, results, ts - 1, lookup, due, started, store.account_rows(batch))

    def _due_holds(self, now_ns: int) -> list[tuple[int, int]]:
        due: list[tuple[int, int]] = []
        while self._expiry and self._expiry[0][0] <= now_ns:
            due.append(heapq.heappop(self._expiry))
        return due

    async def _load_for(self, requests: list[_Request], due: list[int]) -> None:
        """Bring into the caches every account and hold this batch may read."""
        reader = self._reader
        assert reader is not None
        accounts = self._accounts
        holds = self._holds
        want_accounts: set[int] = set()
        want_holds: set[int] = set()
        for request in requests:
            if request.kind == "accounts":
                want_accounts.update(a.id for a in request.events if a.id not in accounts)
                continue
            for t in cast(Sequence[Transfer], request.events):
                if t.flags & RESOLVING:
                    if t.pending_id not in holds:
                        want_holds.add(t.pending_id)
                else:
                    if t.debit_account_id not in accounts:
                        want_accounts.add(t.debit_account_id)
                    if t.credit_account_id not in accounts:
                        want_accounts.add(t.credit_account_id)
        want_holds.update(i for i in due if i not in holds)
        if want_holds:
            for hold in await store.load_holds(reader, list(want_holds)):
                holds.setdefault(hold.transfer.id, hold)
        for hold_id in [*want_holds, *due]:
            wanted = holds.get(hold_id)
            if wanted is not None:
                for account_id in (wanted.transfer.debit_account_id, wanted.transfer.credit_account_id):
                    if account_id not in accounts:
                        want_accounts.add(account_id)
        want_accounts.discard(0)
        if want_accounts:
            for account in await store.load_accounts(reader, list(want_accounts)):
                accounts.setdefault(account.id, account)

    async def _commit(self, applied: _Applied) -> None:
        conn = self._conn
        assert conn is not None
        batch = applied.batch
        if not (batch.new_accounts or batch.new_transfers or batch.new_rejected or batch.resolutions
                or batch.unverified):
            return
        if store.is_small(batch):
            check = [] if applied.lookup else [*batch.new_rejected, *batch.unverified]
            try:
                await store.commit_small_batch(conn, batch, applied.rows, self._epoch, applied.ts_end, check)
            except (store.ReplayedId, asyncpg.UniqueViolationError) as exc:
                if applied.lookup:
                    raise
                raise _Redo() from exc
            return
        try:
            async with conn.transaction():
                await store.write_batch(conn, batch, applied.rows, self._epoch, applied.ts_end)
                # The fast path took unknown ids as new; the primary key checks those it writes, this
                # checks those it answered without writing (refused, or rolled back with a chain).
                unwritten = [*batch.new_rejected, *batch.unverified]
                if not applied.lookup and unwritten:
                    if await store.existing_transfer_ids(conn, unwritten):
                        raise _Redo()
        except asyncpg.UniqueViolationError as exc:
            if applied.lookup:
                raise
            raise _Redo() from exc

    def _after_commit(self, batch: Batch) -> None:
        if batch.new_rejected and len(self._rejected) > REJECTED_IDS_CACHED_MAX:
            self._rejected_complete = False  # from now on every batch looks ids up; memory is freed when idle
        for t, expires_at in zip(batch.new_transfers, batch.new_expires, strict=True):
            if expires_at:
                if len(self._expiry) < EXPIRY_QUEUE_ENTRIES_MAX:
                    heapq.heappush(self._expiry, (expires_at, t.id))
                else:
                    self._expiry_complete = False
        for pending_id, _status, _by, _ts in batch.resolutions:
            self._holds.pop(pending_id, None)  # resolved: a later post/void reloads its status
        limits.observe("ledger_account_cache_entries_max", len(self._accounts))
        limits.observe("ledger_hold_cache_entries_max", len(self._holds))
        limits.observe("ledger_rejected_ids_cached_max", len(self._rejected))
        limits.observe("ledger_expiry_queue_entries_max", len(self._expiry))
        committed = len(batch.new_transfers)
        if committed:
            telemetry.TRANSFERS_COMMITTED.inc(committed)
            self._stored += committed
            limits.observe("ledger_transfers_stored_max", self._stored)
        if batch.new_accounts:
            telemetry.ACCOUNTS_CREATED.inc(len(batch.new_accounts))
        expired = sum(1 for r in batch.resolutions if r[1] == PendingStatus.EXPIRED)
        if expired:
            telemetry.HOLDS_EXPIRED.inc(expired)

    def _trim_caches(self) -> None:
        """Only with nothing in flight: the caches then equal the committed state."""
        if len(self._holds) > HOLD_CACHE_ENTRIES_MAX:
            self._holds.clear()
        if len(self._accounts) > ACCOUNT_CACHE_ENTRIES_MAX:
            self._accounts.clear()
        if not self._rejected_complete and self._rejected:
            self._rejected.clear()  # lookups answer from the database from now on

    # -- reads (from committed state, through the pool) -----------------------------------------

    async def lookup_accounts(self, ids: Sequence[int]) -> list[Account]:
        self._check_ids(ids)
        async with self._read() as conn:
            return await store.lookup_accounts(conn, list(ids))

    async def scan_accounts(self, *, ledger: int, code: int, after_id: int = 0,
                            limit: int = PAGE_ROWS_MAX) -> list[Account]:
        """One page of the accounts with this ledger and code, in id order after `after_id` (for day-end jobs)."""
        if limit > PAGE_ROWS_MAX:
            raise LimitReached(limits.get("ledger_page_rows_max"), limit)
        async with self._read() as conn:
            return await store.accounts_by_code(conn, ledger, code, after_id, limit)

    async def lookup_transfers(self, ids: Sequence[int]) -> list[Transfer]:
        self._check_ids(ids)
        async with self._read() as conn:
            return await store.lookup_transfers(conn, list(ids))

    async def lookup_transfer_records(self, ids: Sequence[int]) -> list[TransferRecord]:
        self._check_ids(ids)
        async with self._read() as conn:
            holds = await store.lookup_holds(conn, list(ids))
        return [TransferRecord(h.transfer, h.status, h.expires_at) for h in holds]

    async def get_account_transfers(self, account_id: int, *, timestamp_min: int = 0,
                                    timestamp_max: int = 2**63 - 1, limit: int = 100, debits: bool = True,
                                    credits: bool = True, reverse: bool = False) -> list[Transfer]:
        if limit > PAGE_ROWS_MAX:
            raise LimitReached(limits.get("ledger_page_rows_max"), limit)
        limits.observe("ledger_page_rows_max", limit)
        async with self._read() as conn:
            return await store.account_transfers(conn, account_id, timestamp_min=timestamp_min,
                                                 timestamp_max=timestamp_max, limit=limit, debits=debits,
                                                 credits=credits, reverse=reverse)

    async def get_account_balances(self, account_id: int, *, timestamp_min: int = 0,
                                   timestamp_max: int = 2**63 - 1, limit: int = 100,
                                   reverse: bool = False) -> list[AccountBalance]:
        if limit > PAGE_ROWS_MAX:
            raise LimitReached(limits.get("ledger_page_rows_max"), limit)
        async with self._read() as conn:
            return await store.account_balances(conn, account_id, timestamp_min=timestamp_min,
                                                timestamp_max=timestamp_max, limit=limit, reverse=reverse)

    async def balance_as_of(self, account_id: int, timestamp: int) -> AccountBalance | None:
        rows = await self.get_account_balances(account_id, timestamp_max=timestamp, limit=1, reverse=True)
        return rows[0] if rows else None

    def _check_ids(self, ids: Sequence[int]) -> None:
        if len(ids) > LOOKUP_IDS_MAX:
            raise LimitReached(limits.get("ledger_lookup_ids_max"), len(ids))
        limits.observe("ledger_lookup_ids_max", len(ids))

    def _read(self):  # type: ignore[no-untyped-def]
        if self.pool is None:
            raise LedgerUnavailable("the ledger is not started")
        return self.pool.acquire()

    @property
    def intake_events(self) -> int:
        return self._intake_events
