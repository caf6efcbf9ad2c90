"""Customers' consents to providers, per account: requested by a provider (pending), authorised by the customer with
the account's cash card and PIN (active), revoked by the customer, the bank or the provider, expired by time. The
check every data and payment call makes is `require_consent`.

Nothing about an account is told to a provider before its customer authorised: a consent is requested for a branch
code and account number without looking the account up, and the customer's card decides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from kanjo.cards import CardHolder, verify_card
from kanjo.channels.openapi import errors, store
from kanjo.channels.openapi.access import Caller
from kanjo.channels.openapi.limits import (
    CONSENT_AUTHORISE_WITHIN_S,
    CONSENT_VALIDITY_DAYS_MAX,
    CONSENTS_PENDING_PER_ACCOUNT_MAX,
    LIST_PAGE_ROWS_MAX,
    TRANSFER_AMOUNT_MAX,
    TRANSFER_DAILY_AMOUNT_MAX,
)
from kanjo.channels.openapi.model import (
    ConsentStatus,
    ConsentTerms,
    NotFound,
    Refused,
    RevokedBy,
    Scope,
    account_label,
    check_consent_terms,
    effective_status,
    fingerprint,
    format_scopes,
    iso,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.deposits import find_account
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.openapi")
AUTHORISE_PATH = "/v1/openapi/consents/{consent_id}/authorise"


class CardNotForAccount(Exception):
    """The card (with the right PIN) is not the consent's account's card."""


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    idempotency_key: str
    branch_code: str
    account_number: int
    terms: ConsentTerms


async def request_consent(ch: OpenApiChannel, caller: Caller, r: ConsentRequest) -> tuple[store.ConsentRow, bool]:
    """A pending consent (and whether this answers a retry of the same request under the same Idempotency-Key)."""
    now = ch.now()
    check_consent_terms(r.terms, caller.scopes, now, validity_days_max=CONSENT_VALIDITY_DAYS_MAX,
                        transfer_max_minor=TRANSFER_AMOUNT_MAX, daily_transfer_max_minor=TRANSFER_DAILY_AMOUNT_MAX)
    t = r.terms
    fp = fingerprint("consent", {"account": account_label(r.branch_code, r.account_number),
                                 "scopes": format_scopes(t.scopes), "expires_at": iso(t.expires_at),
                                 "each": t.transfer_max_minor, "daily": t.daily_transfer_max_minor})
    prior = await _by_key(ch, caller.client_id, r.idempotency_key, fp)
    if prior is not None:
        return prior, True
    row = store.ConsentRow(
        uuid.uuid4().int, caller.client_id, r.idempotency_key, fp, r.branch_code, r.account_number, None, None,
        t.scopes, t.transfer_max_minor, t.daily_transfer_max_minor, ConsentStatus.PENDING, now,
        min(now + dt.timedelta(seconds=CONSENT_AUTHORISE_WITHIN_S), t.expires_at), t.expires_at,
        None, None, None, None, None)
    async with ch.pool.acquire() as conn, conn.transaction():
        await store.client(conn, caller.client_id, for_update=True)  # one consent request of a client at a time
        pending = await store.pending_count(conn, caller.client_id, r.branch_code, r.account_number, now)
        if pending + 1 > CONSENTS_PENDING_PER_ACCOUNT_MAX:
            raise LimitReached(limits.get("openapi_consents_pending_per_account_max"), pending + 1)
        inserted = await store.insert_consent(conn, row)
        if inserted:
            await store.insert_consent_event(conn, row.consent_id, "requested", f"provider:{caller.client_id}",
                                             format_scopes(t.scopes), now)
    if not inserted:  # a concurrent retry under the same key committed first
        prior = await _by_key(ch, caller.client_id, r.idempotency_key, fp)
        assert prior is not None
        return prior, True
    log.info("openapi_consent_requested", client=caller.client_id, consent=str(uuid.UUID(int=row.consent_id)))
    return row, False


async def _by_key(ch: OpenApiChannel, client_id: str, key: str, fp: bytes) -> store.ConsentRow | None:
    async with ch.pool.acquire() as conn:
        prior = await store.consent_by_key(conn, client_id, key)
    if prior is not None and prior.fingerprint != fp:
        raise Refused("idempotency_key_reused", "this Idempotency-Key was used for another consent request")
    return prior


async def get_consent(ch: OpenApiChannel, consent_id: int, client_id: str | None = None) -> store.ConsentRow:
    """A consent; with `client_id`, only that client's (another client's is not found)."""
    async with ch.pool.acquire() as conn:
        row = await store.consent(conn, consent_id)
    if row is None or (client_id is not None and row.client_id != client_id):
        raise NotFound(f"no consent {uuid.UUID(int=consent_id)}")
    return row


async def require_consent(ch: OpenApiChannel, client_id: str, branch_code: str, account_number: int,
                          scope: Scope) -> store.ConsentRow:
    """The client's active, unexpired consent for the account that grants the scope; else `consent_required`
    (the same answer for an account that does not exist)."""
    async with ch.pool.acquire() as conn:
        row = await store.active_consent(conn, client_id, branch_code, account_number)
    if (row is None or scope not in row.scopes
            or effective_status(row.status, row.expires_at, row.authorise_by, ch.now()) is not ConsentStatus.ACTIVE):
        raise errors.consent_required(scope.value)
    return row


# -- the customer --------------------------------------------------------------------------------------------------

async def _card_of_account(ch: OpenApiChannel, row: store.ConsentRow, card_number: str, pin: str) -> CardHolder:
    """The card holder when the card and PIN are right (a wrong PIN counts toward the card's lock, as at an ATM)
    and the card is the consent's account's."""
    holder = await ch.call("cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    account_id = row.account_id
    if account_id is None:
        try:
            account = await ch.call("deposits", "find",
                                    lambda: find_account(ch.deposits, row.branch_code, row.account_number))
        except DepositNotFound:
            raise CardNotForAccount("this card is not the card of the consent's account") from None
        account_id = account.id
    if holder.account_id != account_id:
        raise CardNotForAccount("this card is not the card of the consent's account")
    return holder


async def authorise_consent(ch: OpenApiChannel, consent_id: int, card_number: str, pin: str) -> store.ConsentRow:
    """The customer allows the consent with the account's card and PIN: it becomes active, and supersedes the
    client's earlier active consent for the account. Authorising an active consent again changes nothing."""
    row = await get_consent(ch, consent_id)
    status = effective_status(row.status, row.expires_at, row.authorise_by, ch.now())
    if status not in (ConsentStatus.PENDING, ConsentStatus.ACTIVE):
        raise Refused("consent_not_pending", f"the consent is {status.value}: the provider asks for a new one")
    holder = await _card_of_account(ch, row, card_number, pin)
    if status is ConsentStatus.ACTIVE:
        return row
    try:
        done = await _activate(ch, consent_id, holder)
    except asyncpg.UniqueViolationError:  # another consent for the account was activated at the same moment
        done = await _activate(ch, consent_id, holder)  # now it is seen, and superseded
    log.info("openapi_consent_authorised", consent=str(uuid.UUID(int=consent_id)), card=holder.card_number_masked)
    return done


async def _activate(ch: OpenApiChannel, consent_id: int, holder: CardHolder) -> store.ConsentRow:
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        locked = await store.consent(conn, consent_id, for_update=True)
        assert locked is not None
        status = effective_status(locked.status, locked.expires_at, locked.authorise_by, now)
        if status is ConsentStatus.ACTIVE:  # a concurrent authorisation won
            return locked
        if status is not ConsentStatus.PENDING:
            raise Refused("consent_not_pending", f"the consent is {status.value}: the provider asks for a new one")
        for old in await store.supersede_active(conn, locked.client_id, locked.branch_code, locked.account_number,
                                                now):
            await store.insert_consent_event(conn, old, "superseded", "customer",
                                             f"replaced by consent {uuid.UUID(int=consent_id)}", now)
        await store.activate_consent(conn, consent_id, holder.account_id, holder.customer_id,
                                     holder.card_number_masked, now)
        await store.insert_consent_event(conn, consent_id, "authorised", "customer",
                                         f"card {holder.card_number_masked}", now)
        done = await store.consent(conn, consent_id)
    assert done is not None
    return done


async def revoke_by_customer(ch: OpenApiChannel, consent_id: int, card_number: str, pin: str) -> store.ConsentRow:
    row = await get_consent(ch, consent_id)
    await _card_of_account(ch, row, card_number, pin)
    return await _revoke(ch, row, RevokedBy.CUSTOMER, "customer", "revoked by the customer")


async def revoke_by_bank(ch: OpenApiChannel, consent_id: int, by: str, reason: str) -> store.ConsentRow:
    return await _revoke(ch, await get_consent(ch, consent_id), RevokedBy.BANK, by, reason)


async def revoke_by_provider(ch: OpenApiChannel, caller: Caller, consent_id: int) -> store.ConsentRow:
    row = await get_consent(ch, consent_id, caller.client_id)
    return await _revoke(ch, row, RevokedBy.PROVIDER, f"provider:{caller.client_id}", "revoked by the provider")


async def _revoke(ch: OpenApiChannel, row: store.ConsentRow, by: RevokedBy, actor: str,
                  reason: str) -> store.ConsentRow:
    """Ends a pending or active consent from the next call on; a consent already ended is answered as it is."""
    if row.status not in (ConsentStatus.PENDING, ConsentStatus.ACTIVE):
        return row
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        await store.revoke_consent(conn, row.consent_id, by.value, reason, now)
        await store.insert_consent_event(conn, row.consent_id, "revoked", actor, reason, now)
        done = await store.consent(conn, row.consent_id)
    assert done is not None
    log.info("openapi_consent_revoked", consent=str(uuid.UUID(int=row.consent_id)), by=by.value)
    return done


async def consents_of_account(ch: OpenApiChannel, branch_code: str, account_number: int,
                              limit: int) -> list[store.ConsentRow]:
    if limit > LIST_PAGE_ROWS_MAX:
        raise LimitReached(limits.get("openapi_list_page_rows_max"), limit)
    async with ch.pool.acquire() as conn:
        return await store.consents_of_account(conn, branch_code, account_number, limit)


async def consent_history(ch: OpenApiChannel, consent_id: int) -> list[dict[str, Any]]:
    async with ch.pool.acquire() as conn:
        return await store.consent_events(conn, consent_id, LIST_PAGE_ROWS_MAX)


def consent_view(row: store.ConsentRow, now: dt.datetime) -> dict[str, Any]:
    """A consent as the provider, the customer and the bank see it (never the account's internal id)."""
    status = effective_status(row.status, row.expires_at, row.authorise_by, now)
    view: dict[str, Any] = {
        "consent_id": str(uuid.UUID(int=row.consent_id)), "client_id": row.client_id, "status": status.value,
        "account": {"branch_code": row.branch_code, "account_number": f"{row.account_number:07d}"},
        "scopes": format_scopes(row.scopes).split(" "), "transfer_max_minor": row.transfer_max_minor,
        "daily_transfer_max_minor": row.daily_transfer_max_minor, "requested_at": iso(row.requested_at),
        "expires_at": iso(row.expires_at),
        "authorised_at": None if row.authorised_at is None else iso(row.authorised_at),
        "revoked_at": None if row.revoked_at is None else iso(row.revoked_at),
        "revoked_by": row.revoked_by,
    }
    if status is ConsentStatus.PENDING:
        view["authorise_by"] = iso(row.authorise_by)
        view["authorisation_path"] = AUTHORISE_PATH.format(consent_id=view["consent_id"])
    return view
