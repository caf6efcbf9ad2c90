"""HTTP routes of the teller channel under /teller/v1 (docs/teller.md): sessions, branch requests, checking, reads
at the counter and the audit trail. Every route but sign-on needs a session token (401 without one, 403 when the
operator's role does not allow the action)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kanjo.channels.teller import audit, inquiries, operators, service
from kanjo.channels.teller.channel import TellerChannel
from kanjo.channels.teller.limits import AUDIT_PAGE_ROWS_MAX, REQUESTS_PAGE_ROWS_MAX, SEARCH_ROWS_MAX
from kanjo.channels.teller.model import Action, Capability, Kind, Refused, State, may
from kanjo.channels.teller.operators import Session
from kanjo.channels.teller.schemas import (
    REQUEST_ID_PATTERN,
    AccountActionIn,
    ApproveIn,
    CardActionIn,
    CashIn,
    ChangeContactIn,
    DeactivateOperatorIn,
    OpenAccountIn,
    PasswordChangeIn,
    RegisterCustomerIn,
    RegisterOperatorIn,
    RejectIn,
    RequestIn,
    RequestOut,
    ResetPasswordIn,
    SessionOut,
    SignOnIn,
    TimeDepositIn,
    TransferIn,
    VerifyIdentityIn,
    WithdrawIn,
)
from kanjo.hub import HubError
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, FastJSONResponse, Problem, problem

ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": Problem, "description": "no valid session: sign on (POST /teller/v1/sessions)"},
    403: {"model": Problem, "description": "the operator's role (or being the maker) does not allow this"},
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": RequestOut, "description": "executed (or, replayed, as it stands)"},
    202: {"model": RequestOut, "description": "pending: a supervisor other than the maker must approve it"},
}
router = APIRouter(prefix="/teller/v1", tags=["teller"], responses=ERRORS)
bearer = HTTPBearer(auto_error=False, description="the session token answered by POST /teller/v1/sessions")
RequestIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=REQUEST_ID_PATTERN)]


def _ch(request: Request) -> TellerChannel:
    return request.app.state.teller


def _http(e: Refused) -> HTTPException:
    r = e.refusal
    headers = {"WWW-Authenticate": "Bearer"} if r.status == 401 else None
    return HTTPException(r.status, {"error": r.code, "message": r.message}, headers=headers)


async def current_session(request: Request,
                          credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Session:
    try:
        return await operators.authenticate(_ch(request), credentials.credentials if credentials else None)
    except Refused as e:
        raise _http(e) from None


SessionDep = Annotated[Session, Depends(current_session)]


async def _answer(reply: Awaitable[service.Reply]) -> FastJSONResponse:
    try:
        r = await reply
    except Refused as e:
        raise _http(e) from None
    except (service.Unavailable, HubError) as e:
        retry = getattr(e, "retry_after_s", None) or 1.0
        return problem(503, getattr(e, "code", "unavailable"), str(e), headers={"Retry-After": str(int(retry) or 1)})
    return FastJSONResponse(r.body, status_code=r.status)


async def _read(result: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await result
    except Refused as e:
        raise _http(e) from None
    except HubError as e:
        raise HTTPException(503, {"error": e.code, "message": str(e)}, headers={"Retry-After": "1"}) from None


def _lookup_id(text: str) -> str:
    """A request id as stored: UUIDs in lower case."""
    try:
        return str(uuid.UUID(text)) if len(text) == 36 else text
    except ValueError:
        return text


# -- sessions ---------------------------------------------------------------------------------------------------


def _session_out(session: Session, token: str | None = None) -> dict[str, Any]:
    return {"token": token, "operator": session.operator.view(), "terminal_id": session.terminal_id,
            "signed_on_at": session.signed_on_at.isoformat(), "expires_at": session.expires_at.isoformat()}


@router.post("/sessions", summary="Sign on at a terminal: the session token is answered once", status_code=201,
             response_model=SessionOut)
async def sign_on(body: SignOnIn, request: Request) -> dict[str, Any]:
    try:
        token, session = await operators.sign_on(_ch(request), body.operator_id, body.password, body.terminal_id)
    except Refused as e:
        raise _http(e) from None
    return _session_out(session, token)


@router.get("/sessions/current", summary="Who is signed on here", response_model=SessionOut)
async def whoami(session: SessionDep) -> dict[str, Any]:
    return _session_out(session)


@router.delete("/sessions/current", summary="Sign off", status_code=204)
async def sign_off(session: SessionDep, request: Request) -> None:
    await operators.sign_off(_ch(request), session)


@router.post("/sessions/current/password", summary="Change one's own password", status_code=204)
async def change_password(body: PasswordChangeIn, session: SessionDep, request: Request) -> None:
    try:
        await operators.change_password(_ch(request), session, body.current_password, body.new_password)
    except Refused as e:
        raise _http(e) from None


# -- branch requests --------------------------------------------------------------------------------------------


async def _make(request: Request, session: Session, kind: Kind, body: RequestIn,
                content: dict[str, Any] | None = None) -> FastJSONResponse:
    return await _answer(service.make_request(_ch(request), session, kind, body.request_id,
                                              body.content() if content is None else content))


@router.post("/customers", summary="Register a customer (CIF)", responses=ANSWERS)
async def register_customer(body: RegisterCustomerIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.REGISTER_CUSTOMER, body)


@router.post("/identity-verifications", summary="Record identity verification (本人確認)", responses=ANSWERS)
async def verify_identity(body: VerifyIdentityIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.VERIFY_IDENTITY, body)


@router.post("/contact-changes", summary="Change a customer's address and contact (sensitive: always checked)",
             responses=ANSWERS)
async def change_contact(body: ChangeContactIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.CHANGE_CONTACT, body)


@router.post("/accounts", summary="Open a deposit account (普通, 総合口座 or 当座)", responses=ANSWERS)
async def open_account(body: OpenAccountIn, session: SessionDep, request: Request) -> FastJSONResponse:
    content = {**body.content(), "branch_code": body.branch_code or session.branch_code}
    return await _make(request, session, Kind.OPEN_ACCOUNT, body, content)


@router.post("/cash-deposits", summary="Cash paid in at the counter (checked above the threshold)", responses=ANSWERS)
async def cash_deposit(body: CashIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.CASH_DEPOSIT, body)


@router.post("/cash-withdrawals", summary="Cash paid out at the counter (checked above the threshold)",
             responses=ANSWERS)
async def cash_withdrawal(body: CashIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.CASH_WITHDRAWAL, body)


@router.post("/transfers", summary="A transfer between accounts of the bank (振替), with the counter's fee",
             responses=ANSWERS)
async def transfer(body: TransferIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.TRANSFER, body)


@router.post("/time-deposits", summary="Place a time deposit from the customer's account", responses=ANSWERS)
async def place_time_deposit(body: TimeDepositIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.PLACE_TIME_DEPOSIT, body)


@router.post("/account-closures", summary="Close an account (解約): interest, cash payout, close (always checked)",
             responses=ANSWERS)
async def close_account(body: AccountActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.CLOSE_ACCOUNT, body)


@router.post("/account-freezes", summary="Freeze an account (凍結)", responses=ANSWERS)
async def freeze_account(body: AccountActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.FREEZE_ACCOUNT, body)


@router.post("/account-unfreezes", summary="Unfreeze an account (always checked)", responses=ANSWERS)
async def unfreeze_account(body: AccountActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.UNFREEZE_ACCOUNT, body)


@router.post("/card-loss-reports", summary="Report a cash card lost (紛失届)", responses=ANSWERS)
async def report_card_lost(body: CardActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.REPORT_CARD_LOST, body)


@router.post("/pin-unlocks", summary="Unlock a PIN-locked card (always checked)", responses=ANSWERS)
async def unlock_pin(body: CardActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.UNLOCK_PIN, body)


@router.post("/card-cancellations", summary="Cancel a cash card (解約)", responses=ANSWERS)
async def cancel_card(body: CardActionIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.CANCEL_CARD, body)


@router.post("/operators", summary="Register an operator of the branch (supervisors; always checked)",
             responses=ANSWERS)
async def register_operator(body: RegisterOperatorIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.REGISTER_OPERATOR, body,
                       {**body.content(), "branch_code": session.branch_code})


@router.post("/password-resets", summary="Reset an operator's password and lift a lock-out (always checked)",
             responses=ANSWERS)
async def reset_password(body: ResetPasswordIn, session: SessionDep, request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.RESET_PASSWORD, body)


@router.post("/operator-deactivations", summary="Deactivate an operator (supervisors)", responses=ANSWERS)
async def deactivate_operator(body: DeactivateOperatorIn, session: SessionDep,
                              request: Request) -> FastJSONResponse:
    return await _make(request, session, Kind.DEACTIVATE_OPERATOR, body)


# -- checking ---------------------------------------------------------------------------------------------------


@router.get("/requests", summary="The branch's requests (a supervisor's queue: state=pending)")
async def list_requests(
    session: SessionDep, request: Request, state: State | None = None,
    mine: Annotated[bool, Query(description="only the requests this operator made")] = False,
    after: Annotated[str | None, Query(min_length=1, max_length=36, pattern=REQUEST_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=REQUESTS_PAGE_ROWS_MAX)] = 50,
) -> dict[str, Any]:
    return await _read(service.list_requests(_ch(request), session, state=state, mine=mine,
                                             after=_lookup_id(after) if after else None, limit=limit))


@router.get("/requests/{request_id}", summary="One request, with its content and outcome")
async def get_request(request_id: RequestIdPath, session: SessionDep, request: Request) -> dict[str, Any]:
    return await _read(service.get_request(_ch(request), session, _lookup_id(request_id)))


@router.post("/requests/{request_id}/approve", summary="Approve (検印) and execute another operator's request",
             responses=ANSWERS)
async def approve(request_id: RequestIdPath, body: ApproveIn, session: SessionDep,
                  request: Request) -> FastJSONResponse:
    return await _answer(service.approve(_ch(request), session, _lookup_id(request_id), body.content_sha256))


@router.post("/requests/{request_id}/reject", summary="Reject another operator's request", responses=ANSWERS)
async def reject(request_id: RequestIdPath, body: RejectIn, session: SessionDep,
                 request: Request) -> FastJSONResponse:
    return await _answer(service.reject(_ch(request), session, _lookup_id(request_id), body.reason))


@router.post("/requests/{request_id}/withdraw", summary="Withdraw one's own pending request", responses=ANSWERS)
async def withdraw(request_id: RequestIdPath, body: WithdrawIn, session: SessionDep,
                   request: Request) -> FastJSONResponse:
    return await _answer(service.withdraw(_ch(request), session, _lookup_id(request_id), body.reason))


# -- reads at the counter ---------------------------------------------------------------------------------------


@router.get("/customers/{customer_id}", summary="A customer with accounts, balances and cards")
async def customer(customer_id: Annotated[str, Path(pattern=UUID_PATTERN)], session: SessionDep,
                   request: Request) -> dict[str, Any]:
    return await _read(inquiries.customer_view(_ch(request), session, uuid.UUID(customer_id).int))


@router.get("/customers", summary="Search customers by kana name prefix or phone")
async def search_customers(
    session: SessionDep, request: Request,
    kana: Annotated[str | None, Query(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=20, pattern=r"^[0-9０-９\-－ー]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=SEARCH_ROWS_MAX)] = 20,
) -> dict[str, Any]:
    return await _read(inquiries.search(_ch(request), session, kana, phone, limit))


@router.get("/accounts/{branch_code}/{account_number}", summary="An account with its balance")
async def account(branch_code: Annotated[str, Path(pattern=r"^[0-9]{3}$")],
                  account_number: Annotated[str, Path(pattern=r"^[0-9]{7}$")], session: SessionDep,
                  request: Request) -> dict[str, Any]:
    return await _read(inquiries.account_view(_ch(request), session, branch_code, int(account_number)))


# -- the audit trail --------------------------------------------------------------------------------------------


def _auditor(session: Session) -> None:
    if not may(session.role, Capability.READ_AUDIT):
        raise _http(Refused(403, "not_allowed", f"a {session.role.value} cannot read the audit trail: supervisors"
                            " and auditors do"))


@router.get("/audit", summary="The audit trail, filtered by operator, target, request and time (paged)")
async def audit_trail(
    session: SessionDep, request: Request,
    operator_id: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9]{2,11}$")] = None,
    target: Annotated[str | None, Query(min_length=3, max_length=60, pattern=r"^[a-z]+:[0-9A-Za-z-]+$",
                                        description="customer:<uuid>, account:001-1234567, card:<uuid>,"
                                        " operator:<id>")] = None,
    request_id: Annotated[str | None, Query(min_length=1, max_length=36, pattern=REQUEST_ID_PATTERN)] = None,
    at_from: Annotated[dt.datetime | None, Query(alias="from", description="inclusive, with a time zone")] = None,
    at_to: Annotated[dt.datetime | None, Query(alias="to", description="exclusive, with a time zone")] = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_ROWS_MAX)] = 100,
) -> dict[str, Any]:
    _auditor(session)
    for name, value in (("from", at_from), ("to", at_to)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, {"error": "invalid_field", "message": f"{name}: give a time zone"})
    ch = _ch(request)
    f = audit.AuditFilter(operator_id, target, _lookup_id(request_id) if request_id else None, at_from, at_to,
                          after_seq)
    rows, next_after = await audit.read(ch.pool, f, limit)
    await audit.record(ch.pool, session.entry(Action.AUDIT_READ, "ok", ch.now(), detail={
        "operator_id": operator_id, "target": target, "request_id": request_id, "after_seq": after_seq,
        "rows": len(rows)}))
    return {"entries": [audit.entry_view(r) for r in rows], "next_after_seq": next_after}


@router.get("/audit/verification", summary="Recompute the audit trail's hash chain")
async def audit_verification(session: SessionDep, request: Request) -> dict[str, Any]:
    _auditor(session)
    async with _ch(request).pool.acquire() as conn:
        return await audit.verify_audit(conn)
