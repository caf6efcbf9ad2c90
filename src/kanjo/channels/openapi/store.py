"""SQL of the open API channel (schema `openapi`): clients, tokens, quota counters, consents, transfers and the
access log. Every function takes the caller's connection; the caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from kanjo.channels.openapi.model import ClientStatus, ConsentStatus, Scope, iso


def _scopes(values: list[str]) -> frozenset[Scope]:
    return frozenset(Scope(v) for v in values)


def _sorted(scopes: frozenset[Scope]) -> list[str]:
    return [s.value for s in Scope if s in scopes]


# -- clients ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    request_id: int
    fingerprint: bytes
    name: str
    registration_number: str
    secret_hash: str
    secret_rotated_by: int | None
    scopes: frozenset[Scope]
    status: ClientStatus
    rate_per_s: int
    burst: int
    daily_quota: int
    created_at: dt.datetime
    updated_at: dt.datetime


_CLIENT_COLUMNS = """client_id, request_id, fingerprint, name, registration_number, secret_hash, secret_rotated_by,
    scopes, status, rate_per_s, burst, daily_quota, created_at, updated_at"""


def _client(r: asyncpg.Record) -> ClientRow:
    return ClientRow(r["client_id"], r["request_id"], bytes(r["fingerprint"]), r["name"], r["registration_number"],
                     r["secret_hash"], r["secret_rotated_by"], _scopes(r["scopes"]), ClientStatus(r["status"]),
                     r["rate_per_s"], r["burst"], r["daily_quota"], r["created_at"], r["updated_at"])


async def insert_client(conn: asyncpg.Connection, c: ClientRow) -> bool:
    """False when the request id was already used (the caller reads what it made)."""
    return bool(await conn.fetchval(
        f"""INSERT INTO openapi.clients ({_CLIENT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            ON CONFLICT (request_id) DO NOTHING RETURNING true""",
        c.client_id, c.request_id, c.fingerprint, c.name, c.registration_number, c.secret_hash, c.secret_rotated_by,
        _sorted(c.scopes), c.status.value, c.rate_per_s, c.burst, c.daily_quota, c.created_at, c.updated_at))


async def client(conn: asyncpg.Connection, client_id: str, *, for_update: bool = False) -> ClientRow | None:
    # NO KEY UPDATE: rows inserted for this client (tokens, consents) take KEY SHARE on it and need not wait.
    r = await conn.fetchrow(f"SELECT {_CLIENT_COLUMNS} FROM openapi.clients WHERE client_id = $1"
                            + (" FOR NO KEY UPDATE" if for_update else ""), client_id)
    return None if r is None else _client(r)


async def client_by_request(conn: asyncpg.Connection, request_id: int) -> ClientRow | None:
    r = await conn.fetchrow(f"SELECT {_CLIENT_COLUMNS} FROM openapi.clients WHERE request_id = $1", request_id)
    return None if r is None else _client(r)


async def client_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM openapi.clients"))


async def clients(conn: asyncpg.Connection, after_client_id: str, limit: int) -> list[ClientRow]:
    rows = await conn.fetch(f"""SELECT {_CLIENT_COLUMNS} FROM openapi.clients WHERE client_id > $1
                                ORDER BY client_id LIMIT $2""", after_client_id, limit)
    return [_client(r) for r in rows]


async def set_client_status(conn: asyncpg.Connection, client_id: str, status: ClientStatus, now: dt.datetime) -> None:
    await conn.execute("UPDATE openapi.clients SET status = $2, updated_at = $3 WHERE client_id = $1",
                       client_id, status.value, now)


async def set_client_limits(conn: asyncpg.Connection, client_id: str, rate_per_s: int, burst: int, daily_quota: int,
                            now: dt.datetime) -> None:
    await conn.execute(
        """UPDATE openapi.clients SET rate_per_s = $2, burst = $3, daily_quota = $4, updated_at = $5
           WHERE client_id = $1""", client_id, rate_per_s, burst, daily_quota, now)


async def set_client_secret(conn: asyncpg.Connection, client_id: str, secret_hash: str, rotated_by: int | None,
                            now: dt.datetime) -> None:
    await conn.execute(
        """UPDATE openapi.clients SET secret_hash = $2, secret_rotated_by = coalesce($3, secret_rotated_by),
               updated_at = $4 WHERE client_id = $1""", client_id, secret_hash, rotated_by, now)


async def insert_client_event(conn: asyncpg.Connection, client_id: str, event: str, status: ClientStatus, by: str,
                              reason: str, now: dt.datetime) -> None:
    await conn.execute(
        """INSERT INTO openapi.client_events (client_id, event, status, by, reason, at)
           VALUES ($1, $2, $3, $4, $5, $6)""", client_id, event, status.value, by, reason, now)


async def client_events(conn: asyncpg.Connection, client_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("""SELECT event, status, by, reason, at FROM openapi.client_events WHERE client_id = $1
                               ORDER BY id LIMIT $2""", client_id, limit)
    return [{**dict(r), "at": iso(r["at"])} for r in rows]


# -- tokens ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TokenRow:
    """A token as a request finds it, with what its client's row says now."""

    client_id: str
    scopes: frozenset[Scope]
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    client_status: ClientStatus
    rate_per_s: int
    burst: int
    daily_quota: int


async def insert_token(conn: asyncpg.Connection, token_hash: bytes, client_id: str, scopes: frozenset[Scope],
                       issued_at: dt.datetime, expires_at: dt.datetime) -> None:
    await conn.execute(
        """INSERT INTO openapi.tokens (token_hash, client_id, scopes, issued_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)""", token_hash, client_id, _sorted(scopes), issued_at, expires_at)


async def live_token_count(conn: asyncpg.Connection, client_id: str, now: dt.datetime) -> int:
    return int(await conn.fetchval(
        """SELECT count(*) FROM openapi.tokens WHERE client_id = $1 AND expires_at > $2 AND revoked_at IS NULL""",
        client_id, now))


async def token(conn: asyncpg.Connection, token_hash: bytes) -> TokenRow | None:
    r = await conn.fetchrow(
        """SELECT t.client_id, t.scopes, t.issued_at, t.expires_at, t.revoked_at, c.status, c.rate_per_s, c.burst,
                  c.daily_quota
           FROM openapi.tokens t JOIN openapi.clients c USING (client_id) WHERE t.token_hash = $1""", token_hash)
    if r is None:
        return None
    return TokenRow(r["client_id"], _scopes(r["scopes"]), r["issued_at"], r["expires_at"], r["revoked_at"],
                    ClientStatus(r["status"]), r["rate_per_s"], r["burst"], r["daily_quota"])


async def revoke_token(conn: asyncpg.Connection, token_hash: bytes, now: dt.datetime) -> None:
    await conn.execute("UPDATE openapi.tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
                       token_hash, now)


async def revoke_client_tokens(conn: asyncpg.Connection, client_id: str, now: dt.datetime) -> int:
    done = await conn.execute(
        """UPDATE openapi.tokens SET revoked_at = $2
           WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2""", client_id, now)
    return int(done.split()[-1])


# -- daily quota -------------------------------------------------------------------------------------------------

async def count_call(conn: asyncpg.Connection, client_id: str, day: dt.date, quota: int) -> int | None:
    """Count one call of the day; None (nothing counted) when the quota is already spent."""
    return await conn.fetchval(
        """INSERT INTO openapi.usage (client_id, day, calls) VALUES ($1, $2, 1)
           ON CONFLICT (client_id, day) DO UPDATE SET calls = openapi.usage.calls + 1
           WHERE openapi.usage.calls < $3 RETURNING calls""", client_id, day, quota)


async def calls_on(conn: asyncpg.Connection, client_id: str, day: dt.date) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(calls), 0) FROM openapi.usage WHERE client_id = $1"
                                   " AND day = $2", client_id, day))


