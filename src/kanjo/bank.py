"""The bank assembled: every product context's handle on one ledger, one pool, one calendar and one business date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from kanjo.business_calendar import BankCalendar
from kanjo.customers import account_opening_refusal
from kanjo.deposits import CustomerCheck, Deposits, Status, get_account
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.fees import CODE_LABELS as FEE_LABELS
from kanjo.fees import Fees
from kanjo.ledger import Ledger
from kanjo.loans import CODE_LABELS as LOAN_LABELS
from kanjo.loans import Loans, account_closing_refusal
from kanjo.time_deposits import CODE_LABELS as TIME_DEPOSIT_LABELS
from kanjo.time_deposits import TimeDeposits, paying_into, pledged_principal, pledges


@dataclass
class Bank:
    ledger: Ledger
    calendar: BankCalendar
    business_date: Callable[[], dt.date]
    deposits: Deposits
    time_deposits: TimeDeposits
    fees: Fees
    loans: Loans


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

    # A 総合口座's overdraft is secured by the time deposits attached to it (read on the locking connection).
    deposits = Deposits(pool=pool, ledger=ledger, business_date=today,
                        customer_check=customer_check or customers_say, collateral=pledges)

    async def others_say(account_id: int) -> str | None:
        """Products that pay into or collect from the account keep it open."""
        if await pledged_principal(pool, account_id) or await paying_into(pool, account_id):
            return "time deposits are attached to or pay into this account: withdraw them or name another account first"
        return await account_closing_refusal(pool, account_id)

    deposits.closing_check = others_say
    # How statements and passbooks name the other contexts' transfers (定期預入, 手数料, カードローン借入…).
    deposits.labels = {**deposits.labels, **TIME_DEPOSIT_LABELS, **FEE_LABELS, **LOAN_LABELS}
    async def funding_say(account_id: int) -> str | None:
        """Money leaves an ordinary account for a time deposit only while the account is active."""
        try:
            account = await get_account(deposits, account_id)
        except DepositNotFound:
            return None  # the time-deposit context answers an unknown account itself
        return None if account.status is Status.ACTIVE else (
            f"the funding account is {account.status.value}: nothing can leave it now")

    return Bank(
        ledger=ledger, calendar=calendar, business_date=today, deposits=deposits,
        time_deposits=TimeDeposits(pool=pool, ledger=ledger, business_date=today, calendar=calendar,
                                   funding_check=funding_say),
        fees=Fees(pool=pool, ledger=ledger, business_date=today, calendar=calendar),
        loans=Loans(pool=pool, ledger=ledger, deposits=deposits, business_date=today, calendar=calendar,
                    customer_check=customer_check or customers_say),
    )
