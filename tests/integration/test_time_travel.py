"""400 business days of a small bank, day by day through its daily jobs (real ledger, real PostgreSQL).

From Wednesday 1 September 2027: two year ends (12/31–1/3 closed), the leap day 29 February 2028, Golden
Week, Monday holidays, a 10th that falls on a Sunday before a holiday. Every business day runs the start-of-day
and end-of-day jobs (some days twice, as after a restart). At the end:
- every time-deposit maturity happened exactly once, on the business day its contract says;
- ordinary-deposit interest was paid exactly once per half-year, on the first business day of February and August;
- overdraft interest was added once per half-year; card-loan interest was collected once a month, on the 10th or
  the next business day, and a customer who could not pay is in arrears;
- the books verify at every month end and at the end.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal

import httpx

from kanjo import daily, deposits, loans, time_deposits
from kanjo.accounting import ensure_chart
from kanjo.app import create_app
from kanjo.bank import Bank, build_bank
from kanjo.books import verify_books
from kanjo.business_calendar import BankCalendar
from kanjo.deposits.model import INTEREST_CODE as DEPOSIT_INTEREST_CODE
from kanjo.deposits.model import OVERDRAFT_INTEREST_CODE
from kanjo.ledger import Ledger
from kanjo.platform import db
from kanjo.time_deposits.model import INTEREST_CODE as TD_INTEREST_CODE
from kanjo.time_deposits.model import MATURITY_PAYOUT_CODE

START = dt.date(2027, 9, 1)
BUSINESS_DAYS = 400


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


async def account_with(bank: Bank, amount: int, subject: deposits.Subject = deposits.Subject.ORDINARY
                       ) -> tuple[int, int]:
    customer = rid()
    account = await deposits.open_ordinary_account(bank.deposits, rid(), customer, "001", subject)
    if amount:
        await deposits.deposit_cash(bank.deposits, rid(), account.id, amount)
    return customer, account.id


async def transfers_of(bank: Bank, account_id: int, code: int) -> list[dt.date]:
    found, after = [], 0
    while page := await bank.ledger.get_account_transfers(account_id, timestamp_min=after + 1, limit=1000):
        found += [t.business_date for t in page if t.code == code and t.amount > 0]
        after = page[-1].timestamp
    return found


def maturity_pay_days(calendar: BankCalendar, placed_on: dt.date, months: int, until: dt.date) -> list[dt.date]:
    """The business days a renewing deposit's generations pay on: each generation starts on the previous one's
    contractual maturity date (a month end stays clamped: 1/31 → 2/29 → 3/29), and pays on that date or the
    next business day."""
    days, matures_on = [], placed_on
    while True:
        matures_on = time_deposits.add_months(matures_on, months)
        pays_on = calendar.next_business_day(matures_on, include_today=True)
        if pays_on > until:
            return days
        days.append(pays_on)


async def test_four_hundred_business_days(ledger_dsn: str) -> None:
    calendar = BankCalendar()
    today = [START]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    bank = build_bank(ledger, calendar, business_date=lambda: today[0], customer_check=eligible)
    conn = await db.connect(ledger_dsn)
    try:
        # Savers: an ordinary account earning interest, and time deposits of each instruction.
        saver, savings = await account_with(bank, 30_000_000)
        roll_over = time_deposits.Instruction.RENEW_PRINCIPAL_AND_INTEREST
        monthly_roll = await time_deposits.place_time_deposit(
            bank.time_deposits, rid(), saver, savings, 1_000_000, 1, roll_over)
        quarterly = await time_deposits.place_time_deposit(
            bank.time_deposits, rid(), saver, savings, 2_000_000, 3, time_deposits.Instruction.RENEW_PRINCIPAL)
        yearly_payout = await time_deposits.place_time_deposit(
            bank.time_deposits, rid(), saver, savings, 5_000_000, 12, time_deposits.Instruction.PAY_OUT)
        later: dict[dt.date, tuple[int, int]] = {  # placed on a later day: (term months, principal)
            dt.date(2027, 11, 4): (6, 700_000),  # matures Thursday 4 May 2028 (GW): pays Monday 8 May
            dt.date(2028, 1, 31): (1, 300_000),  # matures 29 Feb 2028, the leap day
            dt.date(2028, 2, 29): (12, 400_000),  # placed on the leap day: matures 28 Feb 2029
        }
        placed_later: dict[dt.date, time_deposits.TimeDeposit] = {}

        # A 総合口座 overdrawn against its time deposit; a card loan paid on time; one that falls into arrears.
        general_owner, general = await account_with(bank, 1_100_000, deposits.Subject.SOGO)
        pledge = await time_deposits.place_time_deposit(
            bank.time_deposits, rid(), general_owner, general, 1_000_000, 12, time_deposits.Instruction.RENEW_PRINCIPAL)
        await deposits.withdraw_cash(bank.deposits, rid(), general, 400_000)  # ¥300,000 overdrawn
        assert (await deposits.overdraft_state(bank.deposits, general)).drawn_minor == 300_000
        payer, payer_account = await account_with(bank, 2_000_000)
        good_loan = await loans.open_contract(bank.loans, rid(), payer, payer_account, 1_000_000, Decimal("14.5"), 10)
        await loans.draw(bank.loans, rid(), good_loan.id, 500_000, loans.Channel.CASH)
        debtor, debtor_account = await account_with(bank, 8_000)
        bad_loan = await loans.open_contract(bank.loans, rid(), debtor, debtor_account, 1_000_000, Decimal("15"), 10)
        await loans.draw(bank.loans, rid(), bad_loan.id, 500_000, loans.Channel.CASH)

        day, runs = START, Counter[str]()
        for n in range(BUSINESS_DAYS):
            today[0] = day
            await daily.start_of_day(bank, day)
            if day in later:
                months, principal = later[day]
                placed_later[day] = await time_deposits.place_time_deposit(
                    bank.time_deposits, rid(), saver, savings, principal, months,
                    time_deposits.Instruction.RENEW_PRINCIPAL)
            await daily.end_of_day(bank, day)
            if n % 37 == 0 or deposits.is_interest_payout_day(calendar, day):  # a restart: the same day once more
                count = await conn.fetchval("SELECT count(*) FROM ledger.transfers")
                await daily.start_of_day(bank, day)
                await daily.end_of_day(bank, day)
                assert await conn.fetchval("SELECT count(*) FROM ledger.transfers") == count, day
                runs["repeated"] += 1
            following = calendar.next_business_day(day)
            if following.month != day.month:
                report = await verify_books(conn, day)
                assert report["ok"], (day, report)
                runs["verified"] += 1
            last, day = day, following
        assert last.year == 2029 and runs["repeated"] >= 12 and runs["verified"] >= 18

        # Time deposits: each maturity once, on its business day.
        assert await transfers_of(bank, monthly_roll.id, TD_INTEREST_CODE) == maturity_pay_days(
            calendar, START, 1, last)
        assert await transfers_of(bank, quarterly.id, TD_INTEREST_CODE) == maturity_pay_days(calendar, START, 3, last)
        assert await transfers_of(bank, yearly_payout.id, MATURITY_PAYOUT_CODE) == [dt.date(2028, 9, 1)]
        assert (await time_deposits.get_time_deposit(bank.time_deposits, yearly_payout.id)).status.value == "matured"
        assert (await transfers_of(bank, placed_later[dt.date(2027, 11, 4)].id, TD_INTEREST_CODE))[:1] == [
            dt.date(2028, 5, 8)]
        assert (await transfers_of(bank, placed_later[dt.date(2028, 1, 31)].id, TD_INTEREST_CODE))[:2] == [
            dt.date(2028, 2, 29), dt.date(2028, 3, 29)]
        assert await transfers_of(bank, placed_later[dt.date(2028, 2, 29)].id, TD_INTEREST_CODE) == [
            dt.date(2029, 2, 28)]
        assert (await time_deposits.get_time_deposit(bank.time_deposits, pledge.id)).generation == 2

        # Ordinary-deposit interest: once per half-year, first business day of February and August.
        payouts = [dt.date(2028, 2, 1), dt.date(2028, 8, 1), dt.date(2029, 2, 1)]
        for account in (savings, payer_account):
            assert await transfers_of(bank, account, DEPOSIT_INTEREST_CODE) == payouts, account

        # Overdraft interest: added once per half-year, on the first business day from 1 February / 1 August.
        overdraft_id = (await deposits.overdraft_state(bank.deposits, general)).overdraft_account_id
        assert await transfers_of(bank, overdraft_id, OVERDRAFT_INTEREST_CODE) == payouts

        # Card loans: interest collected once a month on the 10th or the next business day.
        expected_due = []
        month = dt.date(2027, 10, 10)  # the first collection day after the contract's first month
        while calendar.next_business_day(month, include_today=True) <= last:
            expected_due.append((month, calendar.next_business_day(month, include_today=True)))
            month = time_deposits.add_months(month, 1)
        good = await loans.collections_of(bank.loans, good_loan.id)
        assert [(c.due_on, c.collect_on) for c in good if c.kind == "monthly"] == expected_due
        assert all(c.outstanding_minor == 0 for c in good)
        assert dt.date(2027, 10, 12) in [c.collect_on for c in good]  # Sunday 10th, Monday holiday: Tuesday
        bad = await loans.get_contract(bank.loans, bad_loan.id)
        assert bad.contract.status.value == "delinquent" and bad.arrears_minor > 0 and bad.days_past_due > 0

        # The same over HTTP: a customer's interest page lists each payout with its taxes.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ledger)), base_url="http://t") as api:
            page = (await api.get(f"/v1/deposits/accounts/{uuid.UUID(int=savings)}/interest")).json()
        assert [p["paid_on"] for p in page["payments"]] == [str(d) for d in payouts]
        assert all(p["net"] == p["gross"] - p["national_tax"] - p["local_tax"] > 0 for p in page["payments"])
        assert page["balance_days"] > 0 and Decimal(page["accrued"]) > 0

        report = await verify_books(conn, last)
        assert report["ok"], report
    finally:
        await conn.close()
        await ledger.stop()
