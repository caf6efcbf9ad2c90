"""総合口座 (general accounts) against a real ledger and PostgreSQL: what a teller, a customer and an auditor check.

The automatic overdraft (自動貸越) draws the shortfall of money out, is repaid first by money in, stays
within 90 % of the pledged time deposits (at most ¥2,000,000) even under concurrent withdrawals, and
accrues interest daily that is added to it half-yearly. Worked examples give the expected yen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import CASH_VAULT, LOAN_INTEREST_INCOME, OVERDRAFT_RECEIVABLE, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Deposits,
    Refused,
    Status,
    Subject,
    accrue_overdraft_interest,
    balance,
    charge_overdraft_interest,
    close_account,
    convert_to_general_account,
    deposit_cash,
    open_ordinary_account,
    overdraft_state,
    repay_overdraft,
    statement,
    transfer,
    verify_deposits,
    withdraw_cash,
)
from kanjo.deposits.api import router as deposits_router
from kanjo.deposits.overdraft import overdraft_account_id
from kanjo.deposits.overdraft_api import router as overdraft_router
from kanjo.ledger import AccountFlags, Ledger, LedgerBusy, LedgerUnavailable, Transfer, verify_ledger
from kanjo.platform import db
from kanjo.platform.http import install_error_handlers
from kanjo.time_deposits import (
    Instruction,
    TimeDeposit,
    TimeDeposits,
    add_months,
    mature_due,
    place_time_deposit,
    pledged_principal,
    pledges,
    withdraw_early,
)
from kanjo.time_deposits import Refused as TimeDepositRefused

JULY_1 = dt.date(2026, 7, 1)  # a Wednesday: the time deposits are placed
JULY_21 = dt.date(2026, 7, 21)  # a Tuesday (the 20th is 海の日): the overdraft is drawn


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits
    td: TimeDeposits

    async def ledger_balance(self, account_id: int) -> int:
        [a] = await self.deposits.ledger.lookup_accounts([account_id])
        return a.balance_credit_minor()

    async def drawn(self, account_id: int) -> int:
        [a] = await self.deposits.ledger.lookup_accounts([overdraft_account_id(account_id)])
        return a.balance_debit_minor()

    async def sogo(self, cash_minor: int, *time_deposits: tuple[int, int]) -> tuple[int, int, list[TimeDeposit]]:
        """A customer's 総合口座 paid `cash_minor` in, with time deposits (principal, months) placed from it."""
        customer = rid()
        account = await open_ordinary_account(self.deposits, rid(), customer, "001", Subject.SOGO)
        await deposit_cash(self.deposits, rid(), account.id, cash_minor + sum(p for p, _ in time_deposits))
        placed = [await place_time_deposit(self.td, rid(), customer, account.id, principal, months,
                                           Instruction.PAY_OUT) for principal, months in time_deposits]
        return customer, account.id, placed

    async def verified(self) -> dict:
        conn = await db.connect(self.deposits.ledger.dsn)
        try:
            ledger_report = await verify_ledger(conn)
            report = await verify_deposits(conn, collateral=pledges)
        finally:
            await conn.close()
        assert ledger_report["ok"], ledger_report
        assert report["ok"], report
        return report


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [JULY_1]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today,
                   Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], customer_check=eligible,
                            collateral=pledges),
                   TimeDeposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                calendar=BankCalendar()))
    finally:
        await ledger.stop()


async def refused(coro: object) -> Refused:
    with pytest.raises(Refused) as caught:
        await coro  # type: ignore[misc]
    return caught.value


# -- opening -----------------------------------------------------------------------------------------------

