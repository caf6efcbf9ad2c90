"""Group statements: many concurrent callers' small statements of one kind run as one statement over arrays.

An ATM withdrawal makes about ten small statements (its journal record, the card, the daily limit, the answer…); a
thousand messages a second made each one a round trip and a commit of its own, and those round trips were most of
the process's CPU and much of PostgreSQL's. A `Coalescer` queues the calls of one statement kind while a batch of
them is in flight and sends the queue as the next batch: under load a round trip and a commit serve many callers;
when quiet a call goes out at once, alone (no waiting for company). Each caller gets its own item's result.

A batch that PostgreSQL refuses (one bad item) is rolled back whole and its items are run one by one, so only the
bad item fails; a batch whose connection breaks fails all its items, as their single statements would have.
One batch of a kind is in flight at a time, so batches of one kind never wait on each other's row locks; a kind
that takes no locks may allow more (`in_flight_max`; measured no better on the ATM path, see ADR 0011).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg
from prometheus_client import Histogram

from kanjo.kernel.limits import limits

In = TypeVar("In")
Out = TypeVar("Out")

ITEMS_PER_BATCH_MAX = limits.declare(
    "coalesced_items_per_statement_max", 256, "items",
    "calls of one kind sent as one statement; more wait for the next (bounds a statement's arrays and run time)",
).maximum
IN_FLIGHT_MAX = limits.declare(
    "coalesced_statements_in_flight_max", 4, "statements",
    "grouped statements of one kind running at once, each on its own pooled connection (the pool is shared)",
).maximum
BATCH_ITEMS = Histogram("kanjo_coalesced_items", "calls served by one grouped statement", ["statement"],
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

Batch = Callable[[asyncpg.Connection, Sequence[In]], Awaitable[Sequence[Out]]]
Single = Callable[[asyncpg.Connection, In], Awaitable[Out]]


class Coalescer(Generic[In, Out]):
    """Calls of one statement kind, grouped. `batch` answers a list of items in order (one result each); `single`
    answers one item (used when a batch is refused, to find the item at fault)."""

    def __init__(self, name: str, pool: asyncpg.Pool, batch: Batch[In, Out], single: Single[In, Out], *,
                 in_flight_max: int = 1) -> None:
        if not 1 <= in_flight_max <= IN_FLIGHT_MAX:
            raise ValueError(f"in_flight_max is 1..{IN_FLIGHT_MAX}, not {in_flight_max}")
        self.name = name
        self.pool = pool
        self._batch = batch
        self._single = single
        self._in_flight_max = in_flight_max  # more than 1 only for statements that take no row locks (reads)
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._observe = BATCH_ITEMS.labels(statement=name).observe

    async def __call__(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._senders) < self._in_flight_max:
            self._senders.add(asyncio.create_task(self._send(), name=f"coalesce:{self.name}"))
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[:ITEMS_PER_BATCH_MAX]
                del self._waiting[:ITEMS_PER_BATCH_MAX]
                group = [(item, f) for item, f in group if not f.done()]  # a caller that gave up is not sent
                if group:
                    await self._run(group)
        finally:  # in the same step as the last look at the queue: a call arriving after it starts a sender
            task = asyncio.current_task()
            if task is not None:
                self._senders.discard(task)

    async def _run(self, group: list[tuple[In, asyncio.Future[Out]]]) -> None:
        items = [item for item, _ in group]
        self._observe(len(items))
        try:
            async with self.pool.acquire() as conn:
                try:
                    results = await self._batch(conn, items) if len(items) > 1 else [await self._single(conn, items[0])]
                except asyncpg.PostgresError:
                    if len(items) == 1:
                        raise
                    await self._one_by_one(conn, group)  # the batch changed nothing: find the item at fault
                    return
        except BaseException as e:  # the connection or the pool failed: every item's statement failed
            for _, future in group:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
            return
        if len(results) != len(items):
            error = RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _one_by_one(self, conn: asyncpg.Connection, group: list[tuple[In, asyncio.Future[Out]]]) -> None:
        for item, future in group:
            try:
                result = await self._single(conn, item)
            except asyncpg.PostgresError as e:
                if not future.done():
                    future.set_exception(e)
                continue
            if not future.done():
                future.set_result(result)
