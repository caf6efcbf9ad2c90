"""The life of a teller request: made once per client request id (a retry answers the first outcome, the same id with
another body is refused), executed at once or kept pending for a second operator (maker-checker), approved and
executed exactly once, rejected, withdrawn by its maker, or expired. Every step is audited in the transaction that
makes it.

A product's business refusal is the request's outcome, recorded for ever; a system error records nothing but the
attempt (the request is `ready`), and the same request retried, or the same approval repeated, runs it again with
the same product ids — so a movement of money happens once however often anyone retries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter

from kanjo.channels.teller import audit, operations, store
from kanjo.channels.teller.channel import STALE_EXECUTION_S, TellerChannel
from kanjo.channels.teller.limits import (
    DUPLICATE_WAIT_MS,
    EXPIRY_SWEEP_BATCH_MAX,
    PENDING_PER_BRANCH_MAX,
    REQUESTS_PAGE_ROWS_MAX,
)
from kanjo.channels.teller.model import (
    SYSTEM,
    Action,
    AuditEntry,
    Capability,
    Event,
    Kind,
    Refusal,
    Refused,
    Role,
    State,
    approval_needed,
    content_sha256,
    decision_refusal,
    making_refusal,
    may,
    next_state,
    normalise_request_id,
    product_request_id,
    withdrawal_refusal,
)
from kanjo.channels.teller.operators import Session
from kanjo.channels.teller.store import Request
from kanjo.hub import HubError
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.teller")
POLL_S = 0.02
SWEEP_INTERVAL_S = 5.0
REQUESTS = Counter("kanjo_teller_requests_total", "teller requests by kind and outcome", ["kind", "outcome"])


class Unavailable(Exception):
    """A system condition: nothing is known to have happened; retry the same request (or approval) later."""

    def __init__(self, code: str, message: str, retry_after_s: float) -> None:
        self.code = code
        self.retry_after_s = retry_after_s
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]


# -- views ------------------------------------------------------------------------------------------------------


def _at(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def request_view(req: Request) -> dict[str, Any]:
    return {"request_id": req.request_id, "kind": req.kind.value, "state": req.state.value,
            "approval": req.approval.value if req.approval else None, "maker_id": req.maker_id,
            "checker_id": req.checker_id, "branch_code": req.branch_code, "terminal_id": req.terminal_id,
            "amount_minor": req.amount_minor, "targets": list(req.targets), "content": req.content,
            "content_sha256": req.content_sha256.hex(), "made_at": _at(req.made_at),
            "expires_at": _at(req.expires_at), "decided_at": _at(req.decided_at),
            "decision_reason": req.decision_reason, "finished_at": _at(req.finished_at), "result": req.result,
            "refusal": req.refusal}


def reply_of(req: Request, *, replayed: bool = False, shown_once: dict[str, Any] | None = None) -> Reply:
    body = {**request_view(req), "replayed": replayed}
    if shown_once:
        body["shown_once"] = shown_once
    if req.state is State.REFUSED and req.refusal is not None:
        return Reply(int(req.refusal["status"]), {"error": req.refusal["error"], "message": req.refusal["message"],
                                                  **body})
    if req.state is State.READY:
        return Reply(503, {"error": "unavailable", "message": "the execution stopped on a system error: retry the same"
                           " request (or the approval) to run it again", **body})
    return Reply(202 if req.state is State.PENDING else 200, body)


# -- audit helpers ----------------------------------------------------------------------------------------------


def _request_entry(session: Session | None, action: Action, outcome: str, req: Request, at: dt.datetime,
                   **detail: Any) -> AuditEntry:
    fields: dict[str, Any] = {"kind": req.kind.value, "request_id": req.request_id, "targets": req.targets,
                              "amount_minor": req.amount_minor, "detail": detail}
    if session is None:
        return AuditEntry(operator_id=SYSTEM, action=action, outcome=outcome, at=at, branch_code=req.branch_code,
                          **fields)
    return session.entry(action, outcome, at, **fields)


async def _refuse(ch: TellerChannel, session: Session, refusal: Refusal, *, kind: str, request_id: str | None,
                  step: str, targets: tuple[str, ...] = (), amount_minor: int | None = None) -> Refused:
    """Audit a refusal that changed nothing; returns the exception to raise."""
    REQUESTS.labels(kind, refusal.code).inc()
    await audit.record(ch.pool, session.entry(Action.REFUSED, refusal.code, ch.now(), kind=kind,
                                              request_id=request_id, targets=targets, amount_minor=amount_minor,
                                              detail={"step": step, "message": refusal.message}))
    return Refused(refusal.status, refusal.code, refusal.message)


# -- making a request -------------------------------------------------------------------------------------------


async def make_request(ch: TellerChannel, session: Session, kind: Kind, raw_request_id: str,
                       content: dict[str, Any]) -> Reply:
    refusal = making_refusal(session.role, kind)
    if refusal is not None:
        raise await _refuse(ch, session, refusal, kind=kind.value, request_id=None, step="make")
    try:
        request_id = normalise_request_id(raw_request_id, session.terminal_id)
    except Refused as e:
        raise await _refuse(ch, session, e.refusal, kind=kind.value, request_id=None, step="make") from None
    digest = content_sha256(kind, content)
    async with ch.pool.acquire() as conn:
        existing = await store.load(conn, request_id)
    if existing is not None:
        return await _replay(ch, session, existing, kind, digest)
    prid = product_request_id(request_id)
    try:
        prepared = await operations.KINDS[kind].prepare(ch, content, prid, session.operator_id)
    except HubError as e:
        raise _unavailable(e) from None
    except operations.BUSINESS_ERRORS as e:
        raise await _refuse(ch, session, operations.refusal_of(e).refusal, kind=kind.value, request_id=request_id,
                            step="make") from None
    approval = approval_needed(kind, prepared.amount_minor, ch.policy)
    now = ch.now()
    req = Request(
        request_id=request_id, product_request_id=prid, kind=kind, content=content, content_sha256=digest,
        maker_id=session.operator_id, branch_code=session.branch_code, terminal_id=session.terminal_id,
        amount_minor=prepared.amount_minor, targets=prepared.targets, approval=approval,
        state=State.PENDING if approval else State.EXECUTING, checker_id=None, decided_at=None,
        decision_reason=None, expires_at=now + dt.timedelta(seconds=ch.policy.pending_expiry_s) if approval else None,
        attempt=0 if approval else 1, attempt_started_at=None if approval else now, progress=None, result=None,
        refusal=None, made_at=now, finished_at=None)
    async with ch.pool.acquire() as conn, conn.transaction():
        if approval is not None:
            waiting = await store.pending_count(conn, session.branch_code)
            limits.observe("teller_pending_per_branch_max", waiting)
            if waiting + 1 > PENDING_PER_BRANCH_MAX:
                raise LimitReached(limits.get("teller_pending_per_branch_max"), waiting + 1)
        inserted = await store.insert(conn, req)
        if inserted:
            outcome = "pending" if approval else "accepted"
            await audit.append(conn, _request_entry(session, Action.REQUESTED, outcome, req, now,
                                                    approval=approval.value if approval else None))
    if not inserted:  # a duplicate raced this one and won: this is its retry
        async with ch.pool.acquire() as conn:
            raced = await store.load(conn, request_id)
        assert raced is not None
        return await _replay(ch, session, raced, kind, digest)
    if approval is not None:
        REQUESTS.labels(kind.value, "pending").inc()
        return reply_of(req)
    return await _run(ch, req, session)


async def _replay(ch: TellerChannel, session: Session, existing: Request, kind: Kind, digest: bytes) -> Reply:
    """The same request again: the first outcome (waiting for it while it executes, running it again after a system
    error). Another operator, kind or body under the same id is refused."""
    differs = ("operator" if existing.maker_id != session.operator_id else "kind" if existing.kind is not kind
               else "content" if existing.content_sha256 != digest else None)
    if differs is not None:
        refusal = Refusal(409, "request_reused", f"request id {existing.request_id} was already used with another"
                          f" {differs}: a retry repeats the request exactly; a new request needs a new id")
        raise await _refuse(ch, session, refusal, kind=kind.value, request_id=existing.request_id, step="make")
    return await _settle(ch, session, existing)


async def _settle(ch: TellerChannel, session: Session, req: Request) -> Reply:
    """Answer a request seen before: its outcome, or run it (ready, or left executing by a dead process), or wait."""
    deadline = asyncio.get_running_loop().time() + DUPLICATE_WAIT_MS / 1000
    while True:
        if req.state in (State.READY, State.EXECUTING):
            now = ch.now()
            async with ch.pool.acquire() as conn:
                claimed = await store.retry(conn, req.request_id, now, now - dt.timedelta(seconds=STALE_EXECUTION_S))
            if claimed is not None:
                return await _run(ch, claimed, session)
        if req.state is not State.EXECUTING:
            return reply_of(req, replayed=True)
        if asyncio.get_running_loop().time() >= deadline:
            raise Unavailable("in_flight", f"request {req.request_id} is still executing: retry it shortly", 1.0)
        await asyncio.sleep(POLL_S)
        async with ch.pool.acquire() as conn:
            found = await store.load(conn, req.request_id)
        assert found is not None
        req = found


# -- execution --------------------------------------------------------------------------------------------------


async def _run(ch: TellerChannel, req: Request, actor: Session) -> Reply:
    """Execute the attempt `req` holds (state executing) and record its outcome; `actor` is the operator whose action
    runs it (the maker of a direct request, the checker of an approved one)."""
    job = operations.Job(req.request_id, req.product_request_id, req.kind, req.content, req.maker_id,
                         req.checker_id, req.branch_code, req.made_at, req.attempt, req.progress)
    try:
        done = await operations.KINDS[req.kind].execute(ch, job)
    except operations.TakenOver:
        return await _settle(ch, actor, req)
    except HubError as e:
        await _finish(ch, actor, req, State.READY, outcome=e.code)
        raise _unavailable(e) from None
    except operations.BUSINESS_ERRORS as e:
        refusal = operations.refusal_of(e).refusal
        finished = await _finish(ch, actor, req, State.REFUSED, outcome=refusal.code, refusal=refusal.as_dict())
        return reply_of(finished)
    except Exception as e:  # a system error: nothing is known; the same request retried runs it again
        log.error("teller_system_error", request_id=req.request_id, kind=req.kind.value, error=repr(e))
        await _finish(ch, actor, req, State.READY, outcome="system_error")
        raise Unavailable("unavailable", "a system error stopped the request: retry the same request", 5.0) from None
    finished = await _finish(ch, actor, req, State.EXECUTED, outcome="ok", result=done.result, targets=done.targets,
                             amount_minor=done.amount_minor)
    return reply_of(finished, shown_once=done.shown_once if finished.attempt == req.attempt else None)


async def _finish(ch: TellerChannel, actor: Session, req: Request, state: State, *, outcome: str,
                  result: dict[str, Any] | None = None, refusal: dict[str, Any] | None = None,
                  targets: tuple[str, ...] | None = None, amount_minor: int | None = None) -> Request:
    """Record this attempt's outcome with its audit entry; when another attempt took over, answer what it recorded."""
    now = ch.now()
    targets = req.targets if targets is None else tuple(dict.fromkeys((*req.targets, *targets)))
    amount = req.amount_minor if amount_minor is None else amount_minor
    action = {State.EXECUTED: Action.EXECUTED, State.REFUSED: Action.REFUSED, State.READY: Action.FAILED}[state]
    event = {State.EXECUTED: Event.SUCCEED, State.REFUSED: Event.REFUSE, State.READY: Event.FAIL}[state]
    invariant(next_state(req.state, event) is state, "an attempt ends executed, refused or ready")
    async with ch.pool.acquire() as conn, conn.transaction():
        finished = await store.finish(conn, req.request_id, req.attempt, state, result, refusal, targets, amount, now)
        if finished is not None:
            await audit.append(conn, _request_entry(actor, action, outcome, finished, now, attempt=req.attempt,
                                                    maker=req.maker_id, checker=req.checker_id))
    REQUESTS.labels(req.kind.value, outcome).inc()
    if finished is None:
        async with ch.pool.acquire() as conn:
            finished = await store.load(conn, req.request_id)
        assert finished is not None
    return finished


