"""The contexts wired into one bank: statements name every product's movements, and a deposit account that a
time deposit pays into or a card loan collects from cannot be closed until they are settled."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from kanjo import deposits, loans, time_deposits
from kanjo.accounting import ensure_chart
from kanjo.bank import build_bank
from kanjo.business_calendar import BankCalendar
from kanjo.ledger import Ledger

TODAY = dt.date(2026, 4, 10)


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


async def test_statement_names_and_closing_an_account_a_loan_depends_on(ledger_dsn: str) -> None:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    try:
        await ensure_chart(ledger)
        bank = build_bank(ledger, BankCalendar(), business_date=lambda: TODAY, customer_check=eligible)
        customer = rid()
        account = await deposits.open_ordinary_account(bank.deposits, rid(), customer, "101")
        await deposits.deposit_cash(bank.deposits, rid(), account.id, 600_000)
        td = await time_deposits.place_time_deposit(bank.time_deposits, rid(), customer, account.id, 500_000, 12,
                                                    time_deposits.Instruction.PAY_OUT)
        contract = await loans.open_contract(bank.loans, rid(), customer, account.id, 300_000, Decimal("14.5"), 27)
        await loans.draw(bank.loans, rid(), contract.id, 50_000, loans.Channel.ACCOUNT)
        lines = await deposits.statement(bank.deposits, account.id)
        assert [(ln.description, ln.deposit_minor, ln.withdrawal_minor, ln.balance_minor) for ln in lines] == [
            ("現金入金", 600_000, 0, 600_000), ("定期預入", 0, 500_000, 100_000),
            ("カードローン借入", 50_000, 0, 150_000)]

        await loans.repay(bank.loans, rid(), contract.id, 50_000, loans.Channel.ACCOUNT)
        await deposits.withdraw_cash(bank.deposits, rid(), account.id, 100_000)
        with pytest.raises(deposits.Refused) as refused:
            await deposits.close_account(bank.deposits, rid(), account.id, "転居")
        assert refused.value.code == "account_in_use" and "time deposits" in str(refused.value)
        await time_deposits.withdraw_early(bank.time_deposits, rid(), td.id)
        await deposits.withdraw_cash(bank.deposits, rid(), account.id, 500_000)
        with pytest.raises(deposits.Refused) as refused:
            await deposits.close_account(bank.deposits, rid(), account.id, "転居")
        assert refused.value.code == "account_in_use" and "card loan" in str(refused.value)
        await loans.close_contract(bank.loans, rid(), contract.id, "完済")
        closed = await deposits.close_account(bank.deposits, rid(), account.id, "転居")
        assert closed.status is deposits.Status.CLOSED
    finally:
        await ledger.stop()


async def test_a_frozen_account_cannot_fund_a_time_deposit(ledger_dsn: str) -> None:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    try:
        await ensure_chart(ledger)
        bank = build_bank(ledger, BankCalendar(), business_date=lambda: TODAY, customer_check=eligible)
        customer = rid()
        account = await deposits.open_ordinary_account(bank.deposits, rid(), customer, "101")
        await deposits.deposit_cash(bank.deposits, rid(), account.id, 600_000)
        await deposits.change_status(bank.deposits, rid(), account.id, deposits.Action.FREEZE, "差押え")
        with pytest.raises(time_deposits.Refused) as refused:
            await time_deposits.place_time_deposit(bank.time_deposits, rid(), customer, account.id, 500_000, 12,
                                                   time_deposits.Instruction.PAY_OUT)
        assert refused.value.code == "funding_account_not_usable" and "frozen" in str(refused.value)
        assert (await deposits.balance(bank.deposits, account.id)).balance_minor == 600_000
    finally:
        await ledger.stop()
