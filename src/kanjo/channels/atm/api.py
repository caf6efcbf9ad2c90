"""HTTP routes of the ATM channel: the device protocol under /atm/v1 (docs/atm-protocol.md) and the operations
routes for the registry, screen notices and in-doubt items under /v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request

from kanjo.channels.atm import messages, reconcile, registry
from kanjo.channels.atm.schemas import (
    AckIn,
    AnswerOut,
    DepositAckIn,
    DepositIn,
    InquiryIn,
    JournalIn,
    LoanDrawIn,
    MachinesIn,
    NoticeIn,
    PassbookIn,
    TimeDepositIn,
    TransferIn,
    WithdrawalIn,
)
from kanjo.channels.atm.service import AtmChannel, Reply, UnknownMachine
from kanjo.platform.http import ERROR_RESPONSES, FastJSONResponse

router = APIRouter(tags=["atm"], responses=ERROR_RESPONSES)
ATM_ID_PATTERN = r"^[A-Z0-9]{4,12}$"
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": AnswerOut, "description": "approved or refused (a business answer; see `code`)"},
    503: {"model": AnswerOut, "description": "unavailable: the card is returned; `still_working` lists what works"},
}


def _ch(request: Request) -> AtmChannel:
    return request.app.state.atm


def _send(reply: Reply) -> FastJSONResponse:
    return FastJSONResponse(reply.body, status_code=reply.status, headers=retry_after(reply))


def retry_after(reply: Reply) -> dict[str, str] | None:
    """A 503's Retry-After, in whole seconds (at least one)."""
    return {"Retry-After": str(int(reply.body.get("retry_after_s") or 1))} if reply.status == 503 else None


@router.post("/atm/v1/inquiry", summary="Balance inquiry (残高照会)", responses=ANSWERS)
async def inquiry(body: InquiryIn, request: Request) -> FastJSONResponse:
    return _send(await messages.inquiry(_ch(request), body))


@router.post("/atm/v1/withdrawal", summary="Authorise a cash withdrawal (お引出し): hold, then dispense",
             responses=ANSWERS)
async def withdrawal(body: WithdrawalIn, request: Request) -> FastJSONResponse:
    return _send(await messages.withdrawal(_ch(request), body))


@router.post("/atm/v1/withdrawal/ack", summary="The ATM's acknowledgement of a withdrawal: post or void the hold",
             responses=ANSWERS)
async def acknowledge(body: AckIn, request: Request) -> FastJSONResponse:
    try:
        return _send(await messages.withdrawal_ack(_ch(request), body))
    except UnknownMachine as e:
        raise HTTPException(404, str(e)) from None


@router.post("/atm/v1/deposit", summary="Cash deposit (お預入れ): may the counted notes be stored? Credits nothing yet",
             responses=ANSWERS)
async def deposit(body: DepositIn, request: Request) -> FastJSONResponse:
    return _send(await messages.deposit(_ch(request), body))


@router.post("/atm/v1/deposit/ack", summary="The ATM stored the notes (credit the account) or gave them back",
             responses=ANSWERS)
async def deposit_acknowledge(body: DepositAckIn, request: Request) -> FastJSONResponse:
    try:
        return _send(await messages.deposit_ack(_ch(request), body))
    except UnknownMachine as e:
        raise HTTPException(404, str(e)) from None


@router.post("/atm/v1/loan-draw", responses=ANSWERS,
             summary="Authorise card-loan cash (カードローン借入): hold it on the line, then dispense")
async def loan_draw(body: LoanDrawIn, request: Request) -> FastJSONResponse:
    return _send(await messages.loan_draw(_ch(request), body))


@router.post("/atm/v1/loan-draw/ack", responses=ANSWERS,
             summary="The ATM's acknowledgement of card-loan cash: draw it or release the hold")
async def loan_draw_acknowledge(body: AckIn, request: Request) -> FastJSONResponse:
    try:
        return _send(await messages.loan_draw_ack(_ch(request), body))
    except UnknownMachine as e:
        raise HTTPException(404, str(e)) from None


@router.post("/atm/v1/transfer", summary="Transfer (お振込み) to an account of this bank", responses=ANSWERS)
async def transfer(body: TransferIn, request: Request) -> FastJSONResponse:
    return _send(await messages.transfer(_ch(request), body))


@router.post("/atm/v1/passbook", summary="Passbook update (記帳)", responses=ANSWERS)
async def passbook(body: PassbookIn, request: Request) -> FastJSONResponse:
    return _send(await messages.passbook(_ch(request), body))


@router.post("/atm/v1/time-deposit", summary="Place a time deposit (定期預金の預入) from the card's account",
             responses=ANSWERS)
async def time_deposit(body: TimeDepositIn, request: Request) -> FastJSONResponse:
    return _send(await messages.time_deposit(_ch(request), body))


@router.post("/atm/v1/journal", summary="Upload the ATM's journal for reconciliation")
async def journal(body: JournalIn, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    entries = [reconcile.JournalEntry(e.journal_no, e.operation, e.amount_minor, e.outcome) for e in body.entries]
    try:
        result = await reconcile.reconcile_journal(ch, body.atm_id, entries)
    except UnknownMachine as e:
        raise HTTPException(404, str(e)) from None
    return {"atm_id": body.atm_id, **result.as_dict()}


@router.get("/atm/v1/notices", summary="Screen notices for one ATM")
async def notices(atm_id: Annotated[str, Query(pattern=ATM_ID_PATTERN)], request: Request) -> dict[str, Any]:
    return {"atm_id": atm_id, "notices": await registry.notices(_ch(request), atm_id)}


# -- operations ---------------------------------------------------------------------------------------------

@router.post("/v1/atms", summary="Register ATMs (idempotent by atm_id)", tags=["atm operations"])
async def register(body: MachinesIn, request: Request) -> dict[str, Any]:
    stored = await registry.register_machines(_ch(request), [(m.atm_id, m.kind, m.location) for m in body.machines])
    return {"machines": stored}


@router.get("/v1/atms/{atm_id}", summary="An ATM and its transaction counts", tags=["atm operations"])
async def machine(atm_id: Annotated[str, Path(pattern=ATM_ID_PATTERN)], request: Request) -> dict[str, Any]:
    try:
        return await registry.machine_view(_ch(request), atm_id)
    except registry.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.post("/v1/atm-notices", summary="Push a screen notice to all or some ATMs", tags=["atm operations"])
async def push_notice(body: NoticeIn, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    starts = body.starts_at
    if body.ends_at.tzinfo is None or (starts is not None and starts.tzinfo is None):
        raise HTTPException(422, "starts_at and ends_at need a time zone")
    if body.ends_at <= (starts or ch.now()):
        raise HTTPException(422, "ends_at must be after the notice starts")
    notice_id = await registry.push_notice(ch, body.text, body.atm_ids, starts, body.ends_at, body.created_by)
    return {"id": notice_id}


@router.get("/v1/atm-in-doubt", summary="In-doubt withdrawals: open items and reconciliation breaks",
            tags=["atm operations"])
async def in_doubt(request: Request) -> dict[str, Any]:
    return await registry.in_doubt_report(_ch(request))

