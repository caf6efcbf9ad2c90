"""HTTP routes of 総合口座 (general accounts): the automatic overdraft's state, and converting an account."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from kanjo.deposits import service
from kanjo.deposits.api import AccountId, _call
from kanjo.deposits.schemas import AccountOut, OverdraftOut
from kanjo.platform.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/deposits", tags=["general accounts"], responses=ERROR_RESPONSES)


def _d(request: Request) -> service.Deposits:
    return request.app.state.deposits


@router.get("/accounts/{account_id}/overdraft", summary="A 総合口座's overdraft: drawn, limit, collateral, interest",
            response_model=OverdraftOut)
async def overdraft(account_id: AccountId, request: Request) -> OverdraftOut:
    return OverdraftOut.of(await _call(service.overdraft_state(_d(request), uuid.UUID(account_id).int)))


@router.post("/accounts/{account_id}/convert-to-general",
             summary="Make an active ordinary account a 総合口座: its time deposits become collateral (idempotent)",
             response_model=AccountOut)
async def convert_to_general(account_id: AccountId, request: Request) -> AccountOut:
    return AccountOut.of(await _call(service.convert_to_general_account(_d(request), uuid.UUID(account_id).int)))
