"""Operators (bank staff) and their authentication: sign-on with an Argon2id-hashed password and a try counter that
locks the operator, sessions kept only as token hashes with an absolute and an idle expiry, sign-off, and the
operator records that branch requests create, reset or deactivate. Every sign-on, failed or not, is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kanjo.channels.teller import audit
from kanjo.channels.teller.channel import TellerChannel
from kanjo.channels.teller.limits import PASSWORD_CHARS_MAX, SESSIONS_PER_OPERATOR_MAX, SIGN_ON_FAILURES_MAX
from kanjo.channels.teller.model import (
    SYSTEM,
    Action,
    AuditEntry,
    Refused,
    Role,
    new_password,
    new_session_token,
    password_problem,
    token_sha256,
)
from kanjo.kernel.limits import LimitReached, limits

LAST_USED_WRITE_EVERY_S = 60  # a session's last use is written at most once a minute, not on every request
_DUMMY_PASSWORD = "kanjo/teller/no-such-operator"
_dummy_hashes: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Operator:
    operator_id: str
    name: str
    branch_code: str
    role: Role
    active: bool
    locked: bool

    def view(self) -> dict[str, Any]:
        return {"operator_id": self.operator_id, "name": self.name, "branch_code": self.branch_code,
                "role": self.role.value, "active": self.active, "locked": self.locked}


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-on operator at a terminal."""

    operator: Operator
    terminal_id: str
    token_sha256: bytes
    signed_on_at: dt.datetime
    expires_at: dt.datetime

    @property
    def operator_id(self) -> str:
        return self.operator.operator_id

    @property
    def role(self) -> Role:
        return self.operator.role

    @property
    def branch_code(self) -> str:
        return self.operator.branch_code

    def entry(self, action: Action, outcome: str, at: dt.datetime, **fields: Any) -> AuditEntry:
        """An audit entry of something this operator did at this terminal."""
        return AuditEntry(operator_id=self.operator_id, action=action, outcome=outcome, at=at,
                          branch_code=self.branch_code, terminal_id=self.terminal_id, **fields)


def _operator(r: asyncpg.Record) -> Operator:
    return Operator(r["operator_id"], r["name"], r["branch_code"], Role(r["role"]), r["active"],
                    r["locked_at"] is not None)


async def _hash(ch: TellerChannel, password: str) -> str:
    return await asyncio.to_thread(ch.hasher.hash, password)


