"""HTTP routes of passbooks (通帳): state and unposted lines, printing (記帳), 繰越, loss reports, 再発行."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request

from kanjo.deposits import passbook
from kanjo.deposits.model import IllegalTransition, Refused
from kanjo.deposits.passbook_schemas import CarryForwardIn, PassbookOut, PassbookViewOut, PrintIn, PrintOut, ReasonIn
from kanjo.deposits.service import Deposits, NotFound
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers

router = APIRouter(prefix="/v1/deposits", tags=["passbooks"], responses=ERROR_RESPONSES)
AccountId = Annotated[str, Path(pattern=UUID_PATTERN, description="the account's id (UUID text)")]


def _d(request: Request) -> Deposits:
    return request.app.state.deposits


_call = DomainAnswers(not_found=(NotFound,), refused=(Refused, IllegalTransition))


@router.get("/accounts/{account_id}/passbook", summary="The passbook's state and its unposted lines (未記帳)",
            response_model=PassbookViewOut)
async def get_passbook(account_id: AccountId, request: Request) -> PassbookViewOut:
    return PassbookViewOut.of(await _call(passbook.passbook_view(_d(request), uuid.UUID(account_id).int)))


@router.post("/accounts/{account_id}/passbook/print", response_model=PrintOut,
             summary="記帳: print the unposted lines (idempotent by request_id; pages turn, a full passbook stops)")
async def print_passbook(account_id: AccountId, body: PrintIn, request: Request) -> PrintOut:
    result = await _call(passbook.print_passbook(_d(request), body.request_id, uuid.UUID(account_id).int))
    return PrintOut.of(result)


@router.post("/accounts/{account_id}/passbook/carry-forward", response_model=PassbookOut,
             summary="繰越: a full passbook is replaced by the next one, starting with the balance brought forward")
async def carry_forward(account_id: AccountId, body: CarryForwardIn, request: Request) -> PassbookOut:
    book = await _call(passbook.carry_forward(_d(request), body.request_id, uuid.UUID(account_id).int))
    return PassbookOut.of(book)


@router.post("/accounts/{account_id}/passbook/report-lost", response_model=PassbookOut,
             summary="喪失届: the passbook stops printing at once")
async def report_lost(account_id: AccountId, body: ReasonIn, request: Request) -> PassbookOut:
    book = await _call(passbook.report_lost(_d(request), body.request_id, uuid.UUID(account_id).int, body.reason))
    return PassbookOut.of(book)


@router.post("/accounts/{account_id}/passbook/reissue", response_model=PassbookOut,
             summary="再発行: a lost or damaged passbook is replaced at a branch (idempotent by request_id)")
async def reissue(account_id: AccountId, body: ReasonIn, request: Request) -> PassbookOut:
    book = await _call(passbook.reissue_passbook(_d(request), body.request_id, uuid.UUID(account_id).int,
                                                 body.reason))
    return PassbookOut.of(book)