async def test_opening_a_general_account_opens_its_overdraft_account(bank: Bank) -> None:
    customer, request = rid(), rid()
    account = await open_ordinary_account(bank.deposits, request, customer, "101", Subject.SOGO)
    assert account.subject is Subject.SOGO and account.status is Status.ACTIVE
    assert await open_ordinary_account(bank.deposits, request, customer, "101", Subject.SOGO) == account
    assert (await refused(open_ordinary_account(bank.deposits, request, customer, "101"))).code == "request_reused"
    [lent] = await bank.deposits.ledger.lookup_accounts([overdraft_account_id(account.id)])
    assert lent.code == OVERDRAFT_RECEIVABLE.code and lent.user_data_128 == customer
    assert lent.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    state = await overdraft_state(bank.deposits, account.id)
    assert (state.drawn_minor, state.limit_minor, state.collateral_minor, state.room_minor) == (0, 0, 0, 0)
    ordinary = await open_ordinary_account(bank.deposits, rid(), customer, "101")
    assert (await refused(overdraft_state(bank.deposits, ordinary.id))).code == "not_a_general_account"
    # without time deposits there is no overdraft: an ordinary refusal
    await deposit_cash(bank.deposits, rid(), account.id, 1_000)
    assert (await refused(withdraw_cash(bank.deposits, rid(), account.id, 1_001))).code == "insufficient_funds"
    await bank.verified()


# -- drawing and repaying -------------------------------------------------------------------------------------

async def test_a_withdrawal_beyond_the_balance_draws_the_shortfall_within_90_percent_of_the_time_deposits(
        bank: Bank) -> None:
    _, account, _ = await bank.sogo(100_000, (1_000_000, 12))
    assert await pledged_principal(bank.td, account) == 1_000_000
    bank.today[0] = JULY_21
    request = rid()
    first = await withdraw_cash(bank.deposits, request, account, 300_000)
    assert (await bank.ledger_balance(account), await bank.drawn(account)) == (0, 200_000)
    again = await withdraw_cash(bank.deposits, request, account, 300_000)  # a retry: nothing moves again
    assert again.replayed and again.transfer_id == first.transfer_id and await bank.drawn(account) == 200_000
    assert (await refused(withdraw_cash(bank.deposits, request, account, 300_001))).code == "request_reused"
    lines = await statement(bank.deposits, account)
    assert [(ln.description, ln.deposit_minor, ln.withdrawal_minor, ln.balance_minor) for ln in lines[-2:]] == [
        ("貸越", 200_000, 0, 300_000), ("現金出金", 0, 300_000, 0)]
    state = await overdraft_state(bank.deposits, account)
    assert (state.limit_minor, state.drawn_minor, state.room_minor, state.collateral_minor) == (
        900_000, 200_000, 700_000, 1_000_000)
    # the limit is ¥900,000: ¥700,001 more is refused, whole, and its retry is answered the same
    over = rid()
    assert (await refused(withdraw_cash(bank.deposits, over, account, 700_001))).code == "insufficient_funds"
    assert await bank.drawn(account) == 200_000
    assert (await refused(withdraw_cash(bank.deposits, over, account, 700_001))).code == "insufficient_funds"
    await withdraw_cash(bank.deposits, rid(), account, 700_000)
    assert (await bank.ledger_balance(account), await bank.drawn(account)) == (0, 900_000)
    assert (await refused(withdraw_cash(bank.deposits, rid(), account, 1))).code == "insufficient_funds"
    assert (await balance(bank.deposits, account)).available_minor == 0
    await bank.verified()


async def test_the_overdraft_is_at_most_two_million_yen(bank: Bank) -> None:
    _, account, _ = await bank.sogo(0, (3_000_000, 12))
    assert (await overdraft_state(bank.deposits, account)).limit_minor == 2_000_000  # not 90 % = ¥2,700,000
    assert (await refused(withdraw_cash(bank.deposits, rid(), account, 2_000_001))).code == "insufficient_funds"
    await withdraw_cash(bank.deposits, rid(), account, 2_000_000)
    assert await bank.drawn(account) == 2_000_000
    await bank.verified()