def _unavailable(e: HubError) -> Unavailable:
    return Unavailable(e.code, f"{e.message}; nothing is known to have happened: retry the same request",
                       e.retry_after_s or 1.0)


# -- checking: approve, reject; withdraw; expire ----------------------------------------------------------------


async def _load(ch: TellerChannel, session: Session, request_id: str, step: str) -> Request:
    async with ch.pool.acquire() as conn:
        req = await store.load(conn, request_id)
    if req is None:
        raise await _refuse(ch, session, Refusal(404, "unknown_request", f"no request {request_id}"), kind="",
                            request_id=request_id, step=step)
    return req


async def approve(ch: TellerChannel, session: Session, request_id: str, digest_hex: str) -> Reply:
    """A supervisor other than the maker approves exactly the content they reviewed (`digest_hex`); the request is
    executed once. The same approval repeated answers the same outcome."""
    req = await _load(ch, session, request_id, "approve")
    if req.state is State.PENDING:
        now = ch.now()
        refusal = decision_refusal(session.operator_id, session.role, session.branch_code, req.checked(), now)
        if refusal is None and digest_hex != req.content_sha256.hex():
            refusal = Refusal(409, "content_mismatch", "the request's content is not the one reviewed: read it again"
                              " and approve what it says")
        if refusal is None and content_sha256(req.kind, req.content) != req.content_sha256:
            log.error("teller_request_altered", request_id=req.request_id)
            refusal = Refusal(409, "content_altered", "the stored request no longer matches what its maker made:"
                              " it cannot be approved; report it")
        if refusal is not None:
            if refusal.code == "expired":
                await _expire(ch, req, now)
            raise await _refuse(ch, session, refusal, kind=req.kind.value, request_id=req.request_id, step="approve",
                                targets=req.targets, amount_minor=req.amount_minor)
        async with ch.pool.acquire() as conn, conn.transaction():
            claimed = await store.approve(conn, req.request_id, session.operator_id, now)
            if claimed is not None:
                await audit.append(conn, _request_entry(session, Action.APPROVED, "ok", claimed, now,
                                                        maker=req.maker_id))
        if claimed is not None:
            return await _run(ch, claimed, session)
        async with ch.pool.acquire() as conn:
            req = await store.load(conn, request_id) or req
    if req.checker_id == session.operator_id and req.state in (State.EXECUTING, State.READY, State.EXECUTED,
                                                                 State.REFUSED):
        return await _settle(ch, session, req)  # the same approval again
    refusal = decision_refusal(session.operator_id, session.role, session.branch_code, req.checked(), ch.now())
    assert refusal is not None
    raise await _refuse(ch, session, refusal, kind=req.kind.value, request_id=req.request_id, step="approve",
                        targets=req.targets, amount_minor=req.amount_minor)


