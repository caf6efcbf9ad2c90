"""SQL of the ATM channel: the machine registry, the transaction journal (idempotency of (atm_id, journal_no)),
in-doubt items and screen notices."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

# -- machines ------------------------------------------------------------------------------------------------

async def register_machines(conn: asyncpg.Connection, machines: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """Insert new machines; an existing id keeps its registration. Returns (atm_id, kind) as stored."""
    rows = await conn.fetch(
        """INSERT INTO atm.machines (atm_id, kind, location)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
           ON CONFLICT (atm_id) DO NOTHING""",
        [m[0] for m in machines], [m[1] for m in machines], [m[2] for m in machines])
    del rows
    found = await conn.fetch("SELECT atm_id, kind FROM atm.machines WHERE atm_id = ANY($1::text[])",
                             [m[0] for m in machines])
    return [(r["atm_id"], r["kind"]) for r in found]


async def all_machines(conn: asyncpg.Connection, limit: int) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT atm_id, kind FROM atm.machines ORDER BY atm_id LIMIT $1", limit)
    return [(r["atm_id"], r["kind"]) for r in rows]


async def machine_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM atm.machines"))


async def machine(conn: asyncpg.Connection, atm_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT atm_id, kind, location, registered_at FROM atm.machines WHERE atm_id = $1",
                               atm_id)


async def machine_counts(conn: asyncpg.Connection, atm_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT operation, coalesce(answer->>'result', state) AS result, count(*) AS n
           FROM atm.transactions WHERE atm_id = $1 GROUP BY 1, 2""", atm_id)
    return {f"{r['operation']}.{r['result']}": int(r["n"]) for r in rows}


# -- the transaction journal ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Claimed:
    """The first sight of a message (`fresh`), or what an earlier one with the same key left."""

    fresh: bool
    operation: str = ""
    fingerprint: bytes = b""
    state: str = ""
    answer: dict[str, Any] | None = None
    stale: bool = False  # processing for longer than a request can live: its process died


async def claim(conn: asyncpg.Connection, atm_id: str, journal_no: int, operation: str, fingerprint: bytes,
                business_date: dt.date, stale_after_s: float) -> Claimed:
    inserted = await conn.fetchval(
        """INSERT INTO atm.transactions (atm_id, journal_no, operation, fingerprint, state, business_date)
           VALUES ($1, $2, $3, $4, 'processing', $5) ON CONFLICT (atm_id, journal_no) DO NOTHING RETURNING true""",
        atm_id, journal_no, operation, fingerprint, business_date)
    if inserted:
        return Claimed(True)
    row = await conn.fetchrow(
        """SELECT operation, fingerprint, state, answer,
                  updated_at < now() - make_interval(secs => $3) AS stale
           FROM atm.transactions WHERE atm_id = $1 AND journal_no = $2""", atm_id, journal_no, stale_after_s)
    if row is None:  # released between the insert and the read: try once more
        return await claim(conn, atm_id, journal_no, operation, fingerprint, business_date, stale_after_s)
    answer = orjson.loads(row["answer"]) if row["answer"] is not None else None
    return Claimed(False, row["operation"], bytes(row["fingerprint"]), row["state"], answer, bool(row["stale"]))


async def take_over(conn: asyncpg.Connection, atm_id: str, journal_no: int) -> bool:
    """Claim a stale 'processing' record (its process died mid-way); the products' own idempotency makes redoing
    it safe."""
    return bool(await conn.fetchval(
        """UPDATE atm.transactions SET updated_at = now() WHERE atm_id = $1 AND journal_no = $2
           AND state = 'processing' RETURNING true""", atm_id, journal_no))


async def release(conn: asyncpg.Connection, atm_id: str, journal_no: int) -> None:
    """Forget a message that ended in a system error, so its retry is processed afresh."""
    await conn.execute("DELETE FROM atm.transactions WHERE atm_id = $1 AND journal_no = $2 AND state = 'processing'",
                       atm_id, journal_no)


