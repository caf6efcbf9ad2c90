"""The all-in-one HTTP application: every context's routes on one FastAPI app, sharing one ledger."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from fastapi import FastAPI, Request
from starlette.types import ASGIApp

from kanjo import __version__, capacity
from kanjo.bank import build_bank, build_hub
from kanjo.batch import Batch, BusinessDay, Kind, alert_source, bank_kinds, bulk_needs, bulk_runner, day_plan
from kanjo.batch.api import router as batch_router
from kanjo.business_calendar.api import router as calendar_router
from kanjo.cards.api import router as cards_router
from kanjo.channels import (
    AtmChannel,
    AtmWire,
    OpenApiChannel,
    TellerChannel,
    atm_router,
    openapi_bank_router,
    openapi_router,
    run_atm_sweeper,
    run_openapi_housekeeping,
    run_teller_sweeper,
    teller_router,
)
from kanjo.customers.api import router as customers_router
from kanjo.deposits.api import router as deposits_router
from kanjo.deposits.interest_api import router as interest_router
from kanjo.deposits.overdraft_api import router as overdraft_router
from kanjo.deposits.passbook_api import router as passbook_router
from kanjo.deposits.statements_api import router as statements_router
from kanjo.fees.api import router as fees_router
from kanjo.hub.api import router as hub_router
from kanjo.ledger import Ledger, LedgerBusy, LedgerUnavailable
from kanjo.ledger.api import router as ledger_router
from kanjo.loans.api import router as loans_router
from kanjo.ops import Ops, run_evaluations
from kanjo.ops.api import router as alerts_router
from kanjo.ops_api import router as ops_router
from kanjo.platform.http import (
    BodySizeLimit,
    FastJSONResponse,
    install_error_handlers,
    install_operational_routes,
)
from kanjo.platform.secrets import pin_key
from kanjo.platform.settings import load_settings
from kanjo.time_deposits.api import router as time_deposits_router


def create_app(ledger: Ledger | None, *, pin_key_bytes: bytes | None = None,
               business_day: BusinessDay | None = None) -> FastAPI:
    """The HTTP app on `ledger`. With `business_day` (the date online posts on, which the ledger was started with)
    the batch runs in this process too."""
    app = FastAPI(
        title="kanjo",
        version=__version__,
        description="kanjo (勘定): an open-source core banking system. Money is integer minor units "
        "(yen for ledger 392); every mutation is idempotent by its client-chosen id.",
        default_response_class=FastJSONResponse,
    )
    app.state.ledger = ledger
    if ledger is not None:
        assert ledger.pool is not None
        bank = build_bank(ledger, pin_key=pin_key_bytes or pin_key(load_settings()))
        app.state.bank = bank
        app.state.deposits = bank.deposits
        app.state.time_deposits = bank.time_deposits
        app.state.fees = bank.fees
        app.state.loans = bank.loans
        app.state.cards = bank.cards
        app.state.hub = build_hub()
        app.state.atm = AtmChannel(pool=ledger.pool, hub=app.state.hub, deposits=bank.deposits, cards=bank.cards,
                                   fees=bank.fees, time_deposits=bank.time_deposits, loans=bank.loans,
                                   business_date=bank.business_date,
                                   ack_timeout_s=load_settings().atm_ack_timeout_s)
        app.state.teller = TellerChannel.from_settings(
            pool=ledger.pool, hub=app.state.hub, deposits=bank.deposits, cards=bank.cards, fees=bank.fees,
            time_deposits=bank.time_deposits, calendar=bank.calendar, business_date=bank.business_date)
        app.state.openapi = OpenApiChannel(pool=ledger.pool, hub=app.state.hub, deposits=bank.deposits,
                                           cards=bank.cards, fees=bank.fees)
        app.state.ops = Ops(ledger.pool, call_counts=app.state.hub.call_counts,
                            interval_s=load_settings().ops_evaluation_interval_s)
        capacity.provision(load_settings().capacity)
        capacity.register_probes(ledger, ledger.pool, load_settings().var_dir)
        if business_day is not None:
            settings = load_settings()
            app.state.batch = Batch(
                ledger.pool, {**bank_kinds(bank), "bulk_posting": Kind(bulk_runner(ledger, app.state.hub),
                                                                        needs=bulk_needs)},
                business_day, bank.calendar, day_plan(dt.time.fromisoformat(settings.batch_cut_off_time)),
                pace=app.state.hub.batch_pace, scheduled=settings.batch_scheduler,
                stale_after_s=settings.batch_stale_after_s)
            app.state.ops.register_source("batch", alert_source(app.state.batch))
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    install_operational_routes(app)
    app.include_router(ledger_router)
    app.include_router(calendar_router)
    app.include_router(customers_router)
    app.include_router(deposits_router)
    app.include_router(overdraft_router)
    app.include_router(interest_router)
    app.include_router(passbook_router)
    app.include_router(statements_router)
    app.include_router(time_deposits_router)
    app.include_router(fees_router)
    app.include_router(loans_router)
    app.include_router(cards_router)
    app.include_router(hub_router)
    app.include_router(atm_router)
    app.include_router(teller_router)
    app.include_router(openapi_router)
    app.include_router(openapi_bank_router)
    app.include_router(ops_router)
    app.include_router(batch_router)
    app.include_router(alerts_router)

    @app.get("/healthz", tags=["operations"], summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The ledger can read its database")
    async def readyz(request: Request) -> FastJSONResponse:
        try:
            await request.app.state.ledger.lookup_accounts([1])
        except Exception as exc:
            return FastJSONResponse({"status": "unavailable", "reason": repr(exc)}, status_code=503)
        return FastJSONResponse({"status": "ready"})

    return app


def served(app: FastAPI) -> ASGIApp:
    """What the server runs: the ATM protocol's messages (most of the bank's traffic) answered by the thin wire in
    front of the framework — no route table, no middleware stack (channels/atm/wire.py) — everything else by `app`."""
    return AtmWire(app, channel=lambda: getattr(app.state, "atm", None), busy=(LedgerBusy,),
                   unavailable=(LedgerUnavailable,))


async def start_background(app: FastAPI) -> None:
    """What runs beside the requests: the hub's load sampler, the ATM channel's sweep of unacknowledged
    withdrawals (the ATM registry is loaded first, for routing), and the alert evaluation."""
    app.state.hub.start()
    await app.state.atm.load_machines()
    app.state.background = [asyncio.create_task(run_atm_sweeper(app.state.atm), name="atm-sweeper")]
    app.state.background.append(asyncio.create_task(run_teller_sweeper(app.state.teller), name="teller-expiry"))
    app.state.background.append(asyncio.create_task(run_openapi_housekeeping(app.state.openapi),
                                                    name="openapi-housekeeping"))
    app.state.background.append(asyncio.create_task(run_evaluations(app.state.ops), name="ops-alerts"))
    if getattr(app.state, "batch", None) is not None:
        await app.state.batch.ensure_planned()  # the open date's jobs are there before the first request
        app.state.background.append(asyncio.create_task(app.state.batch.run_forever(), name="batch"))


async def stop_background(app: FastAPI) -> None:
    batch = getattr(app.state, "batch", None)
    if batch is not None:
        await batch.stop()
    for task in getattr(app.state, "background", []):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app.state.hub.stop()
