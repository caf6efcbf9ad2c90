"""SQL of teller requests: the record of every client request id, its maker-checker state and its outcome. Each
state change is one conditional UPDATE, so two racing callers can never both move a request."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from kanjo.channels.teller.model import Approval, Checked, Kind, State


@dataclass(frozen=True, slots=True)
class Request:
    request_id: str
    product_request_id: int
    kind: Kind
    content: dict[str, Any]
    content_sha256: bytes
    maker_id: str
    branch_code: str
    terminal_id: str
    amount_minor: int | None
    targets: tuple[str, ...]
    approval: Approval | None
    state: State
    checker_id: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    expires_at: dt.datetime | None
    attempt: int
    attempt_started_at: dt.datetime | None
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    refusal: dict[str, Any] | None
    made_at: dt.datetime
    finished_at: dt.datetime | None

    def checked(self) -> Checked:
        return Checked(self.kind, self.maker_id, self.branch_code, self.state, self.expires_at, self.checker_id)


def _request(r: asyncpg.Record) -> Request:
    return Request(
        request_id=r["request_id"], product_request_id=r["product_request_id"], kind=Kind(r["kind"]),
        content=json.loads(r["content"]), content_sha256=bytes(r["content_sha256"]), maker_id=r["maker_id"],
        branch_code=r["branch_code"], terminal_id=r["terminal_id"], amount_minor=r["amount_minor"],
        targets=tuple(r["targets"]), approval=Approval(r["approval"]) if r["approval"] else None,
        state=State(r["state"]), checker_id=r["checker_id"], decided_at=r["decided_at"],
        decision_reason=r["decision_reason"], expires_at=r["expires_at"], attempt=r["attempt"],
        attempt_started_at=r["attempt_started_at"], progress=_json(r["progress"]), result=_json(r["result"]),
        refusal=_json(r["refusal"]),
        made_at=r["made_at"], finished_at=r["finished_at"])


def _json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def load(conn: asyncpg.Connection, request_id: str) -> Request | None:
    r = await conn.fetchrow("SELECT * FROM teller.requests WHERE request_id = $1", request_id)
    return None if r is None else _request(r)


async def insert(conn: asyncpg.Connection, req: Request) -> bool:
    """Claim the request id; False when it was taken (a retry, or a racing duplicate)."""
    done = await conn.fetchval(
        "INSERT INTO teller.requests (request_id, product_request_id, kind, content, content_sha256, maker_id,"
        " branch_code, terminal_id, amount_minor, targets, approval, state, expires_at, attempt, attempt_started_at,"
        " made_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING 1",
        req.request_id, req.product_request_id, req.kind.value, _dumps(req.content), req.content_sha256,
        req.maker_id, req.branch_code, req.terminal_id, req.amount_minor, list(req.targets),
        req.approval.value if req.approval else None, req.state.value, req.expires_at, req.attempt,
        req.attempt_started_at, req.made_at)
    return bool(done)


async def pending_count(conn: asyncpg.Connection, branch_code: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM teller.requests WHERE branch_code = $1 AND state = 'pending'",
                                   branch_code))


async def approve(conn: asyncpg.Connection, request_id: str, checker_id: str, now: dt.datetime) -> Request | None:
    """pending → executing, approved by `checker_id` (attempt 1); None when someone else moved it first."""
    r = await conn.fetchrow(
        "UPDATE teller.requests SET state = 'executing', checker_id = $2, decided_at = $3, attempt = attempt + 1,"
        " attempt_started_at = $3 WHERE request_id = $1 AND state = 'pending' AND expires_at > $3 RETURNING *",
        request_id, checker_id, now)
    return None if r is None else _request(r)


async def decide(conn: asyncpg.Connection, request_id: str, state: State, by: str | None, reason: str | None,
                 now: dt.datetime) -> Request | None:
    """pending → rejected (by the checker), withdrawn (by the maker) or expired; None when no longer pending."""
    r = await conn.fetchrow(
        "UPDATE teller.requests SET state = $2, checker_id = $3, decided_at = $5, decision_reason = $4,"
        " finished_at = $5 WHERE request_id = $1 AND state = 'pending' RETURNING *",
        request_id, state.value, by, reason, now)
    return None if r is None else _request(r)


async def retry(conn: asyncpg.Connection, request_id: str, now: dt.datetime,
                stale_before: dt.datetime) -> Request | None:
    """ready (or an execution left behind) → executing, as the next attempt; None when not ours to run now."""
    r = await conn.fetchrow(
        "UPDATE teller.requests SET state = 'executing', attempt = attempt + 1, attempt_started_at = $2"
        " WHERE request_id = $1 AND (state = 'ready' OR (state = 'executing' AND attempt_started_at < $3))"
        " RETURNING *", request_id, now, stale_before)
    return None if r is None else _request(r)


async def finish(conn: asyncpg.Connection, request_id: str, attempt: int, state: State, result: dict[str, Any] | None,
                 refusal: dict[str, Any] | None, targets: tuple[str, ...], amount_minor: int | None,
                 now: dt.datetime) -> Request | None:
    """executing → executed / refused / ready for this attempt; None when another attempt took it over."""
    r = await conn.fetchrow(
        "UPDATE teller.requests SET state = $3, result = $4::jsonb, refusal = $5::jsonb, targets = $6,"
        " amount_minor = $7, finished_at = CASE WHEN $3::text = 'ready' THEN NULL ELSE $8::timestamptz END"
        " WHERE request_id = $1 AND state = 'executing' AND attempt = $2 RETURNING *",
        request_id, attempt, state.value, None if result is None else _dumps(result),
        None if refusal is None else _dumps(refusal), list(targets), amount_minor, now)
    return None if r is None else _request(r)


async def save_progress(conn: asyncpg.Connection, request_id: str, attempt: int, progress: dict[str, Any]) -> bool:
    """Record a step of this attempt's execution; False when another attempt took the request over."""
    done = await conn.fetchval("UPDATE teller.requests SET progress = $3::jsonb WHERE request_id = $1"
                               " AND state = 'executing' AND attempt = $2 RETURNING 1", request_id, attempt,
                               _dumps(progress))
    return bool(done)


async def overdue(conn: asyncpg.Connection, now: dt.datetime, rows_max: int) -> list[str]:
    rows = await conn.fetch("SELECT request_id FROM teller.requests WHERE state = 'pending' AND expires_at <= $1"
                            " ORDER BY expires_at LIMIT $2", now, rows_max)
    return [r["request_id"] for r in rows]


async def listed(conn: asyncpg.Connection, *, branch_code: str | None, state: State | None, maker_id: str | None,
                 after: str | None, rows_max: int) -> list[Request]:
    where, args = ["true"], list[Any]()
    for column, value in (("branch_code", branch_code), ("state", state.value if state else None),
                          ("maker_id", maker_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if after is not None:
        args.append(after)
        where.append(f"(made_at, request_id) > (SELECT made_at, request_id FROM teller.requests"
                     f" WHERE request_id = ${len(args)})")
    args.append(rows_max)
    rows = await conn.fetch(f"SELECT * FROM teller.requests WHERE {' AND '.join(where)}"
                            f" ORDER BY made_at, request_id LIMIT ${len(args)}", *args)
    return [_request(r) for r in rows]