async def test_money_in_repays_the_overdraft_first(bank: Bank) -> None:
    _, account, _ = await bank.sogo(0, (1_000_000, 12))
    await withdraw_cash(bank.deposits, rid(), account, 200_000)
    request = rid()
    await deposit_cash(bank.deposits, request, account, 150_000)
    assert (await bank.ledger_balance(account), await bank.drawn(account)) == (0, 50_000)
    assert (await deposit_cash(bank.deposits, request, account, 150_000)).replayed  # repaid once only
    assert await bank.drawn(account) == 50_000
    await deposit_cash(bank.deposits, rid(), account, 80_000)
    assert (await bank.ledger_balance(account), await bank.drawn(account)) == (30_000, 0)
    lines = await statement(bank.deposits, account)
    assert [(ln.description, ln.deposit_minor, ln.withdrawal_minor, ln.balance_minor) for ln in lines[-4:]] == [
        ("現金入金", 150_000, 0, 150_000), ("貸越返済", 0, 150_000, 0),
        ("現金入金", 80_000, 0, 80_000), ("貸越返済", 0, 50_000, 30_000)]
    await bank.verified()


async def test_transfers_draw_on_one_side_and_repay_on_the_other(bank: Bank) -> None:
    _, sato, _ = await bank.sogo(0, (1_000_000, 12))
    _, suzuki, _ = await bank.sogo(0, (500_000, 12))
    await withdraw_cash(bank.deposits, rid(), suzuki, 50_000)
    await transfer(bank.deposits, rid(), sato, suzuki, 100_000)
    assert (await bank.drawn(sato), await bank.ledger_balance(sato)) == (100_000, 0)
    assert (await bank.drawn(suzuki), await bank.ledger_balance(suzuki)) == (0, 50_000)
    tanaka = await open_ordinary_account(bank.deposits, rid(), rid(), "001")
    await deposit_cash(bank.deposits, rid(), tanaka.id, 40_000)
    await transfer(bank.deposits, rid(), tanaka.id, sato, 30_000)
    assert (await bank.drawn(sato), await bank.ledger_balance(sato)) == (70_000, 0)
    await transfer(bank.deposits, rid(), sato, tanaka.id, 5_000)
    assert (await bank.drawn(sato), await bank.ledger_balance(tanaka.id)) == (75_000, 15_000)
    # the ordinary account still cannot overdraw
    assert (await refused(transfer(bank.deposits, rid(), tanaka.id, sato, 15_001))).code == "insufficient_funds"
    await bank.verified()


async def test_concurrent_withdrawals_never_take_the_overdraft_past_its_limit(bank: Bank) -> None:
    _, account, _ = await bank.sogo(0, (1_000_000, 12))
    requests = [rid() for _ in range(20)]
    answers = await asyncio.gather(*(withdraw_cash(bank.deposits, r, account, 100_000) for r in requests),
                                   *(withdraw_cash(bank.deposits, r, account, 100_000) for r in requests[:5]),
                                   return_exceptions=True)
    done = {a.transfer_id for a in answers if not isinstance(a, BaseException)}
    refusals = [a for a in answers if isinstance(a, BaseException)]
    assert all(isinstance(r, Refused) and r.code == "insufficient_funds" for r in refusals), refusals
    assert len(done) == 9  # ¥900,000: nine of the twenty withdrawals, each once however often it was sent
    assert await bank.drawn(account) == 900_000 and await bank.ledger_balance(account) == 0
    # each request answers the same on a retry
    for r, first in zip(requests, answers[:20], strict=True):
        retry = await asyncio.gather(withdraw_cash(bank.deposits, r, account, 100_000), return_exceptions=True)
        assert isinstance(retry[0], Refused) == isinstance(first, Refused)
    assert await bank.drawn(account) == 900_000
    await bank.verified()


# -- interest ---------------------------------------------------------------------------------------------------

