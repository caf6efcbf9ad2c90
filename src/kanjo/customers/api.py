"""HTTP routes of the customers context (CIF): register, look up, search, and change contact, verification, status."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query, Request

from kanjo.customers import service
from kanjo.customers.limits import EVENTS_ROWS_MAX, SEARCH_ROWS_MAX
from kanjo.customers.model import (
    Customer,
    CustomerError,
    CustomerNotFound,
    IllegalTransition,
    InvalidField,
    RequestConflict,
)
from kanjo.customers.schemas import (
    ContactIn,
    CustomerIn,
    CustomerOut,
    DeathIn,
    EventOut,
    IdentityVerificationIn,
    SearchOut,
    StatusChangeIn,
    customer_out,
)
from kanjo.platform.http import ERROR_RESPONSES, FastJSONResponse, problem

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=ERROR_RESPONSES)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
PathId = Annotated[str, Path(pattern=UUID_PATTERN, description="the customer's id (UUID text)")]
# 404 (no such customer) and 409 (illegal in the customer's state, or a request_id reused with another
# body) come with the router's Problem responses.
_ONE: dict[int | str, dict[str, Any]] = {200: {"model": CustomerOut}}
# The database is unreachable or restarting: the outcome of a change is unknown, so retry with the same ids.
_UNAVAILABLE = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, TimeoutError)


def _pool(request: Request) -> asyncpg.Pool:
    pool = request.app.state.ledger.pool  # the app's shared pool
    if pool is None:
        raise HTTPException(503, "the database pool is not started")
    return pool


def _id(text: str) -> int:
    return uuid.UUID(text).int


async def _answer(call: Awaitable[Customer], status_code: int = 200) -> FastJSONResponse:
    try:
        customer = await call
    except CustomerError as exc:
        return refusal(exc)
    except _UNAVAILABLE as exc:
        return problem(503, "unavailable", f"the customers database is unavailable ({type(exc).__name__}); the"
                       " outcome is unknown: retry with the same request_id", headers={"Retry-After": "1"})
    return FastJSONResponse(customer_out(customer), status_code=status_code)


def refusal(exc: CustomerError) -> FastJSONResponse:
    """A domain refusal as the Problem every kanjo route answers, naming the field or the transition."""
    if isinstance(exc, InvalidField):
        return problem(422, "invalid_field", str(exc), fields=[{"field": exc.field, "message": exc.reason}])
    if isinstance(exc, CustomerNotFound):
        return problem(404, "not_found", str(exc))
    if isinstance(exc, IllegalTransition):
        return problem(409, "illegal_transition", str(exc), transition=exc.transition,
                       current_status=exc.status)
    if isinstance(exc, RequestConflict):
        return problem(409, "request_conflict", str(exc), fields=[{"field": exc.field, "message": str(exc)}])
    raise exc


@router.post("", summary="Register a customer (a CIF); the body's id makes a retry safe",
             status_code=201, response_class=FastJSONResponse, responses={201: {"model": CustomerOut}})
async def register(body: CustomerIn, request: Request) -> FastJSONResponse:
    return await _answer(service.register_customer(_pool(request), body.to_domain()), status_code=201)


@router.get("", summary="Search customers by kana prefix (五十音 order) and/or phone",
            response_class=FastJSONResponse, responses={200: {"model": SearchOut}})
async def search(
    request: Request,
    kana: Annotated[str | None, Query(max_length=200, description="prefix of the kana name; ﾊﾝｶｸ is converted")]
    = None,
    phone: Annotated[str | None, Query(max_length=40, description="the whole number; hyphens are ignored")] = None,
    limit: Annotated[int, Query(ge=1, description=f"rows, at most {SEARCH_ROWS_MAX}")] = service.SEARCH_ROWS_DEFAULT,
) -> FastJSONResponse:
    try:
        found = await service.search_customers(_pool(request), kana_prefix=kana, phone=phone, limit=limit)
    except CustomerError as exc:
        return refusal(exc)
    return FastJSONResponse({"customers": [customer_out(c) for c in found.customers], "more": found.more})


@router.get("/{customer_id}", summary="One customer", response_class=FastJSONResponse,
            responses=_ONE)
async def get_customer(customer_id: PathId, request: Request) -> FastJSONResponse:
    return await _answer(service.get_customer(_pool(request), _id(customer_id)))


@router.get("/{customer_id}/events", summary="The customer's history, oldest first",
            response_class=FastJSONResponse, responses={200: {"model": dict[str, list[EventOut]]}})
async def events(
    customer_id: PathId, request: Request,
    limit: Annotated[int, Query(ge=1, description=f"rows, at most {EVENTS_ROWS_MAX}")] = 100,
) -> FastJSONResponse:
    try:
        rows = await service.customer_history(_pool(request), _id(customer_id), limit=limit)
    except CustomerError as exc:
        return refusal(exc)
    out: list[dict[str, Any]] = [
        {"at": e.at, "kind": e.kind, "version": e.version, "request_id": str(uuid.UUID(int=e.request_id)),
         "details": e.details} for e in rows
    ]
    return FastJSONResponse({"events": out})


@router.post("/{customer_id}/contact", summary="Replace phone, email, postal code and address",
             response_class=FastJSONResponse, responses=_ONE)
async def update_contact(customer_id: PathId, body: ContactIn, request: Request) -> FastJSONResponse:
    return await _answer(service.update_contact(_pool(request), _id(customer_id), body.request_id,
                                                body.to_domain()))


@router.post("/{customer_id}/identity-verification", summary="Record identity verification (本人確認)",
             response_class=FastJSONResponse, responses=_ONE)
async def identity_verification(customer_id: PathId, body: IdentityVerificationIn,
                                request: Request) -> FastJSONResponse:
    return await _answer(service.record_identity_verification(_pool(request), _id(customer_id), body.request_id,
                                                              body.to_domain()))


@router.post("/{customer_id}/freeze", summary="Freeze: active → frozen, with a reason",
             response_class=FastJSONResponse, responses=_ONE)
async def freeze(customer_id: PathId, body: StatusChangeIn, request: Request) -> FastJSONResponse:
    return await _answer(service.freeze_customer(_pool(request), _id(customer_id), body.request_id, body.reason))


@router.post("/{customer_id}/unfreeze", summary="Unfreeze: frozen → active, with a reason",
             response_class=FastJSONResponse, responses=_ONE)
async def unfreeze(customer_id: PathId, body: StatusChangeIn, request: Request) -> FastJSONResponse:
    return await _answer(service.unfreeze_customer(_pool(request), _id(customer_id), body.request_id,
                                                   body.reason))


@router.post("/{customer_id}/death", summary="Record death: active or frozen → deceased (final; individuals)",
             response_class=FastJSONResponse, responses=_ONE)
async def death(customer_id: PathId, body: DeathIn, request: Request) -> FastJSONResponse:
    return await _answer(service.record_death(_pool(request), _id(customer_id), body.request_id, body.died_on,
                                              body.reason))
