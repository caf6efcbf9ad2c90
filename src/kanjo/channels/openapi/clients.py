"""The registry of provider clients, kept by the bank's operations: registration (client id and a secret shown
once), suspension, reactivation and revocation (a client's tokens stop at once; revocation also ends its
customers' consents), rate limits and quota, secret rotation. Every change is recorded with who and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from kanjo.channels.openapi import store
from kanjo.channels.openapi.credentials import new_client_id, new_secret
from kanjo.channels.openapi.limits import (
    CLIENT_BURST_MAX,
    CLIENT_DAILY_QUOTA_MAX,
    CLIENT_RATE_PER_S_MAX,
    CLIENTS_MAX,
    LIST_PAGE_ROWS_MAX,
)
from kanjo.channels.openapi.model import (
    REGISTRATION_NUMBER,
    ClientAction,
    ClientStatus,
    Invalid,
    NotFound,
    Refused,
    Scope,
    client_transition,
    fingerprint,
    format_scopes,
    jst_day,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.openapi")


@dataclass(frozen=True, slots=True)
class Registration:
    request_id: int
    name: str
    registration_number: str
    scopes: frozenset[Scope]
    rate_per_s: int
    burst: int
    daily_quota: int
    by: str


@dataclass(frozen=True, slots=True)
class Issued:
    """A client and, on the first answer only, its secret (it is never stored or shown again)."""

    client: store.ClientRow
    client_secret: str | None
    replayed: bool


def check_limits(rate_per_s: int, burst: int, daily_quota: int) -> None:
    if not 1 <= rate_per_s <= CLIENT_RATE_PER_S_MAX:
        raise Invalid("rate_per_s", f"rate_per_s is 1 to {CLIENT_RATE_PER_S_MAX} (openapi_client_rate_per_s_max)")
    if not 1 <= burst <= CLIENT_BURST_MAX:
        raise Invalid("burst", f"burst is 1 to {CLIENT_BURST_MAX} (openapi_client_burst_max)")
    if not 1 <= daily_quota <= CLIENT_DAILY_QUOTA_MAX:
        raise Invalid("daily_quota", f"daily_quota is 1 to {CLIENT_DAILY_QUOTA_MAX:,}"
                      " (openapi_client_daily_quota_max)")


async def register_client(ch: OpenApiChannel, r: Registration) -> Issued:
    """A new provider client with its own id and secret; idempotent by request id (a retry answers the client
    without its secret)."""
    if not REGISTRATION_NUMBER.match(r.registration_number):
        raise Invalid("registration_number",
                      "a 電子決済等代行業者 registration number such as 関東財務局長（電代）第1号")
    if not r.scopes:
        raise Invalid("scopes", "a client is allowed at least one scope")
    check_limits(r.rate_per_s, r.burst, r.daily_quota)
    fp = fingerprint("register", {"name": r.name, "registration_number": r.registration_number,
                                  "scopes": format_scopes(r.scopes), "rate": r.rate_per_s, "burst": r.burst,
                                  "quota": r.daily_quota, "by": r.by})
    replay = await _replayed(ch, r.request_id, fp)
    if replay is not None:
        return replay
    async with ch.pool.acquire() as conn:
        count = await store.client_count(conn)
    limits.observe("openapi_clients_max", count)
    if count + 1 > CLIENTS_MAX:
        raise LimitReached(limits.get("openapi_clients_max"), count + 1)
    secret = new_secret()
    secret_hash = await ch.hasher.hash(secret)
    now = ch.now()
    row = store.ClientRow(new_client_id(), r.request_id, fp, r.name, r.registration_number, secret_hash, None,
                          r.scopes, ClientStatus.ACTIVE, r.rate_per_s, r.burst, r.daily_quota, now, now)
    async with ch.pool.acquire() as conn, conn.transaction():
        if not await store.insert_client(conn, row):
            inserted = False
        else:
            inserted = True
            await store.insert_client_event(conn, row.client_id, "registered", ClientStatus.ACTIVE, r.by,
                                            f"scopes {format_scopes(r.scopes)}", now)
    if not inserted:  # a concurrent retry of the same registration committed first
        replay = await _replayed(ch, r.request_id, fp)
        assert replay is not None
        return replay
    log.info("openapi_client_registered", client=row.client_id, registration=r.registration_number, by=r.by)
    return Issued(row, secret, replayed=False)


async def _replayed(ch: OpenApiChannel, request_id: int, fp: bytes) -> Issued | None:
    async with ch.pool.acquire() as conn:
        prior = await store.client_by_request(conn, request_id)
    if prior is None:
        return None
    if prior.fingerprint != fp:
        raise Refused("request_reused", "this request id already registered a client with other fields")
    return Issued(prior, None, replayed=True)


async def get_client(ch: OpenApiChannel, client_id: str) -> store.ClientRow:
    async with ch.pool.acquire() as conn:
        row = await store.client(conn, client_id)
    if row is None:
        raise NotFound(f"no client {client_id}")
    return row


async def list_clients(ch: OpenApiChannel, after_client_id: str, limit: int) -> list[store.ClientRow]:
    if limit > LIST_PAGE_ROWS_MAX:
        raise LimitReached(limits.get("openapi_list_page_rows_max"), limit)
    async with ch.pool.acquire() as conn:
        return await store.clients(conn, after_client_id, limit)


async def change_status(ch: OpenApiChannel, client_id: str, action: ClientAction, by: str,
                        reason: str) -> store.ClientRow:
    """Suspend, reactivate or revoke. Suspension and revocation revoke every live token in the same transaction
    (a reactivated client asks for new ones); revocation also revokes its customers' consents. Asking for the
    status the client already has changes nothing."""
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        row = await store.client(conn, client_id, for_update=True)
        if row is None:
            raise NotFound(f"no client {client_id}")
        if _already(row.status, action):
            return row
        status = client_transition(row.status, action)
        await store.set_client_status(conn, client_id, status, now)
        tokens = consents = 0
        if status is not ClientStatus.ACTIVE:
            tokens = await store.revoke_client_tokens(conn, client_id, now)
        if status is ClientStatus.REVOKED:
            ended = await store.revoke_client_consents(conn, client_id, f"client revoked: {reason}", now)
            for consent_id in ended:
                await store.insert_consent_event(conn, consent_id, "revoked", by, "the provider's client was revoked",
                                                 now)
            consents = len(ended)
        await store.insert_client_event(conn, client_id, action.value, status, by, reason, now)
        changed = await store.client(conn, client_id)
    if status is ClientStatus.REVOKED:
        ch.limiter.forget(client_id)
    log.warning("openapi_client_status_changed", client=client_id, status=status.value, by=by, reason=reason,
                tokens_revoked=tokens, consents_revoked=consents)
    assert changed is not None
    return changed


def _already(status: ClientStatus, action: ClientAction) -> bool:
    return (action, status) in {(ClientAction.SUSPEND, ClientStatus.SUSPENDED),
                                (ClientAction.REACTIVATE, ClientStatus.ACTIVE),
                                (ClientAction.REVOKE, ClientStatus.REVOKED)}


async def set_limits(ch: OpenApiChannel, client_id: str, rate_per_s: int, burst: int, daily_quota: int, by: str,
                     reason: str) -> store.ClientRow:
    """New rate, burst and quota; they apply from the client's next call."""
    check_limits(rate_per_s, burst, daily_quota)
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        row = await store.client(conn, client_id, for_update=True)
        if row is None:
            raise NotFound(f"no client {client_id}")
        if row.status is ClientStatus.REVOKED:
            raise Refused("client_revoked", f"client {client_id} is revoked")
        await store.set_client_limits(conn, client_id, rate_per_s, burst, daily_quota, now)
        await store.insert_client_event(conn, client_id, "limits", row.status, by,
                                        f"{rate_per_s}/s burst {burst} quota {daily_quota}: {reason}", now)
        changed = await store.client(conn, client_id)
    assert changed is not None
    return changed


