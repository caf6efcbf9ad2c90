"""Day-end jobs of card loans: accrue each day's interest; collect each month's, and retry arrears daily.

Both take (handle, business date) for the daily-jobs runner and work through pages of contracts locked
in id order (online draws and repayments lock one contract at a time, so nothing deadlocks). Both are
idempotent per (contract, business date, job): the accrual advances `accrued_through` and the collection
sets `collected_through`, both guarded in the UPDATE, so a second run of the day finds nothing to do; a
collection's ledger transfer id derives from (contract, business date), so a run retried after a crash
between the ledger and this context's commit finds its transfer instead of taking the money again.
A linked account with nothing available is not asked (no ¥0 transfer, no ¥0 passbook line); the shortfall
is arrears all the same.

Order within a day does not matter: days accrued on or after a collection date are kept apart (the next
period's 積数) until that collection has run. The accrual reads the drawn balance from the ledger and
subtracts what draws and repayments of later business dates changed, so a late run still charges the
day's end-of-day balance. A run that missed days (catch-up) charges them at that balance too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import asyncpg

from kanjo.accounting import CARD_LOAN, JPY, LOAN_INTEREST_INCOME, gl_account_id
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits
from kanjo.ledger import Account, Transfer, TransferFlags, read_accounts
from kanjo.loans import store
from kanjo.loans.limits import CONTRACTS_PER_BATCH_MAX
from kanjo.loans.model import (
    INTEREST_CODE,
    Accrual,
    Collection,
    Contract,
    Outstanding,
    Refused,
    Status,
    accrue,
    following_due_on,
    plan_collection,
    settle_collection,
)
from kanjo.loans.service import POSTED, REQUEST_NAMESPACE, Loans, collect_on


def collection_transfer_id(contract_id: int, on: dt.date) -> int:
    """One collection transfer per (contract, business date): a rerun of the day finds it."""
    return name_id(REQUEST_NAMESPACE, f"{contract_id:032x}:{on.isoformat()}:collect")


def _check_reached(h: Loans, business_date: dt.date) -> None:
    today = h.business_date()
    if business_date > today:
        raise Refused("business_date_not_reached", f"{business_date} is after the business date {today}:"
                      " a day-end job runs for a day that has come")


# -- accrual ---------------------------------------------------------------------------------------------

@dataclass
class AccrualRun:
    """What one accrual run did."""

    business_date: dt.date
    through: dt.date  # the last day covered: the day before the next business day
    contracts: int = 0
    balance_days: int = 0  # 積数 added (yen × days)


async def accrue_interest(h: Loans, business_date: dt.date) -> AccrualRun:
    """Accrue interest on every open contract's end-of-day drawn balance, through the day before the next
    business day (a Friday's run covers Saturday and Sunday at Friday's balance)."""
    _check_reached(h, business_date)
    through = h.calendar.next_business_day(business_date) - dt.timedelta(days=1)
    run = AccrualRun(business_date, through)
    after_id = 0
    while True:
        async with h.pool.acquire() as conn, conn.transaction():
            page = await store.to_accrue_for_update(conn, through, after_id, CONTRACTS_PER_BATCH_MAX)
            if not page:
                return run
            after_id = page[-1].id
            limits.observe("card_loan_contracts_per_batch_max", len(page))
            ids = [c.id for c in page]
            balances = {a.id: a for a in await read_accounts(conn, ids)}
            later = await store.drawn_change_after(conn, ids, business_date)
            done: list[tuple[Contract, Accrual]] = []
            for c in page:
                a = balances.get(c.id)
                invariant(a is not None and a.code == CARD_LOAN.code, "a contract has its card-loan ledger account")
                assert a is not None
                accrual = accrue(c, a.balance_debit_minor() - later.get(c.id, 0), through)
                done.append((c, accrual))
                run.balance_days += accrual.balance_days_current + accrual.balance_days_next
            await store.record_accruals(conn, business_date, done)
            run.contracts += len(done)
        if len(page) < CONTRACTS_PER_BATCH_MAX:
            return run


# -- collection ------------------------------------------------------------------------------------------

@dataclass
class CollectionRun:
    """What one collection run did."""

    business_date: dt.date
    due: int = 0  # contracts whose monthly interest fell due
    interest_due_minor: int = 0  # those periods' interest
    collected_minor: int = 0  # taken from linked accounts (arrears and interest)
    fell_into_arrears: int = 0  # contracts that became delinquent
    cleared: int = 0  # contracts whose arrears were all paid
    arrears_minor: int = 0  # left unpaid by the contracts of this run
    failed: list[tuple[int, str]] = field(default_factory=list)  # (contract, ledger answer): nothing was taken


async def collect_interest(h: Loans, business_date: dt.date) -> CollectionRun:
    """利息徴求 (口座振替): take each due period's interest, and every delinquent contract's arrears, from the
    linked account — as much as it holds (a balancing debit); what it cannot pay is arrears."""
    _check_reached(h, business_date)
    run = CollectionRun(business_date)
    next_collect: dict[dt.date, dt.date] = {}  # nominal day → business day, computed once per run
    after_id = 0
    while True:
        async with h.pool.acquire() as conn:
            ids = await store.to_collect(conn, business_date, after_id, CONTRACTS_PER_BATCH_MAX)
        if not ids:
            return run
        after_id = ids[-1]
        # Transfers of this day already in the ledger (a run that died before its commit), looked up before
        # the page is locked: a lock holder never waits for a pooled connection.
        transfer_ids = {i: collection_transfer_id(i, business_date) for i in ids}
        posted = {t.id for t in await h.ledger.lookup_transfers(list(transfer_ids.values()))}
        async with h.pool.acquire() as conn, conn.transaction():
            page = await store.to_collect_for_update(conn, business_date, ids)
            limits.observe("card_loan_contracts_per_batch_max", len(page))
            await _collect_page(h, conn, business_date, page, transfer_ids, posted, next_collect, run)
        if len(ids) < CONTRACTS_PER_BATCH_MAX:
            return run


async def _collect_page(h: Loans, conn: asyncpg.Connection, business_date: dt.date, page: list[Contract],
                        transfer_ids: dict[int, int], posted: set[int], next_collect: dict[dt.date, dt.date],
                        run: CollectionRun) -> None:
    owed = await store.unpaid(conn, [c.id for c in page])
    plans = [(c, plan_collection(c, business_date)) for c in page]
    linked = {a.id: a for a in await read_accounts(conn, list({c.account_id for c, p in plans if p.request_minor}))}
    transfers = {}
    for c, p in plans:
        transfer_id = transfer_ids[c.id]
        # An empty account is not asked (no ¥0 line on the passbook every day of a delinquency).
        if p.request_minor and (_available(linked.get(c.account_id)) > 0 or transfer_id in posted):
            transfers[c.id] = Transfer(
                id=transfer_id, debit_account_id=c.account_id, credit_account_id=gl_account_id(LOAN_INTEREST_INCOME),
                amount=p.request_minor, ledger=JPY, code=INTEREST_CODE, flags=int(TransferFlags.BALANCING_DEBIT),
                user_data_128=c.id, business_date=business_date)
    answers = dict(zip(transfers, await h.ledger.create_transfers(list(transfers.values())), strict=True))
    after: list[Contract] = []
    new_rows: list[Collection] = []
    changed: list[tuple[int, Outstanding]] = []
    attempts: list[tuple[int, int, int, int, str]] = []
    for c, plan in plans:
        collected = 0
        if c.id in answers:
            answer = answers[c.id]
            if answer.result in POSTED:
                collected = answer.amount
            else:
                run.failed.append((c.id, answer.result.name.lower()))
            attempts.append((c.id, plan.request_minor, collected, transfers[c.id].id, answer.result.name.lower()))
        following = None
        if plan.due:
            nominal = following_due_on(c.due_on, c.collection_day)
            following = next_collect.setdefault(nominal, collect_on(h, nominal))
        outcome = settle_collection(c, plan, collected, owed.get(c.id, []), business_date, following)
        after.append(outcome.contract)
        changed.extend((c.id, r) for r in outcome.owed)
        if outcome.new_row is not None and plan.interest_minor > 0:
            r = outcome.new_row
            new_rows.append(Collection(c.id, r.due_on, r.kind, r.collect_on, plan.balance_days, c.rate_percent,
                                       plan.interest_minor, r.outstanding_minor))
        _count(run, c, plan.due, plan.interest_minor, collected, outcome.contract)
    await store.insert_collections(conn, new_rows)
    await store.set_outstanding(conn, changed)
    await store.record_collection_run(conn, business_date, after, attempts)


def _available(a: Account | None) -> int:
    """What a balancing debit could take from the account now (0 if it is not in the ledger)."""
    return 0 if a is None else max(0, a.credits_posted - a.debits_posted - a.debits_pending)


def _count(run: CollectionRun, before: Contract, due: bool, interest: int, collected: int, after: Contract) -> None:
    run.due += due
    run.interest_due_minor += interest
    run.collected_minor += collected
    run.arrears_minor += after.arrears_minor
    run.fell_into_arrears += before.arrears_minor == 0 and after.arrears_minor > 0
    run.cleared += before.arrears_minor > 0 and after.arrears_minor == 0
    invariant(after.status is not Status.CLOSED, "a collection never closes a contract")
