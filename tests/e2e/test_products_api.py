"""Time deposits and fees over real HTTP: placement, quotes, early withdrawal, fee charges and bulk refunds."""

from __future__ import annotations

import httpx

from tests.e2e.server import KanjoProcess
from tests.e2e.test_deposits_api import customer, ok, uid


def funded_account(api: httpx.Client, customer_id: str, amount: int) -> str:
    account = ok(api.post("/v1/deposits/accounts", json={"request_id": uid(), "customer_id": customer_id,
                                                         "branch_code": "101"}))
    ok(api.post(f"/v1/deposits/accounts/{account['id']}/cash-deposits", json={"request_id": uid(), "amount": amount}))
    return account["id"]


def balance(api: httpx.Client, account_id: str) -> int:
    return ok(api.get(f"/v1/deposits/accounts/{account_id}/balance"))["balance"]


def test_a_time_deposit_placed_quoted_and_withdrawn_early(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        taro = customer(api)
        account = funded_account(api, taro, 1_500_000)
        rates = ok(api.get("/v1/time-deposits/rates"))["rates"]
        assert {"term_months": 12, "band_min": 0, "rate_percent": "0.125"} in rates

        placing = {"request_id": uid(), "customer_id": taro, "funding_account_id": account, "principal": 1_000_000,
                   "term_months": 12, "instruction": "renew_principal"}
        td = ok(api.post("/v1/time-deposits", json=placing))
        assert ok(api.post("/v1/time-deposits", json=placing)) == td  # a retry: the same deposit, no second debit
        assert (td["principal"], td["rate_percent"], td["status"], td["compounding"]) == (
            1_000_000, "0.125", "placed", "simple")
        assert balance(api, account) == 500_000
        assert ok(api.get("/v1/time-deposits", params={"customer_id": taro}))["time_deposits"] == [td]

        # Withdrawn on the day it was placed: no interest, the principal comes back whole.
        quote = ok(api.get(f"/v1/time-deposits/{td['id']}/early-withdrawal-quote"))
        assert quote == {"principal": 1_000_000, "interest": 0, "national_tax": 0, "local_tax": 0,
                         "net_interest": 0, "paid_out": 1_000_000, "renewed_principal": 0}
        withdrawal = {"request_id": uid()}
        assert ok(api.post(f"/v1/time-deposits/{td['id']}/early-withdrawal", json=withdrawal)) == quote
        assert ok(api.post(f"/v1/time-deposits/{td['id']}/early-withdrawal", json=withdrawal)) == quote
        assert balance(api, account) == 1_500_000
        assert ok(api.get(f"/v1/time-deposits/{td['id']}"))["status"] == "withdrawn"
        r = api.post(f"/v1/time-deposits/{td['id']}/early-withdrawal", json={"request_id": uid()})
        assert r.status_code == 409 and r.json()["error"] == "illegal_transition", r.text


def test_time_deposit_refusals_change_nothing(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        hanako = customer(api)
        account = funded_account(api, hanako, 100_000)
        base = {"customer_id": hanako, "funding_account_id": account, "principal": 50_000, "term_months": 12,
                "instruction": "pay_out"}
        cases = [
            ({"term_months": 13}, 409, "term_not_offered"),
            ({"principal": 100_001}, 409, "insufficient_funds"),
            ({"customer_id": customer(api)}, 409, "not_the_customers_account"),
        ]
        for change, status, error in cases:
            r = api.post("/v1/time-deposits", json={**base, **change, "request_id": uid()})
            assert r.status_code == status and r.json()["error"] == error, (change, r.text)
        r = api.post("/v1/time-deposits", json={**base, "funding_account_id": uid(), "request_id": uid()})
        assert r.status_code == 404, r.text
        for field, bad in (("term_months", 0), ("term_months", 121), ("principal", 0), ("principal", 1.5),
                           ("instruction", "keep_forever"), ("tax_class", "alien")):
            r = api.post("/v1/time-deposits", json={**base, field: bad, "request_id": uid()})
            assert r.status_code == 422 and r.json()["fields"][0]["field"] == field, (field, r.text)
        assert balance(api, account) == 100_000
        assert ok(api.get("/v1/time-deposits", params={"customer_id": hanako}))["time_deposits"] == []
        assert api.get(f"/v1/time-deposits/{uid()}").status_code == 404


def test_a_fee_charged_once_and_refunded_once(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        jiro = customer(api)
        account = funded_account(api, jiro, 10_000)
        tariff = ok(api.get("/v1/fees/tariff"))
        assert tariff["fee_max"] == 880 and all(rule["fee"] <= 880 for rule in tariff["rules"])

        # Tuesday 2026-11-24, 10:00 in Tokyo, at another bank's ATM: ¥110 including ¥10 consumption tax.
        transaction = {"channel": "atm_other_bank", "kind": "withdrawal", "amount": 5_000,
                       "at": "2026-11-24T10:00:00+09:00"}
        quote = ok(api.post("/v1/fees/quotes", json=transaction))
        assert (quote["fee"], quote["consumption_tax_included"]) == (110, 10)
        # The same at 20:00 on Sunday the 22nd: ¥220.
        assert ok(api.post("/v1/fees/quotes", json={**transaction, "at": "2026-11-22T20:00:00+09:00"}))["fee"] == 220

        charging = {**transaction, "request_id": uid(), "account_id": account}
        charged = ok(api.post("/v1/fees/charges", json=charging))
        again = ok(api.post("/v1/fees/charges", json=charging))
        assert charged["charged"] and charged["fee"] == 110 and not charged["replayed"]
        assert again["replayed"] and again["fee_id"] == charged["fee_id"]
        assert balance(api, account) == 9_890

        refund = {"request_id": uid(), "reason": "ATM障害 2026-11-24", "fee_ids": [charged["fee_id"], uid()]}
        report = ok(api.post("/v1/fees/refunds", json=refund))
        assert (report["requested"], report["refunded"], report["refunded_amount"]) == (2, 1, 110)
        assert [n["reason"] for n in report["not_refunded"]] == ["no such fee"]
        assert ok(api.post("/v1/fees/refunds", json=refund)) == report  # the same request again: nothing more
        other = ok(api.post("/v1/fees/refunds", json={**refund, "request_id": uid()}))
        assert (other["refunded"], other["already_refunded"]) == (0, 1)
        assert balance(api, account) == 10_000


def test_fee_requests_with_bad_input_are_refused(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        good = {"channel": "teller", "kind": "deposit", "amount": 1_000, "at": "2026-11-24T10:00:00+09:00"}
        for field, bad in (("at", "2026-11-24T10:00:00"), ("at", "2150-01-01T10:00:00+09:00"),
                           ("channel", "carrier_pigeon"), ("amount", -1)):
            r = api.post("/v1/fees/quotes", json={**good, field: bad})
            assert r.status_code == 422 and r.json()["fields"][0]["field"] == field, (field, r.text)
        r = api.post("/v1/fees/quotes", json={**good, "at": "2026-11-22T10:00:00+09:00"})  # a Sunday: no teller
        assert r.status_code == 409 and r.json()["error"] == "no_tariff_rule", r.text
        r = api.post("/v1/fees/refunds", json={"request_id": uid(), "reason": "x"})
        assert r.status_code == 422, r.text
        r = api.post("/v1/fees/charges", json={**good, "channel": "atm_convenience", "kind": "withdrawal",
                                                "request_id": uid(), "account_id": uid()})
        assert r.status_code == 409 and r.json()["error"] == "unknown_account", r.text
