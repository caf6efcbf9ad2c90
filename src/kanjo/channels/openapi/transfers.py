"""Transfer initiation (振込・振替の指図) by a provider from a consented account to another account of this bank,
exactly once per (client, Idempotency-Key).

The key is claimed in the channel's table before any money moves, under the consent's row lock, where the
consent's per-transfer and per-day maximums are checked (a claimed transfer counts toward the day until it is
refused). The deposits request id derives from (client, key), so a retry after a system error posts the same
ledger transfer and gets the ledger's first answer: never a second movement. A business refusal is recorded and
answered again to every retry; a system error records nothing final and is answered 503 (retry with the same key).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter

from kanjo.channels.openapi import errors, store
from kanjo.channels.openapi.access import Caller
from kanjo.channels.openapi.limits import IN_FLIGHT_WINDOW_S
from kanjo.channels.openapi.model import (
    ConsentStatus,
    NotFound,
    Scope,
    account_label,
    effective_status,
    fingerprint,
    iso,
    jst_day,
    transfer_refusal,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.deposits import Refused as DepositRefused
from kanjo.deposits import Status as DepositStatus
from kanjo.deposits import balance, find_account, transfer
from kanjo.fees import Channel as FeeChannel
from kanjo.fees import FeeImplausible, FeeQuote, Kind, charge_fee, quote
from kanjo.fees import Refused as FeeRefused
from kanjo.kernel.ids import name_id

log = structlog.get_logger("kanjo.openapi")
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-6f70656e6170")
TRANSFERS = Counter("kanjo_openapi_transfers_total", "transfers initiated by providers, by outcome", ["outcome"])
PROCESSING = "processing"
COMPLETED = "completed"
REFUSED = "refused"
# Refusals that depend on the paying account's state (409): the others concern the order itself (422).
STATE_REFUSALS = frozenset({"insufficient_funds", "account_frozen", "account_dormant", "account_closed"})


@dataclass(frozen=True, slots=True)
class TransferOrder:
    idempotency_key: str
    to_branch_code: str
    to_account_number: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def transfer_id_of(client_id: str, idempotency_key: str) -> int:
    """The transfer's id, and the request id the deposits and fees contexts see: the same on every retry."""
    return name_id(REQUEST_NAMESPACE, f"{client_id}\x00{idempotency_key}")


async def initiate_transfer(ch: OpenApiChannel, caller: Caller, consent: store.ConsentRow,
                            order: TransferOrder) -> Answer:
    transfer_id = transfer_id_of(caller.client_id, order.idempotency_key)
    from_label = account_label(consent.branch_code, consent.account_number)
    to_label = account_label(order.to_branch_code, order.to_account_number)
    fp = fingerprint("transfer", {"from": from_label, "to": to_label, "amount": order.amount_minor})
    async with ch.pool.acquire() as conn:
        prior = await store.transfer_by_key(conn, caller.client_id, order.idempotency_key)
    if prior is None:
        claimed = await _claim(ch, caller, consent, order, transfer_id, fp, from_label, to_label)
        if isinstance(claimed, Answer):
            return claimed
        prior, first = claimed
        return await _carry_out(ch, prior, order, first=first)
    answered = await _earlier(ch, prior, fp)
    if answered is not None:
        return answered
    return await _carry_out(ch, prior, order, first=False)


async def _earlier(ch: OpenApiChannel, prior: store.TransferRow, fp: bytes) -> Answer | None:
    """The answer to a key seen before, or None when this request must finish the transfer."""
    if prior.fingerprint != fp:
        raise errors.ApiError(422, "idempotency_key_reused",
                              "this Idempotency-Key was used for another transfer; nothing was done")
    if prior.state != PROCESSING:
        assert prior.http_status is not None and prior.answer is not None
        return Answer(prior.http_status, {**prior.answer, "replayed": True})
    now = ch.now()
    async with ch.pool.acquire() as conn:
        taken = await store.take_over(conn, prior.transfer_id, now, now + dt.timedelta(seconds=IN_FLIGHT_WINDOW_S))
    if not taken:
        raise errors.ApiError(409, "request_in_progress", "a request with this Idempotency-Key is being processed;"
                              " retry shortly with the same key", headers={"Retry-After": "1"}, retry_after_s=1)
    return None


