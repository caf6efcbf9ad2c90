"""The demo bank `make run` loads: every product present, the books verified, and loading twice changes nothing."""

from __future__ import annotations

import datetime as dt

from kanjo.bank import build_bank
from kanjo.books import verify_books
from kanjo.business_calendar import BankCalendar
from kanjo.demo import load_demo
from kanjo.ledger import Ledger
from kanjo.platform import db

TODAY = dt.date(2026, 4, 10)


async def test_the_demo_bank_is_alive_verified_and_loads_once(ledger_dsn: str) -> None:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    try:
        bank = build_bank(ledger, BankCalendar())
        first = await load_demo(bank, customer_count=120)
        assert first == {"customers": 120, "accounts": 120, "transfers": 24, "time_deposits": 30,
                         "general_accounts_overdrawn": 15, "card_loans": 20, "fees": 12, "card_holders": 20,
                         "card_holders_with_card_loan": 4}
        conn = await db.connect(ledger_dsn)
        try:
            before = await conn.fetchval("SELECT count(*) FROM ledger.transfers")
            assert await load_demo(bank, customer_count=120) == first
            assert await conn.fetchval("SELECT count(*) FROM ledger.transfers") == before  # nothing moved twice
            report = await verify_books(conn, TODAY)
            assert await conn.fetchval("SELECT count(*) FROM cards.cards") == 20  # card holders, ready for the ATMs
        finally:
            await conn.close()
        assert report["ok"], report
    finally:
        await ledger.stop()
