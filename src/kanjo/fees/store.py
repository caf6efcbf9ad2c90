"""SQL of the fees context (its own schema only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

_CHARGE = ("fee_id, request_id, transfer_id, account_id, amount_minor, rule_id, channel, reason, charged_at,"
           " business_date")


async def charge_by_request(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_CHARGE} FROM fees.charges WHERE request_id = $1", request_id)


async def charges(conn: asyncpg.Connection, fee_ids: Sequence[int]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_CHARGE} FROM fees.charges WHERE fee_id = ANY($1::uuid[])", list(fee_ids))


async def fee_ids_charged(conn: asyncpg.Connection, channel: str | None, charged_from: dt.datetime,
                          charged_until: dt.datetime, limit: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT fee_id FROM fees.charges WHERE charged_at >= $1 AND charged_at < $2"
        " AND ($3::text IS NULL OR channel = $3) ORDER BY charged_at, fee_id LIMIT $4",
        charged_from, charged_until, channel, limit)
    return [r[0] for r in rows]


async def insert_charge(conn: asyncpg.Connection, fee_id: int, request_id: int, transfer_id: int, account_id: int,
                        amount_minor: int, rule_id: str, channel: str, reason: str, charged_at: dt.datetime,
                        business_date: dt.date) -> None:
    await conn.execute(
        f"INSERT INTO fees.charges ({_CHARGE}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (request_id) DO NOTHING",
        fee_id, request_id, transfer_id, account_id, amount_minor, rule_id, channel, reason, charged_at,
        business_date)


async def insert_charges(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """insert_charge of many, in one statement: rows in `_CHARGE`'s column order."""
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        f"INSERT INTO fees.charges ({_CHARGE}) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[],"
        " $5::bigint[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::date[])"
        " ON CONFLICT (request_id) DO NOTHING", *map(list, columns))


async def refund_request(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT selection, reason FROM fees.refund_requests WHERE request_id = $1",
                               request_id)


async def insert_refund_request(conn: asyncpg.Connection, request_id: int, selection: str, reason: str) -> None:
    await conn.execute("INSERT INTO fees.refund_requests (request_id, selection, reason) VALUES ($1, $2, $3)"
                       " ON CONFLICT (request_id) DO NOTHING", request_id, selection, reason)


async def refunds(conn: asyncpg.Connection, fee_ids: Sequence[int]) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch("SELECT fee_id, refund_id, request_id, amount_minor FROM fees.refunds"
                            " WHERE fee_id = ANY($1::uuid[])", list(fee_ids))
    return {r["fee_id"]: r for r in rows}


async def insert_refunds(conn: asyncpg.Connection, rows: Sequence[tuple[int, int, int, int]]) -> None:
    """(refund_id, fee_id, request_id, amount_minor); a fee already refunded keeps its first row."""
    await conn.executemany(
        "INSERT INTO fees.refunds (refund_id, fee_id, request_id, amount_minor) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (fee_id) DO NOTHING", rows)