async def _matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Argon2id verification off the event loop (it takes about a tenth of a second by design)."""
    try:
        return await asyncio.to_thread(hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def _dummy_check(ch: TellerChannel, password: str) -> None:
    """An unknown operator id costs the same time as a wrong password: the answer's timing names no operator."""
    key = repr(ch.hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = await _hash(ch, _DUMMY_PASSWORD)
    await _matches(ch.hasher, _dummy_hashes[key], password)


# -- sign-on, sessions, sign-off --------------------------------------------------------------------------------


async def sign_on(ch: TellerChannel, operator_id: str, password: str, terminal_id: str) -> tuple[str, Session]:
    """The token (returned once) and the session. Refused with 401 for a wrong operator id or password (the same
    answer for both), 403 for a locked or inactive operator; the try that reaches the limit locks the operator."""
    if len(password) > PASSWORD_CHARS_MAX:
        raise Refused(422, "invalid_field", f"password: at most {PASSWORD_CHARS_MAX} characters")
    now = ch.now()
    entry = AuditEntry(operator_id=operator_id, action=Action.SIGN_ON_FAILED, outcome="invalid_credentials",
                       at=now, terminal_id=terminal_id, targets=(f"operator:{operator_id}",))
    refusal: Refused | None = None
    token = new_session_token()
    async with ch.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM teller.operators WHERE operator_id = $1 FOR UPDATE", operator_id)
        if row is None:
            await _dummy_check(ch, password)
            refusal = Refused(401, "invalid_credentials", "the operator id or the password is wrong")
            await audit.append(conn, entry)
        else:
            refusal, entry = await _check_password(ch, conn, row, password, entry, now)
            if refusal is None:
                session = await _open_session(ch, conn, row, token, terminal_id, now)
                await audit.append(conn, session.entry(Action.SIGN_ON, "ok", now,
                                                       targets=(f"operator:{operator_id}",)))
    if refusal is not None:
        raise refusal
    return token, session


async def _check_password(ch: TellerChannel, conn: asyncpg.Connection, row: asyncpg.Record, password: str,
                          entry: AuditEntry, now: dt.datetime) -> tuple[Refused | None, AuditEntry]:
    """Under the operator's row lock: concurrent guesses are counted one after another, never past the limit."""
    entry = AuditEntry(**{**_entry_fields(entry), "branch_code": row["branch_code"]})
    if not row["active"]:
        await audit.append(conn, AuditEntry(**{**_entry_fields(entry), "outcome": "operator_inactive"}))
        return Refused(403, "operator_inactive", "this operator is deactivated"), entry
    if row["locked_at"] is not None:
        await audit.append(conn, AuditEntry(**{**_entry_fields(entry), "outcome": "operator_locked"}))
        return Refused(403, "operator_locked", "this operator is locked after too many wrong passwords: a supervisor"
                       " resets the password"), entry
    if await _matches(ch.hasher, row["password_hash"], password):
        if ch.hasher.check_needs_rehash(row["password_hash"]):
            await conn.execute("UPDATE teller.operators SET password_hash = $2 WHERE operator_id = $1",
                               row["operator_id"], await _hash(ch, password))
        if row["failed_sign_ons"]:
            await conn.execute("UPDATE teller.operators SET failed_sign_ons = 0, updated_at = $2"
                               " WHERE operator_id = $1", row["operator_id"], now)
        return None, entry
    failures = int(row["failed_sign_ons"]) + 1
    locks = failures >= SIGN_ON_FAILURES_MAX
    await conn.execute("UPDATE teller.operators SET failed_sign_ons = $2, locked_at = $3, updated_at = $4"
                       " WHERE operator_id = $1", row["operator_id"], failures, now if locks else None, now)
    await audit.append(conn, AuditEntry(**{**_entry_fields(entry), "detail": {"failures": failures}}))
    if locks:
        await audit.append(conn, AuditEntry(**{**_entry_fields(entry), "action": Action.OPERATOR_LOCKED,
                                               "outcome": "locked", "detail": {"failures": failures}}))
        return Refused(403, "operator_locked", f"{failures} wrong passwords in a row: this operator is now locked;"
                       " a supervisor resets the password"), entry
    return Refused(401, "invalid_credentials", "the operator id or the password is wrong"), entry


def _entry_fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__dataclass_fields__}


async def _open_session(ch: TellerChannel, conn: asyncpg.Connection, row: asyncpg.Record, token: str,
                        terminal_id: str, now: dt.datetime) -> Session:
    """A new session at the terminal; the operator's earlier session at the same terminal is signed off."""
    await conn.execute("UPDATE teller.sessions SET signed_off_at = $3 WHERE operator_id = $1 AND terminal_id = $2"
                       " AND signed_off_at IS NULL", row["operator_id"], terminal_id, now)
    live = await conn.fetchval(
        "SELECT count(*) FROM teller.sessions WHERE operator_id = $1 AND signed_off_at IS NULL AND expires_at > $2"
        " AND last_used_at > $3", row["operator_id"], now, now - dt.timedelta(seconds=ch.session_idle_s))
    if live + 1 > SESSIONS_PER_OPERATOR_MAX:
        raise LimitReached(limits.get("teller_sessions_per_operator_max"), live + 1)
    expires_at = now + dt.timedelta(seconds=ch.session_ttl_s)
    digest = token_sha256(token)
    await conn.execute("INSERT INTO teller.sessions (token_sha256, operator_id, terminal_id, signed_on_at,"
                       " last_used_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
                       digest, row["operator_id"], terminal_id, now, expires_at)
    return Session(_operator(row), terminal_id, digest, now, expires_at)


