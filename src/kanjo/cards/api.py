"""HTTP routes of cash cards for tellers and operations: issue, reissue, reads, lost/stolen/fraud reports, found,
PIN unlock, daily limit, cancel. No route verifies a PIN: only the ATM channel does, in process."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from kanjo.cards import service
from kanjo.cards.model import IllegalTransition, Refused
from kanjo.cards.schemas import CardOut, ChangeIn, DailyLimitIn, EventOut, IssuedOut, IssueIn, ReissueIn
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN, DomainAnswers

router = APIRouter(prefix="/v1/cards", tags=["cards"], responses=ERROR_RESPONSES)
CardId = Annotated[str, Path(pattern=UUID_PATTERN, description="the card's id (UUID text)")]


def _c(request: Request) -> service.Cards:
    return request.app.state.cards


_call = DomainAnswers(not_found=(service.NotFound,), refused=(Refused, IllegalTransition))


@router.post("", summary="Issue a cash card for a deposit account, with its PIN (idempotent by request_id)",
             response_model=IssuedOut)
async def issue(body: IssueIn, request: Request) -> IssuedOut:
    issued = await _call(service.issue_card(_c(request), body.request_id, body.account_id, body.customer_id,
                                            body.pin, birth_date=body.birth_date, daily_limit_minor=body.daily_limit,
                                            by=body.by, reason=body.reason))
    return IssuedOut.of_issued(issued)


@router.get("", summary="The cards of a deposit account or of a customer (masked), oldest first",
            response_model=dict[str, list[CardOut]])
async def list_cards(
    request: Request,
    account_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    customer_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
) -> dict[str, list[CardOut]]:
    if (account_id is None) == (customer_id is None):
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "account_id"), "input": None,
                                       "msg": "give either account_id or customer_id"}])
    c = _c(request)
    if account_id is not None:
        found = await service.cards_of_account(c, uuid.UUID(account_id).int)
    else:
        assert customer_id is not None
        found = await service.cards_of_customer(c, uuid.UUID(customer_id).int)
    return {"cards": [CardOut.of(card) for card in found]}


@router.get("/{card_id}", summary="One card (masked number, nothing about its PIN)", response_model=CardOut)
async def get_card(card_id: CardId, request: Request) -> CardOut:
    return CardOut.of(await _call(service.get_card(_c(request), uuid.UUID(card_id).int)))


@router.get("/{card_id}/events", summary="The card's history: who did what, when and why",
            response_model=dict[str, list[EventOut]])
async def events(card_id: CardId, request: Request) -> dict[str, list[EventOut]]:
    found = await _call(service.card_events(_c(request), uuid.UUID(card_id).int))
    return {"events": [EventOut.of(e) for e in found]}


def _change_route(path: str, handler: service.Change, summary: str) -> None:
    async def change(card_id: CardId, body: ChangeIn, request: Request) -> CardOut:
        card = await _call(handler(_c(request), body.request_id, uuid.UUID(card_id).int, body.by, body.reason))
        return CardOut.of(card)

    router.add_api_route(f"/{{card_id}}/{path}", change, methods=["POST"], summary=summary, response_model=CardOut,
                         name=f"card_{path.replace('-', '_')}")


_change_route("report-lost", service.report_lost, "紛失届: the card is refused and kept at its next use")
_change_route("report-stolen", service.report_stolen, "盗難届: the card is refused and kept at its next use")
_change_route("report-fraud", service.report_fraud_suspected,
              "Fraud suspected (operations): the card is refused and kept at its next use")
_change_route("found", service.report_found, "A lost card is found: usable again")
_change_route("unlock-pin", service.unlock_pin,
              "Reset the wrong-PIN counter, after checking the holder's identity at a teller")
_change_route("cancel", service.cancel_card, "解約: final; the number is never used again")


@router.post("/{card_id}/daily-limit", summary="Set the daily ATM withdrawal limit (¥0 to ¥2,000,000)",
             response_model=CardOut)
async def daily_limit(card_id: CardId, body: DailyLimitIn, request: Request) -> CardOut:
    card = await _call(service.set_daily_limit(_c(request), body.request_id, uuid.UUID(card_id).int,
                                               body.daily_limit, body.by, body.reason))
    return CardOut.of(card)


@router.post("/{card_id}/reissue", summary="再発行: a new number for the same account; the old card is cancelled",
             response_model=IssuedOut)
async def reissue(card_id: CardId, body: ReissueIn, request: Request) -> IssuedOut:
    issued = await _call(service.reissue_card(_c(request), body.request_id, uuid.UUID(card_id).int, body.pin,
                                              body.by, body.reason, birth_date=body.birth_date))
    return IssuedOut.of_issued(issued)
