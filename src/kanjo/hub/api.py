"""HTTP routes of the hub: `/health` (which partitions and products are up), the hub's view with its policies, and
the operators' breaker controls. The hub is read from `request.app.state.hub`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from kanjo.hub.model import PRODUCT_NAME, UnknownProduct
from kanjo.hub.schemas import BreakerOut, OpsIn
from kanjo.hub.service import Hub
from kanjo.platform.http import ERROR_RESPONSES, FastJSONResponse

router = APIRouter(tags=["hub"], responses=ERROR_RESPONSES)
ProductName = Annotated[str, Path(pattern=PRODUCT_NAME.pattern, description="a product registered in the hub")]


def _hub(request: Request) -> Hub:
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        raise HTTPException(503, {"error": "hub_not_configured", "message": "this process runs no hub"})
    return hub


@router.get("/health", tags=["operations"], summary="Partitions and products: up, degraded or down (503 when down)")
async def health(request: Request) -> FastJSONResponse:
    answer = _hub(request).health()
    return FastJSONResponse(answer, status_code=503 if answer["status"] == "down" else 200)


@router.get("/v1/hub", summary="The hub's health with its policies (partitions, products, routes, admission) and any "
            "fault a drill injected")
async def hub_view(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    return {**hub.health(), "policies": hub.policies(), "faults": hub.faults()}


@router.post("/v1/hub/products/{product}/open", response_model=BreakerOut,
             summary="Take a product out of service: its breaker stays open until reset (every partition)")
async def force_open(product: ProductName, body: OpsIn, request: Request) -> BreakerOut:
    hub = _hub(request)
    _act(lambda: hub.force_open(product, body.reason))
    return _breaker(hub, product)


@router.post("/v1/hub/products/{product}/reset", response_model=BreakerOut,
             summary="Close a product's breaker with a clean window (after a repair, or to end a forced opening)")
async def reset(product: ProductName, body: OpsIn, request: Request) -> BreakerOut:
    hub = _hub(request)
    _act(lambda: hub.reset(product, body.reason))
    return _breaker(hub, product)


def _act(action: Callable[[], None]) -> None:
    try:
        action()
    except UnknownProduct as exc:
        raise HTTPException(404, {"error": exc.code, "message": exc.message}) from None


def _breaker(hub: Hub, product: str) -> BreakerOut:
    return BreakerOut(product=product, **hub.health()["products"][product])
