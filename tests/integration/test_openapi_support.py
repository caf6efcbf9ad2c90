"""What the open API tests share (no tests here): the whole app on a real migrated database with card holders, a
wall clock the test moves, and the steps a provider, a customer and the bank's operations take over HTTP."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from kanjo.accounting import ensure_chart
from kanjo.app import create_app
from kanjo.books import verify_books
from kanjo.demo import seed_card_holders
from kanjo.ledger import Ledger
from kanjo.platform import db
from tests.conftest import create_database, drop_database

TODAY = dt.date(2026, 7, 1)  # a Wednesday
KEY = bytes(range(100, 132))
JST = dt.timezone(dt.timedelta(hours=9))
OPENED_AT = dt.datetime(2026, 7, 1, 10, 0, tzinfo=JST)
BALANCE_MINOR = 300_000
ALL = "balance statement transfer"


class Clock:
    """The channel's wall clock, moved by the test (expiries, quota days)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


@dataclass
class World:
    app: FastAPI
    api: httpx.AsyncClient
    clock: Clock
    holders: list[dict[str, str]]
    monotonic_s: list[float] = field(default_factory=lambda: [1_000.0])  # the rate limiter's clock, frozen
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))
    taken: itertools.count = field(default_factory=lambda: itertools.count(0))

    def holder(self) -> dict[str, str]:
        """A card holder no other test of the module has used (tests share the world, never an account)."""
        return self.holders[next(self.taken)]

    def reset_clocks(self) -> None:
        self.clock.at = OPENED_AT
        self.monotonic_s[0] = 1_000.0

    # -- the bank's operations --------------------------------------------------------------------------------
    async def register(self, scopes: str = ALL, *, rate_per_s: int = 50, burst: int = 100,
                       daily_quota: int = 10_000, name: str = "かんじょう家計簿") -> dict[str, Any]:
        r = await self.api.post("/v1/openapi/clients", json={
            "request_id": str(uuid.uuid4()), "name": name, "registration_number": "関東財務局長（電代）第12号",
            "scopes": scopes.split(), "rate_per_s": rate_per_s, "burst": burst, "daily_quota": daily_quota,
            "by": "ops.sato"})
        assert r.status_code == 201, r.text
        return r.json()

    async def change_client(self, client_id: str, action: str) -> dict[str, Any]:
        r = await self.api.post(f"/v1/openapi/clients/{client_id}/{action}",
                                json={"by": "ops.sato", "reason": "test"})
        assert r.status_code == 200, r.text
        return r.json()

    # -- a provider -------------------------------------------------------------------------------------------
    async def token_response(self, client: dict[str, Any], scope: str | None = None, *, basic: bool = True,
                             secret: str | None = None) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        secret = client["client_secret"] if secret is None else secret
        if basic:
            pair = base64.b64encode(f"{client['client_id']}:{secret}".encode()).decode()
            return await self.api.post("/openapi/v1/oauth/token", data=form,
                                       headers={"Authorization": f"Basic {pair}"})
        return await self.api.post("/openapi/v1/oauth/token",
                                   data={**form, "client_id": client["client_id"], "client_secret": secret})

    async def token(self, client: dict[str, Any], scope: str | None = None) -> str:
        r = await self.token_response(client, scope)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def ask_consent(self, token: str, holder: dict[str, str], scopes: str = ALL, *,
                          transfer_max_minor: int | None = 100_000, daily_transfer_max_minor: int | None = 150_000,
                          days: int = 90, key: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"branch_code": holder["branch_code"], "account_number": holder["account_number"],
                                "scopes": scopes.split(),
                                "expires_at": (self.clock.now() + dt.timedelta(days=days)).isoformat()}
        if "transfer" in scopes.split():
            body |= {"transfer_max_minor": transfer_max_minor, "daily_transfer_max_minor": daily_transfer_max_minor}
        return await self.api.post("/openapi/v1/consents", json=body, headers={
            **bearer(token), "Idempotency-Key": key or f"consent-{next(self.keys)}"})

    # -- the customer -----------------------------------------------------------------------------------------
    async def authorise(self, consent_id: str, holder: dict[str, str], pin: str | None = None) -> httpx.Response:
        return await self.api.post(f"/v1/openapi/consents/{consent_id}/authorise",
                                   json={"card_number": holder["card_number"], "pin": pin or holder["pin"]})

    async def consented(self, token: str, holder: dict[str, str], scopes: str = ALL, **limits: Any) -> str:
        """A consent asked for and authorised by the customer: its id."""
        r = await self.ask_consent(token, holder, scopes, **limits)
        assert r.status_code == 201, r.text
        consent_id = str(r.json()["consent_id"])
        r = await self.authorise(consent_id, holder)
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        return consent_id

    # -- reading back -----------------------------------------------------------------------------------------
    async def balance_minor(self, holder: dict[str, str]) -> int:
        """The account's balance as the bank's own books say (not through the open API)."""
        from kanjo.deposits import balance

        b = await balance(self.app.state.bank.deposits, uuid.UUID(holder["account_id"]).int)
        return b.balance_minor

    async def books_ok(self) -> None:
        conn = await db.connect(self.app.state.bank.ledger.dsn)
        try:
            report = await verify_books(conn, TODAY)
        finally:
            await conn.close()
        assert report["ok"], report

    async def access_log(self, **query: str) -> list[dict[str, Any]]:
        r = await self.api.get("/v1/openapi/access-log", params=query)
        assert r.status_code == 200, r.text
        return list(r.json()["entries"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def account_path(holder: dict[str, str]) -> str:
    return f"/openapi/v1/accounts/{holder['branch_code']}/{holder['account_number']}"


@contextlib.asynccontextmanager
async def module_world(server_dsn: str, holders: int) -> AsyncIterator[World]:
    """One database and one app for a test module (a fresh app's first request builds every route, a second or
    so): each test uses its own clients and card holders and starts at the same wall-clock time."""
    dsn = await create_database(server_dsn)
    try:
        async with open_world(dsn, holders) as world:
            yield world
    finally:
        await drop_database(server_dsn, dsn)


@contextlib.asynccontextmanager
async def open_world(dsn: str, holders: int = 3) -> AsyncIterator[World]:
    """The app on a migrated database with `holders` card holders of ¥300,000 each."""
    ledger = await Ledger.start(dsn, business_date=lambda: TODAY, sweep_interval_s=0.05)
    try:
        await ensure_chart(ledger)
        async with app_on(ledger) as world:
            world.holders = await seed_card_holders(world.app.state.bank, 1, holders, BALANCE_MINOR)
            yield world
    finally:
        await ledger.stop()


@contextlib.asynccontextmanager
async def app_on(ledger: Ledger, clock: Clock | None = None) -> AsyncIterator[World]:
    """A fresh app (as after a restart: nothing in memory) on a started ledger."""
    app = create_app(ledger, pin_key_bytes=KEY)
    clock = clock or Clock(OPENED_AT)
    world = World(app, httpx.AsyncClient(), clock, [])
    app.state.openapi.now = clock.now
    app.state.openapi.monotonic = lambda: world.monotonic_s[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        world.api = api
        yield world
