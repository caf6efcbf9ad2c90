"""Plain-SQL migrations: each context ships `migrations/NNN_name.sql`, applied once, in order, one transaction each."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import asyncpg

# Contexts in dependency order; each owns its own schema.
CONTEXTS = ("ledger", "customers", "deposits", "cards", "time_deposits", "fees", "loans", "channels.atm",
            "channels.teller", "channels.openapi", "batch", "ops")


@dataclass(frozen=True)
class Migration:
    context: str
    version: int
    name: str
    sql: str


def discover(context: str) -> list[Migration]:
    try:
        folder = importlib.resources.files(f"kanjo.{context}") / "migrations"
    except ModuleNotFoundError:
        return []  # a context not written yet
    if not folder.is_dir():
        return []
    found: list[Migration] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(context, version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; returns the names applied. Concurrent callers serialise on the table lock."""
    await conn.execute(
        """
        CREATE SCHEMA IF NOT EXISTS kanjo_meta;
        CREATE TABLE IF NOT EXISTS kanjo_meta.migrations (
            context text NOT NULL,
            version integer NOT NULL,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (context, version)
        );
        """
    )
    applied: list[str] = []
    for context in CONTEXTS:
        for migration in discover(context):
            async with conn.transaction():
                await conn.execute("LOCK TABLE kanjo_meta.migrations IN EXCLUSIVE MODE")
                done = await conn.fetchval(
                    "SELECT 1 FROM kanjo_meta.migrations WHERE context = $1 AND version = $2",
                    migration.context,
                    migration.version,
                )
                if done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO kanjo_meta.migrations (context, version, name) VALUES ($1, $2, $3)",
                    migration.context,
                    migration.version,
                    migration.name,
                )
                applied.append(f"{migration.context}/{migration.name}")
    return applied
