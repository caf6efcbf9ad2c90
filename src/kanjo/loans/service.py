"""Handlers of card loans: open a contract, draw, repay, suspend, resume, close, and the reads a screen needs.

Money moves only through the ledger, by transfers whose ids derive from the caller's request id: a
retried request finds its recorded movement (or, after a crash between the ledger and this context's
commit, its transfers) and answers as the first time, never moving money twice.

The credit line holds under concurrent draws because every movement of a contract's money and every
change of its state runs under a row lock on the contract (SELECT ... FOR UPDATE): a draw reads the
drawn balance from the ledger's committed state and posts while it holds the lock, so two draws on one
contract are serialised and a draw never slips past a suspension. (A ledger control account holding the
available line would enforce it without a lock, at the cost of a second account and a second leg per
draw and repayment; only this context posts to card-loan accounts, so the lock is enough.) A lock holder
never waits for another pooled connection — the ledger posts through its own writer connection and the
balance is read on the locked connection — so concurrent requests cannot starve the pool into a deadlock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import asyncpg

from kanjo.accounting import ACCOUNT_CLOSURES, ATM_CASH, CARD_LOAN, JPY, LOAN_INTEREST_INCOME, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import CustomerCheck, DepositAccount, Deposits, get_account
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.deposits import Status as DepositStatus
from kanjo.deposits import Subject as DepositSubject
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
    read_accounts,
)
from kanjo.loans import store
from kanjo.loans.limits import AMOUNT_PER_TRANSACTION_MAX, CASH_DRAW_MAX, CREDIT_LINE_MAX
from kanjo.loans.model import (
    CLOSING_CODE,
    DRAW_CASH_CODE,
    DRAW_TO_ACCOUNT_CODE,
    INTEREST_CODE,
    REPAY_CASH_CODE,
    REPAY_FROM_ACCOUNT_CODE,
    Action,
    Allocation,
    Channel,
    Collection,
    Contract,
    ContractView,
    Movement,
    Refused,
    Status,
    after_arrears,
    allocate_repayment,
    arrears_since,
    check_amount,
    check_can_draw,
    check_can_repay,
    check_terms,
    first_due_on,
    interest_minor,
    pay_oldest_first,
    transition,
    view_of,
)

R = CreateTransferResult
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-6c6f616e7300")
POSTED = frozenset({R.OK, R.EXISTS})
# An asset: debits are what is drawn; the ledger refuses a repayment beyond it.
LOAN_ACCOUNT_FLAGS = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS | AccountFlags.HISTORY)


@dataclass
class Loans:
    """The context's handle: its pool, the ledger, the deposits handle (linked accounts), the business date,
    the bank calendar (collection days) and the customer check (who may borrow)."""

    pool: asyncpg.Pool
    ledger: Ledger
    deposits: Deposits
    business_date: Callable[[], dt.date]
    calendar: BankCalendar
    customer_check: CustomerCheck


class NotFound(Exception):
    """No card-loan contract (or linked account) with that id."""


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return name_id(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}")


def collect_on(h: Loans, due_on: dt.date) -> dt.date:
    """The business day a collection due on `due_on` is made: that day, or the next business day."""
    return h.calendar.next_business_day(due_on, include_today=True)


# -- contracts -----------------------------------------------------------------------------------------

async def open_contract(h: Loans, request_id: int, customer_id: int, account_id: int, credit_line_minor: int,
                        rate_percent: Decimal, collection_day: int) -> Contract:
    """契約: a credit line for a customer, linked to the customer's active ordinary account. Idempotent."""
    if credit_line_minor > CREDIT_LINE_MAX:
        raise LimitReached(limits.get("card_loan_credit_line_max_minor"), credit_line_minor)
    check_terms(credit_line_minor, rate_percent, collection_day, CREDIT_LINE_MAX)
    async with h.pool.acquire() as conn:
        existing = await store.contract_by_open_request(conn, request_id)
    if existing is not None:
        if (existing.customer_id, existing.account_id, existing.credit_line_minor, existing.rate_percent,
                existing.collection_day) != (customer_id, account_id, credit_line_minor, rate_percent, collection_day):
            raise Refused("request_reused", "this request id already opened a card loan with other terms")
        await _create_ledger_account(h, existing.id, existing.customer_id)
        return existing
    account = await _linked_account(h, account_id)
    if account.customer_id != customer_id:
        raise Refused("not_the_customers_account", "the linked account belongs to another customer")
    if account.subject is DepositSubject.CURRENT:
        raise Refused("not_an_ordinary_account", "a card loan is linked to an ordinary account (普通預金 or 総合口座),"
                      " not a current account")
    _check_linked_status(account)
    reason = await h.customer_check(customer_id)
    if reason is not None:
        raise Refused("customer_not_eligible", reason)
    async with h.pool.acquire() as conn:
        other = await store.open_contract_of_customer(conn, customer_id)
    if other is not None:
        raise Refused("contract_exists", f"the customer already has an open card loan {uuid.UUID(int=other.id)}")
    today = h.business_date()
    contract_id = derived_id(request_id, "contract")
    # The ledger account first (idempotent by id): a contract row never exists without its money.
    await _create_ledger_account(h, contract_id, customer_id)
    due_on = first_due_on(today, collection_day)
    c = Contract(contract_id, customer_id, account_id, credit_line_minor, rate_percent, collection_day, Status.ACTIVE,
                 today, None, today - dt.timedelta(days=1), 0, 0, due_on, collect_on(h, due_on), 0, None, None)
    async with h.pool.acquire() as conn:
        try:
            await store.insert_contract(conn, c, request_id)
        except asyncpg.UniqueViolationError:
            raced = await store.contract_by_open_request(conn, request_id)
            if raced is not None:
                return raced
            raise Refused("contract_exists", "the customer already has an open card loan") from None
    return c