async def _day_ends(bank: Bank, first: dt.date, last: dt.date) -> None:
    """The daily jobs on each business day from `first` to `last` (weekends are caught up on Monday)."""
    day = first
    while day <= last:
        if day.weekday() < 5:
            bank.today[0] = day
            await accrue_overdraft_interest(bank.deposits, day)
        day += dt.timedelta(days=1)


async def test_interest_accrues_daily_and_is_added_to_the_overdraft_in_august(bank: Bank) -> None:
    _, account, _ = await bank.sogo(100_000, (1_000_000, 12))  # 12 months at 0.125 %: the overdraft at 0.625 %
    bank.today[0] = JULY_21
    await withdraw_cash(bank.deposits, rid(), account, 600_000)  # ¥500,000 drawn
    await _day_ends(bank, JULY_21, dt.date(2026, 7, 24))
    again = await accrue_overdraft_interest(bank.deposits, dt.date(2026, 7, 24))  # the same day twice: nothing
    assert again.accounts == 0
    state = await overdraft_state(bank.deposits, account)
    # 4 days × ¥500,000 × 0.625 % / 365 = ¥34.24 → ¥34
    assert (state.accrued_through, state.accrued_interest_minor) == (dt.date(2026, 7, 24), 34)
    await _day_ends(bank, dt.date(2026, 7, 27), dt.date(2026, 7, 31))
    state = await overdraft_state(bank.deposits, account)
    # 11 days (21 July to 31 July, the weekend included): 3,437,500 / 36,500 = ¥94.18 → ¥94
    assert (state.accrued_through, state.accrued_interest_minor) == (dt.date(2026, 7, 31), 94)
    monday = dt.date(2026, 8, 3)  # the first business day on or after 1 August
    bank.today[0] = monday
    await accrue_overdraft_interest(bank.deposits, monday)
    charged = await charge_overdraft_interest(bank.deposits, monday)
    assert (charged.accounts, charged.amount_minor, charged.lagging) == (1, 94, [])
    assert await bank.drawn(account) == 500_094
    assert await bank.ledger_balance(gl_account_id(LOAN_INTEREST_INCOME)) == 94
    lines = await statement(bank.deposits, account)
    assert lines[-1].description == "現金出金"  # 組入れ goes to the overdraft, not through the passbook
    assert (await charge_overdraft_interest(bank.deposits, monday)).amount_minor == 0  # twice: nothing more
    assert await bank.drawn(account) == 500_094
    state = await overdraft_state(bank.deposits, account)
    # 1-3 August: 3 days × ¥500,000 (the interest counts from the day after it was added): ¥25.68 → ¥25
    assert (state.accrued_interest_minor, state.interest_unpaid_minor) == (25, 94)
    await bank.verified()


async def test_each_time_deposit_secures_in_ascending_rate_order_at_its_rate_plus_half_a_percent(
        bank: Bank) -> None:
    _, account, placed = await bank.sogo(0, (1_000_000, 12), (1_000_000, 60))
    assert [d.rate_percent for d in placed] == [pytest.approx(0.125), pytest.approx(0.250)]
    assert (await overdraft_state(bank.deposits, account)).limit_minor == 1_800_000
    bank.today[0] = dt.date(2026, 7, 22)
    await withdraw_cash(bank.deposits, rid(), account, 1_200_000)
    # catch-up: one run on the last day accrues every day since
    await accrue_overdraft_interest(bank.deposits, dt.date(2026, 7, 31))
    # ¥900,000 at 0.625 % + ¥300,000 at 0.750 %, 10 days: 7,875,000 / 36,500 = ¥215.75 → ¥215
    assert (await overdraft_state(bank.deposits, account)).accrued_interest_minor == 215
    bank.today[0] = dt.date(2026, 8, 3)
    assert (await charge_overdraft_interest(bank.deposits, dt.date(2026, 8, 3))).amount_minor == 215
    assert await bank.drawn(account) == 1_200_215
    await bank.verified()


