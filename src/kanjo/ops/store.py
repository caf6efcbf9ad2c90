"""SQL of the ops context (schema `ops`): alerts written whole by id, read back at start, listed, pruned."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kanjo.ops.model import Alert, AlertState, Severity

COLUMNS = ("id", "alert_key", "rule", "component", "subject", "source", "severity", "message", "state", "first_seen",
           "last_seen", "resolved_at", "count")
TYPES = ("uuid", "text", "text", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz",
         "timestamptz", "bigint")


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)


def _row(alert: Alert) -> tuple[Any, ...]:
    return (alert.id, alert.key, alert.rule, alert.component, alert.subject, alert.source, alert.severity.value,
            alert.message, alert.state.value, _at(alert.first_seen_ms), _at(alert.last_seen_ms),
            None if alert.resolved_at_ms is None else _at(alert.resolved_at_ms), alert.count)


def _alert(record: asyncpg.Record) -> Alert:
    return Alert(id=record["id"], key=record["alert_key"], rule=record["rule"], component=record["component"],
                 subject=record["subject"], source=record["source"], severity=Severity(record["severity"]),
                 message=record["message"], state=AlertState(record["state"]),
                 first_seen_ms=_ms(record["first_seen"]), last_seen_ms=_ms(record["last_seen"]),
                 resolved_at_ms=None if record["resolved_at"] is None else _ms(record["resolved_at"]),
                 count=record["count"])


_UPSERT = (
    f"INSERT INTO ops.alerts ({', '.join(COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${i}::{t}[]' for i, t in enumerate(TYPES, 1))}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in ("id", "alert_key", "first_seen"))
)


async def save(conn: asyncpg.Connection, alerts: list[Alert]) -> None:
    """Write alerts whole (insert or update by id), resolved ones first: a key resolved and opened again in the
    same write never meets itself in the one-open-per-key index."""
    async with conn.transaction():
        for state in (AlertState.RESOLVED, AlertState.OPEN):
            rows = [_row(a) for a in alerts if a.state is state]
            if rows:
                await conn.execute(_UPSERT, *(list(column) for column in zip(*rows, strict=True)))


async def load_open(conn: asyncpg.Connection) -> list[Alert]:
    records = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM ops.alerts WHERE state = 'open'")
    return [_alert(r) for r in records]


async def prune_history(conn: asyncpg.Connection, keep: int) -> int:
    """Delete the resolved alerts beyond the newest `keep`; returns how many resolved alerts remain."""
    await conn.execute(
        "DELETE FROM ops.alerts WHERE id IN (SELECT id FROM ops.alerts WHERE state = 'resolved' "
        "ORDER BY resolved_at DESC, id DESC OFFSET $1)", keep)
    kept: int = await conn.fetchval("SELECT count(*) FROM ops.alerts WHERE state = 'resolved'")
    return kept


async def list_alerts(conn: asyncpg.Connection, state: AlertState | None, limit: int, offset: int) -> list[Alert]:
    """Newest first; `state` None lists both."""
    records = await conn.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM ops.alerts WHERE ($1::text IS NULL OR state = $1) "
        "ORDER BY first_seen DESC, id DESC LIMIT $2 OFFSET $3",
        None if state is None else state.value, limit, offset)
    return [_alert(r) for r in records]