async def _create_ledger_account(h: Loans, contract_id: int, customer_id: int) -> None:
    [outcome] = await h.ledger.create_accounts([Account(
        id=contract_id, ledger=JPY, code=CARD_LOAN.code, flags=LOAN_ACCOUNT_FLAGS, user_data_128=customer_id)])
    if outcome.result.name.startswith("EXISTS_WITH_DIFFERENT_"):  # an earlier, unfinished opening for another
        raise Refused("request_reused", "this request id already began opening a card loan for another customer")
    if outcome.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the card-loan account: {outcome.result.name}")


async def _linked_account(h: Loans, account_id: int) -> DepositAccount:
    try:
        return await get_account(h.deposits, account_id)
    except DepositNotFound:
        raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}") from None


def _check_linked_status(account: DepositAccount) -> None:
    if account.status is not DepositStatus.ACTIVE:
        raise Refused(f"account_{account.status.value}", f"the linked deposit account {account.label} is"
                      f" {account.status.value}: no money moves through it")


async def _contract(h: Loans, contract_id: int) -> Contract:
    async with h.pool.acquire() as conn:
        found = await store.contract(conn, contract_id)
    if found is None:
        raise NotFound(f"no card loan {uuid.UUID(int=contract_id)}")
    return found


async def _locked(conn: asyncpg.Connection, contract_id: int) -> Contract:
    found = await store.contract(conn, contract_id, for_update=True)
    if found is None:
        raise NotFound(f"no card loan {uuid.UUID(int=contract_id)}")
    return found


async def _standing_locked(conn: asyncpg.Connection, contract_id: int) -> tuple[int, int]:
    """What is drawn and what ATM holds keep (cash being paid out), from the ledger's committed state, on the
    connection that holds the contract's lock."""
    found = await read_accounts(conn, [contract_id])
    invariant(len(found) == 1 and found[0].code == CARD_LOAN.code, "a contract has its card-loan ledger account")
    return found[0].balance_debit_minor(), found[0].debits_pending


async def _drawn_locked(conn: asyncpg.Connection, contract_id: int) -> int:
    """The drawn balance from the ledger's committed state, on the connection that holds the contract's lock."""
    return (await _standing_locked(conn, contract_id))[0]


