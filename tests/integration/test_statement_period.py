"""入出金明細 by period against a real ledger and PostgreSQL: the lines of the business dates asked for, paginated,
with the balance after each; refusals; HTTP; and an account with 100,000 movements answered without its history."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import CASH_VAULT, JPY, ensure_chart, gl_account_id
from kanjo.deposits import (
    Deposits,
    Refused,
    deposit_cash,
    open_ordinary_account,
    statement,
    statement_page,
    transfer,
    withdraw_cash,
)
from kanjo.deposits.api import router
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import CreateTransferResult, Ledger, LedgerBusy, LedgerUnavailable, Transfer
from kanjo.platform.http import FastJSONResponse, install_error_handlers

CASH_IN, CASH_OUT = 11, 12  # the deposits context's transfer codes 現金入金 and 現金出金
APRIL = (dt.date(2026, 4, 1), dt.date(2026, 4, 30))


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    d: Deposits
    ledger: Ledger

    def on(self, day: dt.date) -> None:
        self.today[0] = day


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [dt.date(2026, 3, 31)]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible), ledger)
    finally:
        await ledger.stop()


async def _april_account(bank: Bank) -> int:
    """Opened 31 March 2026: ¥100,000 in on 31 Mar; 1 Apr ¥30,000 out; 15 Apr ¥50,000 transferred in;
    30 Apr ¥20,000 out; 1 May ¥5,000 in."""
    account = await open_ordinary_account(bank.d, rid(), rid(), "001")
    payer = await open_ordinary_account(bank.d, rid(), rid(), "001")
    await deposit_cash(bank.d, rid(), account.id, 100_000)
    await deposit_cash(bank.d, rid(), payer.id, 50_000)
    bank.on(dt.date(2026, 4, 1))
    await withdraw_cash(bank.d, rid(), account.id, 30_000)
    bank.on(dt.date(2026, 4, 15))
    await transfer(bank.d, rid(), payer.id, account.id, 50_000)
    bank.on(dt.date(2026, 4, 30))
    await withdraw_cash(bank.d, rid(), account.id, 20_000)
    bank.on(dt.date(2026, 5, 1))
    await deposit_cash(bank.d, rid(), account.id, 5_000)
    return account.id


def _rows(lines: list) -> list[tuple]:
    return [(x.business_date.isoformat(), x.description, x.deposit_minor, x.withdrawal_minor, x.balance_minor)
            for x in lines]


async def test_april_2026_lists_aprils_movements_with_the_balance_after_each(bank: Bank) -> None:
    account = await _april_account(bank)
    april = [("2026-04-01", "現金出金", 0, 30_000, 70_000), ("2026-04-15", "振替", 50_000, 0, 120_000),
             ("2026-04-30", "現金出金", 0, 20_000, 100_000)]
    assert _rows(await statement(bank.d, account, from_date=APRIL[0], to_date=APRIL[1])) == april
    # Two lines a page: the cursor leads to the rest, then to the end.
    first = await statement_page(bank.d, account, from_date=APRIL[0], to_date=APRIL[1], limit=2)
    assert _rows(first.lines) == april[:2] and first.next_after == first.lines[-1].timestamp
    second = await statement_page(bank.d, account, from_date=APRIL[0], to_date=APRIL[1], limit=2,
                                  after_timestamp=first.next_after)
    assert _rows(second.lines) == april[2:] and second.next_after is None
    # One day; from a day to today (1 May); from the opening (31 Mar) to a day; a quiet fortnight.
    one_day = await statement(bank.d, account, from_date=dt.date(2026, 4, 15), to_date=dt.date(2026, 4, 15))
    assert _rows(one_day) == april[1:2]
    since = await statement(bank.d, account, from_date=dt.date(2026, 4, 15))
    assert _rows(since) == [*april[1:], ("2026-05-01", "現金入金", 5_000, 0, 105_000)]
    until = await statement(bank.d, account, to_date=dt.date(2026, 3, 31))
    assert _rows(until) == [("2026-03-31", "現金入金", 100_000, 0, 100_000)]
    quiet = await statement_page(bank.d, account, from_date=dt.date(2026, 4, 2), to_date=dt.date(2026, 4, 14))
    assert quiet.lines == [] and quiet.next_after is None
    future = await statement_page(bank.d, account, from_date=dt.date(2026, 6, 1))
    assert future.lines == [] and future.next_after is None


async def test_a_posting_dated_back_shows_in_its_own_period_in_booking_order(bank: Bank) -> None:
    """A day-end job that ran late (on 7 May) credits ¥1,000 dated 30 April: April's statement shows it after
    April's other lines, with the balance after it in booking order (¥105,000 + ¥1,000); May's does not."""
    account = await _april_account(bank)
    bank.on(dt.date(2026, 5, 7))
    [outcome] = await bank.ledger.create_transfers([Transfer(
        id=rid(), debit_account_id=gl_account_id(CASH_VAULT), credit_account_id=account, amount=1_000, ledger=JPY,
        code=CASH_IN, business_date=dt.date(2026, 4, 30))])
    assert outcome.result is CreateTransferResult.OK
    await deposit_cash(bank.d, rid(), account, 2_000)  # booked and dated 7 May
    april = await statement(bank.d, account, from_date=APRIL[0], to_date=APRIL[1])
    assert _rows(april)[2:] == [("2026-04-30", "現金出金", 0, 20_000, 100_000),
                                ("2026-04-30", "現金入金", 1_000, 0, 106_000)]
    may = await statement(bank.d, account, from_date=dt.date(2026, 5, 1), to_date=dt.date(2026, 5, 31))
    assert _rows(may) == [("2026-05-01", "現金入金", 5_000, 0, 105_000), ("2026-05-07", "現金入金", 2_000, 0, 108_000)]


async def test_a_reversed_or_too_long_period_is_refused(bank: Bank) -> None:
    account = await _april_account(bank)
    with pytest.raises(Refused) as reversed_period:
        await statement(bank.d, account, from_date=APRIL[1], to_date=APRIL[0])
    assert reversed_period.value.code == "invalid_period"
    # 13 calendar months (April 2025 to April 2026) is the most one statement covers.
    assert len(await statement(bank.d, account, from_date=dt.date(2025, 4, 1), to_date=APRIL[1])) == 4
    with pytest.raises(LimitReached) as too_long:
        await statement(bank.d, account, from_date=dt.date(2025, 4, 1), to_date=dt.date(2026, 5, 1))
    assert (too_long.value.limit.name, too_long.value.requested) == ("deposit_statement_period_months_max", 14)
    bank.on(dt.date(2027, 6, 1))  # without `from`, the period starts at the opening (31 Mar 2026): 15 months
    with pytest.raises(LimitReached) as from_opening:
        await statement(bank.d, account, to_date=dt.date(2027, 5, 31))
    assert from_opening.value.limit.name == "deposit_statement_period_months_max"
    with pytest.raises(LimitReached) as too_many:
        await statement(bank.d, account, from_date=APRIL[0], to_date=APRIL[1], limit=501)
    assert too_many.value.limit.name == "deposit_statement_lines_max"


async def test_statement_by_period_over_http(bank: Bank) -> None:
    account = str(uuid.UUID(int=await _april_account(bank)))
    app = FastAPI(default_response_class=FastJSONResponse)
    app.state.deposits = bank.d
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(router)
    url = f"/v1/deposits/accounts/{account}/statement"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        r = await api.get(url, params={"from": "2026-04-01", "to": "2026-04-30"})
        assert r.status_code == 200, r.text
        assert [(x["business_date"], x["deposit"], x["withdrawal"], x["balance"]) for x in r.json()["lines"]] == [
            ("2026-04-01", 0, 30_000, 70_000), ("2026-04-15", 50_000, 0, 120_000), ("2026-04-30", 0, 20_000, 100_000)]
        assert r.json()["next_after"] is None
        page = (await api.get(url, params={"from": "2026-04-01", "to": "2026-04-30", "limit": 2})).json()
        assert len(page["lines"]) == 2 and page["next_after"] == page["lines"][-1]["timestamp"]
        rest = (await api.get(url, params={"from": "2026-04-01", "to": "2026-04-30", "limit": 2,
                                           "after": page["next_after"]})).json()
        assert [x["balance"] for x in rest["lines"]] == [100_000] and rest["next_after"] is None
        assert len((await api.get(url)).json()["lines"]) == 5  # without a period: the whole history, paged
        r = await api.get(url, params={"from": "2026-04-30", "to": "2026-04-01"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.to", r.text
        for bad in ("2026-04-31", "2026-13-01", "April", "2026/04/01"):
            r = await api.get(url, params={"from": bad, "to": "2026-04-30"})
            assert r.status_code == 422 and r.json()["fields"][0]["field"] == "query.from", (bad, r.text)
        r = await api.get(url, params={"from": "2025-01-01", "to": "2026-04-30"})
        assert r.status_code == 413 and r.json()["limit"] == "deposit_statement_period_months_max", r.text
        assert (await api.get(f"/v1/deposits/accounts/{uuid.uuid4()}/statement",
                              params={"from": "2026-04-01"})).status_code == 404


MOVEMENTS = 100_000
PER_DAY = 100  # 1,000 days of history: 1 Jan 2024 to 26 Sep 2026
HISTORY_START = dt.date(2024, 1, 1)


async def test_one_month_of_an_account_with_100000_movements_reads_only_around_that_month(
        bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    """¥1,000 in and ¥1,000 out alternately, 100 a day: April 2026 is 3,000 lines, every deposit leaving ¥1,000
    and every withdrawal ¥0; the statement pages through them reading the month and its slack days only."""
    account = (await open_ordinary_account(bank.d, rid(), rid(), "001")).id
    batch: list[Transfer] = []
    vault = gl_account_id(CASH_VAULT)
    for i in range(MOVEMENTS):
        day = HISTORY_START + dt.timedelta(days=i // PER_DAY)
        deposit = i % 2 == 0
        batch.append(Transfer(id=rid(), debit_account_id=vault if deposit else account,
                              credit_account_id=account if deposit else vault, amount=1_000, ledger=JPY,
                              code=CASH_IN if deposit else CASH_OUT, business_date=day))
        if len(batch) == 8_190 or i == MOVEMENTS - 1:
            outcomes = await bank.ledger.create_transfers(batch)
            assert all(o.result is CreateTransferResult.OK for o in outcomes)
            batch = []
    bank.on(dt.date(2026, 9, 26))
    rows_read: list[int] = []
    reads = bank.ledger.get_account_transfers

    async def counted(*args: object, **kwargs: object) -> list[Transfer]:
        found = await reads(*args, **kwargs)  # type: ignore[arg-type]
        rows_read.append(len(found))
        return found

    monkeypatch.setattr(bank.ledger, "get_account_transfers", counted)
    started = time.perf_counter()
    lines, after, pages = [], 0, 0
    while True:
        page = await statement_page(bank.d, account, from_date=APRIL[0], to_date=APRIL[1], limit=500,
                                    after_timestamp=after)
        lines.extend(page.lines)
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert len(lines) == 30 * PER_DAY and pages == 7  # 6 full pages, then the empty end
    assert {x.business_date for x in lines} == {APRIL[0] + dt.timedelta(days=n) for n in range(30)}
    assert all(x.balance_minor == (1_000 if x.deposit_minor else 0) for x in lines)
    assert [x.timestamp for x in lines] == sorted(x.timestamp for x in lines)
    # The month (3,000), the 10 slack days on each side of it (2 × 1,000), what the last page of each side reads
    # beyond (under one page of 500) and the bisection's single-row probes: about 5 % of the 100,000.
    assert sum(rows_read) < 3_000 + 2_000 + 2 * 500, (sum(rows_read), len(rows_read))
    assert len(rows_read) < 7 * 4 + 64, rows_read  # a few reads a page and one bisection of at most 64 probes
    print(f"\nApril 2026 of {MOVEMENTS:,} movements: {len(lines):,} lines in {pages} pages, {sum(rows_read):,} ledger"
          f" rows read in {len(rows_read)} requests, {elapsed_ms:.0f} ms")
