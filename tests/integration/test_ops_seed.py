"""The seeding route of drills and benches (POST /v1/ops/seed/atm-customers) through the HTTP app: every tenth card
holder gets a card loan unless told otherwise, the cards say which, such a card draws cash on its loan at an ATM,
seeding twice changes nothing, and bad options are refused as invalid, never as a server error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_atm_channel import Atm, atm  # noqa: F401  (the fixture)

SEED = "/v1/ops/seed/atm-customers"


async def _seed(atm: Atm, **body: Any) -> tuple[int, Any]:  # noqa: F811
    r = await atm.api.post(SEED, json=body)
    return r.status_code, r.json()


async def test_every_tenth_holder_has_a_card_loan_to_draw_on(atm: Atm,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANJO_FAULTS_ENABLED", "1")
    status, answer = await _seed(atm, first=5, count=20, balance_minor=100_000)
    assert status == 200, answer
    borrowers = [card for card in answer["cards"] if card["card_loan"]]
    assert [answer["cards"].index(card) + 5 for card in borrowers] == [11, 21]  # holders 1, 11, 21…: from the first
    assert (await _seed(atm, first=5, count=20, balance_minor=100_000)) == (status, answer)  # idempotent
    card = {"number": borrowers[0]["card_number"], "pin": borrowers[0]["pin"]}
    _, drawn, no = await atm.send("loan-draw", card=card, amount_minor=30_000)
    assert (drawn["result"], drawn["dispense_minor"], drawn["available_after_minor"]) == ("approved", 30_000, 470_000)
    _, ack, _ = await atm.send("loan-draw/ack", journal_no=no, dispensed_minor=30_000)
    assert ack["code"] == "posted"
    plain = next(card for card in answer["cards"] if not card["card_loan"])
    _, refused, _ = await atm.send("loan-draw", card={"number": plain["card_number"], "pin": plain["pin"]},
                                   amount_minor=10_000)
    assert (refused["result"], refused["code"]) == ("refused", "no_card_loan")
    status, none = await _seed(atm, first=30, count=2, card_loan_every=None)
    assert status == 200 and [card["card_loan"] for card in none["cards"]] == [False, False]
    await atm.books_ok()


async def test_bad_seeding_options_are_invalid_not_a_server_error(atm: Atm,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANJO_FAULTS_ENABLED", "1")
    for bad in (0, -10, "10", 2.5, True, 10_000_001):
        status, answer = await _seed(atm, count=1, card_loan_every=bad)
        assert status == 422, (bad, answer)
