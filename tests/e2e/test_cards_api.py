"""Cash cards over real HTTP, as a teller and operations use them: issue, reads (masked), lost/stolen/fraud,
found, PIN unlock, daily limit, reissue, cancel — and no route that verifies a PIN."""

from __future__ import annotations

import httpx

from tests.e2e.server import KanjoProcess
from tests.e2e.test_deposits_api import customer, ok, uid

TELLER = {"by": "T0042"}


def account_of(api: httpx.Client, customer_id: str) -> str:
    return ok(api.post("/v1/deposits/accounts", json={"request_id": uid(), "customer_id": customer_id,
                                                      "branch_code": "101"}))["id"]


def change(api: httpx.Client, card_id: str, step: str, reason: str = "at the counter") -> httpx.Response:
    return api.post(f"/v1/cards/{card_id}/{step}", json={"request_id": uid(), **TELLER, "reason": reason})


def refused(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status and r.json()["error"] == error, r.text


def test_a_card_issued_reported_lost_found_and_replaced(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        taro = customer(api)
        account = account_of(api, taro)
        issuing = {"request_id": uid(), "account_id": account, "customer_id": taro, "pin": "2580",
                   "birth_date": "1990-06-15", **TELLER, "reason": "new account"}
        card = ok(api.post("/v1/cards", json=issuing))
        assert ok(api.post("/v1/cards", json=issuing)) == {**card, "replayed": True}  # a retry: the same card
        number = card["card_number"]
        assert len(number) == 16 and number.isdigit() and card["card_number_masked"] == "*" * 12 + number[-4:]
        assert (card["status"], card["daily_limit"], card["account_id"], card["customer_id"]) == (
            "active", 500_000, account, taro)
        assert card["expires_on"][5:] in ("01-31", "02-28", "02-29", "03-31", "04-30", "05-31", "06-30", "07-31",
                                          "08-31", "09-30", "10-31", "11-30", "12-31")

        read = ok(api.get(f"/v1/cards/{card['id']}"))
        assert number not in str(read) and "pin" not in str(read).lower()
        assert read == {k: v for k, v in card.items() if k not in ("card_number", "replayed")}
        assert ok(api.get("/v1/cards", params={"account_id": account}))["cards"] == [read]
        assert ok(api.get("/v1/cards", params={"customer_id": taro}))["cards"] == [read]

        assert ok(change(api, card["id"], "report-lost", "lost on the Midosuji line"))["status"] == "lost"
        assert ok(change(api, card["id"], "found", "found at home"))["status"] == "active"
        assert ok(change(api, card["id"], "report-stolen", "bag stolen"))["status"] == "stolen"
        refused(change(api, card["id"], "found"), 409, "illegal_transition")
        refused(change(api, card["id"], "unlock-pin"), 409, "illegal_transition")

        limit = {"request_id": uid(), **TELLER, "reason": "the holder asked", "daily_limit": 1_000_000}
        assert ok(api.post(f"/v1/cards/{card['id']}/daily-limit", json=limit))["daily_limit"] == 1_000_000

        reissuing = {"request_id": uid(), **TELLER, "reason": "stolen card replaced", "pin": "7391"}
        new = ok(api.post(f"/v1/cards/{card['id']}/reissue", json=reissuing))
        assert ok(api.post(f"/v1/cards/{card['id']}/reissue", json=reissuing)) == {**new, "replayed": True}
        assert new["card_number"] != number and new["replaces_card_id"] == card["id"]
        assert (new["account_id"], new["daily_limit"], new["status"]) == (account, 1_000_000, "active")
        assert ok(api.get(f"/v1/cards/{card['id']}"))["status"] == "cancelled"
        listed = ok(api.get("/v1/cards", params={"account_id": account}))["cards"]
        assert [c["id"] for c in listed] == [card["id"], new["id"]]

        events = ok(api.get(f"/v1/cards/{card['id']}/events"))["events"]
        assert [(e["kind"], e["status_after"], e["by"]) for e in events] == [
            ("issued", "active", "T0042"), ("report_lost", "lost", "T0042"), ("found", "active", "T0042"),
            ("report_stolen", "stolen", "T0042"), ("change_limit", "stolen", "T0042"),
            ("reissue", "cancelled", "T0042")]
        assert events[1]["reason"] == "lost on the Midosuji line"

        assert ok(change(api, new["id"], "report-fraud", "skimming at a shop"))["status"] == "fraud_suspected"
        assert ok(change(api, new["id"], "cancel", "the account holder asked"))["status"] == "cancelled"
        refused(change(api, new["id"], "cancel"), 409, "illegal_transition")


def test_card_refusals_change_nothing(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        hanako = customer(api)
        account = account_of(api, hanako)
        base = {"account_id": account, "customer_id": hanako, **TELLER}
        for pin, error in (("1111", "weak_pin"), ("3456", "weak_pin"), ("0615", "weak_pin"), ("1990", "weak_pin")):
            r = api.post("/v1/cards", json={**base, "request_id": uid(), "pin": pin, "birth_date": "1990-06-15"})
            refused(r, 409, error)
        for field, bad in (("pin", "123"), ("pin", "12345"), ("pin", 2580), ("pin", "１２３４"),
                           ("daily_limit", 2_010_000), ("daily_limit", 15_000), ("daily_limit", "500000"),
                           ("by", "a teller"), ("account_id", "not-a-uuid"), ("birth_date", "1990-02-30")):
            r = api.post("/v1/cards", json={**base, "pin": "2580", field: bad, "request_id": uid()})
            assert r.status_code == 422 and r.json()["fields"][0]["field"] == field, (field, r.text)
            assert "2580" not in r.text  # the PIN is never echoed back
        r = api.post("/v1/cards", json={**base, "request_id": uid(), "pin": "2580", "account_id": uid()})
        refused(r, 409, "account_not_eligible")
        assert ok(api.get("/v1/cards", params={"customer_id": hanako}))["cards"] == []

        card = ok(api.post("/v1/cards", json={**base, "request_id": uid(), "pin": "2580"}))
        refused(api.post("/v1/cards", json={**base, "request_id": uid(), "pin": "2580"}), 409, "card_exists")
        reused = {**base, "request_id": uid(), "pin": "2580", "account_id": account_of(api, hanako)}
        ok(api.post("/v1/cards", json=reused))
        refused(api.post("/v1/cards", json={**reused, "account_id": account_of(api, hanako)}), 409, "request_reused")

        closing = api.post(f"/v1/deposits/accounts/{account}/close", json={"request_id": uid(), "reason": "moving"})
        refused(closing, 409, "account_in_use")  # a card in force keeps its account open

        assert api.get(f"/v1/cards/{uid()}").status_code == 404
        assert api.get("/v1/cards/not-a-uuid").status_code == 422
        assert change(api, uid(), "report-lost").status_code == 404
        assert api.get("/v1/cards").status_code == 422
        assert api.get("/v1/cards", params={"account_id": account, "customer_id": hanako}).status_code == 422
        r = change(api, card["id"], "report-lost", "x" * 201)
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "reason"
        refused(change(api, card["id"], "report-lost", "nul\u0000byte"), 409, "invalid_reason")
        assert ok(api.get(f"/v1/cards/{card['id']}"))["status"] == "active"


def test_no_route_verifies_a_pin_or_shows_a_full_number(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=30) as api:
        paths = ok(api.get("/openapi.json"))["paths"]
        card_paths = sorted(p for p in paths if p.startswith("/v1/cards"))
        assert card_paths == ["/v1/cards", "/v1/cards/{card_id}", "/v1/cards/{card_id}/cancel",
                              "/v1/cards/{card_id}/daily-limit", "/v1/cards/{card_id}/events",
                              "/v1/cards/{card_id}/found", "/v1/cards/{card_id}/reissue",
                              "/v1/cards/{card_id}/report-fraud", "/v1/cards/{card_id}/report-lost",
                              "/v1/cards/{card_id}/report-stolen", "/v1/cards/{card_id}/unlock-pin"]
        assert not [p for p in paths if "verify" in p and "card" in p]
        assert api.post("/v1/cards/verify", json={"card_number": "6392120000000017", "pin": "2580"}).status_code in (
            404, 405, 422)
        metrics = api.get("/metrics").text
        assert 'kanjo_cards_refusals_total{code="wrong_pin"}' in metrics
        limits = {row["name"]: row for row in ok(api.get("/v1/limits"))["limits"]}
        assert limits["card_pin_consecutive_wrong_max"]["maximum"] == 3
        assert limits["card_daily_withdrawal_limit_max_minor"]["maximum"] == 2_000_000