async def _drawn(h: Loans, contract_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per contract: drawn, and held for cash being paid out at an ATM."""
    found = {a.id: (a.balance_debit_minor(), a.debits_pending) for a in await h.ledger.lookup_accounts(contract_ids)}
    invariant(len(found) == len(contract_ids), "every contract has its card-loan ledger account")
    return found


async def get_contract(h: Loans, contract_id: int) -> ContractView:
    c = await _contract(h, contract_id)
    drawn = await _drawn(h, [c.id])
    return view_of(c, *drawn[c.id], h.business_date())


async def contracts_of_customer(h: Loans, customer_id: int) -> list[ContractView]:
    async with h.pool.acquire() as conn:
        found = await store.contracts_of_customer(conn, customer_id)
    if not found:
        return []
    drawn = await _drawn(h, [c.id for c in found])
    today = h.business_date()
    return [view_of(c, *drawn[c.id], today) for c in found]


async def collections_of(h: Loans, contract_id: int) -> list[Collection]:
    """利息徴求の履歴: each period's interest, what was collected and what is still unpaid."""
    await _contract(h, contract_id)
    async with h.pool.acquire() as conn:
        return await store.collections_of(conn, contract_id)


# -- money ---------------------------------------------------------------------------------------------

def _check_size(amount_minor: int, channel: Channel, *, cash_max: bool) -> None:
    if amount_minor > AMOUNT_PER_TRANSACTION_MAX:
        raise LimitReached(limits.get("card_loan_amount_per_transaction_max_minor"), amount_minor)
    if cash_max and channel is Channel.CASH and amount_minor > CASH_DRAW_MAX:
        raise LimitReached(limits.get("card_loan_cash_draw_per_transaction_max_minor"), amount_minor)
    check_amount(amount_minor, channel)


def _replay(done: Movement, contract_id: int, kind: str, amount_minor: int) -> Movement:
    if (done.contract_id, done.kind, done.amount_minor) != (contract_id, kind, amount_minor):
        raise Refused("request_reused", "this request id was already used for a different movement")
    return done


async def draw(h: Loans, request_id: int, contract_id: int, amount_minor: int, to: Channel) -> Movement:
    """借入: to the linked account (振込) or in cash at an ATM, within what the line has available."""
    _check_size(amount_minor, to, cash_max=True)
    kind = "draw_to_account" if to is Channel.ACCOUNT else "draw_cash"
    transfer_id = derived_id(request_id, "draw")
    prior = await h.ledger.lookup_transfers([transfer_id])
    c = await _contract(h, contract_id)
    if not prior and to is Channel.ACCOUNT:
        _check_linked_status(await _linked_account(h, c.account_id))
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, contract_id)
        done = await store.movement(conn, request_id)
        if done is not None:
            return _replay(done, contract_id, kind, amount_minor)
        if not prior:  # a first attempt: the contract must allow it now
            check_can_draw(c.status)
            drawn, held = await _standing_locked(conn, c.id)
            if amount_minor > c.credit_line_minor - drawn - held:
                raise Refused("exceeds_available", f"¥{amount_minor:,} is more than the"
                              f" ¥{c.available_minor(drawn + held):,} available (line ¥{c.credit_line_minor:,},"
                              f" drawn ¥{drawn:,}, on hold at ATMs ¥{held:,})")
        business_date = prior[0].business_date if prior and prior[0].business_date else h.business_date()
        t = Transfer(id=transfer_id, debit_account_id=c.id,
                     credit_account_id=c.account_id if to is Channel.ACCOUNT else gl_account_id(ATM_CASH),
                     amount=amount_minor, ledger=JPY,
                     code=DRAW_TO_ACCOUNT_CODE if to is Channel.ACCOUNT else DRAW_CASH_CODE,
                     user_data_128=c.id, business_date=business_date)
        [outcome] = await h.ledger.create_transfers([t])
        if outcome.result not in POSTED:
            raise _refusal(outcome.result, amount_minor)
        m = Movement(request_id, c.id, kind, amount_minor, 0, amount_minor, business_date,
                     replayed=outcome.result is R.EXISTS)
        await store.insert_movement(conn, m)
    return m


async def repay(h: Loans, request_id: int, contract_id: int, amount_minor: int, source: Channel) -> Movement:
    """返済 (随時返済): from the linked account or in cash at an ATM; pays arrears of interest first, then principal."""
    _check_size(amount_minor, source, cash_max=False)
    kind = "repay_from_account" if source is Channel.ACCOUNT else "repay_cash"
    interest_id, principal_id = derived_id(request_id, "repay-interest"), derived_id(request_id, "repay-principal")
    prior = await h.ledger.lookup_transfers([interest_id, principal_id])
    c = await _contract(h, contract_id)
    if not prior and source is Channel.ACCOUNT:
        _check_linked_status(await _linked_account(h, c.account_id))
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, contract_id)
        done = await store.movement(conn, request_id)
        if done is not None:
            return _replay(done, contract_id, kind, amount_minor)
        if prior:  # posted before a crash, never recorded: the ledger says how it was split
            split = Allocation(sum(t.amount for t in prior if t.id == interest_id),
                               sum(t.amount for t in prior if t.id == principal_id))
            if split.interest_minor + split.principal_minor != amount_minor:
                raise Refused("request_reused", "this request id was already used for a different movement")
        else:
            check_can_repay(c.status)
            split = allocate_repayment(amount_minor, c.arrears_minor, await _drawn_locked(conn, c.id))
        business_date = prior[0].business_date if prior and prior[0].business_date else h.business_date()
        await _post_repayment(h, c, split, source, interest_id, principal_id, business_date, amount_minor)
        if split.interest_minor:
            await _pay_arrears(conn, c, split.interest_minor)
        m = Movement(request_id, c.id, kind, amount_minor, split.interest_minor, split.principal_minor,
                     business_date, replayed=bool(prior))
        await store.insert_movement(conn, m)
    return m