async def rotate_secret(ch: OpenApiChannel, client_id: str, request_id: int, by: str, reason: str) -> Issued:
    """A new secret, shown once; the old one stops working at once (tokens already issued live on until they
    expire). Idempotent by request id: a retry answers without the secret."""
    async with ch.pool.acquire() as conn:
        row = await store.client(conn, client_id)
    if row is None:
        raise NotFound(f"no client {client_id}")
    if row.secret_rotated_by == request_id:
        return Issued(row, None, replayed=True)
    if row.status is ClientStatus.REVOKED:
        raise Refused("client_revoked", f"client {client_id} is revoked")
    secret = new_secret()
    secret_hash = await ch.hasher.hash(secret)
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        row = await store.client(conn, client_id, for_update=True)
        assert row is not None
        if row.secret_rotated_by == request_id:  # a concurrent retry committed first
            return Issued(row, None, replayed=True)
        await store.set_client_secret(conn, client_id, secret_hash, request_id, now)
        await store.insert_client_event(conn, client_id, "secret_rotated", row.status, by, reason, now)
        changed = await store.client(conn, client_id)
    assert changed is not None
    log.warning("openapi_client_secret_rotated", client=client_id, by=by)
    return Issued(changed, secret, replayed=False)


async def usage_today(ch: OpenApiChannel, client_id: str) -> dict[str, Any]:
    """Today's calls (JST) against the client's daily quota."""
    row = await get_client(ch, client_id)
    day = jst_day(ch.now())
    async with ch.pool.acquire() as conn:
        calls = await store.calls_on(conn, client_id, day)
    return {"day": day.isoformat(), "calls": calls, "daily_quota": row.daily_quota,
            "remaining": max(0, row.daily_quota - calls)}


async def client_history(ch: OpenApiChannel, client_id: str) -> list[dict[str, Any]]:
    """Who registered, suspended, reactivated, revoked the client or changed its limits or secret, when and why."""
    async with ch.pool.acquire() as conn:
        return await store.client_events(conn, client_id, LIST_PAGE_ROWS_MAX)
