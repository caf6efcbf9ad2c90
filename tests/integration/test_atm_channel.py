"""The ATM channel end to end through the HTTP app (real PostgreSQL, real ledger, the hub in front of every product):
what a customer at the machine, the ATM centre and an auditor check — two-phase cash out, retries answered once,
cards returned on every system error, in-doubt items settled by the machine's journal, the books balanced."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import ensure_chart
from kanjo.app import create_app, served, start_background, stop_background
from kanjo.books import verify_books
from kanjo.channels import sweep_atm_overdue
from kanjo.demo import DEMO_ATMS, load_demo_atms, seed_card_holders
from kanjo.ledger import Ledger
from kanjo.platform import db

TODAY = dt.date(2026, 7, 1)  # a Wednesday
KEY = bytes(range(100, 132))
JST = dt.timezone(dt.timedelta(hours=9))
OPENED_AT = dt.datetime(2026, 7, 1, 10, 0, tzinfo=JST)  # weekday daytime: own ATMs free, others ¥110


def running_clock() -> Any:
    """Wall time that starts on a weekday morning and runs at real speed (deadlines still pass)."""
    started = time.monotonic()
    return lambda: OPENED_AT + dt.timedelta(seconds=time.monotonic() - started)


@dataclass
class Atm:
    app: FastAPI
    api: httpx.AsyncClient
    cards: list[dict[str, str]]
    journal: itertools.count

    async def send(self, path: str, atm_id: str = "A0001", journal_no: int | None = None,
                   **body: Any) -> tuple[int, dict[str, Any], int]:
        no = next(self.journal) if journal_no is None else journal_no
        r = await self.api.post(f"/atm/v1/{path}", json={"atm_id": atm_id, "journal_no": no, **body})
        return r.status_code, r.json(), no

    def card(self, i: int = 0, pin: str | None = None) -> dict[str, str]:
        c = self.cards[i]
        return {"number": c["card_number"], "pin": pin or c["pin"]}

    async def balance(self, i: int = 0) -> int:
        status, body, _ = await self.send("inquiry", card=self.card(i))
        assert status == 200, body
        return int(body["balance_minor"])

    async def books_ok(self) -> dict[str, Any]:
        bank = self.app.state.bank
        conn = await db.connect(bank.ledger.dsn)
        try:
            report = await verify_books(conn, TODAY)
        finally:
            await conn.close()
        assert report["ok"], report
        return report


@pytest.fixture
async def atm(ledger_dsn: str) -> AsyncIterator[Atm]:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    app = create_app(ledger, pin_key_bytes=KEY)
    app.state.bank.fees.now = app.state.atm.now = running_clock()
    await start_background(app)
    try:
        await load_demo_atms(app.state.atm)
        cards = await seed_card_holders(app.state.bank, 1, 4, 300_000)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served(app)), base_url="http://kanjo") as api:
            yield Atm(app, api, cards, itertools.count(1))
    finally:
        await stop_background(app)
        await ledger.stop()


async def test_a_withdrawal_is_held_then_posted_on_the_acknowledgement(atm: Atm) -> None:
    status, body, no = await atm.send("withdrawal", "C0001", card=atm.card(), amount_minor=20_000)
    assert status == 200 and body["result"] == "approved" and body["card_action"] == "return"
    assert body["dispense_minor"] == 20_000 and body["fee_minor"] == 110  # a convenience store's, weekday daytime
    fee = body["fee_minor"]
    assert await atm.balance() == 300_000  # held, not yet posted
    status, ack, _ = await atm.send("withdrawal/ack", "C0001", journal_no=no, dispensed_minor=20_000)
    assert (status, ack["code"]) == (200, "posted")
    assert await atm.balance() == 300_000 - 20_000 - fee
    # the acknowledgement sent again (its answer was lost): same answer, nothing moves
    status, again, _ = await atm.send("withdrawal/ack", "C0001", journal_no=no, dispensed_minor=20_000)
    assert again["code"] == "posted" and again["replayed"] is True
    assert await atm.balance() == 300_000 - 20_000 - fee
    await atm.books_ok()


async def test_a_retried_authorisation_is_answered_once(atm: Atm) -> None:
    status, first, no = await atm.send("withdrawal", card=atm.card(), amount_minor=10_000)
    status2, second, _ = await atm.send("withdrawal", journal_no=no, card=atm.card(), amount_minor=10_000)
    assert status == status2 == 200 and second["replayed"] is True
    assert {k: v for k, v in second.items() if k != "replayed"} == {k: v for k, v in first.items() if k != "replayed"}
    # the same journal number for another amount is refused and changes nothing
    status, other, _ = await atm.send("withdrawal", journal_no=no, card=atm.card(), amount_minor=30_000)
    assert other["code"] == "request_reused" and other["card_action"] == "return"
    await atm.send("withdrawal/ack", journal_no=no, dispensed_minor=10_000)
    assert await atm.balance() == 290_000  # one withdrawal only, free at an own ATM on a weekday daytime
    await atm.books_ok()


async def test_nothing_dispensed_voids_the_hold(atm: Atm) -> None:
    _, body, no = await atm.send("withdrawal", card=atm.card(1), amount_minor=50_000)
    assert body["result"] == "approved"
    _, ack, _ = await atm.send("withdrawal/ack", journal_no=no, dispensed_minor=0)
    assert ack["code"] == "voided"
    assert await atm.balance(1) == 300_000
    _, inquiry, _ = await atm.send("inquiry", card=atm.card(1))
    assert inquiry["available_minor"] == 300_000
    await atm.books_ok()


async def test_no_acknowledgement_voids_and_the_journal_settles_the_doubt(atm: Atm) -> None:
    atm.app.state.atm.ack_timeout_s = 1
    _, taken, taken_no = await atm.send("withdrawal", card=atm.card(2), amount_minor=30_000)
    _, kept, kept_no = await atm.send("withdrawal", card=atm.card(2), amount_minor=40_000)
    assert taken["result"] == kept["result"] == "approved"
    await asyncio.sleep(1.2)
    await sweep_atm_overdue(atm.app.state.atm)  # both deadlines passed (the background sweep may have been first)
    assert await atm.balance(2) == 300_000
    doubt = (await atm.api.get("/v1/atm-in-doubt")).json()
    assert doubt["summary"]["open"] == 2 and doubt["summary"]["open_minor"] == 70_000
    # the ATM's journal: the first was dispensed (the customer has the cash), the second never was
    r = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": [
        {"journal_no": taken_no, "operation": "withdrawal", "amount_minor": 30_000, "outcome": "dispensed"},
        {"journal_no": kept_no, "operation": "withdrawal", "amount_minor": 40_000, "outcome": "not_dispensed"}]})
    assert r.status_code == 200
    assert (r.json()["corrected"], r.json()["breaks"]) == (2, [])
    fee = int(taken["fee_minor"])
    assert await atm.balance(2) == 300_000 - 30_000 - fee  # posted exactly once, with its fee
    doubt = (await atm.api.get("/v1/atm-in-doubt")).json()
    assert doubt["summary"] == {"open": 0, "open_minor": 0, "posted": 1, "nothing_dispensed": 1, "credited": 0,
                                "cash_returned": 0, "breaks": 0}
    # the same journal uploaded again: everything matches, nothing moves
    again = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": [
        {"journal_no": taken_no, "operation": "withdrawal", "amount_minor": 30_000, "outcome": "dispensed"},
        {"journal_no": kept_no, "operation": "withdrawal", "amount_minor": 40_000, "outcome": "not_dispensed"}]})
    assert (again.json()["matched"], again.json()["corrected"], again.json()["breaks"]) == (2, 0, [])
    # a late acknowledgement of the first is answered, and posts nothing more
    _, late, _ = await atm.send("withdrawal/ack", journal_no=taken_no, dispensed_minor=30_000)
    assert late["result"] == "approved" and late["code"] == "posted"
    assert await atm.balance(2) == 300_000 - 30_000 - fee
    await atm.books_ok()


async def test_wrong_pins_lock_and_only_then_the_card_is_retained(atm: Atm) -> None:
    answers = [(await atm.send("inquiry", card=atm.card(3, pin="0000")))[1] for _ in range(3)]
    assert [a["code"] for a in answers] == ["wrong_pin", "wrong_pin", "pin_locked"]
    assert [a["card_action"] for a in answers] == ["return", "return", "retain"]
    _, locked, _ = await atm.send("inquiry", card=atm.card(3))  # even with the right PIN now
    assert (locked["code"], locked["card_action"]) == ("pin_locked", "retain")


async def test_insufficient_funds_and_daily_limit_are_answers(atm: Atm) -> None:
    _, body, _ = await atm.send("withdrawal", card=atm.card(), amount_minor=500_000)
    assert (body["result"], body["code"], body["card_action"]) == ("refused", "insufficient_funds", "return")
    r = await atm.api.post("/atm/v1/withdrawal", json={"atm_id": "A0001", "journal_no": 999, "card": atm.card(),
                                                        "amount_minor": 12_345})
    assert r.status_code == 422  # not notes: refused at the edge, nothing happened
    assert await atm.balance() == 300_000
    await atm.books_ok()


async def test_deposit_transfer_and_passbook(atm: Atm) -> None:
    _, accepted, no = await atm.send("deposit", card={"number": atm.cards[0]["card_number"]}, amount_minor=50_000)
    assert (accepted["result"], accepted["code"]) == ("approved", "accepted")
    _, dep, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=50_000)
    assert (dep["result"], dep["code"]) == ("approved", "credited")
    payee = atm.cards[1]
    _, tr, _ = await atm.send("transfer", card=atm.card(), amount_minor=12_000,
                              to={"branch_code": payee["branch_code"], "account_number": payee["account_number"]})
    assert tr["result"] == "approved", tr
    assert await atm.balance(1) == 312_000
    assert await atm.balance() == 300_000 + 50_000 - int(dep["fee_minor"]) - 12_000 - int(tr["fee_minor"])
    _, unknown, _ = await atm.send("transfer", card=atm.card(), amount_minor=1_000,
                                   to={"branch_code": "999", "account_number": "9999999"})
    assert unknown["code"] == "unknown_payee"
    _, book, _ = await atm.send("passbook", passbook={"branch_code": payee["branch_code"],
                                                      "account_number": payee["account_number"]})
    assert book["result"] == "approved" and book["lines"][-1]["deposited_minor"] == 12_000
    await atm.books_ok()


async def test_a_deposit_is_credited_only_when_the_atm_says_it_stored_the_notes(atm: Atm) -> None:
    card = {"number": atm.cards[1]["card_number"]}
    _, accepted, no = await atm.send("deposit", card=card, amount_minor=70_000)
    assert (accepted["result"], accepted["code"], accepted["card_action"]) == ("approved", "accepted", "return")
    assert await atm.balance(1) == 300_000  # the notes are in escrow: nothing credited yet
    status, done, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=70_000)
    assert (status, done["code"], done["balance_after_minor"]) == (200, "credited", 370_000)
    # the acknowledgement sent again: the same answer, credited once
    _, again, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=70_000)
    assert again["code"] == "credited" and again["replayed"] is True
    _, other, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=0)
    assert other["code"] == "request_reused"
    # the customer takes the notes back: nothing is credited
    _, accepted, no = await atm.send("deposit", card=card, amount_minor=20_000)
    _, back, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=0)
    assert (back["result"], back["code"]) == ("approved", "returned")
    # an amount other than what was counted is refused and changes nothing
    _, accepted, no = await atm.send("deposit", card=card, amount_minor=30_000)
    _, wrong, _ = await atm.send("deposit/ack", journal_no=no, stored_minor=10_000)
    assert (wrong["result"], wrong["code"]) == ("refused", "invalid_amount")
    assert await atm.balance(1) == 370_000
    # an acknowledgement of a deposit never accepted
    _, unknown, _ = await atm.send("deposit/ack", journal_no=9_999, stored_minor=10_000)
    assert unknown["code"] == "unknown_transaction"
    await atm.books_ok()


async def test_a_deposit_nobody_confirmed_is_settled_by_the_journal(atm: Atm) -> None:
    """The network-flap case: the answer to a deposit is lost, the ATM gives the notes back — nothing may be
    credited; the answer arrives, the notes are stored but every acknowledgement is lost — the journal credits it."""
    atm.app.state.atm.ack_timeout_s = 1
    card = {"number": atm.cards[2]["card_number"]}
    _, lost, returned_no = await atm.send("deposit", card=card, amount_minor=40_000)
    _, stored, stored_no = await atm.send("deposit", card=card, amount_minor=60_000)
    _, late, late_no = await atm.send("deposit", card=card, amount_minor=10_000)
    assert lost["code"] == stored["code"] == late["code"] == "accepted"
    await asyncio.sleep(1.2)
    await sweep_atm_overdue(atm.app.state.atm)  # (or the background sweep, a moment earlier)
    assert await atm.balance(2) == 300_000  # nothing credited on a guess
    doubt = (await atm.api.get("/v1/atm-in-doubt")).json()
    assert doubt["summary"]["open"] == 3 and {i["operation"] for i in doubt["items"]} == {"deposit"}
    # a late acknowledgement settles its own doubt
    _, ack, _ = await atm.send("deposit/ack", journal_no=late_no, stored_minor=10_000)
    assert (ack["code"], ack["late"]) == ("credited", True)
    entries = [{"journal_no": returned_no, "operation": "deposit", "amount_minor": 40_000, "outcome": "no_answer"},
               {"journal_no": stored_no, "operation": "deposit", "amount_minor": 60_000, "outcome": "deposited"},
               {"journal_no": late_no, "operation": "deposit", "amount_minor": 10_000, "outcome": "deposited"}]
    r = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": entries})
    assert (r.json()["corrected"], r.json()["matched"], r.json()["breaks"]) == (2, 1, [])
    assert await atm.balance(2) == 300_000 + 60_000 + 10_000
    summary = (await atm.api.get("/v1/atm-in-doubt")).json()["summary"]
    assert (summary["open"], summary["credited"], summary["cash_returned"], summary["breaks"]) == (0, 2, 1, 0)
    again = await atm.api.post("/atm/v1/journal", json={"atm_id": "A0001", "entries": entries})
    assert (again.json()["matched"], again.json()["corrected"], again.json()["breaks"]) == (3, 0, [])
    assert await atm.balance(2) == 370_000
    await atm.books_ok()


async def test_a_failing_product_is_refused_with_what_still_works_and_the_card_returned(atm: Atm) -> None:
    hub = atm.app.state.hub
    hub.force_open("time_deposits", "drill")
    status, body, no = await atm.send("time-deposit", card=atm.card(), amount_minor=100_000, term_months=12)
    assert status == 503 and body["result"] == "unavailable" and body["card_action"] == "return"
    assert "withdrawal" in body["still_working"] and "time_deposit" not in body["still_working"]
    # withdrawals keep working meanwhile
    _, w, w_no = await atm.send("withdrawal", card=atm.card(), amount_minor=10_000)
    assert w["result"] == "approved"
    await atm.send("withdrawal/ack", journal_no=w_no, dispensed_minor=10_000)
    hub.reset("time_deposits")
    # the same journal number retried after the outage is processed afresh (nothing was recorded for it)
    status, placed, _ = await atm.send("time-deposit", journal_no=no, card=atm.card(), amount_minor=100_000,
                                       term_months=12)
    assert status == 200 and placed["result"] == "approved", placed
    await atm.books_ok()


async def test_unknown_atm_and_registry(atm: Atm) -> None:
    _, body, _ = await atm.send("inquiry", "Z9999", card=atm.card())
    assert (body["code"], body["card_action"]) == ("unknown_atm", "return")
    r = await atm.api.get("/v1/atms/A0001")
    assert r.status_code == 200 and r.json()["kind"] == "own"
    assert (await atm.api.get("/v1/atms/NOPE1")).status_code == 404
    again = await atm.api.post("/v1/atms", json={"machines": [{"atm_id": a, "kind": k.value, "location": loc}
                                                              for a, k, loc in DEMO_ATMS]})
    assert again.status_code == 200 and len(again.json()["machines"]) == len(DEMO_ATMS)
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    r = await atm.api.post("/v1/atm-notices", json={"text": "本日 23:00 から 23:30 まで保守のため停止します。",
                                                     "atm_ids": ["A0001"], "ends_at": ends, "created_by": "ops-1"})
    assert r.status_code == 200
    shown = (await atm.api.get("/atm/v1/notices", params={"atm_id": "A0001"})).json()["notices"]
    assert [n["text"] for n in shown] == ["本日 23:00 から 23:30 まで保守のため停止します。"]
    assert (await atm.api.get("/atm/v1/notices", params={"atm_id": "A0002"})).json()["notices"] == []


async def test_bad_messages_get_the_same_clear_errors_on_the_hot_path(atm: Atm) -> None:
    """The protocol's messages are served in front of the web framework (wire.py): bad input is answered as every
    other route answers it, and changes nothing."""
    r = await atm.api.post("/atm/v1/withdrawal", content=b'{"atm_id": "A0001", "journal_no": ')
    assert (r.status_code, r.json()["error"]) == (400, "malformed_json")
    r = await atm.api.post("/atm/v1/withdrawal", json={"atm_id": "A0001", "journal_no": 77, "card": atm.card()})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_field")
    assert r.json()["fields"][0]["field"] == "amount_minor"
    r = await atm.api.post("/atm/v1/deposit", json=[1, 2, 3])
    assert (r.status_code, r.json()["error"]) == (422, "invalid_field")
    r = await atm.api.post("/atm/v1/withdrawal/ack", json={"atm_id": "ZZZZ9", "journal_no": 1, "dispensed_minor": 0})
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = await atm.api.post("/atm/v1/inquiry", content=b"{" + b" " * (9 * 1024 * 1024) + b"}")
    too_large = (r.status_code, r.json()["error"], r.json()["limit"])
    assert too_large == (413, "limit_reached", "http_request_body_bytes_max")
    # the same model's refusal through the framework's own route (not on the hot path) has the same shape
    r = await atm.api.post("/v1/atms", json={"machines": [{"atm_id": "A0001"}]})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_field")
    assert await atm.balance() == 300_000
    await atm.books_ok()