async def _post_repayment(h: Loans, c: Contract, split: Allocation, source: Channel, interest_id: int,
                          principal_id: int, business_date: dt.date, amount_minor: int) -> None:
    payer = c.account_id if source is Channel.ACCOUNT else gl_account_id(ATM_CASH)
    legs = []
    if split.interest_minor:
        legs.append(Transfer(id=interest_id, debit_account_id=payer, credit_account_id=gl_account_id(
            LOAN_INTEREST_INCOME), amount=split.interest_minor, ledger=JPY, code=INTEREST_CODE, user_data_128=c.id,
            business_date=business_date))
    if split.principal_minor:
        legs.append(Transfer(id=principal_id, debit_account_id=payer, credit_account_id=c.id,
                             amount=split.principal_minor, ledger=JPY,
                             code=REPAY_FROM_ACCOUNT_CODE if source is Channel.ACCOUNT else REPAY_CASH_CODE,
                             user_data_128=c.id, business_date=business_date))
    for leg in legs[:-1]:
        leg.flags = int(TransferFlags.LINKED)
    outcomes = await h.ledger.create_transfers(legs)
    failed = [o.result for o in outcomes if o.result not in POSTED]
    if failed:
        raise _refusal(next((r for r in failed if r is not R.LINKED_EVENT_FAILED), failed[0]), amount_minor)


async def _pay_arrears(conn: asyncpg.Connection, c: Contract, paid_minor: int) -> None:
    """Apply paid interest to the oldest unpaid collections; the contract leaves delinquency when none is left."""
    owed = (await store.unpaid(conn, [c.id])).get(c.id, [])
    invariant(sum(r.outstanding_minor for r in owed) == c.arrears_minor, "unpaid collections add up to the arrears")
    invariant(paid_minor <= c.arrears_minor, "a repayment pays no more interest than is in arrears")
    paid = pay_oldest_first(paid_minor, owed)
    await store.set_outstanding(conn, [(c.id, r) for r in paid])
    arrears = c.arrears_minor - paid_minor
    await store.update_standing(conn, replace(c, arrears_minor=arrears, arrears_since=arrears_since(paid),
                                              status=after_arrears(c.status, arrears)))


def _refusal(result: CreateTransferResult, amount_minor: int) -> Refused:
    name = result.name.lower()
    if name.startswith("exists_with_different_"):
        return Refused("request_reused", "this request id was already used with a different"
                       f" {name.removeprefix('exists_with_different_')}")
    if result is R.ID_ALREADY_FAILED:
        return Refused("request_reused", "this request id failed before with other details: use a new request id")
    if result is R.EXCEEDS_CREDITS:
        return Refused("insufficient_funds", f"the linked account's available balance is less than ¥{amount_minor:,}")
    if result is R.EXCEEDS_DEBITS:
        return Refused("exceeds_owed", f"¥{amount_minor:,} is more than is drawn")
    if result in (R.DEBIT_ACCOUNT_ALREADY_CLOSED, R.CREDIT_ACCOUNT_ALREADY_CLOSED):
        return Refused("account_closed", "an account of the movement is closed")
    if result in (R.DEBIT_ACCOUNT_NOT_FOUND, R.CREDIT_ACCOUNT_NOT_FOUND):
        return Refused("unknown_account", "an account of the movement is not in the ledger")
    return Refused(name, f"the ledger refused the posting: {name}")


# -- status ----------------------------------------------------------------------------------------------

