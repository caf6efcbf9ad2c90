"""HTTP routes of time deposits: the rate table, placement, lookups, instruction changes, early-withdrawal quotes
and withdrawals."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers
from kanjo.time_deposits import queries, service
from kanjo.time_deposits.model import IllegalTransition, Refused
from kanjo.time_deposits.schemas import InstructionIn, PlaceIn, RatesOut, RequestIn, SettlementOut, TimeDepositOut

router = APIRouter(prefix="/v1/time-deposits", tags=["time deposits"], responses=ERROR_RESPONSES)
DepositId = Annotated[str, Path(pattern=UUID_PATTERN, description="the time deposit's id (UUID text)")]


def _t(request: Request) -> service.TimeDeposits:
    return request.app.state.time_deposits


_call = DomainAnswers(not_found=(service.NotFound,), refused=(Refused, IllegalTransition))


@router.get("/rates", summary="The rate table in force on a date (default: the business date)",
            response_model=RatesOut)
async def rates(request: Request, on: Annotated[dt.date | None, Query()] = None) -> RatesOut:
    t = _t(request)
    day = on or t.business_date()
    if not dt.date(1990, 1, 1) <= day <= dt.date(2099, 12, 31):
        raise HTTPException(422, {"error": "invalid_field", "message": "on: the bank's calendar runs 1990-2099"})
    return RatesOut.of(day, await queries.rates_on(t, day))


@router.post("", summary="Place a time deposit from an ordinary account (idempotent by request_id)",
             response_model=TimeDepositOut)
async def place(body: PlaceIn, request: Request) -> TimeDepositOut:
    d = await _call(service.place_time_deposit(_t(request), body.request_id, body.customer_id,
                                               body.funding_account_id, body.principal, body.term_months,
                                               body.instruction, body.tax_class, body.payout_account_id))
    return TimeDepositOut.of(d)


@router.get("", summary="A customer's time deposits", response_model=dict[str, list[TimeDepositOut]])
async def of_customer(
    request: Request, customer_id: Annotated[str, Query(pattern=UUID_PATTERN)],
) -> dict[str, list[TimeDepositOut]]:
    found = await service.time_deposits_of_customer(_t(request), uuid.UUID(customer_id).int)
    return {"time_deposits": [TimeDepositOut.of(d) for d in found]}


@router.get("/{deposit_id}", summary="One time deposit", response_model=TimeDepositOut)
async def get(deposit_id: DepositId, request: Request) -> TimeDepositOut:
    return TimeDepositOut.of(await _call(service.get_time_deposit(_t(request), uuid.UUID(deposit_id).int)))


@router.post("/{deposit_id}/instruction", summary="満期時の取扱変更: what maturity does and where it pays, before the"
             " maturity date (idempotent by request_id)", response_model=TimeDepositOut)
async def change_instruction(deposit_id: DepositId, body: InstructionIn, request: Request) -> TimeDepositOut:
    d = await _call(service.change_instruction(_t(request), body.request_id, uuid.UUID(deposit_id).int,
                                               body.instruction, body.payout_account_id))
    return TimeDepositOut.of(d)


@router.get("/{deposit_id}/early-withdrawal-quote", summary="What withdrawing early today would pay (moves nothing)",
            response_model=SettlementOut)
async def early_quote(deposit_id: DepositId, request: Request) -> SettlementOut:
    return SettlementOut.of(await _call(queries.early_withdrawal_quote(_t(request), uuid.UUID(deposit_id).int)))


@router.post("/{deposit_id}/early-withdrawal", summary="中途解約: pay principal and interest at the early rate",
             response_model=SettlementOut)
async def withdraw_early(deposit_id: DepositId, body: RequestIn, request: Request) -> SettlementOut:
    s = await _call(service.withdraw_early(_t(request), body.request_id, uuid.UUID(deposit_id).int))
    return SettlementOut.of(s)