# -- consents ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConsentRow:
    consent_id: int
    client_id: str
    idempotency_key: str
    fingerprint: bytes
    branch_code: str
    account_number: int
    account_id: int | None
    customer_id: int | None
    scopes: frozenset[Scope]
    transfer_max_minor: int | None
    daily_transfer_max_minor: int | None
    status: ConsentStatus
    requested_at: dt.datetime
    authorise_by: dt.datetime
    expires_at: dt.datetime
    authorised_at: dt.datetime | None
    authorised_card: str | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None


_CONSENT_COLUMNS = """consent_id, client_id, idempotency_key, fingerprint, branch_code, account_number, account_id,
    customer_id, scopes, transfer_max_minor, daily_transfer_max_minor, status, requested_at, authorise_by, expires_at,
    authorised_at, authorised_card, revoked_at, revoked_by, revoke_reason"""


def _consent(r: asyncpg.Record) -> ConsentRow:
    return ConsentRow(r["consent_id"], r["client_id"], r["idempotency_key"], bytes(r["fingerprint"]),
                      r["branch_code"], r["account_number"], r["account_id"], r["customer_id"], _scopes(r["scopes"]),
                      r["transfer_max_minor"], r["daily_transfer_max_minor"], ConsentStatus(r["status"]),
                      r["requested_at"], r["authorise_by"], r["expires_at"], r["authorised_at"],
                      r["authorised_card"], r["revoked_at"], r["revoked_by"], r["revoke_reason"])


