"""OAuth 2 for provider clients: the client credentials grant (RFC 6749 §4.4) at the token endpoint, token
revocation (RFC 7009) and introspection for the bank's operations (RFC 7662).

The form is parsed here, not by the web framework, so that every malformed request gets an RFC-shaped
`invalid_request` (a repeated parameter too: RFC 6749 §3.2). Clients authenticate with HTTP Basic or with
`client_id` and `client_secret` in the form, never both (§2.3.1).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import urllib.parse
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter

from kanjo.channels.openapi import errors, store
from kanjo.channels.openapi.access import admit
from kanjo.channels.openapi.credentials import CLIENT_ID, is_token_syntax, new_token, token_digest
from kanjo.channels.openapi.limits import FORM_FIELDS_MAX, REQUEST_BODY_BYTES_MAX, TOKENS_LIVE_PER_CLIENT_MAX
from kanjo.channels.openapi.model import (
    ClientStatus,
    InvalidScope,
    format_scopes,
    granted_scopes,
    iso,
    parse_scope,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.kernel.limits import LimitReached

log = structlog.get_logger("kanjo.openapi")
CLIENT_AUTH_FAILURES = Counter("kanjo_openapi_client_auth_failures_total",
                               "token or revocation requests whose client authentication failed")
FORM_TYPE = "application/x-www-form-urlencoded"
CLIENT_ID_CHARS_MAX = 64
SECRET_CHARS_MAX = 128
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """The parameters of an `application/x-www-form-urlencoded` body, each at most once."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise errors.invalid_request(f"the body must be {FORM_TYPE}")
    if len(body) > REQUEST_BODY_BYTES_MAX:
        raise errors.invalid_request(f"the body is over {REQUEST_BODY_BYTES_MAX:,} bytes")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body),
                                       encoding="utf-8", errors="strict", max_num_fields=FORM_FIELDS_MAX)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid_request("the body is not a well-formed form of at most "
                                     f"{FORM_FIELDS_MAX} parameters in UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise errors.invalid_request(f"the parameter {name[:40]!r} is repeated")
        if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
            raise errors.invalid_request(f"the parameter {name[:40]!r} has control characters")
        form[name] = value
    return form


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    secret: str


def client_credentials(form: dict[str, str], authorization: str | None) -> ClientCredentials:
    """The client's id and secret, from HTTP Basic (RFC 6749 §2.3.1: both form-encoded, then base64) or from the
    form; refused when both or neither are used."""
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise errors.invalid_client("authenticate the client with HTTP Basic or client_secret_post")
        if "client_secret" in form:
            raise errors.invalid_request("use one client authentication method, not HTTP Basic and the form both")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise errors.invalid_client("the HTTP Basic credentials are malformed") from None
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            raise errors.invalid_client("the HTTP Basic credentials are malformed")
        credentials = ClientCredentials(urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret))
        if "client_id" in form and form["client_id"] != credentials.client_id:
            raise errors.invalid_request("client_id in the form differs from the authenticated client")
        return credentials
    if "client_id" in form and "client_secret" in form:
        return ClientCredentials(form["client_id"], form["client_secret"])
    raise errors.invalid_client("the client did not authenticate: use HTTP Basic or client_id and client_secret")


async def authenticate_client(ch: OpenApiChannel, credentials: ClientCredentials) -> store.ClientRow:
    """The client whose secret this is (whatever its status). An unknown id costs the same check as a wrong
    secret."""
    well_formed = (bool(CLIENT_ID.match(credentials.client_id)) and 0 < len(credentials.secret) <= SECRET_CHARS_MAX)
    row = None
    if well_formed:
        async with ch.pool.acquire() as conn:
            row = await store.client(conn, credentials.client_id)
    try:
        matched = await ch.hasher.verify(None if row is None else row.secret_hash,
                                         credentials.secret[:SECRET_CHARS_MAX])
    except LimitReached:
        raise errors.unavailable("too many token requests are being checked; retry shortly", 1) from None
    if not matched or row is None:
        CLIENT_AUTH_FAILURES.inc()
        log.warning("openapi_client_auth_failed", client=credentials.client_id[:CLIENT_ID_CHARS_MAX])
        raise errors.invalid_client()
    if ch.hasher.needs_rehash(row.secret_hash):
        await _rehash(ch, row, credentials.secret)
    return row


