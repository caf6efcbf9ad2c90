"""Recording a fee's charge — on the ATMs' busiest path, the acknowledgement of a withdrawal with a fee — grouped
across concurrent callers (one statement and one commit for many: platform/coalesce.py); it writes as
store.insert_charge does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import asyncpg

from kanjo.fees import store
from kanjo.platform.coalesce import Coalescer


@dataclass(frozen=True, slots=True)
class ChargeIn:
    fee_id: int
    request_id: int
    transfer_id: int
    account_id: int
    amount_minor: int
    rule_id: str
    channel: str
    reason: str
    charged_at: dt.datetime
    business_date: dt.date


async def _charge_one(conn: asyncpg.Connection, c: ChargeIn) -> None:
    await store.insert_charge(conn, *astuple(c))


async def _charges_many(conn: asyncpg.Connection, items: Sequence[ChargeIn]) -> list[None]:
    await store.insert_charges(conn, [astuple(c) for c in items])
    return [None] * len(items)


class Grouped:
    """The context's grouped statements, on its pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.insert_charge = Coalescer("fees_insert_charge", pool, _charges_many, _charge_one)
