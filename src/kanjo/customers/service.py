"""Handlers of the customers context: one database transaction per command, each idempotent by its request id.

A command locks the customer row, then looks its request id up: a replay with the same fields answers
the first outcome (the customer as it was then, or the same refusal); the same id with other fields
is refused naming the first field that differs. A refusal that depends on the customer's state (an
illegal transition) is remembered too, so a retry never changes its answer. Invalid input changes
nothing and is not remembered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from kanjo.customers import store
from kanjo.customers.limits import CIF_NUMBER, EVENTS_ROWS, SEARCH_ROWS
from kanjo.customers.model import (
    Change,
    Contact,
    Customer,
    CustomerNotFound,
    CustomerStatus,
    IdentityVerification,
    IdentityVerificationUpdate,
    IllegalTransition,
    InvalidField,
    NewCustomer,
    RequestConflict,
    normalise_name_kana,
    normalise_phone,
    normalise_reason,
    phone_digits,
    today_in_japan,
)
from kanjo.customers.store import HistoryEntry, ProcessedRequest
from kanjo.kernel.clock import Clock, SystemClock
from kanjo.kernel.ids import format_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.platform.db import retry_serializable

SEARCH_ROWS_DEFAULT = 20
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_system_clock = SystemClock()


@dataclass(frozen=True, slots=True)
class SearchResult:
    customers: list[Customer]
    more: bool  # more customers match than the page holds: narrow the search


def _now(clock: Clock | None) -> dt.datetime:
    """Wall-clock time of a change, to the microsecond PostgreSQL keeps."""
    return _EPOCH + dt.timedelta(microseconds=(clock or _system_clock).now_ns() // 1000)


# -- commands -------------------------------------------------------------------------------------


async def register_customer(pool: asyncpg.Pool, new: NewCustomer, *, clock: Clock | None = None) -> Customer:
    """Opens a CIF and assigns the next CIF number; `new.id` is the idempotency key."""
    at = _now(clock)
    new = new.validated(today_in_japan(at))
    fields = {
        "kind": new.kind.value, "name_kanji": new.name_kanji, "name_kana": new.name_kana,
        "birth_date": _date(new.birth_date), "registration_date": _date(new.registration_date),
        **_contact_fields(new.contact),
    }

    async def attempt() -> Customer | IllegalTransition:
        async with pool.acquire() as conn, conn.transaction():
            seen = await store.load_request(conn, new.id)
            if seen is not None:
                return _replay(seen, "register_customer", new.id, fields)
            try:
                cif_number = await store.next_cif_number(conn)
            except asyncpg.SequenceGeneratorLimitExceededError:
                raise LimitReached(CIF_NUMBER, CIF_NUMBER.maximum + 1) from None
            change = Customer.register(new, cif_number, at)
            await store.insert_customer(conn, change.customer)
            await _record(conn, change, new.id, "register_customer", fields, at)
        limits.observe(CIF_NUMBER.name, cif_number)
        return change.customer

    return _answer(await _retrying(attempt))


async def update_contact(pool: asyncpg.Pool, customer_id: int, request_id: int, contact: Contact, *,
                         clock: Clock | None = None) -> Customer:
    """Replaces phone, email, postal code and address (all four; email None removes it)."""
    contact = contact.normalised()
    return await _change(pool, "update_contact", customer_id, request_id, _contact_fields(contact),
                         lambda c, at, today: c.update_contact(contact, at), clock)


async def record_identity_verification(pool: asyncpg.Pool, customer_id: int, request_id: int,
                                       update: IdentityVerificationUpdate, *, clock: Clock | None = None) -> Customer:
    update = update.validated(today_in_japan(_now(clock)))
    fields = {"status": update.status.value, "verified_on": _date(update.verified_on)}
    return await _change(pool, "record_identity_verification", customer_id, request_id, fields,
                         lambda c, at, today: c.record_identity_verification(update, at, today), clock)


async def freeze_customer(pool: asyncpg.Pool, customer_id: int, request_id: int, reason: str, *,
                          clock: Clock | None = None) -> Customer:
    reason = normalise_reason(reason)
    return await _change(pool, "freeze_customer", customer_id, request_id, {"reason": reason},
                         lambda c, at, today: c.freeze(reason, at), clock)


async def unfreeze_customer(pool: asyncpg.Pool, customer_id: int, request_id: int, reason: str, *,
                            clock: Clock | None = None) -> Customer:
    reason = normalise_reason(reason)
    return await _change(pool, "unfreeze_customer", customer_id, request_id, {"reason": reason},
                         lambda c, at, today: c.unfreeze(reason, at), clock)


async def record_death(pool: asyncpg.Pool, customer_id: int, request_id: int, died_on: dt.date, reason: str, *,
                       clock: Clock | None = None) -> Customer:
    reason = normalise_reason(reason)
    today = today_in_japan(_now(clock))
    if died_on > today:
        raise InvalidField("died_on", f"must not be in the future (today is {today.isoformat()})")
    return await _change(pool, "record_death", customer_id, request_id,
                         {"died_on": died_on.isoformat(), "reason": reason},
                         lambda c, at, today: c.record_death(died_on, reason, at, today), clock)


Apply = Callable[[Customer, dt.datetime, dt.date], Change]


async def _change(pool: asyncpg.Pool, kind: str, customer_id: int, request_id: int, fields: dict[str, Any],
                  apply: Apply, clock: Clock | None) -> Customer:
    _check_request_id(request_id)

    async def attempt() -> Customer | IllegalTransition:
        at = _now(clock)
        async with pool.acquire() as conn, conn.transaction():
            customer = await store.load_customer(conn, customer_id, lock=True)  # serialises duplicates
            if customer is None:
                raise CustomerNotFound(customer_id)
            seen = await store.load_request(conn, request_id)
            if seen is not None:
                return _replay(seen, kind, customer_id, fields)
            try:
                change = apply(customer, at, today_in_japan(at))
            except IllegalTransition as refusal:
                result = {"transition": refusal.transition, "status": refusal.status, "message": str(refusal)}
                await store.insert_request(conn, ProcessedRequest(request_id, customer_id, kind, fields,
                                                                  "illegal_transition", result), at)
                return refusal  # committed: a retry answers the same refusal
            invariant(change.customer.version == customer.version + 1, "a change writes the next version")
            await store.update_customer(conn, change.customer)
            await _record(conn, change, request_id, kind, fields, at)
        return change.customer

    return _answer(await _retrying(attempt))


async def _record(conn: asyncpg.Connection, change: Change, request_id: int, kind: str, fields: dict[str, Any],
                  at: dt.datetime) -> None:
    await store.append_event(conn, change.customer, request_id, change.event)
    await store.insert_request(conn, ProcessedRequest(request_id, change.customer.id, kind, fields, "ok",
                                                      store.customer_to_json(change.customer)), at)


async def _retrying(attempt: Callable[[], Awaitable[Customer | IllegalTransition]]) -> Customer | IllegalTransition:
    """A concurrent duplicate loses the race on a primary key; once it retries, it is an ordinary replay."""
    try:
        return await retry_serializable(attempt)
    except asyncpg.UniqueViolationError:
        return await retry_serializable(attempt)


def _answer(outcome: Customer | IllegalTransition) -> Customer:
    if isinstance(outcome, IllegalTransition):
        raise outcome
    return outcome


def _replay(seen: ProcessedRequest, kind: str, customer_id: int,
            fields: dict[str, Any]) -> Customer | IllegalTransition:
    rid = format_id(seen.request_id)
    if seen.kind != kind:
        raise RequestConflict(seen.request_id, "request_id",
                              f"request_id {rid} was already used for {seen.kind}, not {kind}: a new request"
                              " needs a new request_id")
    if seen.customer_id != customer_id:
        raise RequestConflict(seen.request_id, "customer_id",
                              f"request_id {rid} was already used for customer {format_id(seen.customer_id)}")
    for name, value in fields.items():
        if seen.fields.get(name) != value:
            raise RequestConflict(seen.request_id, name,
                                  f"request_id {rid} was already used with a different {name}"
                                  f" ({seen.fields.get(name)!r}, now {value!r}): a retry must repeat the request"
                                  " exactly; a new request needs a new request_id")
    if seen.outcome == "ok":
        return store.customer_from_json(seen.result)
    return IllegalTransition(seen.result["transition"], seen.result["status"], seen.result["message"])


def _check_request_id(request_id: int) -> None:
    if not 0 < request_id < (1 << 128) - 1:
        raise InvalidField("request_id", "must not be zero or the maximum UUID")


def _contact_fields(contact: Contact) -> dict[str, Any]:
    return {"phone": contact.phone, "email": contact.email, "postal_code": contact.postal_code,
            "address": contact.address}


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- reads ----------------------------------------------------------------------------------------


async def get_customer(pool: asyncpg.Pool, customer_id: int) -> Customer:
    async with pool.acquire() as conn:
        customer = await store.load_customer(conn, customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


async def account_opening_refusal(pool: asyncpg.Pool, customer_id: int) -> str | None:
    """Why this customer may not open an account now, or None: an active customer whose identity is verified.

    取引時確認 (the Act on Prevention of Transfer of Criminal Proceeds) comes before any account opens.
    """
    async with pool.acquire() as conn:
        customer = await store.load_customer(conn, customer_id)
    if customer is None:
        return f"no customer {format_id(customer_id)}"
    if customer.status is not CustomerStatus.ACTIVE:
        return f"customer {customer.cif_text} is {customer.status.value}"
    if customer.identity_verification is not IdentityVerification.VERIFIED:
        return (f"customer {customer.cif_text}'s identity is {customer.identity_verification.value}:"
                " record identity verification (本人確認) first")
    return None


async def search_customers(pool: asyncpg.Pool, *, kana_prefix: str | None = None, phone: str | None = None,
                           limit: int = SEARCH_ROWS_DEFAULT) -> SearchResult:
    """Customers whose kana name starts with `kana_prefix` (五十音 order) and/or whose phone is `phone`.

    The prefix follows the kana rule (half-width is converted; one trailing space is kept, so
    'ﾔﾏﾀﾞ ' finds ヤマダ　タロウ but not ヤマダイ); the phone is compared by its digits.
    """
    if kana_prefix is None and phone is None:
        raise InvalidField("kana", "give a kana prefix or a phone number to search by")
    if limit < 1:
        raise InvalidField("limit", "at least 1")
    if limit > SEARCH_ROWS.maximum:
        raise LimitReached(SEARCH_ROWS, limit)
    prefix = normalise_name_kana(kana_prefix, "kana", prefix=True) if kana_prefix is not None else None
    digits = phone_digits(normalise_phone(phone)) if phone is not None else None
    async with pool.acquire() as conn:
        found = await store.search(conn, kana_prefix=prefix, phone=digits, rows_max=limit + 1)
    limits.observe(SEARCH_ROWS.name, min(len(found), limit))
    return SearchResult(found[:limit], more=len(found) > limit)


async def customer_history(pool: asyncpg.Pool, customer_id: int, *, limit: int = 100) -> list[HistoryEntry]:
    """The customer's changes, oldest first: registration, contact, verification and status changes."""
    if limit < 1:
        raise InvalidField("limit", "at least 1")
    if limit > EVENTS_ROWS.maximum:
        raise LimitReached(EVENTS_ROWS, limit)
    async with pool.acquire() as conn:
        if await store.load_customer(conn, customer_id) is None:
            raise CustomerNotFound(customer_id)
        return await store.load_events(conn, customer_id, limit)