async def authenticate(ch: TellerChannel, token: str | None) -> Session:
    """The session of a bearer token, or 401 naming why (none, unknown, signed off, expired, idle, operator no
    longer allowed). The operator's role and status are read on every request: a deactivation bites at once."""
    if not token:
        raise Refused(401, "unauthenticated", "sign on first: send the session token as 'Authorization: Bearer …'")
    digest, now = token_sha256(token), ch.now()
    async with ch.pool.acquire() as conn:
        r = await conn.fetchrow(
            "SELECT s.*, o.name, o.branch_code, o.role, o.active, o.locked_at FROM teller.sessions s"
            " JOIN teller.operators o USING (operator_id) WHERE s.token_sha256 = $1", digest)
        why = _session_problem(ch, r, now)
        if why is not None:
            raise Refused(401, why[0], why[1])
        assert r is not None
        if (now - r["last_used_at"]).total_seconds() >= LAST_USED_WRITE_EVERY_S:
            await conn.execute("UPDATE teller.sessions SET last_used_at = $2 WHERE token_sha256 = $1", digest, now)
    return Session(_operator(r), r["terminal_id"], digest, r["signed_on_at"], r["expires_at"])


def _session_problem(ch: TellerChannel, r: asyncpg.Record | None, now: dt.datetime) -> tuple[str, str] | None:
    if r is None:
        return "unauthenticated", "this session token is not known: sign on again"
    if r["signed_off_at"] is not None:
        return "session_ended", "this session was signed off: sign on again"
    if r["expires_at"] <= now:
        return "session_expired", "this session expired: sign on again"
    if (now - r["last_used_at"]).total_seconds() > ch.session_idle_s:
        return "session_idle", "this terminal was idle too long: sign on again"
    if not r["active"] or r["locked_at"] is not None:
        return "operator_not_allowed", "this operator is locked or deactivated"
    return None


async def sign_off(ch: TellerChannel, session: Session) -> None:
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE teller.sessions SET signed_off_at = $2 WHERE token_sha256 = $1"
                           " AND signed_off_at IS NULL", session.token_sha256, now)
        await audit.append(conn, session.entry(Action.SIGN_OFF, "ok", now,
                                               targets=(f"operator:{session.operator_id}",)))


async def change_password(ch: TellerChannel, session: Session, old: str, new: str) -> None:
    """The operator's own password (after a reset, the one handed over is replaced at once). The old one is checked;
    every session of the operator but this one is signed off."""
    problem = password_problem(new, PASSWORD_CHARS_MAX)
    if problem is not None:
        raise Refused(422, "invalid_field", f"new_password: {problem}")
    now, refusal = ch.now(), None
    async with ch.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM teller.operators WHERE operator_id = $1 FOR UPDATE",
                                  session.operator_id)
        assert row is not None
        if not await _matches(ch.hasher, row["password_hash"], old):
            refusal = Refused(403, "invalid_credentials", "the current password is wrong")
            await audit.append(conn, session.entry(Action.PASSWORD_CHANGED, "invalid_credentials", now))
        else:
            await conn.execute("UPDATE teller.operators SET password_hash = $2, updated_at = $3"
                               " WHERE operator_id = $1", session.operator_id, await _hash(ch, new), now)
            await conn.execute("UPDATE teller.sessions SET signed_off_at = $3 WHERE operator_id = $1"
                               " AND token_sha256 <> $2 AND signed_off_at IS NULL", session.operator_id,
                               session.token_sha256, now)
            await audit.append(conn, session.entry(Action.PASSWORD_CHANGED, "ok", now,
                                                   targets=(f"operator:{session.operator_id}",)))
    if refusal is not None:
        raise refusal


# -- the registry: what branch requests do (executed after a second supervisor's approval) ---------------------


async def get_operator(pool: asyncpg.Pool, operator_id: str) -> Operator | None:
    async with pool.acquire() as conn:
        r = await conn.fetchrow("SELECT * FROM teller.operators WHERE operator_id = $1", operator_id)
    return None if r is None else _operator(r)


