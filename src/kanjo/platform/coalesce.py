"""Group statements: many concurrent callers' small statements of one kind run as one statement over arrays.

An ATM withdrawal makes about ten small statements (its journal record, the card, the daily limit, the answer…); a
thousand messages a second made each one a round trip and a commit of its own, and those round trips were most of
the process's CPU and much of PostgreSQL's. A `Coalescer` queues the calls of one statement kind while a batch of
them is in flight and sends the queue as the next batch: under load a round trip and a commit serve many callers;
when quiet a call goes out at once, alone (no waiting for company). Each caller gets its own item's result.

A batch that PostgreSQL refuses (one bad item) is rolled back whole and its items are run one by one, so only the
bad item fails; a batch whose connection breaks fails all its items, as their single statements would have.
One batch of a kind is in flight at a time, so batches of one kind never wait on each other's row locks (two in
flight for the reads was tried and measured worse: ADR 0011).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
BATCH_ITEMS = Histogram("kanjo_coalesced_items", "calls served by one grouped statement", ["statement"],
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

Batch = Callable[[asyncpg.Connection, Sequence[In]], Awaitable[Sequence[Out]]]
Single = Callable[[asyncpg.Connection, In], Awaitable[Out]]
Waiting = list[tuple[In, "asyncio.Future[Out]"]]


@dataclass(frozen=True, slots=True)
class _Refused:
    """An item PostgreSQL refused when its batch was run one by one."""

    error: asyncpg.PostgresError


class Coalescer(Generic[In, Out]):
    """Calls of one statement kind, grouped. `batch` answers a list of items in order (one result each); `single`
    answers one item (used when a batch is refused, to find the item at fault)."""

    def __init__(self, name: str, pool: asyncpg.Pool, batch: Batch[In, Out], single: Single[In, Out]) -> None:
        self.name = name
        self.pool = pool
        self._batch = batch
        self._single = single
        self._waiting: Waiting[In, Out] = []
        self._sending: asyncio.Task[None] | None = None
        self._observe = BATCH_ITEMS.labels(statement=name).observe

    async def __call__(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send(), name=f"coalesce:{self.name}")
        return await future

    async def _send(self) -> None:
        """Drain the queue on one connection, held while calls keep coming (a pool acquire and release per batch
        cost more Python than the statement); given back when the queue is empty or the connection failed."""
        try:
            while self._waiting:
                group = self._take()
                if not group:
                    continue
                try:
                    async with self.pool.acquire() as conn:
                        while await self._run(conn, group) and self._waiting:
                            group = self._take()
                except Exception as e:  # no connection to be had: what is in hand fails, as its statements would
                    _fail(group, e)
        finally:  # in the same step as the last look at the queue: a call arriving after it starts a sender
            self._sending = None

    def _take(self) -> Waiting[In, Out]:
        group = self._waiting[:ITEMS_PER_BATCH_MAX]
        del self._waiting[:ITEMS_PER_BATCH_MAX]
        return [(item, f) for item, f in group if not f.done()]  # a caller that gave up is not sent

    async def _run(self, conn: asyncpg.Connection, group: Waiting[In, Out]) -> bool:
        """Answer the group; False when the connection is not to be trusted with the next one."""
        if not group:
            return True
        items = [item for item, _ in group]
        self._observe(len(items))
        try:
            answers = await self._answers(conn, items)
        except asyncpg.PostgresError as e:  # a lone item refused: its statement failed, the connection is fine
            _fail(group, e)
            return True
        except Exception as e:  # the connection failed: these items fail, the next group gets another connection
            _fail(group, e)
            return False
        except BaseException:  # the sender itself is cancelled (shutdown): nobody is left waiting
            _fail(group, asyncio.CancelledError())
            raise
        if len(answers) != len(items):
            _fail(group, RuntimeError(f"{self.name}: {len(answers)} results for {len(items)} items"))
            return True
        for (_, future), answer in zip(group, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, _Refused):
                future.set_exception(answer.error)
            else:
                future.set_result(answer)
        return True

    async def _answers(self, conn: asyncpg.Connection, items: list[In]) -> Sequence[Out | _Refused]:
        if len(items) == 1:
            return [await self._single(conn, items[0])]
        try:
            return await self._batch(conn, items)
        except asyncpg.PostgresError:
            pass  # the batch changed nothing: run its items one by one to find the one at fault
        answers: list[Out | _Refused] = []
        for item in items:
            try:
                answers.append(await self._single(conn, item))
            except asyncpg.PostgresError as e:
                answers.append(_Refused(e))
        return answers


def _fail(group: Waiting[In, Out], error: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(error)
