"""The products' daily jobs for one business date, in the order a bank runs them; every job is idempotent.

Start of day (before the counters open): time deposits falling due are settled (満期処理), the half-yearly
ordinary-deposit interest is paid on its payout day (決算利息), card-loan interest is collected on its
collection day (利息徴求). End of day (after the last posting of the date): the day's end-of-day balances
accrue ordinary-deposit, overdraft and card-loan interest, overdraft interest is added on its charge day,
and accounts silent too long become dormant.

Each job is idempotent per (account, business date, job) by its own construction, so running a day twice, or
resuming a day that crashed midway, changes nothing that was already done. The day change itself (opening
and closing business dates, the batch window, its monitoring) belongs to the operations context.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kanjo import deposits, loans, time_deposits
from kanjo.bank import Bank


@dataclass
class DayRun:
    """What each job of one business date did (its own run report, as the job returns it)."""

    business_date: dt.date
    jobs: dict[str, Any] = field(default_factory=dict)


async def start_of_day(bank: Bank, day: dt.date) -> DayRun:
    run = DayRun(day)
    _check_business_day(bank, day)
    run.jobs["time_deposit_maturity"] = await time_deposits.mature_due(bank.time_deposits, day)
    if deposits.is_interest_payout_day(bank.calendar, day):
        run.jobs["deposit_interest_payout"] = await deposits.pay_interest(bank.deposits, bank.calendar, day)
    run.jobs["card_loan_collection"] = await loans.collect_interest(bank.loans, day)
    return run


async def end_of_day(bank: Bank, day: dt.date) -> DayRun:
    run = DayRun(day)
    _check_business_day(bank, day)
    run.jobs["deposit_interest_accrual"] = await deposits.accrue_interest(bank.deposits, bank.calendar, day)
    run.jobs["overdraft_interest_accrual"] = await deposits.accrue_overdraft_interest(bank.deposits, day)
    run.jobs["overdraft_interest_charge"] = await deposits.charge_overdraft_interest(bank.deposits, day)
    run.jobs["card_loan_accrual"] = await loans.accrue_interest(bank.loans, day)
    run.jobs["dormancy"] = await deposits.mark_dormant_accounts(bank.deposits, day)
    return run


def _check_business_day(bank: Bank, day: dt.date) -> None:
    if not bank.calendar.is_business_day(day):
        raise ValueError(f"{day} is not a business day: {bank.calendar.closed_reason(day)}")
