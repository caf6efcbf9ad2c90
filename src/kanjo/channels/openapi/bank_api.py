"""HTTP routes of the open API's bank side under /v1/openapi: the operations' registry of provider clients, token
introspection, the access log and consents; and the customer's own authorisation and revocation of a consent with
the account's cash card and PIN (the screen a provider sends its customer to)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable
from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Request

from kanjo.cards import CardRefused
from kanjo.channels.openapi import access_log, clients, consents, oauth
from kanjo.channels.openapi.limits import ACCESS_LOG_PAGE_ROWS_MAX, LIST_PAGE_ROWS_MAX
from kanjo.channels.openapi.model import JST, ClientAction, IllegalTransition, Invalid, NotFound, Refused
from kanjo.channels.openapi.schemas import (
    AccessLogOut,
    CardIn,
    ChangeIn,
    ClientIn,
    ClientOut,
    ConsentOut,
    IntrospectIn,
    IntrospectionOut,
    IssuedClientOut,
    LimitsIn,
    RotateIn,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.channels.openapi.store import ClientRow
from kanjo.hub import HubError
from kanjo.platform.http import ERROR_RESPONSES, UUID_PATTERN

T = TypeVar("T")
router = APIRouter(prefix="/v1/openapi", responses=ERROR_RESPONSES)
OPS: list[str | Enum] = ["open API operations"]
CUSTOMER: list[str | Enum] = ["open API customer authorisation"]
ClientId = Annotated[str, Path(pattern=r"^kc_[0-9a-f]{24}$", description="the provider client's id")]
ConsentId = Annotated[str, Path(pattern=UUID_PATTERN, description="the consent's id")]
CARD_ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the card or PIN was refused (wrong_pin counts toward the card's lock), or the card is not"
                         " the consent's account's"},
}


def _ch(request: Request) -> OpenApiChannel:
    return request.app.state.openapi


async def _answer(coro: Awaitable[T]) -> T:
    """The channel's outcomes in kanjo's error shape."""
    try:
        return await coro
    except NotFound as e:
        raise HTTPException(404, str(e)) from None
    except Invalid as e:
        raise HTTPException(422, {"error": "invalid_field", "message": f"{e.field}: {e}"}) from None
    except Refused as e:
        raise HTTPException(409, {"error": e.code, "message": str(e)}) from None
    except IllegalTransition as e:
        raise HTTPException(409, {"error": "illegal_transition", "message": str(e)}) from None
    except CardRefused as e:
        raise HTTPException(403, {"error": e.code, "message": str(e)}) from None
    except consents.CardNotForAccount as e:
        raise HTTPException(403, {"error": "card_not_for_account", "message": str(e)}) from None
    except HubError as e:
        retry = str(max(1, round(e.retry_after_s or 1)))
        raise HTTPException(503, {"error": "unavailable", "message": e.message}, headers={"Retry-After": retry}) \
            from None


def _client_out(row: ClientRow) -> ClientOut:
    return ClientOut(client_id=row.client_id, name=row.name, registration_number=row.registration_number,
                     scopes=[s.value for s in sorted(row.scopes)], status=row.status.value, rate_per_s=row.rate_per_s,
                     burst=row.burst, daily_quota=row.daily_quota, created_at=row.created_at.astimezone(JST),
                     updated_at=row.updated_at.astimezone(JST))


def _issued_out(issued: clients.Issued) -> IssuedClientOut:
    return IssuedClientOut(**_client_out(issued.client).model_dump(), client_secret=issued.client_secret,
                           replayed=issued.replayed)


# -- clients -------------------------------------------------------------------------------------------------------

@router.post("/clients", summary="Register a provider client: its id and a secret shown once (idempotent by"
             " request_id)", response_model=IssuedClientOut, status_code=201, tags=OPS)
async def register(body: ClientIn, request: Request) -> IssuedClientOut:
    issued = await _answer(clients.register_client(_ch(request), clients.Registration(
        body.request_id, body.name, body.registration_number, frozenset(body.scopes), body.rate_per_s, body.burst,
        body.daily_quota, body.by)))
    return _issued_out(issued)


@router.get("/clients", summary="Provider clients, by client id", response_model=dict[str, list[ClientOut]],
            tags=OPS)
async def list_clients(request: Request,
                       after: Annotated[str, Query(pattern=r"^(kc_[0-9a-f]{24})?$")] = "",
                       limit: Annotated[int, Query(ge=1, le=LIST_PAGE_ROWS_MAX)] = 50) -> dict[str, list[ClientOut]]:
    rows = await _answer(clients.list_clients(_ch(request), after, limit))
    return {"clients": [_client_out(r) for r in rows]}


@router.get("/clients/{client_id}", summary="A provider client, today's calls against its quota, and its history",
            tags=OPS)
async def get_client(client_id: ClientId, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    row = await _answer(clients.get_client(ch, client_id))
    return {**_client_out(row).model_dump(mode="json"), "usage": await clients.usage_today(ch, client_id),
            "history": await clients.client_history(ch, client_id)}


def _status_route(action: ClientAction, summary: str) -> None:
    async def change(client_id: ClientId, body: ChangeIn, request: Request) -> ClientOut:
        return _client_out(await _answer(clients.change_status(_ch(request), client_id, action, body.by,
                                                               body.reason)))

    router.add_api_route(f"/clients/{{client_id}}/{action.value}", change, methods=["POST"], summary=summary,
                         response_model=ClientOut, tags=OPS, name=f"openapi_client_{action.value}")


_status_route(ClientAction.SUSPEND, "Suspend a client: its tokens stop working at once, no new ones are issued")
_status_route(ClientAction.REACTIVATE, "Reactivate a suspended client (it asks for new tokens)")
_status_route(ClientAction.REVOKE, "Revoke a client for good: its tokens and its customers' consents end")


@router.post("/clients/{client_id}/limits", summary="Set a client's rate, burst and daily quota",
             response_model=ClientOut, tags=OPS)
async def set_limits(client_id: ClientId, body: LimitsIn, request: Request) -> ClientOut:
    return _client_out(await _answer(clients.set_limits(_ch(request), client_id, body.rate_per_s, body.burst,
                                                        body.daily_quota, body.by, body.reason)))


@router.post("/clients/{client_id}/secret", summary="Rotate a client's secret (the new one is shown once)",
             response_model=IssuedClientOut, tags=OPS)
async def rotate_secret(client_id: ClientId, body: RotateIn, request: Request) -> IssuedClientOut:
    return _issued_out(await _answer(clients.rotate_secret(_ch(request), client_id, body.request_id, body.by,
                                                           body.reason)))


@router.post("/tokens/introspect", summary="Whether an access token works now, and for whom (RFC 7662)",
             response_model=IntrospectionOut, tags=OPS)
async def introspect(body: IntrospectIn, request: Request) -> dict[str, Any]:
    return await oauth.introspect(_ch(request), body.token)


@router.get("/access-log", summary="Every provider call, newest first, a page at a time", response_model=AccessLogOut,
            tags=OPS)
async def read_access_log(
    request: Request,
    client_id: Annotated[str | None, Query(pattern=r"^kc_[0-9a-f]{24}$")] = None,
    consent_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    outcome: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=ACCESS_LOG_PAGE_ROWS_MAX)] = 100,
) -> dict[str, Any]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, {"error": "invalid_field", "message": f"{name} needs a time zone"})
    return await access_log.query(_ch(request), access_log.LogQuery(
        client_id, None if consent_id is None else uuid.UUID(consent_id).int, outcome, since, until, before_id, limit))


# -- consents ----------------------------------------------------------------------------------------------------

@router.get("/consents", summary="The consents given on one account (the customer's 連携サービス), newest first",
            response_model=dict[str, list[ConsentOut]], tags=OPS)
async def consents_of_account(request: Request,
                              branch_code: Annotated[str, Query(pattern=r"^[0-9]{3}$")],
                              account_number: Annotated[str, Query(pattern=r"^[0-9]{7}$")],
                              limit: Annotated[int, Query(ge=1, le=LIST_PAGE_ROWS_MAX)] = 50) -> dict[str, Any]:
    ch = _ch(request)
    rows = await _answer(consents.consents_of_account(ch, branch_code, int(account_number), limit))
    now = ch.now()
    return {"consents": [consents.consent_view(r, now) for r in rows]}


async def _consent_page(ch: OpenApiChannel, consent_id: int) -> dict[str, Any]:
    """What the customer is shown before authorising: who asks (the provider and its registration), for what."""
    row = await _answer(consents.get_consent(ch, consent_id))
    provider = await _answer(clients.get_client(ch, row.client_id))
    return {**consents.consent_view(row, ch.now()),
            "provider": {"name": provider.name, "registration_number": provider.registration_number},
            "history": await consents.consent_history(ch, consent_id)}


@router.get("/consents/{consent_id}", summary="A consent as the customer is shown it, with its history",
            response_model=ConsentOut, tags=CUSTOMER)
async def get_consent(consent_id: ConsentId, request: Request) -> dict[str, Any]:
    return await _consent_page(_ch(request), uuid.UUID(consent_id).int)


@router.post("/consents/{consent_id}/authorise",
             summary="The customer authorises a consent with the account's cash card and PIN",
             response_model=ConsentOut, responses=CARD_ANSWERS, tags=CUSTOMER)
async def authorise(consent_id: ConsentId, body: CardIn, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    cid = uuid.UUID(consent_id).int
    await _answer(consents.authorise_consent(ch, cid, body.card_number, body.pin))
    return await _consent_page(ch, cid)


@router.post("/consents/{consent_id}/revoke-by-customer",
             summary="The customer ends a consent with the account's cash card and PIN (from the next call on)",
             response_model=ConsentOut, responses=CARD_ANSWERS, tags=CUSTOMER)
async def revoke_by_customer(consent_id: ConsentId, body: CardIn, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    cid = uuid.UUID(consent_id).int
    await _answer(consents.revoke_by_customer(ch, cid, body.card_number, body.pin))
    return await _consent_page(ch, cid)


@router.post("/consents/{consent_id}/revoke", summary="The bank ends a consent (from the next call on)",
             response_model=ConsentOut, tags=OPS)
async def revoke_by_bank(consent_id: ConsentId, body: ChangeIn, request: Request) -> dict[str, Any]:
    ch = _ch(request)
    cid = uuid.UUID(consent_id).int
    await _answer(consents.revoke_by_bank(ch, cid, body.by, body.reason))
    return await _consent_page(ch, cid)
