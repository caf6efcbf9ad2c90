"""HTTP routes of fees: the tariff, quotes, charging a fee to an account, and exactly-once bulk refunds."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from kanjo.fees import service
from kanjo.fees.model import FeeImplausible, Refused
from kanjo.fees.schemas import ChargeIn, ChargeOut, QuoteIn, QuoteOut, RefundIn, RefundOut, TariffOut
from kanjo.platform.http import ERROR_RESPONSES

router = APIRouter(prefix="/v1/fees", tags=["fees"], responses=ERROR_RESPONSES)


def _f(request: Request) -> service.Fees:
    return request.app.state.fees


async def _call(coro):  # type: ignore[no-untyped-def]
    """A business refusal → 409 with its code; an implausible fee (a tariff defect, already alerted) → 409."""
    try:
        return await coro
    except Refused as exc:
        raise HTTPException(409, {"error": exc.code, "message": str(exc)}) from None
    except FeeImplausible as exc:
        raise HTTPException(409, {"error": "fee_implausible", "message": f"no fee charged: {exc}"}) from None


async def _quote(f: service.Fees, body: QuoteIn):  # type: ignore[no-untyped-def]
    async def q():  # type: ignore[no-untyped-def]
        return service.quote(f, body.channel, body.kind, body.amount, body.at or f.now())
    return await _call(q())


@router.get("/tariff", summary="The tariff in force (tax-inclusive yen, first matching rule wins)",
            response_model=TariffOut)
async def tariff(request: Request) -> TariffOut:
    return TariffOut.of(_f(request).tariff)


@router.post("/quotes", summary="The fee a transaction would bear (moves nothing)", response_model=QuoteOut)
async def quote(body: QuoteIn, request: Request) -> QuoteOut:
    return QuoteOut.of(await _quote(_f(request), body))


@router.post("/charges", summary="Charge a transaction's fee to an ordinary account (idempotent by request_id)",
             response_model=ChargeOut)
async def charge(body: ChargeIn, request: Request) -> ChargeOut:
    f = _f(request)
    q = await _quote(f, body)
    charged = await _call(service.charge_fee(f, body.request_id, body.account_id, q, body.at))
    return ChargeOut.of(q, charged)


@router.post("/refunds", summary="Refund many fees at once (after an outage), each exactly once",
             response_model=RefundOut)
async def refund(body: RefundIn, request: Request) -> RefundOut:
    selection = service.RefundSelection(fee_ids=tuple(body.fee_ids), channel=body.channel,
                                        charged_from=body.charged_from, charged_until=body.charged_until)
    return RefundOut.of(await _call(service.refund_fees(_f(request), body.request_id, selection, body.reason)))