async def reject(ch: TellerChannel, session: Session, request_id: str, reason: str) -> Reply:
    req = await _load(ch, session, request_id, "reject")
    if req.state is State.REJECTED and req.checker_id == session.operator_id:
        return reply_of(req, replayed=True)
    now = ch.now()
    refusal = decision_refusal(session.operator_id, session.role, session.branch_code, req.checked(), now)
    if refusal is None:
        async with ch.pool.acquire() as conn, conn.transaction():
            decided = await store.decide(conn, request_id, State.REJECTED, session.operator_id, reason, now)
            if decided is not None:
                await audit.append(conn, _request_entry(session, Action.REJECTED, "ok", decided, now, reason=reason,
                                                        maker=req.maker_id))
        if decided is not None:
            REQUESTS.labels(req.kind.value, "rejected").inc()
            return reply_of(decided)
        return await reject(ch, session, request_id, reason)  # decided by someone else meanwhile: answer that
    if refusal.code == "expired":
        await _expire(ch, req, now)
    raise await _refuse(ch, session, refusal, kind=req.kind.value, request_id=req.request_id, step="reject",
                        targets=req.targets, amount_minor=req.amount_minor)


async def withdraw(ch: TellerChannel, session: Session, request_id: str, reason: str) -> Reply:
    """The maker takes back a request nobody has checked yet."""
    req = await _load(ch, session, request_id, "withdraw")
    if req.state is State.WITHDRAWN and req.maker_id == session.operator_id:
        return reply_of(req, replayed=True)
    refusal = withdrawal_refusal(session.operator_id, req.checked())
    if refusal is None:
        now = ch.now()
        async with ch.pool.acquire() as conn, conn.transaction():
            decided = await store.decide(conn, request_id, State.WITHDRAWN, None, reason, now)
            if decided is not None:
                await audit.append(conn, _request_entry(session, Action.WITHDRAWN, "ok", decided, now, reason=reason))
        if decided is not None:
            REQUESTS.labels(req.kind.value, "withdrawn").inc()
            return reply_of(decided)
        return await withdraw(ch, session, request_id, reason)
    raise await _refuse(ch, session, refusal, kind=req.kind.value, request_id=req.request_id, step="withdraw",
                        targets=req.targets, amount_minor=req.amount_minor)


