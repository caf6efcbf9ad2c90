"""The bank's provisioned capacity, measured: a probe for every structure that can fill (the ledger's transfers
table, the batch's work areas, the database, the volume under var/, the connection pool), and the maxima the operator
provisioned (setting `capacity`: `name=maximum,...`; raised at run time with `PUT /v1/capacity/{name}`).

A probe measures; the limits registry keeps the usage and its peak; ops samples it into forecasts and alerts at
70/85/95 %; a batch job's pre-flight measures again before it starts. Log volume is measured where lines are
written (platform/logging.py, `log_bytes_per_day_max`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from kanjo.batch import work_area_items
from kanjo.kernel.limits import limits
from kanjo.ledger import Ledger

GIB = 1024**3
DATABASE_BYTES = limits.declare(
    "database_size_bytes_max", 200 * GIB, "bytes",
    "the database's provisioned storage (pg_database_size): tables, indexes and their bloat",
    adjustable=True,
)
DISK_BYTES = limits.declare(
    "disk_volume_bytes_max", 1024 * GIB, "bytes",
    "the volume under var/ (the embedded PostgreSQL, run files): set to the volume's size when the process starts",
    adjustable=True,
)
POOL_CONNECTIONS = limits.declare(
    "db_pool_connections_max", 200, "connections",
    "database connections of this process's pool in use at once: set to the pool's size (db_pool_size_max) at"
    " start; a request that finds none free waits, which is when this reads 100 %",
    adjustable=True,
)


def provision(spec: str) -> dict[str, int]:
    """Apply `name=maximum,...` to the adjustable limits; raises ValueError naming the first bad entry."""
    applied: dict[str, int] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep or not value.strip().isdigit():
            raise ValueError(f"capacity entry {entry!r} is not name=maximum")
        try:
            limits.set_maximum(name, int(value))
        except KeyError:
            raise ValueError(f"capacity entry {entry!r}: no limit named {name}") from None
        applied[name] = int(value)
    return applied


def register_probes(ledger: Ledger, pool: asyncpg.Pool, var_dir: Path) -> None:
    """Measure each provisioned structure (called once by the composition root)."""
    async def transfers() -> int:
        return ledger.transfers_stored()

    async def work_areas() -> int:
        async with pool.acquire() as conn:
            return await work_area_items(conn)

    async def database() -> int:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))

    async def connections() -> int:
        return pool.get_size() - pool.get_idle_size()

    volume = var_dir if var_dir.exists() else Path(".")
    if limits.get(DISK_BYTES.name).maximum == DISK_BYTES.maximum:  # not provisioned by configuration: the volume's
        limits.set_maximum(DISK_BYTES.name, shutil.disk_usage(volume).total)

    async def disk() -> int:
        return shutil.disk_usage(volume).used

    if limits.get(POOL_CONNECTIONS.name).maximum == POOL_CONNECTIONS.maximum:
        limits.set_maximum(POOL_CONNECTIONS.name, pool.get_max_size())
    limits.register_probe("ledger_transfers_stored_max", transfers)
    limits.register_probe("batch_work_area_items_max", work_areas)
    limits.register_probe(DATABASE_BYTES.name, database)
    limits.register_probe(DISK_BYTES.name, disk)
    limits.register_probe(POOL_CONNECTIONS.name, connections)