async def record_answer(conn: asyncpg.Connection, atm_id: str, journal_no: int, answer: dict[str, Any], *,
                        account_id: int | None = None, card_id: int | None = None, amount_minor: int | None = None,
                        fee_minor: int | None = None, fee_rule: str | None = None, hold_state: str | None = None,
                        ack_deadline: dt.datetime | None = None) -> None:
    await conn.execute(
        """UPDATE atm.transactions SET state = 'answered', answer = $3, account_id = $4, card_id = $5,
               amount_minor = $6, fee_minor = $7, fee_rule = $8, hold_state = $9, ack_deadline = $10,
               updated_at = now()
           WHERE atm_id = $1 AND journal_no = $2""",
        atm_id, journal_no, orjson.dumps(answer).decode(), account_id, card_id, amount_minor,
        fee_minor, fee_rule, hold_state, ack_deadline)


@dataclass(frozen=True, slots=True)
class CashItem:
    """A cash item (a withdrawal, or a deposit in escrow) as the channel's journal holds it, for its acknowledgement,
    the sweep and reconciliation. For a deposit `dispensed_minor` is what the machine stored."""

    atm_id: str
    journal_no: int
    account_id: int
    card_id: int
    amount_minor: int
    fee_minor: int
    fee_rule: str | None
    hold_state: str
    ack_deadline: dt.datetime
    dispensed_minor: int | None
    ack_answer: dict[str, Any] | None
    business_date: dt.date
    operation: str = "withdrawal"


_CASH_ITEM_COLUMNS = """atm_id, journal_no, account_id, card_id, amount_minor, fee_minor, fee_rule, hold_state,
    ack_deadline, dispensed_minor, ack_answer, business_date, operation"""


CASH_ITEM_COLUMNS_OF_T = ", ".join(f"t.{c.strip()}" for c in _CASH_ITEM_COLUMNS.split(","))  # in a join, as t


def cash_item_of(r: asyncpg.Record) -> CashItem:
    return CashItem(r["atm_id"], r["journal_no"], r["account_id"], r["card_id"], r["amount_minor"],
                      r["fee_minor"], r["fee_rule"], r["hold_state"], r["ack_deadline"], r["dispensed_minor"],
                      orjson.loads(r["ack_answer"]) if r["ack_answer"] is not None else None, r["business_date"],
                      r["operation"])


async def lock_cash_item(conn: asyncpg.Connection, atm_id: str, journal_no: int,
                          operation: str = "withdrawal") -> CashItem | None:
    """The authorised cash item under this key, row-locked (the caller is in a transaction); None if there is none."""
    r = await conn.fetchrow(
        f"""SELECT {_CASH_ITEM_COLUMNS} FROM atm.transactions
            WHERE atm_id = $1 AND journal_no = $2 AND operation = $3 AND hold_state IS NOT NULL
            FOR UPDATE""", atm_id, journal_no, operation)
    return None if r is None else cash_item_of(r)


async def cash_item(conn: asyncpg.Connection, atm_id: str, journal_no: int,
                     operation: str = "withdrawal") -> CashItem | None:
    r = await conn.fetchrow(
        f"""SELECT {_CASH_ITEM_COLUMNS} FROM atm.transactions
            WHERE atm_id = $1 AND journal_no = $2 AND operation = $3 AND hold_state IS NOT NULL""",
        atm_id, journal_no, operation)
    return None if r is None else cash_item_of(r)


async def settle_authorised(conn: asyncpg.Connection, atm_id: str, journal_no: int, hold_state: str,
                            dispensed_minor: int, ack_answer: dict[str, Any]) -> bool:
    """Record an acknowledgement's outcome if the withdrawal is still waiting for it (else False: the sweep or the
    journal settled it first, and the caller takes the slow path)."""
    return bool(await conn.fetchval(
        """UPDATE atm.transactions SET hold_state = $3, dispensed_minor = $4, ack_answer = $5, updated_at = now()
           WHERE atm_id = $1 AND journal_no = $2 AND hold_state = 'authorised' RETURNING true""",
        atm_id, journal_no, hold_state, dispensed_minor, orjson.dumps(ack_answer).decode()))


async def settle_cash_item(conn: asyncpg.Connection, atm_id: str, journal_no: int, hold_state: str,
                            dispensed_minor: int | None, ack_answer: dict[str, Any] | None) -> None:
    await conn.execute(
        """UPDATE atm.transactions SET hold_state = $3, dispensed_minor = coalesce($4, dispensed_minor),
               ack_answer = coalesce($5::jsonb, ack_answer), updated_at = now()
           WHERE atm_id = $1 AND journal_no = $2""",
        atm_id, journal_no, hold_state, dispensed_minor,
        None if ack_answer is None else orjson.dumps(ack_answer).decode())