def require_active(client: store.ClientRow) -> None:
    """A suspended or revoked client gets no token and revokes nothing (its tokens are already revoked)."""
    if client.status is not ClientStatus.ACTIVE:
        raise errors.invalid_client(f"the client is {client.status.value}")


async def _rehash(ch: OpenApiChannel, row: store.ClientRow, secret: str) -> None:
    secret_hash = await ch.hasher.hash(secret)
    async with ch.pool.acquire() as conn:
        await store.set_client_secret(conn, row.client_id, secret_hash, None, ch.now())


async def issue_token(ch: OpenApiChannel, client: store.ClientRow, form: dict[str, str]) -> dict[str, Any]:
    """The client credentials grant for an authenticated client: an opaque bearer token for the requested scopes
    (or all the client's)."""
    await admit(ch, client.client_id, client.rate_per_s, client.burst, client.daily_quota)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise errors.invalid_request("grant_type is missing")
    if grant_type != "client_credentials":
        raise errors.unsupported_grant_type(grant_type)
    try:
        scopes = granted_scopes(parse_scope(form.get("scope")), client.scopes)
    except InvalidScope as e:
        raise errors.invalid_scope(str(e)) from None
    now = ch.now()
    token = new_token()
    async with ch.pool.acquire() as conn, conn.transaction():
        await store.client(conn, client.client_id, for_update=True)  # live tokens are counted one request at a time
        live = await store.live_token_count(conn, client.client_id, now)
        if live + 1 > TOKENS_LIVE_PER_CLIENT_MAX:
            raise errors.invalid_request(f"the client holds {live} live tokens, the most it may "
                                         "(openapi_tokens_live_per_client_max): reuse one until it expires")
        await store.insert_token(conn, token_digest(token), client.client_id, scopes, now,
                                 now + dt.timedelta(seconds=ch.token_lifetime_s))
    log.info("openapi_token_issued", client=client.client_id, scope=format_scopes(scopes))
    return {"access_token": token, "token_type": "Bearer", "expires_in": ch.token_lifetime_s,
            "scope": format_scopes(scopes)}


async def revoke_token(ch: OpenApiChannel, client: store.ClientRow, form: dict[str, str]) -> None:
    """RFC 7009: an authenticated client revokes one of its tokens. An unknown or already invalid token is answered
    like a revoked one; another client's token is refused."""
    await admit(ch, client.client_id, client.rate_per_s, client.burst, client.daily_quota)
    token = form.get("token")
    if not token:
        raise errors.invalid_request("token is missing")
    if not is_token_syntax(token):
        return
    digest = token_digest(token)
    async with ch.pool.acquire() as conn:
        row = await store.token(conn, digest)
        if row is None:
            return
        if row.client_id != client.client_id:
            raise errors.invalid_request("the token was not issued to this client; nothing was revoked")
        await store.revoke_token(conn, digest, ch.now())
    log.info("openapi_token_revoked", client=client.client_id)


async def introspect(ch: OpenApiChannel, token: str) -> dict[str, Any]:
    """RFC 7662's answer, for the bank's operations: whether the token works now, and for whom."""
    if not is_token_syntax(token):
        return {"active": False}
    async with ch.pool.acquire() as conn:
        row = await store.token(conn, token_digest(token))
    if row is None:
        return {"active": False}
    active = row.revoked_at is None and row.expires_at > ch.now() and row.client_status is ClientStatus.ACTIVE
    answer: dict[str, Any] = {"active": active, "client_id": row.client_id, "scope": format_scopes(row.scopes),
                              "token_type": "Bearer", "iat": int(row.issued_at.timestamp()),
                              "exp": int(row.expires_at.timestamp()), "client_status": row.client_status.value}
    if row.revoked_at is not None:
        answer["revoked_at"] = iso(row.revoked_at)
    return answer
