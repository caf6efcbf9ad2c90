"""Ordinary-deposit interest against a real ledger and PostgreSQL: daily accrual, half-yearly payout, closing.

Worked examples at 0.200 % p.a. (actual/365), interest and each tax rounded down to the yen:
- ¥1,000,000 from 2026-02-02 to the payout on Monday 2026-08-03 (182 days): 積数 182,000,000,
  interest 997.26 → ¥997; 国税 15.315 % 152.69 → ¥152; 地方税 5 % 49.85 → ¥49; credited ¥796.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from kanjo.accounting import DEPOSIT_INTEREST_EXPENSE, WITHHOLDING_TAX_PAYABLE, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Action,
    Deposits,
    NotFound,
    PayoutKind,
    Refused,
    TaxClass,
    accrue_interest,
    accrued_interest,
    change_status,
    close_account,
    deposit_cash,
    interest_payments,
    interest_store,
    open_ordinary_account,
    pay_interest,
    set_interest_tax_class,
    settle_interest_on_close,
    statement,
    withdraw_cash,
)
from kanjo.deposits import interest as interest_module
from kanjo.ledger import Ledger, verify_ledger
from kanjo.platform import db
from kanjo.time_deposits import Instruction, TimeDeposits, get_time_deposit, mature_due, place_time_deposit
from kanjo.time_deposits import Status as TimeDepositStatus
from kanjo.time_deposits import service as td_service
from kanjo.time_deposits import store as td_store

START = dt.date(2026, 2, 2)  # Monday: the first business day of February 2026
LAST_BEFORE_PAYOUT = dt.date(2026, 7, 31)  # Friday: its balance counts for Saturday 1 and Sunday 2 August
PAYOUT = dt.date(2026, 8, 3)  # Monday: the first business day of August 2026
CALENDAR = BankCalendar()


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    d: Deposits

    def on(self, day: dt.date) -> None:
        self.today[0] = day

    async def balance(self, account_id: int) -> int:
        [a] = await self.d.ledger.lookup_accounts([account_id])
        return a.balance_credit_minor()

    async def gl(self) -> tuple[int, int]:
        """(interest expense debited, withholding tax payable credited)."""
        expense = await self.balance(gl_account_id(DEPOSIT_INTEREST_EXPENSE))
        tax = await self.balance(gl_account_id(WITHHOLDING_TAX_PAYABLE))
        return -expense, tax

    async def account_with(self, amount_minor: int) -> int:
        account = await open_ordinary_account(self.d, rid(), rid(), "001")
        if amount_minor:
            await deposit_cash(self.d, rid(), account.id, amount_minor)
        return account.id

    async def accrue_every_business_day(self, start: dt.date, end: dt.date) -> None:
        for day in CALENDAR.business_days(start, end):
            self.on(day)
            await accrue_interest(self.d, CALENDAR)


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [START]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible))
    finally:
        await ledger.stop()


async def _verified(bank: Bank) -> None:
    conn = await db.connect(bank.d.ledger.dsn)
    try:
        report = await verify_ledger(conn)
    finally:
        await conn.close()
    assert report["ok"], report


async def test_half_yearly_interest_worked_example_every_yen(bank: Bank) -> None:
    a = await bank.account_with(1_000_000)
    b = await bank.account_with(500_000)
    small = await bank.account_with(1_000)  # 積数 182,000: ¥0.997 → nothing paid
    corporate = await bank.account_with(1_000_000)
    await set_interest_tax_class(bank.d, corporate, TaxClass.CORPORATE)
    frozen = await bank.account_with(1_000_000)
    for day in CALENDAR.business_days(START, LAST_BEFORE_PAYOUT):
        bank.on(day)
        if day == dt.date(2026, 4, 1):
            await change_status(bank.d, rid(), frozen, Action.FREEZE, "court order")  # still earns, still credited
        if day == dt.date(2026, 5, 1):  # Friday before Golden Week: the next business day is Thursday 7 May
            await deposit_cash(bank.d, rid(), b, 300_000)
        run = await accrue_interest(bank.d, CALENDAR)
        assert (run.accounts, run.unobserved_business_days, run.replayed) == (5, 0, False)
        if day == START:
            assert (run.new, run.changed) == (4, 1)  # the corporate account's row came with its tax class
        if day == dt.date(2026, 5, 1):
            assert (run.changed, run.accrued_through) == (1, dt.date(2026, 5, 6))
            # ¥500,000 × 88 days (2 Feb – 30 Apr) + ¥800,000 × 6 days (1 – 6 May)
            so_far = await accrued_interest(bank.d, b, dt.date(2026, 5, 6))
            assert (so_far.period_start, so_far.balance_days) == (START, 48_800_000)
    again = await accrue_interest(bank.d, CALENDAR)  # the same day twice: nothing changes
    assert again.replayed and (again.changed, again.new) == (0, 0)

    bank.on(PAYOUT)
    payout = await pay_interest(bank.d, CALENDAR)
    # gross: a ¥997, b ¥653 (積数 119,200,000), corporate ¥997, frozen ¥997 = ¥3,644
    # national: 152 + 100 + 152 + 152 = ¥556; local: 49 + 32 + 0 (corporate) + 49 = ¥130
    assert (payout.credited, payout.failed, payout.pages) == (4, 0, 1)
    assert (payout.gross_minor, payout.national_tax_minor, payout.local_tax_minor, payout.net_minor) == (
        3_644, 556, 130, 2_958)
    assert [await bank.balance(x) for x in (a, b, small, corporate, frozen)] == [
        1_000_796, 800_521, 1_000, 1_000_845, 1_000_796]
    assert await bank.gl() == (3_644, 686)
    [paid] = await interest_payments(bank.d, a)
    assert (paid.kind, paid.period_start, paid.period_end, paid.balance_days) == (
        PayoutKind.HALF_YEARLY, START, dt.date(2026, 8, 2), 182_000_000)
    assert (paid.gross_minor, paid.tax.national_minor, paid.tax.local_minor, paid.net_minor) == (997, 152, 49, 796)
    last = (await statement(bank.d, a))[-1]
    assert (last.description, last.deposit_minor, last.business_date, last.balance_minor) == (
        "決算利息", 796, PAYOUT, 1_000_796)
    assert await interest_payments(bank.d, small) == []

    replay = await pay_interest(bank.d, CALENDAR)
    assert replay.replayed and replay.net_minor == 2_958 and replay.credited == 4
    assert await bank.balance(a) == 1_000_796 and await bank.gl() == (3_644, 686)
    # The new period starts on the payout day, with the credited interest in the balance.
    await accrue_interest(bank.d, CALENDAR)
    now = await accrued_interest(bank.d, a, PAYOUT)
    assert (now.period_start, now.balance_days) == (PAYOUT, 1_000_796)
    # The payout rewrote no accrual row: an account it did not credit restarts from its date all the same.
    bank.on(dt.date(2027, 1, 29))  # Friday before the next payout day, Monday 1 February 2027
    await accrue_interest(bank.d, CALENDAR)
    untouched = await accrued_interest(bank.d, small, dt.date(2027, 1, 31))
    assert (untouched.period_start, untouched.balance_days) == (PAYOUT, 1_000 * 182)
    bank.on(dt.date(2027, 2, 1))
    second = await pay_interest(bank.d, CALENDAR)
    # 182 days each: a 1,000,796 → ¥998 (net ¥797), b 800,521 → ¥798 (¥637), corporate 1,000,845 → ¥998 (¥846),
    # frozen as a; national 152 + 122 + 152 + 152, local 49 + 39 + 0 + 49
    assert (second.credited, second.gross_minor, second.national_tax_minor, second.local_tax_minor,
            second.net_minor) == (4, 3_792, 578, 137, 3_077)
    assert [await bank.balance(x) for x in (a, b, small, corporate, frozen)] == [
        1_001_593, 801_158, 1_000, 1_001_691, 1_001_593]
    assert await bank.gl() == (3_644 + 3_792, 686 + 715)
    await _verified(bank)


async def test_closing_pays_interest_to_the_day_before_once_and_the_payout_skips_the_account(bank: Bank) -> None:
    closing = await bank.account_with(2_000_000)
    staying = await bank.account_with(1_000_000)
    await bank.accrue_every_business_day(START, dt.date(2026, 3, 13))
    bank.on(dt.date(2026, 3, 16))  # Monday: 42 days from 2 Feb to 15 Mar; 積数 84,000,000 → ¥460.27
    paid = await settle_interest_on_close(bank.d, CALENDAR, closing)
    assert (paid.kind, paid.period_start, paid.period_end, paid.balance_days) == (
        PayoutKind.CLOSING, START, dt.date(2026, 3, 15), 84_000_000)
    assert (paid.gross_minor, paid.tax.national_minor, paid.tax.local_minor, paid.net_minor) == (460, 70, 23, 367)
    assert await settle_interest_on_close(bank.d, CALENDAR, closing) == paid  # a retry moves nothing
    assert await bank.balance(closing) == 2_000_367
    await withdraw_cash(bank.d, rid(), closing, 2_000_367)
    await close_account(bank.d, rid(), closing, "customer request")
    with pytest.raises(Refused) as refused:
        await settle_interest_on_close(bank.d, CALENDAR, closing)
    assert refused.value.code == "account_closed"
    await accrue_interest(bank.d, CALENDAR)
    bank.on(LAST_BEFORE_PAYOUT)
    gap = await accrue_interest(bank.d, CALENDAR)  # nobody ran the days between: their balance is assumed
    assert gap.unobserved_business_days == len(CALENDAR.business_days(dt.date(2026, 3, 17), dt.date(2026, 7, 30)))
    bank.on(PAYOUT)
    payout = await pay_interest(bank.d, CALENDAR)
    assert (payout.credited, payout.failed, payout.net_minor) == (1, 0, 796)
    assert (await bank.balance(closing), await bank.balance(staying)) == (0, 1_000_796)
    assert await bank.gl() == (460 + 997, 93 + 201)
    assert [p.kind for p in await interest_payments(bank.d, closing)] == [PayoutKind.CLOSING]
    await _verified(bank)


async def test_nothing_due_at_closing_moves_nothing(bank: Bank) -> None:
    fresh = await bank.account_with(5_000)
    paid = await settle_interest_on_close(bank.d, CALENDAR, fresh)  # never accrued: nothing owed
    assert (paid.gross_minor, paid.net_minor) == (0, 0)
    await accrue_interest(bank.d, CALENDAR)
    bank.on(dt.date(2026, 2, 3))  # one day of ¥5,000: ¥0.027 → ¥0, the fraction dropped
    paid = await settle_interest_on_close(bank.d, CALENDAR, fresh)
    assert (paid.balance_days, paid.gross_minor) == (5_000, 0)
    assert await bank.balance(fresh) == 5_000 and await bank.gl() == (0, 0)
    with pytest.raises(NotFound):
        await settle_interest_on_close(bank.d, CALENDAR, rid())


async def test_payout_crash_midway_is_finished_by_a_rerun_without_paying_twice(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interest_module, "INTEREST_CREDITS_PER_BATCH_MAX", 2)  # 5 accounts: 3 pages
    accounts = [await bank.account_with(1_000_000) for _ in range(5)]
    await accrue_interest(bank.d, CALENDAR)
    bank.on(LAST_BEFORE_PAYOUT)
    await accrue_interest(bank.d, CALENDAR)
    bank.on(PAYOUT)
    real_copy = interest_store.copy_payments
    calls = [0]

    async def crash_on_second_page(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 2:  # this page's credits are in the ledger, but not yet recorded here
            raise ConnectionResetError("the process died")
        await real_copy(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(interest_store, "copy_payments", crash_on_second_page)
    monkeypatch.setattr(interest_module, "INTEREST_BATCHES_IN_FLIGHT_MAX", 1)
    with pytest.raises(ConnectionResetError):
        await pay_interest(bank.d, CALENDAR)
    monkeypatch.setattr(interest_store, "copy_payments", real_copy)
    assert await bank.gl() == (4 * 796, 0)  # two pages credited, the tax not yet posted
    for unfinished in (accrue_interest(bank.d, CALENDAR), settle_interest_on_close(bank.d, CALENDAR, accounts[0])):
        with pytest.raises(Refused) as refused:
            await unfinished
        assert refused.value.code == "interest_payout_in_progress"
    payout = await pay_interest(bank.d, CALENDAR)
    assert (payout.credited, payout.failed, payout.pages) == (5, 0, 2)  # the rerun read what was left
    assert [await bank.balance(a) for a in accounts] == [1_000_796] * 5
    assert await bank.gl() == (5 * 997, 5 * (152 + 49))
    assert (payout.gross_minor, payout.net_minor) == (5 * 997, 5 * 796)
    assert (await pay_interest(bank.d, CALENDAR)).replayed
    assert await bank.gl() == (5 * 997, 5 * 201)
    await _verified(bank)


async def test_a_rate_change_splits_the_period(bank: Bank) -> None:
    async with bank.d.pool.acquire() as conn:
        await conn.execute("INSERT INTO deposits.interest_rates (effective_from, rate_percent)"
                           " VALUES ('2026-07-01', 0.300)")
    account = await bank.account_with(1_000_000)
    await accrue_interest(bank.d, CALENDAR)
    bank.on(LAST_BEFORE_PAYOUT)
    await accrue_interest(bank.d, CALENDAR)
    bank.on(PAYOUT)
    # ¥1,000,000 × (149 days × 0.200 % + 33 days × 0.300 %) / 365 = 1,087.67 → ¥1,087; tax ¥166 + ¥54
    payout = await pay_interest(bank.d, CALENDAR)
    assert (payout.gross_minor, payout.national_tax_minor, payout.local_tax_minor, payout.net_minor) == (
        1_087, 166, 54, 867)
    assert await bank.balance(account) == 1_000_867


async def test_refusals_name_the_reason(bank: Bank) -> None:
    account = await bank.account_with(1_000_000)
    bank.on(dt.date(2026, 2, 7))  # a Saturday
    with pytest.raises(Refused) as refused:
        await accrue_interest(bank.d, CALENDAR)
    assert refused.value.code == "not_a_business_day"
    bank.on(dt.date(2026, 2, 4))
    await accrue_interest(bank.d, CALENDAR)
    with pytest.raises(Refused) as refused:
        await accrue_interest(bank.d, CALENDAR, dt.date(2026, 2, 3))
    assert refused.value.code == "accrual_out_of_order"
    with pytest.raises(Refused) as refused:
        await pay_interest(bank.d, CALENDAR)
    assert refused.value.code == "not_an_interest_payout_day" and "2026-08-03" in str(refused.value)
    bank.on(PAYOUT)  # the accrual of Friday 31 July has not run
    with pytest.raises(Refused) as refused:
        await pay_interest(bank.d, CALENDAR)
    assert refused.value.code == "interest_accrual_behind" and "2026-07-31" in str(refused.value)
    with pytest.raises(Refused) as refused:
        await settle_interest_on_close(bank.d, CALENDAR, account)
    assert refused.value.code == "interest_accrual_behind"
    bank.on(LAST_BEFORE_PAYOUT)
    await accrue_interest(bank.d, CALENDAR)
    bank.on(dt.date(2026, 8, 4))  # the payout of 3 August was skipped and the next day closed
    await accrue_interest(bank.d, CALENDAR)
    with pytest.raises(Refused) as refused:
        await pay_interest(bank.d, CALENDAR, PAYOUT)
    assert refused.value.code == "interest_payout_too_late"
    assert await bank.balance(account) == 1_000_000 and await bank.gl() == (0, 0)


async def test_time_deposit_maturity_in_concurrent_batches_survives_a_crash(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Maturity at scale runs several batches at once (kanjo.time_deposits.mature_due, batched for this work):
    a batch that dies after the ledger took its chains is settled by the next run, exactly once."""
    td = TimeDeposits(pool=bank.d.pool, ledger=bank.d.ledger, business_date=lambda: bank.today[0],
                      calendar=CALENDAR)
    customer = rid()
    funding = (await open_ordinary_account(bank.d, rid(), customer, "001")).id
    await deposit_cash(bank.d, rid(), funding, 7_000_000)
    ids = [(await place_time_deposit(td, rid(), customer, funding, 1_000_000, 1, Instruction.PAY_OUT)).id
           for _ in range(7)]
    monkeypatch.setattr(td_service, "MATURITIES_PER_BATCH_MAX", 2)  # 4 batches, 3 in flight
    real_record = td_store.record_settlements
    calls = [0]

    async def crash_on_second_batch(*args: object) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise ConnectionResetError("the process died")
        await real_record(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(td_store, "record_settlements", crash_on_second_batch)
    bank.on(dt.date(2026, 3, 2))  # 2 Feb + 1 month; 28 days at 0.100 %: 76.7 → ¥76; taxes ¥11 and ¥3
    with pytest.raises(ConnectionResetError):
        await mature_due(td)
    monkeypatch.setattr(td_store, "record_settlements", real_record)
    again = await mature_due(td)
    assert again.failed == [] and calls[0] >= 2
    assert await bank.balance(funding) == 7 * 1_000_062
    assert [await bank.balance(i) for i in ids] == [0] * 7
    assert [(await get_time_deposit(td, i)).status for i in ids] == [TimeDepositStatus.MATURED] * 7
    assert await bank.gl() == (7 * 76, 7 * 14)
    assert (await mature_due(td)).paid_out == 0
    await _verified(bank)
