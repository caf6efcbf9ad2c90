"""The access log: one row per provider call (who, under which consent, which route and account, the outcome, when,
how long), written after the answer is known, and read by the bank's operations a page at a time, newest first."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from kanjo.channels.openapi import store
from kanjo.channels.openapi.limits import ACCESS_LOG_PAGE_ROWS_MAX
from kanjo.channels.openapi.model import iso
from kanjo.channels.openapi.service import ACCESS_LOG_FAILURES, CALL_SECONDS, CALLS, OpenApiChannel
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.openapi")


@dataclass
class CallRecord:
    """What a call leaves in the log; the handler fills it in as it learns who called and for what."""

    method: str
    route: str
    started_s: float
    at: dt.datetime
    request_id: int = field(default_factory=lambda: uuid.uuid4().int)
    client_id: str | None = None
    consent_id: int | None = None
    account: str | None = None


async def record(ch: OpenApiChannel, call: CallRecord, status: int, outcome: str) -> None:
    """Write the call's row; a failure to write never changes the answer already decided (it is counted and
    logged for the operators)."""
    latency_s = max(0.0, ch.monotonic() - call.started_s)
    CALLS.labels(call.route, outcome).inc()
    CALL_SECONDS.labels(call.route).observe(latency_s)
    try:
        async with ch.pool.acquire() as conn:
            await store.insert_access(conn, call.at, call.request_id, call.client_id, call.consent_id, call.method,
                                      call.route, call.account, status, outcome, min(int(latency_s * 1000), 2**31 - 1))
    except Exception as e:
        ACCESS_LOG_FAILURES.inc()
        log.error("openapi_access_log_failed", route=call.route, client=call.client_id, status=status,
                  outcome=outcome, error=repr(e))


@dataclass(frozen=True, slots=True)
class LogQuery:
    client_id: str | None = None
    consent_id: int | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_id: int | None = None
    limit: int = 100


async def query(ch: OpenApiChannel, q: LogQuery) -> dict[str, Any]:
    if q.limit > ACCESS_LOG_PAGE_ROWS_MAX:
        raise LimitReached(limits.get("openapi_access_log_page_rows_max"), q.limit)
    async with ch.pool.acquire() as conn:
        rows = await store.access_log(conn, client_id=q.client_id, consent_id=q.consent_id, outcome=q.outcome,
                                      since=q.since, until=q.until, before_id=q.before_id, limit=q.limit)
    entries = [{"id": r["id"], "at": iso(r["at"]), "request_id": str(uuid.UUID(int=r["request_id"])),
                "client_id": r["client_id"],
                "consent_id": None if r["consent_id"] is None else str(uuid.UUID(int=r["consent_id"])),
                "method": r["method"], "route": r["route"], "account": r["account"], "status": r["status"],
                "outcome": r["outcome"], "latency_ms": r["latency_ms"]} for r in rows]
    return {"entries": entries, "next_before_id": entries[-1]["id"] if len(entries) == q.limit else None}
