"""Who is calling and may they call now: the bearer token of a live client (RFC 6750), then the client's own rate
(token bucket, in memory) and daily quota (counted in the database, so it holds across restarts and processes)."""

from __future__ import annotations

from dataclasses import dataclass

from kanjo.channels.openapi import errors, store
from kanjo.channels.openapi.credentials import is_token_syntax, token_digest
from kanjo.channels.openapi.model import ClientStatus, Scope, jst_day, seconds_to_next_jst_day
from kanjo.channels.openapi.service import THROTTLED, OpenApiChannel


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated client and what its token and its registry row allow."""

    client_id: str
    scopes: frozenset[Scope]
    rate_per_s: int
    burst: int
    daily_quota: int


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; tokens in a query or body are not
    accepted: they end up in logs)."""
    if not authorization:
        raise errors.missing_token()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise errors.missing_token()
    token = token.strip(" ")
    if not is_token_syntax(token):
        raise errors.invalid_token("the access token is malformed")
    return token


async def authenticate(ch: OpenApiChannel, authorization: str | None) -> Caller:
    """The caller of a bearer token that is known, unrevoked, unexpired and whose client is active now: a
    suspension, a revocation or an expiry takes effect on the very next call."""
    token = bearer_token(authorization)
    async with ch.pool.acquire() as conn:
        row = await store.token(conn, token_digest(token))
    if row is None:
        raise errors.invalid_token("the access token is not known")
    if row.revoked_at is not None:
        raise errors.invalid_token("the access token was revoked")
    if row.expires_at <= ch.now():
        raise errors.invalid_token("the access token has expired")
    if row.client_status is not ClientStatus.ACTIVE:
        raise errors.invalid_token(f"the client is {row.client_status.value}")
    return Caller(row.client_id, row.scopes, row.rate_per_s, row.burst, row.daily_quota)


async def admit(ch: OpenApiChannel, client_id: str, rate_per_s: int, burst: int, daily_quota: int) -> None:
    """Take one token from the client's bucket, then count the call against its daily quota; refuse with 429 and
    Retry-After otherwise. A call refused by the rate does not count against the quota."""
    wait_s = ch.limiter.take(client_id, rate_per_s, burst, ch.monotonic())
    if wait_s > 0:
        THROTTLED.labels("rate").inc()
        raise errors.rate_limited(wait_s)
    now = ch.now()
    async with ch.pool.acquire() as conn:
        counted = await store.count_call(conn, client_id, jst_day(now), daily_quota)
    if counted is None:
        THROTTLED.labels("quota").inc()
        raise errors.quota_exceeded(daily_quota, seconds_to_next_jst_day(now))


def require_scope(caller: Caller, scope: Scope) -> None:
    if scope not in caller.scopes:
        raise errors.insufficient_scope(scope.value)