async def insert_consent(conn: asyncpg.Connection, c: ConsentRow) -> bool:
    """False when the client already used this Idempotency-Key for a consent."""
    return bool(await conn.fetchval(
        f"""INSERT INTO openapi.consents ({_CONSENT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
            ON CONFLICT (client_id, idempotency_key) DO NOTHING RETURNING true""",
        c.consent_id, c.client_id, c.idempotency_key, c.fingerprint, c.branch_code, c.account_number, c.account_id,
        c.customer_id, _sorted(c.scopes), c.transfer_max_minor, c.daily_transfer_max_minor, c.status.value,
        c.requested_at, c.authorise_by, c.expires_at, c.authorised_at, c.authorised_card, c.revoked_at,
        c.revoked_by, c.revoke_reason))


async def consent(conn: asyncpg.Connection, consent_id: int, *, for_update: bool = False) -> ConsentRow | None:
    r = await conn.fetchrow(f"SELECT {_CONSENT_COLUMNS} FROM openapi.consents WHERE consent_id = $1"
                            + (" FOR NO KEY UPDATE" if for_update else ""), consent_id)
    return None if r is None else _consent(r)


async def consent_by_key(conn: asyncpg.Connection, client_id: str, idempotency_key: str) -> ConsentRow | None:
    r = await conn.fetchrow(f"""SELECT {_CONSENT_COLUMNS} FROM openapi.consents
                                WHERE client_id = $1 AND idempotency_key = $2""", client_id, idempotency_key)
    return None if r is None else _consent(r)


async def active_consent(conn: asyncpg.Connection, client_id: str, branch_code: str, account_number: int, *,
                         for_update: bool = False) -> ConsentRow | None:
    r = await conn.fetchrow(
        f"""SELECT {_CONSENT_COLUMNS} FROM openapi.consents
            WHERE client_id = $1 AND branch_code = $2 AND account_number = $3 AND status = 'active'"""
        + (" FOR NO KEY UPDATE" if for_update else ""), client_id, branch_code, account_number)
    return None if r is None else _consent(r)


async def pending_count(conn: asyncpg.Connection, client_id: str, branch_code: str, account_number: int,
                        now: dt.datetime) -> int:
    return int(await conn.fetchval(
        """SELECT count(*) FROM openapi.consents WHERE client_id = $1 AND branch_code = $2 AND account_number = $3
           AND status = 'pending' AND authorise_by > $4""", client_id, branch_code, account_number, now))


async def supersede_active(conn: asyncpg.Connection, client_id: str, branch_code: str, account_number: int,
                           now: dt.datetime) -> list[int]:
    rows = await conn.fetch(
        """UPDATE openapi.consents SET status = 'superseded', revoked_at = $4
           WHERE client_id = $1 AND branch_code = $2 AND account_number = $3 AND status = 'active'
           RETURNING consent_id""", client_id, branch_code, account_number, now)
    return [r["consent_id"] for r in rows]


async def activate_consent(conn: asyncpg.Connection, consent_id: int, account_id: int, customer_id: int,
                           card_masked: str, now: dt.datetime) -> None:
    await conn.execute(
        """UPDATE openapi.consents SET status = 'active', account_id = $2, customer_id = $3, authorised_card = $4,
               authorised_at = $5 WHERE consent_id = $1 AND status = 'pending'""",
        consent_id, account_id, customer_id, card_masked, now)