async def test_added_interest_may_exceed_the_limit_and_money_in_repays_it_first(bank: Bank) -> None:
    _, account, _ = await bank.sogo(0, (1_000_000, 12))
    bank.today[0] = JULY_21
    await withdraw_cash(bank.deposits, rid(), account, 900_000)  # at the limit
    bank.today[0] = dt.date(2026, 8, 3)
    charged = await charge_overdraft_interest(bank.deposits, dt.date(2026, 8, 3))  # accrues what was missed
    # 11 days × ¥900,000 × 0.625 % / 365 = ¥169.52 → ¥169, added beyond the ¥900,000 limit
    assert charged.amount_minor == 169 and await bank.drawn(account) == 900_169
    state = await overdraft_state(bank.deposits, account)
    assert (state.room_minor, state.interest_unpaid_minor) == (0, 169)
    await bank.verified()  # over the limit by the added interest only: allowed
    assert (await refused(withdraw_cash(bank.deposits, rid(), account, 1))).code == "insufficient_funds"
    await deposit_cash(bank.deposits, rid(), account, 100)
    assert await bank.drawn(account) == 900_069
    assert (await overdraft_state(bank.deposits, account)).interest_unpaid_minor == 69
    await deposit_cash(bank.deposits, rid(), account, 1_069)
    assert (await bank.drawn(account), await bank.ledger_balance(account)) == (899_000, 0)
    assert (await overdraft_state(bank.deposits, account)).interest_unpaid_minor == 0
    await withdraw_cash(bank.deposits, rid(), account, 1_000)
    assert await bank.drawn(account) == 900_000
    await bank.verified()


# -- collateral that leaves ----------------------------------------------------------------------------------------

async def test_a_pledged_deposit_withdrawn_early_repays_the_overdraft_before_anything_else(bank: Bank) -> None:
    _, account, [td] = await bank.sogo(0, (1_000_000, 12))
    bank.today[0] = JULY_21
    await withdraw_cash(bank.deposits, rid(), account, 500_000)
    settled = await withdraw_early(bank.td, rid(), td.id)  # 20 days at the ordinary rate: ¥0 interest
    assert settled.paid_out_minor == 1_000_000
    state = await overdraft_state(bank.deposits, account)
    assert (state.limit_minor, state.drawn_minor, state.available_minor) == (0, 500_000, 1_000_000)
    await bank.verified()  # net of the payout waiting in the account, nothing is overdrawn
    # the customer can take only what is left after the overdraft is repaid
    assert (await refused(withdraw_cash(bank.deposits, rid(), account, 500_001))).code == "insufficient_funds"
    await withdraw_cash(bank.deposits, rid(), account, 200_000)  # repays ¥500,000 from the payout in the chain
    assert (await bank.drawn(account), await bank.ledger_balance(account)) == (0, 300_000)
    await bank.verified()


async def test_spare_funds_repay_at_day_end_or_when_the_time_deposits_context_asks(bank: Bank) -> None:
    _, sato, [td_sato] = await bank.sogo(0, (1_000_000, 12))
    _, suzuki, [td_suzuki] = await bank.sogo(0, (1_000_000, 12))
    bank.today[0] = JULY_21
    for account in (sato, suzuki):
        await withdraw_cash(bank.deposits, rid(), account, 400_000)
    await withdraw_early(bank.td, rid(), td_sato.id)
    await withdraw_early(bank.td, rid(), td_suzuki.id)
    report = await bank.verified()
    assert report["overdrawn_with_spare_funds_awaiting_sweep"] == 2
    request = rid()
    assert await repay_overdraft(bank.deposits, request, sato) == 400_000  # the hook after a payout
    assert await repay_overdraft(bank.deposits, request, sato) == 0  # a retry: nothing more
    assert (await bank.drawn(sato), await bank.ledger_balance(sato)) == (0, 600_000)
    run = await accrue_overdraft_interest(bank.deposits, JULY_21)  # the day-end sweep repays the other
    assert run.lagging == []
    assert (await bank.drawn(suzuki), await bank.ledger_balance(suzuki)) == (0, 600_000)
    assert (await bank.verified())["overdrawn_with_spare_funds_awaiting_sweep"] == 0