async def change_status(h: Loans, request_id: int, contract_id: int, action: Action, reason: str) -> ContractView:
    """The bank's suspend (利用停止) and resume; idempotent by request id."""
    if action not in (Action.SUSPEND, Action.RESUME):
        raise ValueError(f"{action.value} is not a status change the bank requests here")
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, contract_id)  # first: a concurrent retry then finds this request's change
        done = await store.status_change(conn, request_id)
        if done is not None:
            if done["contract_id"] != contract_id or done["action"] != action.value:
                raise Refused("request_reused", "this request id already changed another contract or status")
        else:
            target = transition(c.status, action, arrears_minor=c.arrears_minor)
            await store.record_status_change(conn, request_id, c.id, action.value, c.status, target, reason)
            await store.update_standing(conn, replace(c, status=target))
    return await get_contract(h, contract_id)


async def suspend(h: Loans, request_id: int, contract_id: int, reason: str) -> ContractView:
    return await change_status(h, request_id, contract_id, Action.SUSPEND, reason)


async def resume(h: Loans, request_id: int, contract_id: int, reason: str) -> ContractView:
    return await change_status(h, request_id, contract_id, Action.RESUME, reason)


async def close_contract(h: Loans, request_id: int, contract_id: int, reason: str) -> ContractView:
    """解約: nothing drawn and no arrears; the interest accrued so far is collected from the linked account
    with the closing of the ledger account, as one linked chain."""
    async with h.pool.acquire() as conn:
        done = await store.status_change(conn, request_id)
    c = await _contract(h, contract_id)
    if done is None and c.status is not Status.CLOSED and c.balance_days_current + c.balance_days_next > 0:
        _check_linked_status(await _linked_account(h, c.account_id))
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, contract_id)
        done = await store.status_change(conn, request_id)  # again, under the lock: a concurrent retry
        if done is None:
            await _close_locked(h, conn, c, request_id, reason)
        elif done["contract_id"] != contract_id or done["action"] != Action.CLOSE.value:
            raise Refused("request_reused", "this request id already changed another contract or status")
    return await get_contract(h, contract_id)


async def _close_locked(h: Loans, conn: asyncpg.Connection, c: Contract, request_id: int, reason: str) -> None:
    target = transition(c.status, Action.CLOSE)  # refuses a closed or delinquent contract, naming the state
    if c.arrears_minor:
        raise Refused("arrears_outstanding", f"¥{c.arrears_minor:,} of interest is in arrears: pay it before closing")
    drawn = await _drawn_locked(conn, c.id)
    if drawn:
        raise Refused("balance_outstanding", f"¥{drawn:,} is still drawn: repay it before closing")
    today = h.business_date()
    if c.accrued_through < today - dt.timedelta(days=1):
        raise Refused("accrual_behind", f"interest is accrued only through {c.accrued_through}: run the day-end"
                      " accrual before closing")
    balance_days = c.balance_days_current + c.balance_days_next
    final_minor = interest_minor(balance_days, c.rate_percent)
    # No business date on these legs: a retry on a later day (after a crash) still finds them.
    chain = []
    if final_minor:
        chain.append(Transfer(id=derived_id(request_id, "final-interest"), debit_account_id=c.account_id,
                              credit_account_id=gl_account_id(LOAN_INTEREST_INCOME), amount=final_minor, ledger=JPY,
                              code=INTEREST_CODE, flags=int(TransferFlags.LINKED), user_data_128=c.id))
    chain.append(Transfer(id=derived_id(request_id, "close"), debit_account_id=c.id,
                          credit_account_id=gl_account_id(ACCOUNT_CLOSURES), amount=0, ledger=JPY, code=CLOSING_CODE,
                          flags=int(TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT), user_data_128=c.id))
    outcomes = await h.ledger.create_transfers(chain)
    failed = [o.result for o in outcomes if o.result not in POSTED]
    if failed:
        first = next((r for r in failed if r is not R.LINKED_EVENT_FAILED), failed[0])
        if first is R.EXCEEDS_CREDITS:
            raise Refused("insufficient_funds", f"the linked account cannot pay the final interest of ¥{final_minor:,}")
        raise _refusal(first, final_minor)
    if final_minor:
        await store.insert_collections(conn, [Collection(c.id, today, "final", today, balance_days, c.rate_percent,
                                                         final_minor, 0)])
    await store.record_status_change(conn, request_id, c.id, Action.CLOSE.value, c.status, target, reason)
    await store.update_standing(conn, replace(c, status=target, closed_on=today, balance_days_current=0,
                                              balance_days_next=0))
