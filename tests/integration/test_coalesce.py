"""Grouped statements on a real PostgreSQL: concurrent callers share a statement yet each gets its own answer, a bad
item fails alone, a caller that gives up does not disturb the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from kanjo.platform import db
from kanjo.platform.coalesce import BATCH_ITEMS, Coalescer


@pytest.fixture
async def pool(ledger_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(ledger_dsn, size_max=4)
    async with p.acquire() as conn:
        await conn.execute("CREATE TABLE notes (k int PRIMARY KEY, v int NOT NULL CHECK (v >= 0))")
    try:
        yield p
    finally:
        await p.close()


async def _one(conn: asyncpg.Connection, item: tuple[int, int]) -> bool:
    return bool(await conn.fetchval("INSERT INTO notes VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                                    *item))


async def _many(conn: asyncpg.Connection, items: Sequence[tuple[int, int]]) -> list[bool]:
    rows = await conn.fetch("INSERT INTO notes SELECT * FROM unnest($1::int[], $2::int[]) ON CONFLICT DO NOTHING"
                            " RETURNING k", [k for k, _ in items], [v for _, v in items])
    inserted = {r["k"] for r in rows}
    answers = []
    for k, _ in items:  # a key twice in one batch: the first call inserted it
        answers.append(k in inserted)
        inserted.discard(k)
    return answers


def _grouped_calls() -> tuple[float, float]:
    """(statements, items) observed so far for the test's statement kind."""
    samples = {s.name: s.value for m in BATCH_ITEMS.collect() for s in m.samples
               if s.labels.get("statement") == "test_notes"}
    return samples.get("kanjo_coalesced_items_count", 0.0), samples.get("kanjo_coalesced_items_sum", 0.0)


async def test_concurrent_callers_share_statements_and_each_gets_its_own_answer(pool: asyncpg.Pool) -> None:
    insert = Coalescer("test_notes", pool, _many, _one)
    before = _grouped_calls()
    results = await asyncio.gather(*(insert((k % 150, k)) for k in range(300)))  # each key twice
    statements, items = (a - b for a, b in zip(_grouped_calls(), before, strict=True))
    assert items == 300 and statements < 100  # grouped: far fewer statements than calls
    assert sum(results) == 150  # each key inserted once; its second call learns it was not the first
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 150


async def test_a_bad_item_fails_alone(pool: asyncpg.Pool) -> None:
    insert = Coalescer("test_notes", pool, _many, _one)
    calls = [insert((k, -1 if k == 7 else k)) for k in range(20)]  # v = -1 breaks the CHECK
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[7], asyncpg.CheckViolationError)
    assert all(r is True for i, r in enumerate(results) if i != 7)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 19


async def test_a_caller_that_gives_up_leaves_the_others_their_answers(pool: asyncpg.Pool) -> None:
    insert = Coalescer("test_notes", pool, _many, _one)
    tasks = [asyncio.create_task(insert((k, k))) for k in range(30)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert all(r is True for i, r in enumerate(results) if i != 3)
    assert await insert((1_000, 1)) is True  # and the kind keeps serving


async def test_a_broken_connection_fails_the_batch_and_the_next_calls_go_through(pool: asyncpg.Pool) -> None:
    async def broken(conn: asyncpg.Connection, items: Sequence[tuple[int, int]]) -> list[bool]:
        raise ConnectionResetError("the connection dropped")

    insert = Coalescer("test_notes", pool, broken, _one)
    results = await asyncio.gather(*(insert((k, k)) for k in range(10)), return_exceptions=True)
    assert any(isinstance(r, ConnectionResetError) for r in results)  # the grouped ones failed as their statement
    assert all(r is True or isinstance(r, ConnectionResetError) for r in results)
    assert await insert((500, 1)) is True


async def test_calls_arriving_as_a_batch_ends_are_all_answered(pool: asyncpg.Pool) -> None:
    """Waves of callers, each wave landing while the last batch finishes: nobody is left waiting."""
    insert = Coalescer("test_notes", pool, _many, _one)
    for wave in range(20):
        async with asyncio.timeout(10):
            results = await asyncio.gather(*(insert((wave * 100 + k, k)) for k in range(wave % 5 + 1)))
        assert all(results)