# -- closing and converting ------------------------------------------------------------------------------------------

async def test_closing_needs_the_overdraft_repaid_and_collects_its_interest(bank: Bank) -> None:
    _, account, [td] = await bank.sogo(100_000, (1_000_000, 12))
    bank.today[0] = JULY_21
    await withdraw_cash(bank.deposits, rid(), account, 600_000)  # ¥500,000 drawn
    await _day_ends(bank, JULY_21, dt.date(2026, 7, 23))
    bank.today[0] = dt.date(2026, 7, 24)
    attached = await refused(close_account(bank.deposits, rid(), account, "moving abroad"))
    assert attached.code == "time_deposits_attached"
    await deposit_cash(bank.deposits, rid(), account, 800_000)  # repays ¥500,000; ¥300,000 left
    await _day_ends(bank, dt.date(2026, 7, 24), dt.date(2026, 7, 24))
    bank.today[0] = dt.date(2026, 7, 27)
    await withdraw_early(bank.td, rid(), td.id)  # ¥1,000,000 paid in (26 days at 0.001 %: ¥0.71 → ¥0)
    assert await bank.ledger_balance(account) == 1_300_000
    closing = rid()
    not_zero = await refused(close_account(bank.deposits, closing, account, "moving abroad"))
    # 3 days × ¥500,000 × 0.625 % / 365 = ¥25.68 → ¥25, collected at closing
    assert not_zero.code == "balance_not_zero" and "all but ¥25 " in str(not_zero)
    await withdraw_cash(bank.deposits, rid(), account, 1_299_975)
    closed = await close_account(bank.deposits, closing, account, "moving abroad")
    assert closed.status is Status.CLOSED
    assert (await close_account(bank.deposits, closing, account, "moving abroad")) == closed
    [deposit, lent] = await bank.deposits.ledger.lookup_accounts([account, overdraft_account_id(account)])
    assert deposit.flags & AccountFlags.CLOSED and lent.flags & AccountFlags.CLOSED
    assert (deposit.balance_credit_minor(), lent.balance_debit_minor()) == (0, 0)
    assert await bank.ledger_balance(gl_account_id(LOAN_INTEREST_INCOME)) == 25
    await bank.verified()


async def test_closing_refuses_an_outstanding_overdraft(bank: Bank) -> None:
    _, account, [td] = await bank.sogo(0, (1_000_000, 12))
    await withdraw_cash(bank.deposits, rid(), account, 10_000)  # drawn the same day: no interest yet
    await withdraw_early(bank.td, rid(), td.id)  # ¥1,000,000 paid in; ¥10,000 still drawn until the sweep
    outstanding = await refused(close_account(bank.deposits, rid(), account, "customer request"))
    assert outstanding.code == "overdraft_outstanding" and "¥10,000" in str(outstanding)
    await withdraw_cash(bank.deposits, rid(), account, 990_000)  # the payout repays ¥10,000 first
    assert (await bank.drawn(account), await bank.ledger_balance(account)) == (0, 0)
    assert (await close_account(bank.deposits, rid(), account, "customer request")).status is Status.CLOSED
    assert (await refused(deposit_cash(bank.deposits, rid(), account, 1))).code == "account_closed"
    await bank.verified()


