"""SQL of the cards context (its own schema only). Row locks are FOR NO KEY UPDATE: no key ever changes, and
inserts that reference a locked card (events, usage) need not wait for it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from kanjo.cards.model import Card, CardEvent, Status, mask_card_number

_CARD = ("card_id, issue_request_id, card_number, account_id, customer_id, status, issued_on, expires_on,"
         " cancelled_on, pin_value, pin_failures, daily_limit_minor, replaces_card_id")


@dataclass(frozen=True, slots=True)
class CardRow:
    """A card as the context itself sees it: with its number and PIN state, which never leave the context."""

    card_id: int
    issue_request_id: int
    card_number: str
    account_id: int
    customer_id: int
    status: Status
    issued_on: dt.date
    expires_on: dt.date
    cancelled_on: dt.date | None
    pin_value: bytes
    pin_failures: int
    daily_limit_minor: int
    replaces_card_id: int | None

    def public(self) -> Card:
        return Card(self.card_id, self.account_id, self.customer_id, mask_card_number(self.card_number), self.status,
                    self.issued_on, self.expires_on, self.daily_limit_minor, self.replaces_card_id, self.cancelled_on)


def _row(r: asyncpg.Record | None) -> CardRow | None:
    if r is None:
        return None
    return CardRow(r["card_id"], r["issue_request_id"], r["card_number"], r["account_id"], r["customer_id"],
                   Status(r["status"]), r["issued_on"], r["expires_on"], r["cancelled_on"], bytes(r["pin_value"]),
                   r["pin_failures"], r["daily_limit_minor"], r["replaces_card_id"])


def _lock(for_update: bool) -> str:
    return " FOR NO KEY UPDATE" if for_update else ""


async def card(conn: asyncpg.Connection, card_id: int, *, for_update: bool = False) -> CardRow | None:
    return _row(await conn.fetchrow(f"SELECT {_CARD} FROM cards.cards WHERE card_id = $1{_lock(for_update)}",
                                    card_id))


async def card_by_number(conn: asyncpg.Connection, card_number: str) -> CardRow | None:
    return _row(await conn.fetchrow(f"SELECT {_CARD} FROM cards.cards WHERE card_number = $1", card_number))


async def cards_by_number(conn: asyncpg.Connection, card_numbers: list[str]) -> list[CardRow]:
    rows = await conn.fetch(f"SELECT {_CARD} FROM cards.cards WHERE card_number = ANY($1::text[])", card_numbers)
    return [r for r in map(_row, rows) if r is not None]


async def cards_where(conn: asyncpg.Connection, column: str, value: int, limit: int) -> list[CardRow]:
    """Cards of an account or a customer, oldest first."""
    if column not in ("account_id", "customer_id"):
        raise ValueError(f"cards are listed by account_id or customer_id, not {column}")
    rows = await conn.fetch(f"SELECT {_CARD} FROM cards.cards WHERE {column} = $1 ORDER BY issued_on, card_number"
                            " LIMIT $2", value, limit)
    return [r for r in map(_row, rows) if r is not None]


async def live_card_of_account(conn: asyncpg.Connection, account_id: int) -> CardRow | None:
    return _row(await conn.fetchrow(f"SELECT {_CARD} FROM cards.cards WHERE account_id = $1"
                                    " AND status <> 'cancelled'", account_id))


async def next_serial(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT nextval('cards.card_serial')"))


async def insert_card(conn: asyncpg.Connection, c: CardRow) -> None:
    await conn.execute(
        f"INSERT INTO cards.cards ({_CARD}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        c.card_id, c.issue_request_id, c.card_number, c.account_id, c.customer_id, c.status.value, c.issued_on,
        c.expires_on, c.cancelled_on, c.pin_value, c.pin_failures, c.daily_limit_minor, c.replaces_card_id)


async def set_status(conn: asyncpg.Connection, card_id: int, status: Status, cancelled_on: dt.date | None) -> None:
    await conn.execute("UPDATE cards.cards SET status = $2, cancelled_on = $3 WHERE card_id = $1",
                       card_id, status.value, cancelled_on)


async def set_pin_failures(conn: asyncpg.Connection, card_id: int, pin_failures: int) -> None:
    await conn.execute("UPDATE cards.cards SET pin_failures = $2 WHERE card_id = $1", card_id, pin_failures)


async def set_pin(conn: asyncpg.Connection, card_id: int, pin_value: bytes) -> None:
    await conn.execute("UPDATE cards.cards SET pin_value = $2, pin_failures = 0 WHERE card_id = $1",
                       card_id, pin_value)


async def set_daily_limit(conn: asyncpg.Connection, card_id: int, limit_minor: int) -> None:
    await conn.execute("UPDATE cards.cards SET daily_limit_minor = $2 WHERE card_id = $1", card_id, limit_minor)


# -- requests and events ---------------------------------------------------------------------------------

async def request(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT command, card_id, fingerprint FROM cards.requests WHERE request_id = $1",
                               request_id)


async def claim_request(conn: asyncpg.Connection, request_id: int, command: str, card_id: int,
                        fingerprint: str) -> bool:
    """False when the request id is taken (a concurrent holder of it is waited for, then seen)."""
    done = await conn.fetchval(
        "INSERT INTO cards.requests (request_id, command, card_id, fingerprint) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING true", request_id, command, card_id, fingerprint)
    return bool(done)


async def insert_event(conn: asyncpg.Connection, card_id: int, request_id: int | None, kind: str,
                       status_after: Status, actor: str, reason: str, business_date: dt.date) -> None:
    await conn.execute(
        "INSERT INTO cards.card_events (card_id, request_id, kind, status_after, actor, reason, business_date)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        card_id, request_id, kind, status_after.value, actor, reason, business_date)


async def events(conn: asyncpg.Connection, card_id: int, limit: int) -> list[CardEvent]:
    rows = await conn.fetch(
        "SELECT event_id, card_id, kind, status_after, actor, reason, at, business_date FROM cards.card_events"
        " WHERE card_id = $1 ORDER BY event_id LIMIT $2", card_id, limit)
    return [CardEvent(r["event_id"], r["card_id"], r["kind"], Status(r["status_after"]), r["actor"], r["reason"],
                      r["at"], r["business_date"]) for r in rows]


# -- daily usage ----------------------------------------------------------------------------------------

_RESERVATION = ("request_id, card_id, business_date, amount_minor, state, remaining_minor, limit_minor,"
                " released_at")


async def reservation(conn: asyncpg.Connection, request_id: int, *, for_update: bool = False
                      ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_RESERVATION} FROM cards.reservations WHERE request_id = $1{lock}",
                               request_id)




async def reserve_daily(conn: asyncpg.Connection, request_id: int, card_id: int, business_date: dt.date,
                        amount_minor: int) -> tuple[str, int, int]:
    """(outcome, used, limit) of cards.reserve_daily: 'reserved', 'refused', 'replay' or 'unknown_card'."""
    row = await conn.fetchrow("SELECT outcome, used_minor, limit_minor FROM cards.reserve_daily($1, $2, $3, $4)",
                              request_id, card_id, business_date, amount_minor)
    assert row is not None
    return str(row["outcome"]), int(row["used_minor"]), int(row["limit_minor"])




async def tombstone_reservation(conn: asyncpg.Connection, request_id: int, business_date: dt.date) -> bool:
    """A release that came first: the id is spent, so a late reservation under it reserves nothing."""
    done = await conn.fetchval(
        "INSERT INTO cards.reservations (request_id, card_id, business_date, amount_minor, state, released_at)"
        " VALUES ($1, NULL, $2, 0, 'released', now()) ON CONFLICT (request_id) DO NOTHING RETURNING true",
        request_id, business_date)
    return bool(done)


async def mark_released(conn: asyncpg.Connection, request_id: int) -> None:
    await conn.execute("UPDATE cards.reservations SET state = 'released', released_at = now()"
                       " WHERE request_id = $1", request_id)


async def used(conn: asyncpg.Connection, card_id: int, business_date: dt.date) -> int:
    found = await conn.fetchval("SELECT used_minor FROM cards.daily_usage WHERE card_id = $1 AND business_date = $2",
                                card_id, business_date)
    return int(found or 0)




async def take_usage(conn: asyncpg.Connection, card_id: int, business_date: dt.date, amount_minor: int) -> int | None:
    """The usage after giving `amount_minor` back; None when there was no such usage (a broken invariant)."""
    found = await conn.fetchval(
        "UPDATE cards.daily_usage SET used_minor = used_minor - $3 WHERE card_id = $1 AND business_date = $2"
        " AND used_minor >= $3 RETURNING used_minor", card_id, business_date, amount_minor)
    return None if found is None else int(found)


async def purge_usage(conn: asyncpg.Connection, before: dt.date, rows_max: int) -> int:
    """Delete up to `rows_max` usage rows of business dates before `before` with their reservations, and up to
    `rows_max` reservations of those dates that count nothing (refused, released); the number of rows deleted."""
    keys = await conn.fetch("SELECT card_id, business_date FROM cards.daily_usage WHERE business_date < $1"
                            " ORDER BY business_date, card_id LIMIT $2 FOR UPDATE", before, rows_max)
    cards_, dates = [k["card_id"] for k in keys], [k["business_date"] for k in keys]
    status = await conn.execute(
        "DELETE FROM cards.reservations r USING unnest($1::uuid[], $2::date[]) AS k(card_id, day)"
        " WHERE r.card_id = k.card_id AND r.business_date = k.day", cards_, dates)
    deleted = int(status.split()[-1])
    status = await conn.execute(
        "DELETE FROM cards.daily_usage u USING unnest($1::uuid[], $2::date[]) AS k(card_id, day)"
        " WHERE u.card_id = k.card_id AND u.business_date = k.day", cards_, dates)
    deleted += int(status.split()[-1])
    status = await conn.execute(
        "DELETE FROM cards.reservations WHERE request_id IN (SELECT request_id FROM cards.reservations"
        " WHERE business_date < $1 AND state <> 'reserved' LIMIT $2)", before, rows_max)
    return deleted + int(status.split()[-1])