async def overdue_cash_items(conn: asyncpg.Connection, now: dt.datetime, limit: int) -> list[CashItem]:
    """Authorisations past their acknowledgement deadline, locked (skipping any an acknowledgement holds)."""
    rows = await conn.fetch(
        f"""SELECT {_CASH_ITEM_COLUMNS} FROM atm.transactions
            WHERE hold_state = 'authorised' AND ack_deadline < $1
            ORDER BY ack_deadline LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit)
    return [cash_item_of(r) for r in rows]


async def waiting_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM atm.transactions WHERE hold_state = 'authorised'"))


# -- in doubt ------------------------------------------------------------------------------------------------

async def open_in_doubt(conn: asyncpg.Connection, w: CashItem, reason: str) -> None:
    await conn.execute(
        """INSERT INTO atm.in_doubt (atm_id, journal_no, account_id, amount_minor, reason, operation)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        w.atm_id, w.journal_no, w.account_id, w.amount_minor, reason, w.operation)


async def in_doubt(conn: asyncpg.Connection, atm_id: str, journal_no: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT atm_says, resolved_at, resolution FROM atm.in_doubt WHERE atm_id = $1 AND journal_no = $2""",
        atm_id, journal_no)


async def resolve_in_doubt(conn: asyncpg.Connection, atm_id: str, journal_no: int, atm_says: str, resolution: str,
                           correction_transfer_id: int | None) -> None:
    await conn.execute(
        """UPDATE atm.in_doubt SET atm_says = $3, resolution = $4, correction_transfer_id = $5, resolved_at = now()
           WHERE atm_id = $1 AND journal_no = $2""",
        atm_id, journal_no, atm_says, resolution, correction_transfer_id)


async def in_doubt_summary(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE resolved_at IS NULL) AS open,
                  coalesce(sum(amount_minor) FILTER (WHERE resolved_at IS NULL), 0) AS open_minor,
                  count(*) FILTER (WHERE resolution = 'posted') AS posted,
                  count(*) FILTER (WHERE resolution = 'nothing_dispensed') AS nothing_dispensed,
                  count(*) FILTER (WHERE resolution = 'credited') AS credited,
                  count(*) FILTER (WHERE resolution = 'cash_returned') AS cash_returned,
                  count(*) FILTER (WHERE resolution = 'break') AS breaks
           FROM atm.in_doubt""")
    assert row is not None
    return {k: int(row[k]) for k in ("open", "open_minor", "posted", "nothing_dispensed", "credited",
                                     "cash_returned", "breaks")}


async def open_in_doubt_items(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT atm_id, journal_no, operation, account_id, amount_minor, reason, opened_at, atm_says, resolution
           FROM atm.in_doubt WHERE resolved_at IS NULL OR resolution = 'break' ORDER BY opened_at LIMIT $1""", limit)
    return [{**dict(r), "account_id": str(uuid.UUID(int=r["account_id"])), "opened_at": r["opened_at"].isoformat()}
            for r in rows]


# -- notices -------------------------------------------------------------------------------------------------

async def add_notice(conn: asyncpg.Connection, text: str, atm_ids: list[str] | None, starts_at: dt.datetime,
                     ends_at: dt.datetime, created_by: str) -> int:
    return int(await conn.fetchval(
        """INSERT INTO atm.notices (text, atm_ids, starts_at, ends_at, created_by) VALUES ($1, $2, $3, $4, $5)
           RETURNING id""", text, atm_ids, starts_at, ends_at, created_by))


async def active_notice_count(conn: asyncpg.Connection, now: dt.datetime) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM atm.notices WHERE ends_at > $1", now))


async def notices_for(conn: asyncpg.Connection, atm_id: str, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, text, starts_at, ends_at FROM atm.notices
           WHERE starts_at <= $2 AND ends_at > $2 AND (atm_ids IS NULL OR $1 = ANY(atm_ids))
           ORDER BY id LIMIT $3""", atm_id, now, limit)
    return [{"id": r["id"], "text": r["text"], "starts_at": r["starts_at"].isoformat(),
             "ends_at": r["ends_at"].isoformat()} for r in rows]


async def withdraw_notice(conn: asyncpg.Connection, notice_id: int, now: dt.datetime) -> bool:
    return bool(await conn.fetchval(
        """UPDATE atm.notices SET ends_at = greatest($2, starts_at + interval '1 second')
           WHERE id = $1 AND ends_at > $2 RETURNING true""", notice_id, now))