async def _claim(ch: OpenApiChannel, caller: Caller, consent: store.ConsentRow, order: TransferOrder,
                 transfer_id: int, fp: bytes, from_label: str, to_label: str
                 ) -> tuple[store.TransferRow, bool] | Answer:
    """Record the transfer as processing, or as refused when the consent's maximums do not allow it, under the
    consent's lock (so concurrent transfers cannot pass the day's maximum together)."""
    now = ch.now()
    day = jst_day(now)
    async with ch.pool.acquire() as conn, conn.transaction():
        locked = await store.consent(conn, consent.consent_id, for_update=True)
        if (locked is None or Scope.TRANSFER not in locked.scopes
                or effective_status(locked.status, locked.expires_at, locked.authorise_by, now)
                is not ConsentStatus.ACTIVE):
            raise errors.consent_required(Scope.TRANSFER.value)  # revoked or expired a moment ago
        assert locked.transfer_max_minor is not None and locked.daily_transfer_max_minor is not None
        assert locked.account_id is not None
        used = await store.used_on(conn, locked.consent_id, day)
        refusal = transfer_refusal(order.amount_minor, locked.transfer_max_minor, locked.daily_transfer_max_minor,
                                   used)
        row = store.TransferRow(
            transfer_id, caller.client_id, order.idempotency_key, fp, locked.consent_id, locked.account_id,
            from_label, to_label, order.amount_minor, None, day, PROCESSING,
            now + dt.timedelta(seconds=IN_FLIGHT_WINDOW_S), None, None, now, now)
        answer = None
        if refusal is not None:
            answer = _refused(row, 403, refusal.code, refusal.message)
            row = _finished(row, REFUSED, answer)
        inserted = await store.insert_transfer(conn, row)
    if not inserted:  # a concurrent request with the same key claimed it first
        async with ch.pool.acquire() as conn:
            prior = await store.transfer_by_key(conn, caller.client_id, order.idempotency_key)
        assert prior is not None
        return await _earlier(ch, prior, fp) or (prior, False)
    if answer is not None:
        TRANSFERS.labels(answer.body["error"]).inc()
        return answer
    return row, True


def _finished(row: store.TransferRow, state: str, answer: Answer) -> store.TransferRow:
    return store.TransferRow(row.transfer_id, row.client_id, row.idempotency_key, row.fingerprint, row.consent_id,
                             row.from_account_id, row.from_label, row.to_label, row.amount_minor, row.fee_minor,
                             row.day, state, row.in_flight_until, answer.status, answer.body, row.created_at,
                             row.updated_at)


async def _carry_out(ch: OpenApiChannel, row: store.TransferRow, order: TransferOrder, *, first: bool) -> Answer:
    """Move the money and record the outcome; a system error leaves the transfer processing, released at once for
    the provider's retry (whose posting the deposits context answers from its first outcome)."""
    try:
        answer, fee_minor = await _move(ch, row, order, first=first)
    except BaseException:
        await _release(ch, row.transfer_id)
        raise
    state = COMPLETED if answer.status == 201 else REFUSED
    async with ch.pool.acquire() as conn:
        await store.finish_transfer(conn, row.transfer_id, state, answer.status, answer.body, fee_minor, ch.now())
    TRANSFERS.labels("completed" if state == COMPLETED else answer.body["error"]).inc()
    return answer


async def _release(ch: OpenApiChannel, transfer_id: int) -> None:
    try:
        async with ch.pool.acquire() as conn:
            await store.release_transfer(conn, transfer_id, ch.now())
    except Exception as e:  # the claim lapses by itself after the in-flight window
        log.warning("openapi_transfer_release_failed", transfer=str(uuid.UUID(int=transfer_id)), error=repr(e))


