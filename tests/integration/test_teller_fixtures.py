"""The branch the teller tests work in: kanjo's HTTP app on a real PostgreSQL and ledger, the demo operators signed
on at their terminals, a few customers with accounts and cards, and a clock the tests move (no test lives here)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from kanjo.accounting import ensure_chart
from kanjo.app import create_app, start_background, stop_background
from kanjo.books import verify_books
from kanjo.channels import seed_teller_operators
from kanjo.demo import seed_card_holders
from kanjo.ledger import Ledger
from kanjo.platform import db

TODAY = dt.date(2026, 7, 1)  # a Wednesday: the counter's tariff applies
KEY = bytes(range(100, 132))
JST = dt.timezone(dt.timedelta(hours=9))
OPENED_AT = dt.datetime(2026, 7, 1, 10, 0, tzinfo=JST)
# Argon2id at a cost fit for many sign-ons in a test run; the production default is checked in the unit tests.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1)


@dataclass
class Clock:
    at: dt.datetime = OPENED_AT

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@dataclass
class Branch:
    """Branch 001 with its operators: tellers T0011 and T0012, supervisors S0011 and S0012, auditor A0091."""

    app: FastAPI
    api: httpx.AsyncClient
    clock: Clock
    passwords: dict[str, str]
    holders: list[dict[str, str]]
    tokens: dict[str, str] = field(default_factory=dict)
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def teller(self) -> Any:
        return self.app.state.teller

    def rid(self) -> str:
        return str(uuid.uuid4())

    async def sign_on(self, operator_id: str, terminal_id: str | None = None,
                      password: str | None = None) -> httpx.Response:
        r = await self.api.post("/teller/v1/sessions", json={
            "operator_id": operator_id, "password": password or self.passwords[operator_id],
            "terminal_id": terminal_id or f"W{operator_id}"})
        if r.status_code == 201:
            self.tokens[operator_id] = r.json()["token"]
        return r

    def auth(self, operator_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[operator_id]}"}

    async def post(self, operator_id: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = await self.api.post(f"/teller/v1/{path}", json=body, headers=self.auth(operator_id))
        return r.status_code, (r.json() if r.content else {})

    async def get(self, who: str, path: str, /, **params: Any) -> tuple[int, dict[str, Any]]:
        r = await self.api.get(f"/teller/v1/{path}", params=params, headers=self.auth(who))
        return r.status_code, r.json()

    async def make(self, who: str, path: str, /, **body: Any) -> tuple[int, dict[str, Any]]:
        """A new request by operator `who` (a fresh request id unless the body names one)."""
        body.setdefault("request_id", self.rid())
        return await self.post(who, path, body)

    async def approve(self, operator_id: str, made: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self.post(operator_id, f"requests/{made['request_id']}/approve",
                               {"content_sha256": made["content_sha256"]})

    def account(self, i: int) -> dict[str, str]:
        h = self.holders[i]
        return {"branch_code": h["branch_code"], "account_number": h["account_number"]}

    async def balance(self, i: int | dict[str, str]) -> int:
        ref = self.account(i) if isinstance(i, int) else i
        status, body = await self.get("T0012", f"accounts/{ref['branch_code']}/{ref['account_number']}")
        assert status == 200, body
        return int(body["balance_minor"])

    async def books_ok(self) -> dict[str, Any]:
        conn = await db.connect(self.app.state.bank.ledger.dsn)
        try:
            report = await verify_books(conn, TODAY)
        finally:
            await conn.close()
        assert report["ok"], report
        return report


@pytest.fixture
async def branch(ledger_dsn: str) -> AsyncIterator[Branch]:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    await ensure_chart(ledger)
    app = create_app(ledger, pin_key_bytes=KEY)
    clock = Clock()
    app.state.teller.now = app.state.bank.fees.now = clock
    app.state.teller.hasher = FAST_HASHER
    await start_background(app)
    try:
        seeded = await seed_teller_operators(app.state.teller)
        holders = await seed_card_holders(app.state.bank, 1, 3, 300_000)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
            b = Branch(app, api, clock, {o["operator_id"]: o["password"] for o in seeded}, holders)
            for operator_id in b.passwords:
                assert (await b.sign_on(operator_id)).status_code == 201
            yield b
    finally:
        await stop_background(app)
        await ledger.stop()
