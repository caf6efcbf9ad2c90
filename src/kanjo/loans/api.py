"""HTTP routes of card loans: contracts, draws, repayments, collections, suspend, resume and close."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from kanjo.loans import service
from kanjo.loans.model import IllegalTransition, Refused
from kanjo.loans.schemas import CollectionOut, ContractOut, DrawIn, MovementOut, OpenContractIn, RepayIn, StatusIn
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers

router = APIRouter(prefix="/v1/loans", tags=["card loans"], responses=ERROR_RESPONSES)
ContractId = Annotated[str, Path(pattern=UUID_PATTERN, description="the contract's id (UUID text)")]


def _h(request: Request) -> service.Loans:
    return request.app.state.loans


_call = DomainAnswers(not_found=(service.NotFound,), refused=(Refused, IllegalTransition))


@router.post("/card-loans", summary="Open a card loan (カードローン契約); idempotent by request_id",
             response_model=ContractOut)
async def open_contract(body: OpenContractIn, request: Request) -> ContractOut:
    h = _h(request)
    c = await _call(service.open_contract(h, body.request_id, body.customer_id, body.account_id, body.credit_line,
                                          Decimal(body.rate_percent), body.collection_day))
    return ContractOut.of(await _call(service.get_contract(h, c.id)))


@router.get("/card-loans", summary="A customer's card loans", response_model=dict[str, list[ContractOut]])
async def customer_contracts(
    request: Request, customer_id: Annotated[str, Query(pattern=UUID_PATTERN)],
) -> dict[str, list[ContractOut]]:
    found = await service.contracts_of_customer(_h(request), uuid.UUID(customer_id).int)
    return {"contracts": [ContractOut.of(v) for v in found]}


@router.get("/card-loans/{contract_id}", summary="One card loan: drawn, available, accrued interest, arrears, state",
            response_model=ContractOut)
async def get_contract(contract_id: ContractId, request: Request) -> ContractOut:
    return ContractOut.of(await _call(service.get_contract(_h(request), uuid.UUID(contract_id).int)))


@router.get("/card-loans/{contract_id}/collections",
            summary="利息徴求の履歴: each period's interest and what is unpaid",
            response_model=dict[str, list[CollectionOut]])
async def collections(contract_id: ContractId, request: Request) -> dict[str, list[CollectionOut]]:
    found = await _call(service.collections_of(_h(request), uuid.UUID(contract_id).int))
    return {"collections": [CollectionOut.of(c) for c in found]}


@router.post("/card-loans/{contract_id}/draws", summary="借入: to the linked account or in cash at an ATM",
             response_model=MovementOut)
async def draw(contract_id: ContractId, body: DrawIn, request: Request) -> MovementOut:
    m = await _call(service.draw(_h(request), body.request_id, uuid.UUID(contract_id).int, body.amount, body.to))
    return MovementOut.of(m)


@router.post("/card-loans/{contract_id}/repayments",
             summary="返済: from the linked account or in cash; pays arrears of interest first, then principal",
             response_model=MovementOut)
async def repay(contract_id: ContractId, body: RepayIn, request: Request) -> MovementOut:
    m = await _call(service.repay(_h(request), body.request_id, uuid.UUID(contract_id).int, body.amount,
                                  body.source))
    return MovementOut.of(m)


@router.post("/card-loans/{contract_id}/suspend", summary="利用停止: no draws until resumed",
             response_model=ContractOut)
async def suspend(contract_id: ContractId, body: StatusIn, request: Request) -> ContractOut:
    v = await _call(service.suspend(_h(request), body.request_id, uuid.UUID(contract_id).int, body.reason))
    return ContractOut.of(v)


@router.post("/card-loans/{contract_id}/resume", summary="Resume a suspended card loan (delinquent while in arrears)",
             response_model=ContractOut)
async def resume(contract_id: ContractId, body: StatusIn, request: Request) -> ContractOut:
    v = await _call(service.resume(_h(request), body.request_id, uuid.UUID(contract_id).int, body.reason))
    return ContractOut.of(v)


@router.post("/card-loans/{contract_id}/close",
             summary="解約: nothing drawn, no arrears; the accrued interest is collected from the linked account",
             response_model=ContractOut)
async def close(contract_id: ContractId, body: StatusIn, request: Request) -> ContractOut:
    v = await _call(service.close_contract(_h(request), body.request_id, uuid.UUID(contract_id).int, body.reason))
    return ContractOut.of(v)
