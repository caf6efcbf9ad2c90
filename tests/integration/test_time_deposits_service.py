"""Time deposits against a real ledger and PostgreSQL: placement, maturity by instruction, early withdrawal."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from kanjo.accounting import DEPOSIT_INTEREST_EXPENSE, WITHHOLDING_TAX_PAYABLE, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Deposits, deposit_cash, open_ordinary_account
from kanjo.ledger import Ledger, verify_ledger
from kanjo.platform import db
from kanjo.time_deposits import (
    IllegalTransition,
    Instruction,
    Refused,
    Status,
    Tax,
    TimeDeposits,
    get_time_deposit,
    mature_due,
    overdue_unprocessed,
    place_time_deposit,
    withdraw_early,
)
from kanjo.time_deposits import service as td_service

PLACED = dt.date(2026, 3, 6)  # a Friday; one year later is a Saturday
PAYS = dt.date(2027, 3, 8)  # the Monday after


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits
    td: TimeDeposits

    async def balance(self, account_id: int) -> int:
        [a] = await self.td.ledger.lookup_accounts([account_id])
        return a.balance_credit_minor()

    async def customer_with(self, amount_minor: int) -> tuple[int, int]:
        customer = rid()
        account = await open_ordinary_account(self.deposits, rid(), customer, "001")
        await deposit_cash(self.deposits, rid(), account.id, amount_minor)
        return customer, account.id


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [PLACED]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible),
                   TimeDeposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                calendar=BankCalendar()))
    finally:
        await ledger.stop()


async def _verified(bank: Bank) -> None:
    conn = await db.connect(bank.td.ledger.dsn)
    try:
        report = await verify_ledger(conn)
    finally:
        await conn.close()
    assert report["ok"], report


async def test_placement_moves_the_principal_once_at_the_table_rate(bank: Bank) -> None:
    customer, ordinary = await bank.customer_with(1_500_000)
    request = rid()
    placed = await place_time_deposit(bank.td, request, customer, ordinary, 1_000_000, 12, Instruction.PAY_OUT)
    assert placed.rate_percent == Decimal("0.125") and placed.status is Status.PLACED
    assert (placed.placed_on, placed.matures_on, placed.pays_on) == (PLACED, dt.date(2027, 3, 6), PAYS)
    again = await place_time_deposit(bank.td, request, customer, ordinary, 1_000_000, 12, Instruction.PAY_OUT)
    assert again == placed
    assert (await bank.balance(ordinary), await bank.balance(placed.id)) == (500_000, 1_000_000)
    big = await place_time_deposit(bank.td, rid(), customer, ordinary, 500_000, 60, Instruction.PAY_OUT)
    assert big.rate_percent == Decimal("0.250")
    with pytest.raises(Refused) as refused:
        await place_time_deposit(bank.td, rid(), customer, ordinary, 1, 12, Instruction.PAY_OUT)
    assert refused.value.code == "insufficient_funds"
    with pytest.raises(Refused) as refused:
        await place_time_deposit(bank.td, rid(), customer, ordinary, 1, 7, Instruction.PAY_OUT)
    assert refused.value.code == "term_not_offered"
    with pytest.raises(Refused) as refused:
        await place_time_deposit(bank.td, rid(), rid(), ordinary, 1, 12, Instruction.PAY_OUT)
    assert refused.value.code == "not_the_customers_account"
    with pytest.raises(Refused) as refused:
        await place_time_deposit(bank.td, request, customer, ordinary, 2_000, 12, Instruction.PAY_OUT)
    assert refused.value.code == "request_reused"
    await _verified(bank)


async def test_maturity_by_instruction_every_yen_and_twice_changes_nothing(bank: Bank) -> None:
    accounts = {}
    for instruction in Instruction:
        customer, ordinary = await bank.customer_with(1_000_000)
        d = await place_time_deposit(bank.td, rid(), customer, ordinary, 1_000_000, 12, instruction)
        accounts[instruction] = (ordinary, d.id)
    bank.today[0] = dt.date(2027, 3, 5)  # the Friday before the contractual date: nothing due
    early = await mature_due(bank.td)
    assert (early.renewed, early.paid_out, early.failed) == (0, 0, [])
    bank.today[0] = PAYS
    run = await mature_due(bank.td)
    assert (run.renewed, run.paid_out, run.failed) == (2, 1, [])
    # 365 days at 0.125 %: ¥1,250 each; 国税 ¥191 + 地方税 ¥62; net ¥997
    expected = {Instruction.RENEW_PRINCIPAL: (997, 1_000_000, Status.PLACED, 2),
                Instruction.RENEW_PRINCIPAL_AND_INTEREST: (0, 1_000_997, Status.PLACED, 2),
                Instruction.PAY_OUT: (1_000_997, 0, Status.MATURED, 1)}
    for instruction, (paid_out, kept, status, generation) in expected.items():
        ordinary, deposit_id = accounts[instruction]
        assert (await bank.balance(ordinary), await bank.balance(deposit_id)) == (paid_out, kept), instruction
        d = await get_time_deposit(bank.td, deposit_id)
        assert (d.status, d.generation) == (status, generation)
        if status is Status.PLACED:  # renewed from the contractual date, at that day's rate
            assert (d.principal_minor, d.placed_on, d.matures_on, d.pays_on) == (
                kept, dt.date(2027, 3, 6), dt.date(2028, 3, 6), dt.date(2028, 3, 6))
            assert d.rate_percent == Decimal("0.125")
        else:
            assert d.closed_on == PAYS
    interest = gl_account_id(DEPOSIT_INTEREST_EXPENSE)
    tax = gl_account_id(WITHHOLDING_TAX_PAYABLE)
    assert (-await bank.balance(interest), await bank.balance(tax)) == (3 * 1_250, 3 * (191 + 62))
    again = await mature_due(bank.td)
    assert (again.renewed, again.paid_out, again.failed) == (0, 0, [])
    assert (-await bank.balance(interest), await bank.balance(tax)) == (3_750, 759)
    assert await overdue_unprocessed(bank.td, PAYS + dt.timedelta(days=1)) == 0
    await _verified(bank)


async def test_maturity_in_several_batches(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(td_service, "MATURITIES_PER_BATCH_MAX", 2)
    customer, ordinary = await bank.customer_with(5_000_000)
    ids = [(await place_time_deposit(bank.td, rid(), customer, ordinary, 1_000_000, 1, Instruction.PAY_OUT)).id
           for _ in range(5)]
    bank.today[0] = dt.date(2026, 4, 6)  # 31 days at 0.100 %: 84.93 → ¥84; taxes ¥12 and ¥4
    run = await mature_due(bank.td)
    assert (run.paid_out, run.failed) == (5, [])
    assert await bank.balance(ordinary) == 5 * 1_000_068
    assert [await bank.balance(i) for i in ids] == [0] * 5
    assert (await mature_due(bank.td)).paid_out == 0
    await _verified(bank)


async def test_early_withdrawal_amounts_and_refusals(bank: Bank) -> None:
    customer, ordinary = await bank.customer_with(1_000_000)
    d = await place_time_deposit(bank.td, rid(), customer, ordinary, 1_000_000, 12, Instruction.RENEW_PRINCIPAL)
    bank.today[0] = dt.date(2026, 11, 6)  # 245 days (67 % of the term): 70 % of 0.125 % = 0.087 %
    request = rid()
    s = await withdraw_early(bank.td, request, d.id)
    assert (s.interest_minor, s.tax, s.paid_out_minor) == (583, Tax(89, 29), 1_000_465)
    assert (await bank.balance(ordinary), await bank.balance(d.id)) == (1_000_465, 0)
    assert await withdraw_early(bank.td, request, d.id) == s  # a retry answers the same, moves nothing
    assert await bank.balance(ordinary) == 1_000_465
    with pytest.raises(IllegalTransition):
        await withdraw_early(bank.td, rid(), d.id)
    withdrawn = await get_time_deposit(bank.td, d.id)
    assert (withdrawn.status, withdrawn.closed_on) == (Status.WITHDRAWN, dt.date(2026, 11, 6))
    bank.today[0] = PAYS
    assert (await mature_due(bank.td)).renewed == 0
    assert await bank.balance(ordinary) == 1_000_465
    # within the first 6 months: the ordinary deposit rate 0.001 %
    customer, ordinary = await bank.customer_with(1_000_000)
    bank.today[0] = PLACED
    d = await place_time_deposit(bank.td, rid(), customer, ordinary, 1_000_000, 12, Instruction.PAY_OUT)
    bank.today[0] = dt.date(2026, 6, 5)  # 91 days: 2.49 → ¥2, no tax at these amounts
    s = await withdraw_early(bank.td, rid(), d.id)
    assert (s.interest_minor, s.tax, s.paid_out_minor) == (2, Tax(0, 0), 1_000_002)
    await _verified(bank)


async def test_a_run_after_missed_days_catches_up_every_generation_once(bank: Bank) -> None:
    """The maturity run did not run for three months (an outage): the next run settles each monthly generation
    that fell due, in order, once; running it again changes nothing."""
    customer, ordinary = await bank.customer_with(1_000_000)
    d = await place_time_deposit(bank.td, rid(), customer, ordinary, 1_000_000, 1,
                                 Instruction.RENEW_PRINCIPAL_AND_INTEREST)
    late = dt.date(2026, 6, 8)  # generations due 6 Apr, 6 May and 8 Jun (6 Jun is a Saturday)
    bank.today[0] = late
    run = await mature_due(bank.td, late)
    assert (run.renewed, run.paid_out, run.failed) == (3, 0, [])
    after = await get_time_deposit(bank.td, d.id)
    assert (after.generation, after.placed_on, after.matures_on) == (4, dt.date(2026, 6, 6), dt.date(2026, 7, 6))
    assert after.principal_minor > 1_000_000  # each generation's net interest was added to the principal
    again = await mature_due(bank.td, late)
    assert (again.renewed, again.paid_out) == (0, 0)
    assert await overdue_unprocessed(bank.td, late) == 0
