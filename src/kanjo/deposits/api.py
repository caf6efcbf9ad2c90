"""HTTP routes of demand deposits (普通, 総合口座, 当座): accounts, cash in and out, transfers, balances, statements
(by page or by period), status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from kanjo.deposits import service
from kanjo.deposits.limits import STATEMENT_LINES_MAX
from kanjo.deposits.model import Action, IllegalTransition, Refused
from kanjo.deposits.schemas import (
    AccountOut,
    BalanceOut,
    CashIn,
    OpenAccountIn,
    PostingOut,
    StatementLineOut,
    StatementOut,
    StatusIn,
    TransferIn,
)
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers

router = APIRouter(prefix="/v1/deposits", tags=["deposits"], responses=ERROR_RESPONSES)
AccountId = Annotated[str, Path(pattern=UUID_PATTERN, description="the account's id (UUID text)")]


def _d(request: Request) -> service.Deposits:
    return request.app.state.deposits


_call = DomainAnswers(not_found=(service.NotFound,), refused=(Refused, IllegalTransition))


@router.post("/accounts", summary="Open an ordinary account, a 総合口座 or a 当座預金 (idempotent by request_id)",
             response_model=AccountOut)
async def open_account(body: OpenAccountIn, request: Request) -> AccountOut:
    account = await _call(service.open_ordinary_account(_d(request), body.request_id, body.customer_id,
                                                        body.branch_code, body.subject))
    return AccountOut.of(account)


@router.get("/accounts", summary="A customer's deposit accounts", response_model=dict[str, list[AccountOut]])
async def customer_accounts(
    request: Request, customer_id: Annotated[str, Query(pattern=UUID_PATTERN)],
) -> dict[str, list[AccountOut]]:
    accounts = await service.accounts_of_customer(_d(request), uuid.UUID(customer_id).int)
    return {"accounts": [AccountOut.of(a) for a in accounts]}


@router.get("/accounts/by-number/{branch_code}/{account_number}", summary="An account by branch and number",
            response_model=AccountOut)
async def by_number(
    request: Request, branch_code: Annotated[str, Path(pattern=r"^[0-9]{3}$")],
    account_number: Annotated[str, Path(pattern=r"^[0-9]{7}$")],
) -> AccountOut:
    return AccountOut.of(await _call(service.find_account(_d(request), branch_code, int(account_number))))


@router.get("/accounts/{account_id}", summary="One account", response_model=AccountOut)
async def get_account(account_id: AccountId, request: Request) -> AccountOut:
    return AccountOut.of(await _call(service.get_account(_d(request), uuid.UUID(account_id).int)))


@router.get("/accounts/{account_id}/balance", summary="Balance, amount held and available", response_model=BalanceOut)
async def balance(account_id: AccountId, request: Request) -> BalanceOut:
    return BalanceOut.of(await _call(service.balance(_d(request), uuid.UUID(account_id).int)))


@router.get("/accounts/{account_id}/statement", summary="入出金明細: movements with the balance after each",
            response_model=StatementOut)
async def statement(
    account_id: AccountId, request: Request,
    after: Annotated[int, Query(ge=0, le=2**63 - 2, description="timestamp of the last line already seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=STATEMENT_LINES_MAX)] = 100,
    from_date: Annotated[dt.date | None, Query(alias="from", description="first business date (YYYY-MM-DD);"
                                               " default: the day the account opened")] = None,
    to_date: Annotated[dt.date | None, Query(alias="to", description="last business date, inclusive;"
                                             " default: today")] = None,
) -> StatementOut:
    if from_date is not None and to_date is not None and from_date > to_date:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "to"), "input": str(to_date),
                                       "msg": f"the period ends ({to_date}) before it starts ({from_date})"}])
    page = await _call(service.statement_page(_d(request), uuid.UUID(account_id).int, after_timestamp=after,
                                              limit=limit, from_date=from_date, to_date=to_date))
    return StatementOut(lines=[StatementLineOut.of(line) for line in page.lines], next_after=page.next_after)


@router.post("/accounts/{account_id}/cash-deposits", summary="Cash paid in at a teller", response_model=PostingOut)
async def cash_deposit(account_id: AccountId, body: CashIn, request: Request) -> PostingOut:
    posting = await _call(service.deposit_cash(_d(request), body.request_id, uuid.UUID(account_id).int, body.amount))
    return PostingOut.of(posting)


@router.post("/accounts/{account_id}/cash-withdrawals", summary="Cash paid out at a teller",
             response_model=PostingOut)
async def cash_withdrawal(account_id: AccountId, body: CashIn, request: Request) -> PostingOut:
    posting = await _call(service.withdraw_cash(_d(request), body.request_id, uuid.UUID(account_id).int, body.amount))
    return PostingOut.of(posting)


@router.post("/transfers", summary="A transfer between two accounts of the bank (振替)", response_model=PostingOut)
async def transfer(body: TransferIn, request: Request) -> PostingOut:
    posting = await _call(service.transfer(_d(request), body.request_id, body.from_account_id, body.to_account_id,
                                           body.amount))
    return PostingOut.of(posting)


def _status_route(action: Action, summary: str) -> None:
    async def change(account_id: AccountId, body: StatusIn, request: Request) -> AccountOut:
        account_int = uuid.UUID(account_id).int
        if action is Action.CLOSE:
            account = await _call(service.close_account(_d(request), body.request_id, account_int, body.reason))
        else:
            account = await _call(service.change_status(_d(request), body.request_id, account_int, action,
                                                        body.reason))
        return AccountOut.of(account)

    router.add_api_route(f"/accounts/{{account_id}}/{action.value.replace('_', '-')}", change, methods=["POST"],
                         summary=summary, response_model=AccountOut, name=f"deposit_{action.value}")


_status_route(Action.FREEZE, "Freeze the account (凍結): nothing moves until unfrozen")
_status_route(Action.UNFREEZE, "Unfreeze the account")
_status_route(Action.MARK_DORMANT, "Mark the account dormant (休眠)")
_status_route(Action.REVIVE, "Revive a dormant account")
_status_route(Action.CLOSE, "Close the account (解約): only at a zero balance")
