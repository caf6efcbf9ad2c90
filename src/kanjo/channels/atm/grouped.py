"""The channel's journal statements on the ATMs' busiest path, grouped across concurrent messages (one statement and
one commit for many; platform/coalesce.py): claiming a message, recording its answer, reading and settling a cash
item for its acknowledgement. Each answers exactly as its single form in store.py does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from kanjo.channels.atm import store
from kanjo.platform.coalesce import Coalescer


@dataclass(frozen=True, slots=True)
class ClaimIn:
    atm_id: str
    journal_no: int
    operation: str
    fingerprint: bytes
    business_date: dt.date
    stale_after_s: float


@dataclass(frozen=True, slots=True)
class AnswerIn:
    atm_id: str
    journal_no: int
    answer: dict[str, Any]
    recorded: dict[str, Any]  # account_id, card_id, amount_minor, fee_minor, fee_rule, hold_state, ack_deadline


@dataclass(frozen=True, slots=True)
class CashItemIn:
    atm_id: str
    journal_no: int
    operation: str


@dataclass(frozen=True, slots=True)
class SettleIn:
    atm_id: str
    journal_no: int
    hold_state: str
    dispensed_minor: int
    ack_answer: dict[str, Any]


# -- claim ---------------------------------------------------------------------------------------------------

async def _claim_one(conn: asyncpg.Connection, c: ClaimIn) -> store.Claimed:
    return await store.claim(conn, c.atm_id, c.journal_no, c.operation, c.fingerprint, c.business_date,
                             c.stale_after_s)


async def _claim_many(conn: asyncpg.Connection, items: Sequence[ClaimIn]) -> list[store.Claimed]:
    rows = await conn.fetch(
        """INSERT INTO atm.transactions (atm_id, journal_no, operation, fingerprint, state, business_date)
           SELECT a, j, o, f, 'processing', d
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::date[]) AS u(a, j, o, f, d)
           ON CONFLICT (atm_id, journal_no) DO NOTHING RETURNING atm_id, journal_no""",
        [c.atm_id for c in items], [c.journal_no for c in items], [c.operation for c in items],
        [c.fingerprint for c in items], [c.business_date for c in items])
    fresh = {(r["atm_id"], r["journal_no"]) for r in rows}
    claimed: list[store.Claimed] = []
    for c in items:  # a key seen before (or twice in this batch: the first took it) reads what is there
        key = (c.atm_id, c.journal_no)
        if key in fresh:
            fresh.discard(key)
            claimed.append(store.Claimed(True))
        else:
            claimed.append(await _claim_one(conn, c))
    return claimed


# -- the answer ----------------------------------------------------------------------------------------------

_RECORDED = ("account_id", "card_id", "amount_minor", "fee_minor", "fee_rule", "hold_state", "ack_deadline")


async def _answer_one(conn: asyncpg.Connection, a: AnswerIn) -> None:
    await store.record_answer(conn, a.atm_id, a.journal_no, a.answer, **a.recorded)


async def _answer_many(conn: asyncpg.Connection, items: Sequence[AnswerIn]) -> list[None]:
    columns = {name: [a.recorded.get(name) for a in items] for name in _RECORDED}
    await conn.execute(
        """UPDATE atm.transactions t SET state = 'answered', answer = u.answer, account_id = u.account_id,
               card_id = u.card_id, amount_minor = u.amount_minor, fee_minor = u.fee_minor, fee_rule = u.fee_rule,
               hold_state = u.hold_state, ack_deadline = u.ack_deadline, updated_at = now()
           FROM unnest($1::text[], $2::bigint[], $3::jsonb[], $4::uuid[], $5::uuid[], $6::bigint[], $7::bigint[],
                       $8::text[], $9::text[], $10::timestamptz[])
                AS u(atm_id, journal_no, answer, account_id, card_id, amount_minor, fee_minor, fee_rule, hold_state,
                     ack_deadline)
           WHERE t.atm_id = u.atm_id AND t.journal_no = u.journal_no""",
        [a.atm_id for a in items], [a.journal_no for a in items],
        [orjson.dumps(a.answer).decode() for a in items], *columns.values())
    return [None] * len(items)


# -- a cash item and its acknowledgement ---------------------------------------------------------------------

async def _cash_item_one(conn: asyncpg.Connection, c: CashItemIn) -> store.CashItem | None:
    return await store.cash_item(conn, c.atm_id, c.journal_no, c.operation)


async def _cash_items_many(conn: asyncpg.Connection, items: Sequence[CashItemIn]) -> list[store.CashItem | None]:
    rows = await conn.fetch(
        f"""SELECT {store.CASH_ITEM_COLUMNS_OF_T} FROM atm.transactions t
            JOIN unnest($1::text[], $2::bigint[], $3::text[]) AS u(atm_id, journal_no, operation)
              ON t.atm_id = u.atm_id AND t.journal_no = u.journal_no AND t.operation = u.operation
            WHERE t.hold_state IS NOT NULL""",
        [c.atm_id for c in items], [c.journal_no for c in items], [c.operation for c in items])
    found = {(r["atm_id"], r["journal_no"]): store.cash_item_of(r) for r in rows}
    return [found.get((c.atm_id, c.journal_no)) for c in items]


async def _settle_one(conn: asyncpg.Connection, s: SettleIn) -> bool:
    return await store.settle_authorised(conn, s.atm_id, s.journal_no, s.hold_state, s.dispensed_minor,
                                         s.ack_answer)


async def _settle_many(conn: asyncpg.Connection, items: Sequence[SettleIn]) -> list[bool]:
    keys = [(s.atm_id, s.journal_no) for s in items]
    if len(set(keys)) < len(keys):  # the same acknowledgement twice at once: one settles, the other reads after it
        return [await _settle_one(conn, s) for s in items]
    rows = await conn.fetch(
        """UPDATE atm.transactions t SET hold_state = u.hold_state, dispensed_minor = u.dispensed_minor,
               ack_answer = u.ack_answer, updated_at = now()
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::jsonb[])
                AS u(atm_id, journal_no, hold_state, dispensed_minor, ack_answer)
           WHERE t.atm_id = u.atm_id AND t.journal_no = u.journal_no AND t.hold_state = 'authorised'
           RETURNING t.atm_id, t.journal_no""",
        [s.atm_id for s in items], [s.journal_no for s in items], [s.hold_state for s in items],
        [s.dispensed_minor for s in items], [orjson.dumps(s.ack_answer).decode() for s in items])
    settled = {(r["atm_id"], r["journal_no"]) for r in rows}
    return [(s.atm_id, s.journal_no) in settled for s in items]


class Grouped:
    """The channel's grouped statements, on its pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.claim = Coalescer("atm_claim", pool, _claim_many, _claim_one)
        self.record_answer = Coalescer("atm_record_answer", pool, _answer_many, _answer_one)
        self.cash_item = Coalescer("atm_cash_item", pool, _cash_items_many, _cash_item_one)
        self.settle_authorised = Coalescer("atm_settle_authorised", pool, _settle_many, _settle_one)