async def _expire(ch: TellerChannel, req: Request, now: dt.datetime) -> bool:
    async with ch.pool.acquire() as conn, conn.transaction():
        decided = await store.decide(conn, req.request_id, State.EXPIRED, None,
                                     f"not checked within {ch.policy.pending_expiry_s} s", now)
        if decided is not None:
            await audit.append(conn, _request_entry(None, Action.EXPIRED, "ok", decided, now, maker=req.maker_id))
    if decided is not None:
        REQUESTS.labels(req.kind.value, "expired").inc()
    return decided is not None


async def expire_overdue(ch: TellerChannel) -> int:
    """Expire the pending requests past their time (one batch); returns how many expired."""
    now = ch.now()
    async with ch.pool.acquire() as conn:
        overdue = await store.overdue(conn, now, EXPIRY_SWEEP_BATCH_MAX)
        found = [await store.load(conn, request_id) for request_id in overdue]
    return sum([await _expire(ch, req, now) for req in found if req is not None])


async def run_expiry_sweeper(ch: TellerChannel) -> None:
    """The expiry sweep every few seconds for the life of the process; a failed sweep is logged and retried."""
    while True:
        expired = 0
        try:
            expired = await expire_overdue(ch)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("teller_expiry_sweep_failed", error=repr(e))
        if expired < EXPIRY_SWEEP_BATCH_MAX:
            await asyncio.sleep(SWEEP_INTERVAL_S)


