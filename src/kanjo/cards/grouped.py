"""The cards' statements on the ATMs' busiest path (reading a card by number, reserving against its daily limit),
grouped across concurrent messages (one statement and one commit for many: platform/coalesce.py). Each answers
exactly as its single form in store.py does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from kanjo.cards import store
from kanjo.platform.coalesce import Coalescer


@dataclass(frozen=True, slots=True)
class ReserveIn:
    request_id: int
    card_id: int
    business_date: dt.date
    amount_minor: int


async def _card_one(conn: asyncpg.Connection, card_number: str) -> store.CardRow | None:
    return await store.card_by_number(conn, card_number)


async def _cards_many(conn: asyncpg.Connection, numbers: Sequence[str]) -> list[store.CardRow | None]:
    found = {row.card_number: row for row in await store.cards_by_number(conn, list(set(numbers)))}
    return [found.get(number) for number in numbers]


async def _reserve_one(conn: asyncpg.Connection, r: ReserveIn) -> tuple[str, int, int]:
    return await store.reserve_daily(conn, r.request_id, r.card_id, r.business_date, r.amount_minor)


async def _reserve_many(conn: asyncpg.Connection, items: Sequence[ReserveIn]) -> list[tuple[str, int, int]]:
    """In the items' order, in one transaction: two reservations of one card see each other, as in sequence."""
    rows = await conn.fetch(
        """SELECT r.outcome, r.used_minor, r.limit_minor
           FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[]) WITH ORDINALITY
                AS u(request_id, card_id, business_date, amount_minor, n)
           CROSS JOIN LATERAL cards.reserve_daily(u.request_id, u.card_id, u.business_date, u.amount_minor) AS r
           ORDER BY u.n""",
        [r.request_id for r in items], [r.card_id for r in items], [r.business_date for r in items],
        [r.amount_minor for r in items])
    return [(str(row["outcome"]), int(row["used_minor"]), int(row["limit_minor"])) for row in rows]


class Grouped:
    """The context's grouped statements, on its pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.card_by_number = Coalescer("cards_card_by_number", pool, _cards_many, _card_one)
        self.reserve_daily = Coalescer("cards_reserve_daily", pool, _reserve_many, _reserve_one)
