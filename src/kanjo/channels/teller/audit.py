"""The teller audit trail: append an entry to the hash chain (inside the caller's transaction), read it by operator,
target and time, and verify the whole chain (part of `kanjo verify`)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from kanjo.channels.teller.limits import AUDIT_PAGE_ROWS_MAX, AUDIT_VERIFY_PAGE_ROWS
from kanjo.channels.teller.model import Action, AuditEntry, ChainCheck, StoredEntry, chain_sha256
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits

_COLUMNS = ("seq, at, operator_id, branch_code, terminal_id, action, kind, request_id, targets, amount_minor,"
            " outcome, detail, prev_sha256, sha256")


async def append(conn: asyncpg.Connection, entry: AuditEntry) -> int:
    """Write `entry` as the next link of the chain; returns its sequence number. The caller's transaction makes it
    atomic with the change it records; the head row's lock serialises writers, so the chain has no fork."""
    invariant(conn.is_in_transaction(), "an audit entry is written in the transaction of what it records")
    head = await conn.fetchrow("SELECT seq, sha256 FROM teller.audit_head WHERE one FOR UPDATE")
    invariant(head is not None, "the audit head row exists from the migration on")
    seq = int(head["seq"]) + 1
    prev = bytes(head["sha256"])
    digest = chain_sha256(prev, seq, entry)
    await conn.execute(
        f"INSERT INTO teller.audit ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb,"
        " $13, $14)", seq, entry.at, entry.operator_id, entry.branch_code, entry.terminal_id, entry.action.value,
        entry.kind, entry.request_id, list(entry.targets), entry.amount_minor, entry.outcome,
        json.dumps(dict(entry.detail), ensure_ascii=False), prev, digest)
    await conn.execute("UPDATE teller.audit_head SET seq = $1, sha256 = $2 WHERE one", seq, digest)
    return seq


async def record(pool: asyncpg.Pool, entry: AuditEntry) -> int:
    """An entry on its own (a sign-on, a refusal that changed nothing)."""
    async with pool.acquire() as conn, conn.transaction():
        return await append(conn, entry)


def _stored(r: asyncpg.Record) -> StoredEntry:
    entry = AuditEntry(
        operator_id=r["operator_id"], action=Action(r["action"]), outcome=r["outcome"], at=r["at"],
        branch_code=r["branch_code"], terminal_id=r["terminal_id"], kind=r["kind"], request_id=r["request_id"],
        targets=tuple(r["targets"]), amount_minor=r["amount_minor"], detail=json.loads(r["detail"]))
    return StoredEntry(int(r["seq"]), entry, bytes(r["prev_sha256"]), bytes(r["sha256"]))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    operator_id: str | None = None
    target: str | None = None
    request_id: str | None = None
    at_from: dt.datetime | None = None
    at_to: dt.datetime | None = None  # exclusive
    after_seq: int = 0


async def read(pool: asyncpg.Pool, f: AuditFilter, limit: int) -> tuple[list[StoredEntry], int | None]:
    """Entries matching the filter in chain order, after `after_seq`; and the seq to page on from, or None."""
    if limit > AUDIT_PAGE_ROWS_MAX:
        raise LimitReached(limits.get("teller_audit_page_rows_max"), limit)
    where, args = ["seq > $1"], list[Any]([f.after_seq])
    for column, value in (("operator_id = ", f.operator_id), ("request_id = ", f.request_id),
                          ("at >= ", f.at_from), ("at < ", f.at_to)):
        if value is not None:
            args.append(value)
            where.append(f"{column}${len(args)}")
    if f.target is not None:
        args.append([f.target])
        where.append(f"targets @> ${len(args)}")
    args.append(limit + 1)
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM teller.audit WHERE {' AND '.join(where)}"
                                f" ORDER BY seq LIMIT ${len(args)}", *args)
    limits.observe("teller_audit_page_rows_max", min(len(rows), limit))
    page = [_stored(r) for r in rows[:limit]]
    return page, (page[-1].seq if len(rows) > limit else None)


def entry_view(row: StoredEntry) -> dict[str, Any]:
    e = row.entry
    return {"seq": row.seq, "at": e.at.isoformat(), "operator_id": e.operator_id, "branch_code": e.branch_code,
            "terminal_id": e.terminal_id, "action": e.action.value, "kind": e.kind, "request_id": e.request_id,
            "targets": list(e.targets), "amount_minor": e.amount_minor, "outcome": e.outcome,
            "detail": dict(e.detail), "sha256": row.sha256.hex()}


async def verify_audit(conn: asyncpg.Connection) -> dict[str, Any]:
    """Recompute the whole chain, page by page: every entry's hash, its link to the one before, no gap, and the head
    naming the last entry. `ok` only when all hold; `head_sha256` anchors the trail for an outside copy."""
    if await conn.fetchval("SELECT to_regclass('teller.audit')") is None:
        return {"ok": True, "entries": 0, "problems": [], "note": "the teller schema is not migrated"}
    check = ChainCheck()
    while True:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM teller.audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                                check.last_seq, AUDIT_VERIFY_PAGE_ROWS)
        check.feed(_stored(r) for r in rows)
        if len(rows) < AUDIT_VERIFY_PAGE_ROWS:
            break
    head = await conn.fetchrow("SELECT seq, sha256 FROM teller.audit_head WHERE one")
    invariant(head is not None, "the audit head row exists from the migration on")
    check.finish(int(head["seq"]), bytes(head["sha256"]))
    return {"ok": not check.problems, "entries": check.entries, "head_seq": int(head["seq"]),
            "head_sha256": bytes(head["sha256"]).hex(), "problems": check.problems}
