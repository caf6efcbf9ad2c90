"""Card loans over HTTP (the router in a FastAPI app built here): status codes, error shapes and the money."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import ensure_chart
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Deposits, deposit_cash, open_ordinary_account
from kanjo.ledger import Ledger, LedgerBusy, LedgerUnavailable
from kanjo.loans import Loans, accrue_interest, collect_interest
from kanjo.loans.api import router
from kanjo.platform.http import FastJSONResponse, install_error_handlers

OPENED = dt.date(2026, 4, 1)


def rid() -> str:
    return str(uuid.uuid4())


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Api:
    client: httpx.AsyncClient
    today: list[dt.date]
    deposits: Deposits
    loans: Loans

    async def customer_with(self, amount_minor: int) -> tuple[str, str]:
        customer = uuid.uuid4().int
        account = await open_ordinary_account(self.deposits, uuid.uuid4().int, customer, "001")
        if amount_minor:
            await deposit_cash(self.deposits, uuid.uuid4().int, account.id, amount_minor)
        return str(uuid.UUID(int=customer)), str(uuid.UUID(int=account.id))

    async def open(self, line: int = 1_000_000, rate: str = "14.500", deposit: int = 50_000) -> tuple[str, str]:
        customer, account = await self.customer_with(deposit)
        r = await self.client.post("/v1/loans/card-loans", json={
            "request_id": rid(), "customer_id": customer, "account_id": account, "credit_line": line,
            "rate_percent": rate, "collection_day": 10})
        assert r.status_code == 200, r.text
        return r.json()["id"], account

    async def balance(self, account: str) -> int:
        [a] = await self.loans.ledger.lookup_accounts([uuid.UUID(account).int])
        return a.balance_credit_minor()


@pytest.fixture
async def api(ledger_dsn: str) -> AsyncIterator[Api]:
    today = [OPENED]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    deposits = Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], customer_check=eligible)
    loans = Loans(pool=ledger.pool, ledger=ledger, deposits=deposits, business_date=lambda: today[0],
                  calendar=BankCalendar(), customer_check=eligible)
    app = FastAPI(default_response_class=FastJSONResponse)
    app.state.loans = loans
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(router)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
            yield Api(client, today, deposits, loans)
    finally:
        await ledger.stop()


async def test_open_and_read_a_contract(api: Api) -> None:
    customer, account = await api.customer_with(0)
    body = {"request_id": rid(), "customer_id": customer, "account_id": account, "credit_line": 1_000_000,
            "rate_percent": "14.500", "collection_day": 10}
    r = await api.client.post("/v1/loans/card-loans", json=body)
    assert r.status_code == 200, r.text
    c = r.json()
    assert {k: c[k] for k in ("customer_id", "account_id", "credit_line", "rate_percent", "status", "drawn",
                              "available", "accrued_interest", "arrears", "days_past_due", "next_due_on",
                              "next_collect_on")} == {
        "customer_id": customer, "account_id": account, "credit_line": 1_000_000, "rate_percent": "14.500",
        "status": "active", "drawn": 0, "available": 1_000_000, "accrued_interest": "0.00", "arrears": 0,
        "days_past_due": 0, "next_due_on": "2026-05-10", "next_collect_on": "2026-05-11"}
    assert (await api.client.post("/v1/loans/card-loans", json=body)).json() == c  # a retry answers the same
    assert (await api.client.get(f"/v1/loans/card-loans/{c['id']}")).json() == c
    listed = await api.client.get("/v1/loans/card-loans", params={"customer_id": customer})
    assert listed.status_code == 200 and [x["id"] for x in listed.json()["contracts"]] == [c["id"]]

    refused = await api.client.post("/v1/loans/card-loans", json={**body, "request_id": rid()})
    assert (refused.status_code, refused.json()["error"]) == (409, "contract_exists")
    other, other_account = await api.customer_with(0)
    cases = [
        ({"rate_percent": "15.001"}, 409, "rate_above_legal_maximum"),
        ({"credit_line": 8_010_000}, 413, "limit_reached"),
        ({"credit_line": 95_000}, 409, "invalid_credit_line"),
        ({"rate_percent": "14.5%"}, 422, "invalid_field"),
        ({"rate_percent": 14.5}, 422, "invalid_field"),
        ({"collection_day": 31}, 422, "invalid_field"),
        ({"account_id": str(uuid.uuid4())}, 404, "not_found"),
        ({"account_id": account}, 409, "not_the_customers_account"),
        ({"surprise": 1}, 422, "invalid_field"),
    ]
    for change, status, error in cases:
        r = await api.client.post("/v1/loans/card-loans", json={
            **body, "request_id": rid(), "customer_id": other, "account_id": other_account, **change})
        assert (r.status_code, r.json()["error"]) == (status, error), (change, r.text)
    limit = await api.client.post("/v1/loans/card-loans", json={
        **body, "request_id": rid(), "customer_id": other, "account_id": other_account, "credit_line": 8_010_000})
    assert limit.json()["limit"] == "card_loan_credit_line_max_minor"
    assert (await api.client.get("/v1/loans/card-loans", params={"customer_id": other})).json() == {"contracts": []}
    assert (await api.client.get(f"/v1/loans/card-loans/{uuid.uuid4()}")).status_code == 404
    assert (await api.client.get("/v1/loans/card-loans/not-a-uuid")).status_code == 422


async def test_draw_and_repay(api: Api) -> None:
    contract, account = await api.open(line=500_000, deposit=10_000)
    request = rid()
    r = await api.client.post(f"/v1/loans/card-loans/{contract}/draws",
                              json={"request_id": request, "amount": 200_000, "to": "account"})
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("kind", "amount", "principal", "business_date", "replayed")} == {
        "kind": "draw_to_account", "amount": 200_000, "principal": 200_000, "business_date": "2026-04-01",
        "replayed": False}
    again = await api.client.post(f"/v1/loans/card-loans/{contract}/draws",
                                  json={"request_id": request, "amount": 200_000, "to": "account"})
    assert again.json()["replayed"] is True
    assert await api.balance(account) == 210_000
    cases = [
        ({"amount": 300_001, "to": "account"}, 409, "exceeds_available"),
        ({"amount": 1_500, "to": "cash"}, 409, "invalid_amount"),
        ({"amount": 600_000, "to": "cash"}, 413, "limit_reached"),
        ({"amount": 0, "to": "cash"}, 422, "invalid_field"),
        ({"amount": -1_000, "to": "account"}, 422, "invalid_field"),
        ({"amount": "1000", "to": "account"}, 422, "invalid_field"),
        ({"amount": 1_000, "to": "teller"}, 422, "invalid_field"),
    ]
    for change, status, error in cases:
        r = await api.client.post(f"/v1/loans/card-loans/{contract}/draws", json={"request_id": rid(), **change})
        assert (r.status_code, r.json()["error"]) == (status, error), (change, r.text)
    missing = await api.client.post(f"/v1/loans/card-loans/{uuid.uuid4()}/draws",
                                    json={"request_id": rid(), "amount": 1_000, "to": "cash"})
    assert missing.status_code == 404
    assert (await api.client.get(f"/v1/loans/card-loans/{contract}")).json()["drawn"] == 200_000

    paid = await api.client.post(f"/v1/loans/card-loans/{contract}/repayments",
                                 json={"request_id": rid(), "amount": 50_000, "source": "account"})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["interest"], paid.json()["principal"]) == (0, 50_000)
    too_much = await api.client.post(f"/v1/loans/card-loans/{contract}/repayments",
                                     json={"request_id": rid(), "amount": 150_001, "source": "cash"})
    assert (too_much.status_code, too_much.json()["error"]) == (409, "invalid_amount")  # not in ¥1,000 notes
    too_much = await api.client.post(f"/v1/loans/card-loans/{contract}/repayments",
                                     json={"request_id": rid(), "amount": 151_000, "source": "cash"})
    assert (too_much.status_code, too_much.json()["error"]) == (409, "exceeds_owed")
    view = (await api.client.get(f"/v1/loans/card-loans/{contract}")).json()
    assert (view["drawn"], view["available"], await api.balance(account)) == (150_000, 350_000, 160_000)


async def test_states_over_http_and_the_collection_history(api: Api) -> None:
    contract, account = await api.open(line=500_000, rate="15", deposit=10_000)
    await api.client.post(f"/v1/loans/card-loans/{contract}/draws",
                          json={"request_id": rid(), "amount": 100_000, "to": "cash"})
    for day in api.loans.calendar.business_days(OPENED, dt.date(2026, 5, 8)):
        api.today[0] = day
        await accrue_interest(api.loans, day)
    api.today[0] = dt.date(2026, 5, 11)
    await collect_interest(api.loans, dt.date(2026, 5, 11))
    history = await api.client.get(f"/v1/loans/card-loans/{contract}/collections")
    # ¥100,000 × 40 days × 15 % / 365 = ¥1,643.8 → ¥1,643
    assert history.json() == {"collections": [{
        "due_on": "2026-05-10", "kind": "monthly", "collect_on": "2026-05-11", "balance_days": 4_000_000,
        "rate_percent": "15.000", "interest": 1_643, "collected": 1_643, "outstanding": 0}]}
    assert await api.balance(account) == 10_000 - 1_643

    stop = await api.client.post(f"/v1/loans/card-loans/{contract}/suspend",
                                 json={"request_id": rid(), "reason": "途上与信"})
    assert (stop.status_code, stop.json()["status"], stop.json()["available"]) == (200, "suspended", 0)
    draw = await api.client.post(f"/v1/loans/card-loans/{contract}/draws",
                                 json={"request_id": rid(), "amount": 1_000, "to": "cash"})
    assert (draw.status_code, draw.json()["error"]) == (409, "contract_suspended")
    assert (await api.client.post(f"/v1/loans/card-loans/{contract}/resume",
                                  json={"request_id": rid(), "reason": "reviewed"})).json()["status"] == "active"
    twice = await api.client.post(f"/v1/loans/card-loans/{contract}/resume",
                                  json={"request_id": rid(), "reason": "reviewed"})
    assert twice.status_code == 409 and twice.json() == {
        "error": "illegal_transition", "message": "cannot resume a card loan that is active"}
    close = await api.client.post(f"/v1/loans/card-loans/{contract}/close",
                                  json={"request_id": rid(), "reason": "customer's request"})
    assert (close.status_code, close.json()["error"]) == (409, "balance_outstanding")
    blank = await api.client.post(f"/v1/loans/card-loans/{contract}/close", json={"request_id": rid(), "reason": ""})
    assert blank.status_code == 422

    await accrue_interest(api.loans, dt.date(2026, 5, 11))  # 5/11 at ¥100,000: ¥41.09 accrued
    api.today[0] = dt.date(2026, 5, 12)
    await api.client.post(f"/v1/loans/card-loans/{contract}/repayments",
                          json={"request_id": rid(), "amount": 100_000, "source": "cash"})
    closed = await api.client.post(f"/v1/loans/card-loans/{contract}/close",
                                   json={"request_id": rid(), "reason": "customer's request"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["closed_on"], closed.json()["drawn"]) == (
        "closed", "2026-05-12", 0)
    assert await api.balance(account) == 10_000 - 1_643 - 41
    after = await api.client.post(f"/v1/loans/card-loans/{contract}/suspend",
                                  json={"request_id": rid(), "reason": "late"})
    assert after.status_code == 409 and after.json()["message"] == "cannot suspend a card loan that is closed"
