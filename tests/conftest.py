"""Test fixtures: a real PostgreSQL for the whole session (embedded, under var/, or KANJO_TEST_DATABASE_URL),
and a freshly migrated database per test."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from kanjo.platform import db
from kanjo.platform.embedded_pg import EmbeddedPostgres, remove_data
from kanjo.platform.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL server to create test databases in."""
    external = os.environ.get("KANJO_TEST_DATABASE_URL")
    if external:
        yield external
        return
    data_dir = ROOT / "var" / f"test-pg-{os.getpid()}"
    remove_data(data_dir)
    server = EmbeddedPostgres(data_dir, port=_free_port())
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()
        remove_data(data_dir)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_database(dsn: str, name: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"


async def create_database(server_dsn: str) -> str:
    name = f"kanjo_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = _with_database(server_dsn, name)
    conn = await db.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(server_dsn: str, dsn: str) -> None:
    name = dsn.rpartition("/")[2]
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def ledger_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A freshly migrated database (sync fixture, usable from sync and async tests)."""
    dsn = asyncio.run(create_database(pg_server_dsn))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(pg_server_dsn, dsn))


@pytest.fixture
async def ledger(ledger_dsn: str) -> AsyncIterator[object]:
    from kanjo.ledger import Ledger

    engine = await Ledger.start(ledger_dsn)
    try:
        yield engine
    finally:
        await engine.stop()
