"""SQL of the customers context: customers, processed request ids and history, on the caller's connection."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from kanjo.customers.model import (
    Contact,
    Customer,
    CustomerKind,
    CustomerStatus,
    Event,
    IdentityVerification,
    phone_digits,
)

CUSTOMER_COLUMNS = (
    "id", "cif_number", "kind", "name_kanji", "name_kana", "phone", "email", "postal_code", "address",
    "birth_date", "registration_date", "identity_verification", "identity_verified_on", "status",
    "status_reason", "died_on", "created_at", "updated_at", "version",
)
_SELECT = ", ".join(CUSTOMER_COLUMNS)


def customer_from_row(r: asyncpg.Record) -> Customer:
    return Customer(
        id=r["id"], cif_number=r["cif_number"], kind=CustomerKind(r["kind"]), name_kanji=r["name_kanji"],
        name_kana=r["name_kana"],
        contact=Contact(phone=r["phone"], email=r["email"], postal_code=r["postal_code"], address=r["address"]),
        birth_date=r["birth_date"], registration_date=r["registration_date"],
        identity_verification=IdentityVerification(r["identity_verification"]),
        identity_verified_on=r["identity_verified_on"], status=CustomerStatus(r["status"]),
        status_reason=r["status_reason"], died_on=r["died_on"], created_at=r["created_at"],
        updated_at=r["updated_at"], version=r["version"],
    )


# -- customers ------------------------------------------------------------------------------------


async def next_cif_number(conn: asyncpg.Connection) -> int:
    """Raises asyncpg.SequenceGeneratorLimitExceededError once every 10-digit number is used."""
    value: int = await conn.fetchval("SELECT nextval('customers.cif_number_seq')")
    return value


async def insert_customer(conn: asyncpg.Connection, c: Customer) -> None:
    await conn.execute(
        f"INSERT INTO customers.customers ({_SELECT}, phone_digits)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        *_values(c), phone_digits(c.contact.phone),
    )


async def load_customer(conn: asyncpg.Connection, customer_id: int, *, lock: bool = False) -> Customer | None:
    row = await conn.fetchrow(
        f"SELECT {_SELECT} FROM customers.customers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        customer_id,
    )
    return customer_from_row(row) if row is not None else None


async def update_customer(conn: asyncpg.Connection, c: Customer) -> None:
    """Writes the next version; the row must still hold the previous one (the caller holds its lock)."""
    status = await conn.execute(
        "UPDATE customers.customers SET phone = $3, email = $4, postal_code = $5, address = $6,"
        " identity_verification = $7, identity_verified_on = $8, status = $9, status_reason = $10,"
        " died_on = $11, updated_at = $12, version = $13, phone_digits = $14"
        " WHERE id = $1 AND version = $2",
        c.id, c.version - 1, c.contact.phone, c.contact.email, c.contact.postal_code, c.contact.address,
        c.identity_verification.value, c.identity_verified_on, c.status.value, c.status_reason, c.died_on,
        c.updated_at, c.version, phone_digits(c.contact.phone),
    )
    if status != "UPDATE 1":
        raise RuntimeError(f"customer {c.cif_text} changed under its lock (expected version {c.version - 1})")


def _values(c: Customer) -> tuple[Any, ...]:
    return (
        c.id, c.cif_number, c.kind.value, c.name_kanji, c.name_kana, c.contact.phone, c.contact.email,
        c.contact.postal_code, c.contact.address, c.birth_date, c.registration_date,
        c.identity_verification.value, c.identity_verified_on, c.status.value, c.status_reason, c.died_on,
        c.created_at, c.updated_at, c.version,
    )


async def search(conn: asyncpg.Connection, *, kana_prefix: str | None, phone: str | None,
                 rows_max: int) -> list[Customer]:
    """By kana prefix (a range on the "C"-collated index, in 五十音 order) and/or by phone digits."""
    where: list[str] = []
    args: list[Any] = []
    if kana_prefix is not None:
        args += [kana_prefix, _prefix_end(kana_prefix)]
        where.append(f"name_kana >= ${len(args) - 1} AND name_kana < ${len(args)}")
    if phone is not None:
        args.append(phone)
        where.append(f"phone_digits = ${len(args)}")
    if not where:
        raise ValueError("search needs a kana prefix or a phone number")
    args.append(rows_max)
    rows = await conn.fetch(
        f"SELECT {_SELECT} FROM customers.customers WHERE {' AND '.join(where)}"
        f" ORDER BY name_kana, cif_number LIMIT ${len(args)}",
        *args,
    )
    return [customer_from_row(r) for r in rows]


def _prefix_end(prefix: str) -> str:
    """The first string after every string that starts with `prefix`, in code-point order."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# -- processed requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessedRequest:
    request_id: int
    customer_id: int
    kind: str
    fields: dict[str, Any]
    outcome: str  # "ok" or "illegal_transition"
    result: dict[str, Any]


