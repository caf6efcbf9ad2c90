"""HTTP routes of ordinary-deposit interest: what an account has accrued so far, and what it was paid."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel

from kanjo.deposits import service
from kanjo.deposits.interest import accrued_interest, interest_payments
from kanjo.platform.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/deposits", tags=["deposit interest"], responses=ERROR_RESPONSES)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
AccountId = Annotated[str, Path(pattern=UUID_PATTERN, description="the account's id (UUID text)")]


class PaymentOut(BaseModel):
    kind: str
    paid_on: dt.date
    period_start: dt.date
    period_end: dt.date
    balance_days: int
    gross: int
    national_tax: int
    local_tax: int
    net: int


class InterestOut(BaseModel):
    period_start: dt.date
    accrued_through: dt.date
    balance_days: int
    accrued: Decimal
    tax_class: str
    payments: list[PaymentOut]


@router.get("/accounts/{account_id}/interest", summary="Interest accrued this period (積数) and interest paid",
            response_model=InterestOut)
async def interest(account_id: AccountId, request: Request) -> InterestOut:
    d: service.Deposits = request.app.state.deposits
    account = uuid.UUID(account_id).int
    through = d.business_date() - dt.timedelta(days=1)
    try:
        accrued = await accrued_interest(d, account, through)
    except service.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    paid = await interest_payments(d, account)
    return InterestOut(
        period_start=accrued.period_start, accrued_through=accrued.through, balance_days=accrued.balance_days,
        accrued=accrued.accrued, tax_class=accrued.tax_class.value,
        payments=[PaymentOut(kind=p.kind.value, paid_on=p.paid_on, period_start=p.period_start,
                             period_end=p.period_end, balance_days=p.balance_days, gross=p.gross_minor,
                             national_tax=p.tax.national_minor, local_tax=p.tax.local_minor, net=p.net_minor)
                  for p in paid])
