"""PostgreSQL access: asyncpg pools with kanjo's type codecs, and retry on serialization failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 120
SERIALIZATION_RETRIES_MAX = 5  # SQLSTATE 40001/40P01 on distributed SQL; beyond this the caller sees the error


def _uuid_encode(value: int | str) -> bytes:
    if isinstance(value, int):
        return value.to_bytes(16, "big")
    import uuid

    return uuid.UUID(str(value)).bytes


def _uuid_decode(data: bytes) -> int:
    return int.from_bytes(data, "big")


async def init_connection(conn: asyncpg.Connection) -> None:
    """128-bit ids travel as Python ints and are stored as PostgreSQL uuid."""
    await conn.set_type_codec(
        "uuid", schema="pg_catalog", encoder=_uuid_encode, decoder=_uuid_decode, format="binary"
    )


async def _reset_on_release(conn: asyncpg.Connection) -> None:
    """What a connection returned to the pool needs: no open transaction. asyncpg's default reset runs a query on
    every release (RESET ALL, CLOSE ALL, UNLISTEN, advisory unlock) — a round trip per acquire that kanjo does not
    need: no code leaves session settings, cursors or listeners behind, and the one session advisory lock (the
    interest payout's) is released explicitly."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, *, size_min: int = 1, size_max: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=size_min,
        max_size=size_max,
        init=init_connection,
        reset=_reset_on_release,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        max_inactive_connection_lifetime=300,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S)
    await init_connection(conn)
    return conn


async def wait_for_database(dsn: str, timeout_s: float = 60.0) -> None:
    """The start-up path waits for the database before migrating."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)
            continue
        await conn.close()
        return


async def retry_serializable(fn: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(SERIALIZATION_RETRIES_MAX):
        try:
            return await fn()
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
            if attempt == SERIALIZATION_RETRIES_MAX - 1:
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def record_to_dict(record: Any) -> dict[str, Any]:
    return dict(record.items())
