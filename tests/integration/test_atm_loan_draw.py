"""Card-loan cash at the ATM end to end (real PostgreSQL, real ledger, the hub in front of every product): what the
customer, the ATM centre and an auditor check — the line held while the machine pays out, drawn only on its word,
released when nothing came out, in-doubt items settled by its journal, the line never passed, the books balanced."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from kanjo.channels import sweep_atm_overdue
from kanjo.loans import ContractView, get_contract, open_contract, suspend
from tests.integration.test_atm_channel import Atm, atm  # noqa: F401  (the fixture)

LINE = 500_000


async def _loan(at: Atm, i: int = 0, line_minor: int = LINE) -> int:
    holder = at.cards[i]
    c = await open_contract(at.app.state.bank.loans, uuid.uuid4().int, uuid.UUID(holder["customer_id"]).int,
                            uuid.UUID(holder["account_id"]).int, line_minor, Decimal("14.5"), 10)
    return c.id


async def _view(at: Atm, contract_id: int) -> ContractView:
    return await get_contract(at.app.state.bank.loans, contract_id)


async def test_card_loan_cash_is_held_then_drawn_on_the_acknowledgement(atm: Atm) -> None:  # noqa: F811
    loan = await _loan(atm)
    status, body, no = await atm.send("loan-draw", "C0001", card=atm.card(), amount_minor=100_000)
    assert (status, body["result"], body["card_action"]) == (200, "approved", "return")
    assert (body["dispense_minor"], body["fee_minor"], body["available_after_minor"]) == (100_000, 0, 400_000)
    held = await _view(atm, loan)
    assert (held.drawn_minor, held.available_minor) == (0, 400_000)  # on hold: not drawn, no longer available
    status, ack, _ = await atm.send("loan-draw/ack", "C0001", journal_no=no, dispensed_minor=100_000)
    assert (status, ack["result"], ack["code"]) == (200, "approved", "posted")
    drawn = await _view(atm, loan)
    assert (drawn.drawn_minor, drawn.available_minor) == (100_000, 400_000)
    # the acknowledgement again (its answer was lost): the same answer, drawn once
    _, again, _ = await atm.send("loan-draw/ack", "C0001", journal_no=no, dispensed_minor=100_000)
    assert (again["code"], again["replayed"]) == ("posted", True)
    assert (await _view(atm, loan)).drawn_minor == 100_000
    assert await atm.balance() == 300_000  # the deposit account is not touched
    await atm.books_ok()


async def test_the_line_is_never_passed_by_concurrent_draws(atm: Atm) -> None:  # noqa: F811
    loan = await _loan(atm, 1)
    answers = await asyncio.gather(*(atm.send("loan-draw", f"A000{1 + i}", card=atm.card(1), amount_minor=300_000)
                                     for i in range(2)))
    codes = sorted(body["code"] for _, body, _ in answers)
    assert codes == ["exceeds_available", "ok"]
    refused = next(body for _, body, _ in answers if body["code"] == "exceeds_available")
    assert (refused["result"], refused["card_action"]) == ("refused", "return")
    assert refused["message"] == "ご利用可能額を超えています。"
    atm_id, no = next((body["atm_id"], n) for _, body, n in answers if body["code"] == "ok")
    await atm.send("loan-draw/ack", atm_id, journal_no=no, dispensed_minor=300_000)
    _, more, _ = await atm.send("loan-draw", card=atm.card(1), amount_minor=210_000)
    assert more["code"] == "exceeds_available"
    assert (await _view(atm, loan)).available_minor == 200_000
    await atm.books_ok()


async def test_nothing_dispensed_or_part_dispensed_releases_the_rest(atm: Atm) -> None:  # noqa: F811
    loan = await _loan(atm, 2)
    _, _, no = await atm.send("loan-draw", card=atm.card(2), amount_minor=50_000)
    _, ack, _ = await atm.send("loan-draw/ack", journal_no=no, dispensed_minor=0)
    assert ack["code"] == "voided"
    assert ((await _view(atm, loan)).drawn_minor, (await _view(atm, loan)).available_minor) == (0, LINE)
    _, _, no = await atm.send("loan-draw", card=atm.card(2), amount_minor=50_000)
    _, ack, _ = await atm.send("loan-draw/ack", journal_no=no, dispensed_minor=30_000)  # a jam: 3 notes of 5
    assert ack["code"] == "posted"
    view = await _view(atm, loan)
    assert (view.drawn_minor, view.available_minor) == (30_000, LINE - 30_000)
    _, wrong, _ = await atm.send("loan-draw/ack", journal_no=no, dispensed_minor=40_000)
    assert wrong["code"] == "request_reused"  # another amount for an acknowledged draw changes nothing
    await atm.books_ok()


async def test_refusals_are_answers_and_the_card_goes_back(atm: Atm) -> None:  # noqa: F811
    _, none, _ = await atm.send("loan-draw", card=atm.card(3), amount_minor=10_000)
    assert (none["result"], none["code"], none["card_action"]) == ("refused", "no_card_loan", "return")
    loan = await _loan(atm, 3)
    await suspend(atm.app.state.bank.loans, uuid.uuid4().int, loan, "review")
    _, stopped, _ = await atm.send("loan-draw", card=atm.card(3), amount_minor=10_000)
    assert (stopped["code"], stopped["card_action"]) == ("contract_suspended", "return")
    _, wrong, _ = await atm.send("loan-draw", card=atm.card(3, pin="0000"), amount_minor=10_000)
    assert wrong["code"] == "wrong_pin"
    r = await atm.api.post("/atm/v1/loan-draw", json={"atm_id": "A0001", "journal_no": 77, "card": atm.card(3),
                                                       "amount_minor": 600_000})
    assert r.status_code == 422  # more than one cash-out: refused at the edge
    assert (await _view(atm, loan)).drawn_minor == 0
    await atm.books_ok()


async def test_no_acknowledgement_releases_the_line_and_the_journal_settles_it(atm: Atm) -> None:  # noqa: F811
    loan = await _loan(atm)
    atm.app.state.atm.ack_timeout_s = 1
    _, taken, taken_no = await atm.send("loan-draw", card=atm.card(), amount_minor=70_000)
    _, kept, kept_no = await atm.send("loan-draw", card=atm.card(), amount_minor=20_000)
    assert taken["code"] == kept["code"] == "ok"
    await asyncio.sleep(1.2)
    await sweep_atm_overdue(atm.app.state.atm)
    view = await _view(atm, loan)
    assert (view.drawn_minor, view.available_minor) == (0, LINE)  # released: nothing drawn on a guess
    doubt = (await atm.api.get("/v1/atm-in-doubt")).json()
    assert doubt["summary"]["open"] == 2 and {i["operation"] for i in doubt["items"]} == {"loan_draw"}
    entries = [{"journal_no": taken_no, "operation": "loan_draw", "amount_minor": 70_000, "outcome": "dispensed"},
               {"journal_no": kept_no, "operation": "loan_draw", "amount_minor": 20_000, "outcome": "no_answer"}]
    r = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": entries})
    assert (r.json()["corrected"], r.json()["breaks"]) == (2, [])
    assert (await _view(atm, loan)).drawn_minor == 70_000  # the cash the customer has, drawn exactly once
    again = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": entries})
    assert (again.json()["matched"], again.json()["corrected"], again.json()["breaks"]) == (2, 0, [])
    _, late, _ = await atm.send("loan-draw/ack", journal_no=taken_no, dispensed_minor=70_000)
    assert (late["code"], late["late"]) == ("posted", True)
    assert (await _view(atm, loan)).drawn_minor == 70_000
    await atm.books_ok()


async def test_a_late_acknowledgement_draws_what_was_dispensed(atm: Atm) -> None:  # noqa: F811
    loan = await _loan(atm, 1)
    atm.app.state.atm.ack_timeout_s = 1
    _, _, no = await atm.send("loan-draw", card=atm.card(1), amount_minor=40_000)
    await asyncio.sleep(1.2)
    await sweep_atm_overdue(atm.app.state.atm)
    _, late, _ = await atm.send("loan-draw/ack", journal_no=no, dispensed_minor=40_000)
    assert (late["result"], late["code"], late["late"]) == ("approved", "posted", True)
    view = await _view(atm, loan)
    assert (view.drawn_minor, view.available_minor) == (40_000, LINE - 40_000)
    await atm.books_ok()


async def test_loans_down_refuses_fast_and_withdrawals_still_work(atm: Atm) -> None:  # noqa: F811
    await _loan(atm, 2)
    atm.app.state.hub.force_open("loans", "drill")
    status, body, _ = await atm.send("loan-draw", card=atm.card(2), amount_minor=10_000)
    assert (status, body["result"], body["card_action"]) == (503, "unavailable", "return")
    assert "withdrawal" in body["still_working"] and "loan_draw" not in body["still_working"]
    _, w, no = await atm.send("withdrawal", card=atm.card(2), amount_minor=10_000)
    assert w["result"] == "approved"
    _, ack, _ = await atm.send("withdrawal/ack", journal_no=no, dispensed_minor=10_000)
    assert ack["code"] == "posted"
    await atm.books_ok()