async def revoke_consent(conn: asyncpg.Connection, consent_id: int, by: str, reason: str, now: dt.datetime) -> None:
    await conn.execute(
        """UPDATE openapi.consents SET status = 'revoked', revoked_at = $4, revoked_by = $2, revoke_reason = $3
           WHERE consent_id = $1 AND status IN ('pending', 'active')""", consent_id, by, reason, now)


async def revoke_client_consents(conn: asyncpg.Connection, client_id: str, reason: str, now: dt.datetime) -> list[int]:
    rows = await conn.fetch(
        """UPDATE openapi.consents SET status = 'revoked', revoked_at = $3, revoked_by = 'bank', revoke_reason = $2
           WHERE client_id = $1 AND status IN ('pending', 'active') RETURNING consent_id""", client_id, reason, now)
    return [r["consent_id"] for r in rows]


async def insert_consent_event(conn: asyncpg.Connection, consent_id: int, event: str, by: str, detail: str,
                               now: dt.datetime) -> None:
    await conn.execute(
        """INSERT INTO openapi.consent_events (consent_id, event, by, detail, at) VALUES ($1, $2, $3, $4, $5)""",
        consent_id, event, by, detail, now)


async def consent_events(conn: asyncpg.Connection, consent_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("""SELECT event, by, detail, at FROM openapi.consent_events WHERE consent_id = $1
                               ORDER BY id LIMIT $2""", consent_id, limit)
    return [{**dict(r), "at": iso(r["at"])} for r in rows]


async def consents_of_account(conn: asyncpg.Connection, branch_code: str, account_number: int,
                              limit: int) -> list[ConsentRow]:
    rows = await conn.fetch(
        f"""SELECT {_CONSENT_COLUMNS} FROM openapi.consents WHERE branch_code = $1 AND account_number = $2
            ORDER BY seq DESC LIMIT $3""", branch_code, account_number, limit)
    return [_consent(r) for r in rows]


# -- transfers ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TransferRow:
    transfer_id: int
    client_id: str
    idempotency_key: str
    fingerprint: bytes
    consent_id: int
    from_account_id: int
    from_label: str
    to_label: str
    amount_minor: int
    fee_minor: int | None
    day: dt.date
    state: str
    in_flight_until: dt.datetime
    http_status: int | None
    answer: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


_TRANSFER_COLUMNS = """transfer_id, client_id, idempotency_key, fingerprint, consent_id, from_account_id, from_label,
    to_label, amount_minor, fee_minor, day, state, in_flight_until, http_status, answer, created_at, updated_at"""


def _transfer(r: asyncpg.Record) -> TransferRow:
    return TransferRow(r["transfer_id"], r["client_id"], r["idempotency_key"], bytes(r["fingerprint"]),
                       r["consent_id"], r["from_account_id"], r["from_label"], r["to_label"], r["amount_minor"],
                       r["fee_minor"], r["day"], r["state"], r["in_flight_until"], r["http_status"],
                       None if r["answer"] is None else orjson.loads(r["answer"]), r["created_at"], r["updated_at"])


async def insert_transfer(conn: asyncpg.Connection, t: TransferRow) -> bool:
    """False when the client already used this Idempotency-Key for a transfer."""
    return bool(await conn.fetchval(
        f"""INSERT INTO openapi.transfers ({_TRANSFER_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            ON CONFLICT DO NOTHING RETURNING true""",  # the id derives from (client, key): either key names it
        t.transfer_id, t.client_id, t.idempotency_key, t.fingerprint, t.consent_id, t.from_account_id, t.from_label,
        t.to_label, t.amount_minor, t.fee_minor, t.day, t.state, t.in_flight_until, t.http_status,
        None if t.answer is None else orjson.dumps(t.answer).decode(), t.created_at, t.updated_at))


async def transfer_by_key(conn: asyncpg.Connection, client_id: str, idempotency_key: str) -> TransferRow | None:
    r = await conn.fetchrow(f"""SELECT {_TRANSFER_COLUMNS} FROM openapi.transfers
                                WHERE client_id = $1 AND idempotency_key = $2""", client_id, idempotency_key)
    return None if r is None else _transfer(r)


async def transfer(conn: asyncpg.Connection, transfer_id: int) -> TransferRow | None:
    r = await conn.fetchrow(f"SELECT {_TRANSFER_COLUMNS} FROM openapi.transfers WHERE transfer_id = $1", transfer_id)
    return None if r is None else _transfer(r)


async def used_on(conn: asyncpg.Connection, consent_id: int, day: dt.date) -> int:
    """What the consent's transfers of the day add up to (processing ones count: their outcome is not known yet)."""
    return int(await conn.fetchval(
        """SELECT coalesce(sum(amount_minor), 0) FROM openapi.transfers
           WHERE consent_id = $1 AND day = $2 AND state <> 'refused'""", consent_id, day))


async def take_over(conn: asyncpg.Connection, transfer_id: int, now: dt.datetime, until: dt.datetime) -> bool:
    """Claim a processing transfer no request is working on (released after a system error, or its process
    died); the products' idempotency makes finishing it safe."""
    return bool(await conn.fetchval(
        """UPDATE openapi.transfers SET in_flight_until = $3, updated_at = $2
           WHERE transfer_id = $1 AND state = 'processing' AND in_flight_until <= $2 RETURNING true""",
        transfer_id, now, until))


async def finish_transfer(conn: asyncpg.Connection, transfer_id: int, state: str, http_status: int,
                          answer: dict[str, Any], fee_minor: int | None, now: dt.datetime) -> None:
    await conn.execute(
        """UPDATE openapi.transfers SET state = $2, http_status = $3, answer = $4, fee_minor = $5, updated_at = $6,
               in_flight_until = $6
           WHERE transfer_id = $1 AND state = 'processing'""",
        transfer_id, state, http_status, orjson.dumps(answer).decode(), fee_minor, now)


async def release_transfer(conn: asyncpg.Connection, transfer_id: int, now: dt.datetime) -> None:
    """A system error: the record stays processing, and the next retry takes it over at once."""
    await conn.execute(
        """UPDATE openapi.transfers SET in_flight_until = $2, updated_at = $2
           WHERE transfer_id = $1 AND state = 'processing'""", transfer_id, now)


# -- access log --------------------------------------------------------------------------------------------------

async def insert_access(conn: asyncpg.Connection, at: dt.datetime, request_id: int, client_id: str | None,
                        consent_id: int | None, method: str, route: str, account: str | None, status: int,
                        outcome: str, latency_ms: int) -> None:
    await conn.execute(
        """INSERT INTO openapi.access_log (at, request_id, client_id, consent_id, method, route, account, status,
               outcome, latency_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        at, request_id, client_id, consent_id, method, route, account, status, outcome, latency_ms)


async def access_log(conn: asyncpg.Connection, *, client_id: str | None, consent_id: int | None,
                     outcome: str | None, since: dt.datetime | None, until: dt.datetime | None, before_id: int | None,
                     limit: int) -> list[asyncpg.Record]:
    """Newest first; `before_id` pages back."""
    return await conn.fetch(
        """SELECT id, at, request_id, client_id, consent_id, method, route, account, status, outcome, latency_ms
           FROM openapi.access_log
           WHERE ($1::text IS NULL OR client_id = $1) AND ($2::uuid IS NULL OR consent_id = $2)
             AND ($3::text IS NULL OR outcome = $3) AND ($4::timestamptz IS NULL OR at >= $4)
             AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR id < $6)
           ORDER BY id DESC LIMIT $7""", client_id, consent_id, outcome, since, until, before_id, limit)


# -- housekeeping ------------------------------------------------------------------------------------------------

async def purge_tokens(conn: asyncpg.Connection, expired_before: dt.datetime, limit: int) -> int:
    done = await conn.execute(
        """DELETE FROM openapi.tokens WHERE token_hash IN (
               SELECT token_hash FROM openapi.tokens WHERE expires_at < $1 LIMIT $2)""", expired_before, limit)
    return int(done.split()[-1])


async def purge_usage(conn: asyncpg.Connection, before_day: dt.date, limit: int) -> int:
    done = await conn.execute(
        """DELETE FROM openapi.usage WHERE (client_id, day) IN (
               SELECT client_id, day FROM openapi.usage WHERE day < $1 LIMIT $2)""", before_day, limit)
    return int(done.split()[-1])


async def purge_access_log(conn: asyncpg.Connection, before: dt.datetime, limit: int) -> int:
    done = await conn.execute(
        """DELETE FROM openapi.access_log WHERE id IN (
               SELECT id FROM openapi.access_log WHERE at < $1 ORDER BY id LIMIT $2)""", before, limit)
    return int(done.split()[-1])