async def test_an_ordinary_account_becomes_a_general_account_with_its_time_deposits(bank: Bank) -> None:
    customer = rid()
    ordinary = await open_ordinary_account(bank.deposits, rid(), customer, "001")
    await deposit_cash(bank.deposits, rid(), ordinary.id, 1_000_000)
    await place_time_deposit(bank.td, rid(), customer, ordinary.id, 1_000_000, 12, Instruction.PAY_OUT)
    assert (await refused(withdraw_cash(bank.deposits, rid(), ordinary.id, 1))).code == "insufficient_funds"
    converted = await convert_to_general_account(bank.deposits, ordinary.id)
    assert converted.subject is Subject.SOGO
    assert await convert_to_general_account(bank.deposits, ordinary.id) == converted  # idempotent
    assert (await overdraft_state(bank.deposits, ordinary.id)).limit_minor == 900_000
    await withdraw_cash(bank.deposits, rid(), ordinary.id, 300_000)
    assert await bank.drawn(ordinary.id) == 300_000
    await bank.verified()


# -- verify ----------------------------------------------------------------------------------------------------------

async def test_verify_finds_an_overdraft_beyond_its_limit(bank: Bank) -> None:
    _, account, _ = await bank.sogo(0, (1_000_000, 12))
    await withdraw_cash(bank.deposits, rid(), account, 900_000)
    await bank.verified()
    # a drawing that bypassed the rules (a bug, or a hand-made posting)
    [outcome] = await bank.deposits.ledger.create_transfers([Transfer(
        id=rid(), debit_account_id=overdraft_account_id(account), credit_account_id=gl_account_id(CASH_VAULT),
        amount=1, ledger=392, code=16)])
    assert outcome.result.succeeded
    conn = await db.connect(bank.deposits.ledger.dsn)
    try:
        report = await verify_deposits(conn, collateral=pledges)
        ceiling_only = await verify_deposits(conn)
    finally:
        await conn.close()
    assert not report["ok"] and report["checks"]["overdrafts_within_their_limits"]["over"] == 1
    assert ceiling_only["ok"]  # without the collateral port, only the ¥2,000,000 ceiling is known


# -- a seeded simulation: no sequence of operations takes an account past its limit ---------------------------------

