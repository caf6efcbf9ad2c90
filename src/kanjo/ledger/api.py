"""The ledger's HTTP routes: batch creation of accounts and transfers, lookups, history, balances."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger.engine import Ledger
from kanjo.ledger.limits import EVENTS_PER_BATCH_MAX, PAGE_ROWS_MAX
from kanjo.ledger.model import PendingStatus
from kanjo.ledger.schemas import (
    AccountOut,
    AccountResultOut,
    BalanceOut,
    CreateAccountsIn,
    CreateTransfersIn,
    LookupIn,
    TransferOut,
    TransferResultOut,
)
from kanjo.platform.http import ERROR_RESPONSES, FastJSONResponse

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], responses=ERROR_RESPONSES)
TIMESTAMP_MAX = 2**63 - 1
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"

PathId = Annotated[str, Path(pattern=UUID_PATTERN, description="UUID text")]
TimestampMin = Annotated[int, Query(ge=0, le=TIMESTAMP_MAX, description="ns, inclusive")]
TimestampMax = Annotated[int, Query(ge=0, le=TIMESTAMP_MAX, description="ns, inclusive")]
PageLimit = Annotated[int, Query(ge=1, le=PAGE_ROWS_MAX, description=f"rows, at most {PAGE_ROWS_MAX}")]


def _ledger(request: Request) -> Ledger:
    return request.app.state.ledger


def _id(text: str) -> int:
    return uuid.UUID(text).int


def _fmt(value: int) -> str:
    return str(uuid.UUID(int=value))


def _check_batch(size: int) -> None:
    if size > EVENTS_PER_BATCH_MAX:
        raise LimitReached(limits.get("ledger_events_per_batch_max"), size)


@router.post("/accounts", summary="Create accounts (a batch; one result per event)",
             response_class=FastJSONResponse,
             responses={200: {"model": dict[str, list[AccountResultOut]]}, 413: {"description": "over a limit"}})
async def create_accounts(body: CreateAccountsIn, request: Request) -> FastJSONResponse:
    _check_batch(len(body.accounts))
    events = [a.to_domain() for a in body.accounts]
    outcomes = await _ledger(request).create_accounts(events)
    return FastJSONResponse({"results": [
        {"id": _fmt(e.id), "result": o.result.name.lower(), "timestamp": o.timestamp}
        for e, o in zip(events, outcomes, strict=True)
    ]})


@router.post("/transfers", summary="Create transfers (a batch; one result per event)",
             response_class=FastJSONResponse,
             responses={200: {"model": dict[str, list[TransferResultOut]]}, 413: {"description": "over a limit"},
                        503: {"description": "busy: retry after the Retry-After seconds with the same ids"}})
async def create_transfers(body: CreateTransfersIn, request: Request) -> FastJSONResponse:
    _check_batch(len(body.transfers))
    events = [t.to_domain() for t in body.transfers]
    outcomes = await _ledger(request).create_transfers(events)
    return FastJSONResponse({"results": [
        {"id": _fmt(e.id), "result": o.result.name.lower(), "timestamp": o.timestamp, "amount": o.amount}
        for e, o in zip(events, outcomes, strict=True)
    ]})


@router.post("/accounts/lookup", summary="Look up accounts by id (found ones, in the order asked)",
             response_model=dict[str, list[AccountOut]])
async def lookup_accounts(body: LookupIn, request: Request) -> dict[str, list[AccountOut]]:
    found = await _ledger(request).lookup_accounts(body.ids)
    return {"accounts": [AccountOut.of(a) for a in found]}


@router.post("/transfers/lookup", summary="Look up transfers by id (found ones, in the order asked)",
             response_model=dict[str, list[TransferOut]])
async def lookup_transfers(body: LookupIn, request: Request) -> dict[str, list[TransferOut]]:
    records = await _ledger(request).lookup_transfer_records(body.ids)
    return {"transfers": [TransferOut.of(r.transfer, _status(r.pending_status)) for r in records]}


@router.get("/accounts/{account_id}", summary="One account and its balances", response_model=AccountOut,
            responses={404: {"description": "no such account"}})
async def get_account(account_id: PathId, request: Request) -> AccountOut:
    found = await _ledger(request).lookup_accounts([_id(account_id)])
    if not found:
        raise HTTPException(404, f"no account {account_id}")
    return AccountOut.of(found[0])


@router.get("/transfers/{transfer_id}", summary="One transfer (and its hold status if pending)",
            response_model=TransferOut, responses={404: {"description": "no such transfer"}})
async def get_transfer(transfer_id: PathId, request: Request) -> TransferOut:
    found = await _ledger(request).lookup_transfer_records([_id(transfer_id)])
    if not found:
        raise HTTPException(404, f"no transfer {transfer_id}")
    return TransferOut.of(found[0].transfer, _status(found[0].pending_status))


@router.get("/accounts/{account_id}/transfers", summary="An account's transfers by time, paginated",
            response_model=dict[str, list[TransferOut] | int | None])
async def account_transfers(
    account_id: PathId, request: Request, timestamp_min: TimestampMin = 0,
    timestamp_max: TimestampMax = TIMESTAMP_MAX, limit: PageLimit = 100, debits: bool = True,
    credits: bool = True, reverse: bool = False,
) -> dict[str, object]:
    rows = await _ledger(request).get_account_transfers(
        _id(account_id), timestamp_min=timestamp_min, timestamp_max=timestamp_max, limit=limit,
        debits=debits, credits=credits, reverse=reverse)
    next_cursor = None
    if len(rows) == limit:
        next_cursor = rows[-1].timestamp - 1 if reverse else rows[-1].timestamp + 1
    return {"transfers": [TransferOut.of(t) for t in rows],
            ("next_timestamp_max" if reverse else "next_timestamp_min"): next_cursor}


@router.get("/accounts/{account_id}/balances",
            summary="Balances after each change, for accounts with the history flag",
            response_model=dict[str, list[BalanceOut] | int | None])
async def account_balances(
    account_id: PathId, request: Request, timestamp_min: TimestampMin = 0,
    timestamp_max: TimestampMax = TIMESTAMP_MAX, limit: PageLimit = 100, reverse: bool = False,
) -> dict[str, object]:
    ledger = _ledger(request)
    await _require_history(ledger, account_id)
    rows = await ledger.get_account_balances(_id(account_id), timestamp_min=timestamp_min,
                                             timestamp_max=timestamp_max, limit=limit, reverse=reverse)
    return {"balances": [BalanceOut.of(b) for b in rows]}


@router.get("/accounts/{account_id}/balance-as-of", summary="Balances as of a time (history accounts)",
            response_model=BalanceOut, responses={404: {"description": "no such account or no balance then"}})
async def balance_as_of(
    account_id: PathId, request: Request,
    timestamp: Annotated[int, Query(ge=0, le=TIMESTAMP_MAX, description="ns")],
) -> BalanceOut:
    ledger = _ledger(request)
    await _require_history(ledger, account_id)
    row = await ledger.balance_as_of(_id(account_id), timestamp)
    if row is None:
        raise HTTPException(404, f"account {account_id} had no balance at {timestamp}")
    return BalanceOut.of(row)


async def _require_history(ledger: Ledger, account_id: str) -> None:
    found = await ledger.lookup_accounts([_id(account_id)])
    if not found:
        raise HTTPException(404, f"no account {account_id}")
    if not found[0].flags & 8:
        raise HTTPException(409, f"account {account_id} keeps no history (created without the history flag)")


def _status(status: PendingStatus) -> str | None:
    return None if status is PendingStatus.NONE else status.name.lower()