async def register_operator(ch: TellerChannel, operator_id: str, name: str, branch_code: str, role: Role,
                            password: str, at: dt.datetime) -> bool:
    """A new operator with `password`; False (nothing changed) when the id is taken by the same person, refused
    when it names someone else."""
    password_hash = await _hash(ch, password)
    async with ch.pool.acquire() as conn:
        inserted = await conn.fetchval(
            "INSERT INTO teller.operators (operator_id, name, branch_code, role, password_hash, created_at,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (operator_id) DO NOTHING RETURNING 1",
            operator_id, name, branch_code, role.value, password_hash, at)
        if inserted:
            return True
        r = await conn.fetchrow("SELECT * FROM teller.operators WHERE operator_id = $1", operator_id)
    assert r is not None
    if (r["name"], r["branch_code"], r["role"]) != (name, branch_code, role.value):
        raise Refused(409, "operator_exists", f"operator {operator_id} is already {r['name']} ({r['role']} at"
                      f" {r['branch_code']})")
    return False


async def set_password(ch: TellerChannel, operator_id: str, password: str, at: dt.datetime) -> None:
    """A reset: the new password, the try counter at zero, the lock lifted, every session signed off."""
    password_hash = await _hash(ch, password)
    async with ch.pool.acquire() as conn, conn.transaction():
        done = await conn.fetchval(
            "UPDATE teller.operators SET password_hash = $2, failed_sign_ons = 0, locked_at = NULL, updated_at = $3"
            " WHERE operator_id = $1 RETURNING 1", operator_id, password_hash, at)
        if not done:
            raise Refused(404, "unknown_operator", f"no operator {operator_id}")
        await conn.execute("UPDATE teller.sessions SET signed_off_at = $2 WHERE operator_id = $1"
                           " AND signed_off_at IS NULL", operator_id, at)


async def deactivate_operator(ch: TellerChannel, operator_id: str, at: dt.datetime) -> None:
    async with ch.pool.acquire() as conn, conn.transaction():
        done = await conn.fetchval("UPDATE teller.operators SET active = false, updated_at = $2"
                                   " WHERE operator_id = $1 RETURNING 1", operator_id, at)
        if not done:
            raise Refused(404, "unknown_operator", f"no operator {operator_id}")
        await conn.execute("UPDATE teller.sessions SET signed_off_at = $2 WHERE operator_id = $1"
                           " AND signed_off_at IS NULL", operator_id, at)


# -- the demo -------------------------------------------------------------------------------------------------

DEMO_OPERATORS = (("T0011", "窓口 一郎", "001", Role.TELLER), ("T0012", "窓口 花子", "001", Role.TELLER),
                  ("S0011", "役席 太郎", "001", Role.SUPERVISOR), ("S0012", "役席 陽子", "001", Role.SUPERVISOR),
                  ("A0091", "検査 健太", "001", Role.AUDITOR))


async def seed_operators(ch: TellerChannel, environment: str = "development") -> list[dict[str, str]]:
    """The demo's operators at branch 001 (two tellers, two supervisors, an auditor), each given a fresh random
    password now (returned, for the demo to print): no default password exists anywhere. Idempotent for the
    operators themselves. Refused in production, where operators come through supervised requests only."""
    if environment == "production":
        raise RuntimeError("demo operators are never seeded in production")
    now = ch.now()
    seeded: list[dict[str, str]] = []
    for operator_id, name, branch_code, role in DEMO_OPERATORS:
        password = new_password()
        if not await register_operator(ch, operator_id, name, branch_code, role, password, now):
            await set_password(ch, operator_id, password, now)
        seeded.append({"operator_id": operator_id, "name": name, "branch_code": branch_code, "role": role.value,
                       "password": password})
    await audit.record(ch.pool, AuditEntry(operator_id=SYSTEM, action=Action.OPERATORS_SEEDED, outcome="ok", at=now,
                                           targets=tuple(f"operator:{o[0]}" for o in DEMO_OPERATORS)))
    return seeded