async def load_request(conn: asyncpg.Connection, request_id: int) -> ProcessedRequest | None:
    row = await conn.fetchrow(
        "SELECT request_id, customer_id, kind, fields::text, outcome, result::text"
        " FROM customers.requests WHERE request_id = $1",
        request_id,
    )
    if row is None:
        return None
    return ProcessedRequest(row[0], row[1], row[2], json.loads(row[3]), row[4], json.loads(row[5]))


async def insert_request(conn: asyncpg.Connection, request: ProcessedRequest, at: dt.datetime) -> None:
    await conn.execute(
        "INSERT INTO customers.requests (request_id, customer_id, kind, fields, outcome, result, processed_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7)",
        request.request_id, request.customer_id, request.kind, _json(request.fields), request.outcome,
        _json(request.result), at,
    )


# -- history --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    customer_id: int
    request_id: int
    at: dt.datetime
    kind: str
    version: int
    details: dict[str, Any]


async def append_event(conn: asyncpg.Connection, customer: Customer, request_id: int, event: Event) -> None:
    await conn.execute(
        "INSERT INTO customers.events (customer_id, request_id, at, kind, version, details)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        customer.id, request_id, customer.updated_at, event.kind, customer.version, _json(event.details),
    )


async def load_events(conn: asyncpg.Connection, customer_id: int, rows_max: int) -> list[HistoryEntry]:
    rows = await conn.fetch(
        "SELECT customer_id, request_id, at, kind, version, details::text FROM customers.events"
        " WHERE customer_id = $1 ORDER BY event_id LIMIT $2",
        customer_id, rows_max,
    )
    return [HistoryEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- snapshots (the stored result of a request) ---------------------------------------------------


def customer_to_json(c: Customer) -> dict[str, Any]:
    return {
        "id": f"{c.id:032x}", "cif_number": c.cif_number, "kind": c.kind.value, "name_kanji": c.name_kanji,
        "name_kana": c.name_kana, "phone": c.contact.phone, "email": c.contact.email,
        "postal_code": c.contact.postal_code, "address": c.contact.address, "birth_date": _date(c.birth_date),
        "registration_date": _date(c.registration_date), "identity_verification": c.identity_verification.value,
        "identity_verified_on": _date(c.identity_verified_on), "status": c.status.value,
        "status_reason": c.status_reason, "died_on": _date(c.died_on), "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(), "version": c.version,
    }


def customer_from_json(d: dict[str, Any]) -> Customer:
    return Customer(
        id=int(d["id"], 16), cif_number=d["cif_number"], kind=CustomerKind(d["kind"]), name_kanji=d["name_kanji"],
        name_kana=d["name_kana"],
        contact=Contact(phone=d["phone"], email=d["email"], postal_code=d["postal_code"], address=d["address"]),
        birth_date=_parse_date(d["birth_date"]), registration_date=_parse_date(d["registration_date"]),
        identity_verification=IdentityVerification(d["identity_verification"]),
        identity_verified_on=_parse_date(d["identity_verified_on"]), status=CustomerStatus(d["status"]),
        status_reason=d["status_reason"], died_on=_parse_date(d["died_on"]),
        created_at=dt.datetime.fromisoformat(d["created_at"]), updated_at=dt.datetime.fromisoformat(d["updated_at"]),
        version=d["version"],
    )


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value is not None else None