# -- reads of requests ------------------------------------------------------------------------------------------


async def get_request(ch: TellerChannel, session: Session, request_id: str) -> dict[str, Any]:
    req = await _load(ch, session, request_id, "read")
    if session.role is not Role.AUDITOR and req.branch_code != session.branch_code:
        raise Refused(403, "other_branch", f"request {request_id} belongs to branch {req.branch_code}")
    return request_view(req)


async def list_requests(ch: TellerChannel, session: Session, *, state: State | None, mine: bool, after: str | None,
                        limit: int) -> dict[str, Any]:
    """A branch's requests in the order made (a supervisor's queue: state=pending); an auditor sees every branch."""
    if not may(session.role, Capability.READ_REQUESTS):
        raise Refused(403, "not_allowed", f"a {session.role.value} cannot read requests")
    if limit > REQUESTS_PAGE_ROWS_MAX:
        raise LimitReached(limits.get("teller_requests_page_rows_max"), limit)
    branch = None if session.role is Role.AUDITOR else session.branch_code
    async with ch.pool.acquire() as conn:
        rows = await store.listed(conn, branch_code=branch, state=state, maker_id=session.operator_id if mine else None,
                                  after=after, rows_max=limit + 1)
    page = rows[:limit]
    return {"requests": [request_view(r) for r in page],
            "next_after": page[-1].request_id if len(rows) > limit else None}