async def _move(ch: OpenApiChannel, row: store.TransferRow, order: TransferOrder, *,
                first: bool) -> tuple[Answer, int | None]:
    try:
        payee = await ch.call("deposits", "find", lambda: find_account(ch.deposits, order.to_branch_code,
                                                                      order.to_account_number))
    except DepositNotFound:
        return _refused(row, 422, "unknown_payee", f"no account {row.to_label} at this bank"), None
    if payee.id == row.from_account_id:
        return _refused(row, 422, "same_account", "the account to pay is the account paying"), None
    if payee.status is not DepositStatus.ACTIVE:  # which state it is in is the payee's business
        return _refused(row, 422, "payee_unavailable", f"account {row.to_label} cannot receive transfers"), None
    try:
        fee = quote(ch.fees, FeeChannel.OPEN_API, Kind.TRANSFER_SAME_BANK, order.amount_minor, ch.now())
    except (FeeRefused, FeeImplausible) as e:
        raise errors.unavailable(f"the transfer fee cannot be quoted now ({e}); retry later", 60) from None
    needed = order.amount_minor + fee.amount_minor
    if first:  # a retry skips it: its first attempt may have posted, and the balance would then be short
        b = await ch.call("deposits", "balance", lambda: balance(ch.deposits, row.from_account_id))
        if b.available_minor < needed:
            return _refused(row, 409, "insufficient_funds", f"the available balance is less than ¥{needed:,}"
                            + (f" (¥{fee.amount_minor:,} fee included)" if fee.amount_minor else "")), None
    try:
        await ch.call("deposits", "transfer", lambda: transfer(
            ch.deposits, row.transfer_id, row.from_account_id, payee.id, order.amount_minor))
    except DepositRefused as e:
        return _refused(row, 409 if e.code in STATE_REFUSALS else 422, e.code, str(e)), None
    charged = await _charge(ch, row, fee)
    body = {"transfer_id": str(uuid.UUID(int=row.transfer_id)), "status": COMPLETED,
            "from": _account_of(row.from_label), "to": _account_of(row.to_label), "amount_minor": order.amount_minor,
            "fee_minor": charged, "currency": "JPY", "business_date": ch.deposits.business_date().isoformat(),
            "accepted_at": iso(row.created_at), "replayed": False}
    return Answer(201, body), charged


async def _charge(ch: OpenApiChannel, row: store.TransferRow, fee: FeeQuote) -> int:
    """The tariff's open API transfer fee, once per transfer; one the account can no longer pay is waived and
    logged (the customer had the funds when the transfer was accepted)."""
    if fee.amount_minor == 0:
        return 0
    try:
        done = await ch.call("fees", "charge", lambda: charge_fee(ch.fees, row.transfer_id, row.from_account_id, fee))
    except FeeRefused as e:
        log.warning("openapi_fee_waived", transfer=str(uuid.UUID(int=row.transfer_id)), fee_minor=fee.amount_minor,
                    reason=str(e))
        return 0
    return 0 if done is None else done.amount_minor


def _account_of(label: str) -> dict[str, str]:
    branch_code, _, number = label.partition("-")
    return {"branch_code": branch_code, "account_number": number}


def _refused(row: store.TransferRow, status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": code, "error_description": message,
                           "transfer_id": str(uuid.UUID(int=row.transfer_id)), "status": REFUSED, "replayed": False})


async def transfer_status(ch: OpenApiChannel, caller: Caller, consent: store.ConsentRow,
                          transfer_id: int) -> dict[str, Any]:
    """Where a transfer of this client from this account stands: processing (a retry with its key finishes it),
    completed, or refused (and why)."""
    async with ch.pool.acquire() as conn:
        row = await store.transfer(conn, transfer_id)
    if row is None or row.client_id != caller.client_id or row.from_label != account_label(
            consent.branch_code, consent.account_number):
        raise NotFound(f"no transfer {uuid.UUID(int=transfer_id)} from this account")
    view: dict[str, Any] = {"transfer_id": str(uuid.UUID(int=row.transfer_id)), "status": row.state,
                            "from": _account_of(row.from_label), "to": _account_of(row.to_label),
                            "amount_minor": row.amount_minor, "fee_minor": row.fee_minor, "currency": "JPY",
                            "accepted_at": iso(row.created_at), "updated_at": iso(row.updated_at)}
    if row.state == REFUSED and row.answer is not None:
        view["refusal"] = {"error": row.answer.get("error"), "error_description": row.answer.get("error_description")}
    if row.state == COMPLETED and row.answer is not None:
        view["business_date"] = row.answer.get("business_date")
    return view
