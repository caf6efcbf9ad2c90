"""Operations routes for drills and benches: verify the books over HTTP, inject a product fault, seed card holders.

Fault injection and seeding exist only when KANJO_FAULTS_ENABLED is set (a drill or bench environment); in any other
environment those routes answer 404. Verification is always there: it only reads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from kanjo.books import verify_books
from kanjo.demo import ATM_SEED_COUNT_MAX, seed_card_holders
from kanjo.hub import FaultMode, Hub, UnknownProduct
from kanjo.platform.settings import load_settings

router = APIRouter(prefix="/v1/ops", tags=["operations"])


class FaultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    mode: Literal["error", "hang", "slow"]
    latency_ms: Annotated[int, Field(strict=True, ge=0, le=60_000)] = 0


class SeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: Annotated[int, Field(strict=True, ge=1, le=ATM_SEED_COUNT_MAX)]
    first: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] = 1
    balance_minor: Annotated[int, Field(strict=True, ge=0, le=100_000_000)] = 1_000_000
    # holders 1, 11, 21… also get a card loan, so that the fleet's loan draws have cards to use; null: none
    card_loan_every: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] | None = 10


def _drills_only() -> None:
    if not load_settings().faults_enabled:
        raise HTTPException(404, "fault injection and seeding are off (set KANJO_FAULTS_ENABLED=1 for drills)")


def _hub(request: Request) -> Hub:
    return request.app.state.hub


@router.get("/verify", summary="Verify the books (the same report as `kanjo verify`)")
async def verify(request: Request) -> dict[str, Any]:
    bank = request.app.state.bank
    async with bank.ledger.pool.acquire() as conn:
        return await verify_books(conn, bank.business_date())


@router.get("/faults", summary="Faults injected into products now")
async def faults(request: Request) -> dict[str, Any]:
    return {"faults": _hub(request).faults()}


@router.post("/faults", summary="Make a product fail: errors, hangs or slowness (drills only)")
async def inject(body: FaultIn, request: Request) -> dict[str, Any]:
    _drills_only()
    try:
        _hub(request).inject_fault(body.product, FaultMode(body.mode), latency_ms=body.latency_ms)
    except UnknownProduct as e:
        raise HTTPException(404, e.message) from None
    return {"faults": _hub(request).faults()}


@router.delete("/faults/{product}", summary="Stop injecting a fault into a product (drills only)")
async def clear(product: str, request: Request) -> dict[str, Any]:
    _drills_only()
    try:
        _hub(request).clear_fault(product)
    except UnknownProduct as e:
        raise HTTPException(404, e.message) from None
    return {"faults": _hub(request).faults()}


@router.post("/seed/atm-customers",
             summary="Create card holders with funded accounts, some with a card loan (drills and benches only)")
async def seed(body: SeedIn, request: Request) -> dict[str, Any]:
    _drills_only()
    cards = await seed_card_holders(request.app.state.bank, body.first, body.count, body.balance_minor,
                                    card_loan_every=body.card_loan_every)
    return {"cards": cards}