@pytest.mark.parametrize("seed", [1, 2])
async def test_no_sequence_of_operations_takes_an_overdraft_past_its_limit(bank: Bank, seed: int) -> None:
    rng = random.Random(seed)
    accounts: list[tuple[int, int]] = []  # (customer, account)
    for _ in range(3):
        customer, account, _ = await bank.sogo(rng.randrange(0, 300_000), (rng.randrange(100_000, 1_500_000), 12))
        accounts.append((customer, account))
    day = JULY_1
    sent: list[tuple[str, int, int, int, int]] = []
    seen = {"drawn": 0, "refused": 0, "charged": 0}
    for _ in range(60):
        op = rng.choice(["withdraw", "withdraw", "deposit", "transfer", "place", "early", "day", "retry"])
        customer, account = rng.choice(accounts)
        amount = rng.randrange(1, 1_200_000)
        try:
            if op == "withdraw":
                request = rid()
                sent.append(("withdraw", request, account, account, amount))
                await withdraw_cash(bank.deposits, request, account, amount)
            elif op == "deposit":
                await deposit_cash(bank.deposits, rid(), account, amount // 3 + 1)
            elif op == "transfer":
                _, other = rng.choice([a for a in accounts if a[1] != account])
                request = rid()
                sent.append(("transfer", request, account, other, amount))
                await transfer(bank.deposits, request, account, other, amount)
            elif op == "place":
                await place_time_deposit(bank.td, rid(), customer, account, amount // 2 + 1, 12, Instruction.PAY_OUT)
            elif op == "early":
                placed = [p for p in await pledges(bank.td, account)
                          if add_months(p.placed_on, 12) > day]  # not yet at maturity
                if placed:
                    await withdraw_early(bank.td, rid(), rng.choice(placed).deposit_id)
            elif op == "day":
                day += dt.timedelta(days=rng.randrange(1, 40))
                bank.today[0] = day
                await mature_due(bank.td, day)  # payouts of pledged deposits land in the accounts
                await accrue_overdraft_interest(bank.deposits, day)
                seen["charged"] += (await charge_overdraft_interest(bank.deposits, day)).amount_minor
            elif sent:
                kind, request, debit, credit, amount = rng.choice(sent)
                drawn_before = [await bank.drawn(a) for _, a in accounts]
                if kind == "withdraw":
                    await withdraw_cash(bank.deposits, request, debit, amount)
                else:
                    await transfer(bank.deposits, request, debit, credit, amount)
                assert [await bank.drawn(a) for _, a in accounts] == drawn_before  # a retry moves nothing
        except (Refused, TimeDepositRefused) as exc:
            assert exc.code == "insufficient_funds", exc
            seen["refused"] += 1
        for _, a in accounts:
            state = await overdraft_state(bank.deposits, a)
            net = max(0, state.drawn_minor - state.available_minor)
            assert net <= state.limit_minor + state.interest_unpaid_minor, (op, state)
            seen["drawn"] += state.drawn_minor > 0
    assert all(seen.values()), seen  # the run drew, was refused, and charged interest
    await bank.verified()


# -- HTTP ------------------------------------------------------------------------------------------------------------

async def test_http_open_a_general_account_and_read_its_overdraft(bank: Bank) -> None:
    app = FastAPI()
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(deposits_router)
    app.include_router(overdraft_router)
    app.state.deposits = bank.deposits
    customer = str(uuid.uuid4())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        r = await api.post("/v1/deposits/accounts", json={"request_id": str(uuid.uuid4()), "customer_id": customer,
                                                          "branch_code": "001", "subject": "sogo"})
        assert r.status_code == 200 and r.json()["subject"] == "sogo", r.text
        account = r.json()["id"]
        r = await api.post("/v1/deposits/accounts", json={"request_id": str(uuid.uuid4()), "customer_id": customer,
                                                          "branch_code": "001", "subject": "checking"})
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "subject", r.text
        await deposit_cash(bank.deposits, rid(), uuid.UUID(account).int, 1_000_000)
        await place_time_deposit(bank.td, rid(), uuid.UUID(customer).int, uuid.UUID(account).int, 1_000_000, 12,
                                 Instruction.PAY_OUT)
        r = await api.post(f"/v1/deposits/accounts/{account}/cash-withdrawals",
                           json={"request_id": str(uuid.uuid4()), "amount": 250_000})
        assert r.status_code == 200, r.text
        r = await api.get(f"/v1/deposits/accounts/{account}/overdraft")
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in ("drawn", "limit", "collateral", "pledges", "available", "room",
                                     "accrued_interest", "interest_unpaid")} == {
            "drawn": 250_000, "limit": 900_000, "collateral": 1_000_000, "pledges": 1, "available": 0,
            "room": 650_000, "accrued_interest": 0, "interest_unpaid": 0}
        r = await api.post(f"/v1/deposits/accounts/{account}/cash-withdrawals",
                           json={"request_id": str(uuid.uuid4()), "amount": 650_001})
        assert r.status_code == 409 and r.json()["error"] == "insufficient_funds", r.text
        ordinary = (await api.post("/v1/deposits/accounts", json={
            "request_id": str(uuid.uuid4()), "customer_id": customer, "branch_code": "001"})).json()
        assert ordinary["subject"] == "ordinary"
        r = await api.get(f"/v1/deposits/accounts/{ordinary['id']}/overdraft")
        assert r.status_code == 409 and r.json()["error"] == "not_a_general_account", r.text
        r = await api.get(f"/v1/deposits/accounts/{uuid.uuid4()}/overdraft")
        assert r.status_code == 404, r.text
        r = await api.post(f"/v1/deposits/accounts/{ordinary['id']}/convert-to-general")
        assert r.status_code == 200 and r.json()["subject"] == "sogo", r.text
        r = await api.get(f"/v1/deposits/accounts/{ordinary['id']}/overdraft")
        assert r.status_code == 200 and r.json()["limit"] == 0, r.text
