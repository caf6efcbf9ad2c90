"""The bank assembled: every product context's handle on one ledger, one pool, one calendar and one business date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from kanjo.business_calendar import BankCalendar
from kanjo.customers import account_opening_refusal
from kanjo.deposits import CustomerCheck, Deposits
from kanjo.fees import Fees
from kanjo.ledger import Ledger
from kanjo.time_deposits import TimeDeposits


@dataclass
class Bank:
    ledger: Ledger
    calendar: BankCalendar
    business_date: Callable[[], dt.date]
    deposits: Deposits
    time_deposits: TimeDeposits
    fees: Fees


def build_bank(ledger: Ledger, calendar: BankCalendar | None = None,
               business_date: Callable[[], dt.date] | None = None,
               customer_check: CustomerCheck | None = None) -> Bank:
    """Wire the contexts together. By default accounts open only for active, identity-verified customers
    (the customers context decides) and the business date is the ledger's."""
    pool = ledger.pool
    if pool is None:
        raise RuntimeError("start the ledger before building the bank")
    calendar = calendar or BankCalendar()
    today = business_date or ledger.business_date

    async def customers_say(customer_id: int) -> str | None:
        return await account_opening_refusal(pool, customer_id)

    deposits = Deposits(pool=pool, ledger=ledger, business_date=today, customer_check=customer_check or customers_say)
    return Bank(
        ledger=ledger, calendar=calendar, business_date=today, deposits=deposits,
        time_deposits=TimeDeposits(pool=pool, ledger=ledger, business_date=today, calendar=calendar),
        fees=Fees(pool=pool, ledger=ledger, business_date=today, calendar=calendar),
    )
