"""HTTP route of issued periodic statements (当座勘定照合表): what the month-end job issued for an account."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from kanjo.deposits.model import IllegalTransition, Refused
from kanjo.deposits.service import Deposits, NotFound
from kanjo.deposits.statements_run import ISSUED_LISTED_MAX, IssuedStatement, issued_statements
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers

router = APIRouter(prefix="/v1/deposits", tags=["statements"], responses=ERROR_RESPONSES)
AccountId = Annotated[str, Path(pattern=UUID_PATTERN, description="the account's id (UUID text)")]
_call = DomainAnswers(not_found=(NotFound,), refused=(Refused, IllegalTransition))


class IssuedStatementOut(BaseModel):
    period_first: dt.date
    period_last: dt.date
    opening: int  # yen
    credits: int
    debits: int
    closing: int
    lines: int
    business_date: dt.date
    issued_at: dt.datetime

    @classmethod
    def of(cls, s: IssuedStatement) -> IssuedStatementOut:
        return cls(period_first=s.period_first, period_last=s.period_last, opening=s.opening_minor,
                   credits=s.credits_minor, debits=s.debits_minor, closing=s.closing_minor, lines=s.lines,
                   business_date=s.business_date, issued_at=s.issued_at)


class IssuedStatementsOut(BaseModel):
    statements: list[IssuedStatementOut]
    next_before: dt.date | None  # pass as `before` for older statements; None when there are no more


@router.get("/accounts/{account_id}/statements-issued", response_model=IssuedStatementsOut,
            summary="当座勘定照合表: the periodic statements issued at month ends, newest first (lines: GET"
                    " …/statement?from=period_first&to=period_last)")
async def statements_issued(
    account_id: AccountId, request: Request,
    before: Annotated[dt.date | None, Query(description="only periods ending before this date")] = None,
    limit: Annotated[int, Query(ge=1, le=ISSUED_LISTED_MAX)] = 24,
) -> IssuedStatementsOut:
    d: Deposits = request.app.state.deposits
    found = await _call(issued_statements(d, uuid.UUID(account_id).int, before=before, limit=limit))
    return IssuedStatementsOut(statements=[IssuedStatementOut.of(s) for s in found],
                               next_before=found[-1].period_last if len(found) == limit else None)
