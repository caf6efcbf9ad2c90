"""A customer's first account over real HTTP: registration, identity check, opening, cash, transfer, close."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.server import KanjoProcess


def uid() -> str:
    return str(uuid.uuid4())


def customer(api: httpx.Client, verified: bool = True) -> str:
    body = {"id": uid(), "kind": "individual", "name_kanji": "佐藤 花子", "name_kana": "ｻﾄｳ ﾊﾅｺ",
            "birth_date": "1990-06-15", "phone": "090-1234-5678", "email": None, "postal_code": "530-0001",
            "address": "大阪府大阪市北区梅田1-1"}
    assert api.post("/v1/customers", json=body).status_code == 201
    if verified:
        r = api.post(f"/v1/customers/{body['id']}/identity-verification",
                     json={"request_id": uid(), "status": "verified", "verified_on": "2025-04-01"})
        assert r.status_code == 200, r.text
    return body["id"]


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def test_a_customers_first_account(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        unverified = customer(api, verified=False)
        r = api.post("/v1/deposits/accounts", json={"request_id": uid(), "customer_id": unverified,
                                                    "branch_code": "201"})
        assert r.status_code == 409 and r.json()["error"] == "customer_not_eligible", r.text

        hanako = customer(api)
        opening = {"request_id": uid(), "customer_id": hanako, "branch_code": "201"}
        account = ok(api.post("/v1/deposits/accounts", json=opening))
        assert ok(api.post("/v1/deposits/accounts", json=opening)) == account  # a retry: the same account
        assert account["label"] == f"201-{account['account_number']}" and account["status"] == "active"
        found = ok(api.get(f"/v1/deposits/accounts/by-number/201/{account['account_number']}"))
        assert found["id"] == account["id"]
        base = f"/v1/deposits/accounts/{account['id']}"

        cash_in = {"request_id": uid(), "amount": 300_000}
        first = ok(api.post(f"{base}/cash-deposits", json=cash_in))
        again = ok(api.post(f"{base}/cash-deposits", json=cash_in))
        assert not first["replayed"] and again["replayed"] and again["transfer_id"] == first["transfer_id"]
        r = api.post(f"{base}/cash-withdrawals", json={"request_id": uid(), "amount": 300_001})
        assert r.status_code == 409 and r.json()["error"] == "insufficient_funds"
        for bad in (0, -5, 1.5, "100"):
            r = api.post(f"{base}/cash-withdrawals", json={"request_id": uid(), "amount": bad})
            assert r.status_code == 422 and r.json()["fields"][0]["field"] == "amount", (bad, r.text)

        other = ok(api.post("/v1/deposits/accounts", json={"request_id": uid(), "customer_id": hanako,
                                                           "branch_code": "201"}))
        ok(api.post("/v1/deposits/transfers", json={"request_id": uid(), "from_account_id": account["id"],
                                                   "to_account_id": other["id"], "amount": 120_000}))
        assert ok(api.get(f"{base}/balance")) == {"balance": 180_000, "held": 0, "available": 180_000}
        lines = ok(api.get(f"{base}/statement"))["lines"]
        assert [(ln["description"], ln["deposit"], ln["withdrawal"], ln["balance"]) for ln in lines] == [
            ("現金入金", 300_000, 0, 300_000), ("振替", 0, 120_000, 180_000)]
        accounts = ok(api.get("/v1/deposits/accounts", params={"customer_id": hanako}))["accounts"]
        assert {a["id"] for a in accounts} == {account["id"], other["id"]}

        r = api.post(f"{base}/close", json={"request_id": uid(), "reason": "転居"})
        assert r.status_code == 409 and r.json()["error"] == "balance_not_zero"
        ok(api.post(f"{base}/cash-withdrawals", json={"request_id": uid(), "amount": 180_000}))
        closed = ok(api.post(f"{base}/close", json={"request_id": uid(), "reason": "転居"}))
        assert closed["status"] == "closed"
        r = api.post(f"{base}/cash-deposits", json={"request_id": uid(), "amount": 1})
        assert r.status_code == 409 and r.json()["error"] == "account_closed"
        assert api.get(f"/v1/deposits/accounts/{uid()}").status_code == 404
