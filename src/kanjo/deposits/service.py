"""Handlers of ordinary deposits: open, deposit, withdraw, transfer, balance, statement, status, close.

Money moves only through the ledger, by transfers whose ids derive from the caller's request id:
a retried request finds its transfer and answers as the first time, never moving money twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from kanjo.accounting import ACCOUNT_CLOSURES, CASH_VAULT, GUARDED_DEPOSIT_FLAGS, JPY, ORDINARY_DEPOSIT, gl_account_id
from kanjo.deposits import store
from kanjo.deposits.limits import AMOUNT_PER_TRANSACTION_MAX, STATEMENT_LINES_MAX
from kanjo.deposits.model import (
    CASH_DEPOSIT_CODE,
    CASH_WITHDRAWAL_CODE,
    CLOSING_CODE,
    CODE_LABELS,
    TRANSFER_CODE,
    Action,
    Balance,
    DepositAccount,
    Posting,
    Refused,
    Status,
    Subject,
    check_can_move,
    transition,
)
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import (
    Account,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    LedgerUnavailable,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-6465706f7300")

# Is this customer allowed to open an account? None when yes, else the reason (wired by the app).
CustomerCheck = Callable[[int], Awaitable[str | None]]


@dataclass
class Deposits:
    """The context's handle: its database pool, the ledger, the business date and the customer check."""

    pool: asyncpg.Pool
    ledger: Ledger
    business_date: Callable[[], dt.date]
    customer_check: CustomerCheck


class NotFound(Exception):
    """No deposit account or branch with that id or number."""


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return uuid.uuid5(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}").int


# -- accounts ----------------------------------------------------------------------------------------

async def open_ordinary_account(d: Deposits, request_id: int, customer_id: int, branch_code: str) -> DepositAccount:
    async with d.pool.acquire() as conn:
        existing = await store.account_by_open_request(conn, request_id)
        if existing is not None:
            if existing.customer_id != customer_id or existing.branch_code != branch_code:
                raise Refused("request_reused", "this request id already opened an account for another"
                              f" {'customer' if existing.customer_id != customer_id else 'branch'}")
            await _ensure_ledger_account(d, existing)
            return existing
        if not await store.branch_exists(conn, branch_code):
            raise NotFound(f"no branch {branch_code}")
    reason = await d.customer_check(customer_id)
    if reason is not None:
        raise Refused("customer_not_eligible", reason)
    today = d.business_date()
    account_id = derived_id(request_id, "account")
    # The ledger account first (idempotent by id): a product row never exists without its money.
    await _create_ledger_account(d, account_id, customer_id)
    async with d.pool.acquire() as conn, conn.transaction():
        number = await store.take_account_number(conn, branch_code)
        if number is None or number > 9_999_999:
            raise LimitReached(limits.get("deposit_account_numbers_per_branch_max"), number or 0)
        account = DepositAccount(account_id, branch_code, number, Subject.ORDINARY, customer_id, Status.ACTIVE,
                                 today, None, today)
        try:
            await store.insert_account(conn, account, request_id)
        except asyncpg.UniqueViolationError:
            raced = await store.account_by_open_request(conn, request_id)
            if raced is None:
                raise
            return raced
    return account


async def _create_ledger_account(d: Deposits, account_id: int, customer_id: int) -> None:
    [outcome] = await d.ledger.create_accounts([Account(
        id=account_id, ledger=JPY, code=ORDINARY_DEPOSIT.code, flags=GUARDED_DEPOSIT_FLAGS,
        user_data_128=customer_id)])
    if outcome.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the deposit account: {outcome.result.name}")


async def _ensure_ledger_account(d: Deposits, account: DepositAccount) -> None:
    await _create_ledger_account(d, account.id, account.customer_id)


async def get_account(d: Deposits, account_id: int) -> DepositAccount:
    async with d.pool.acquire() as conn:
        account = await store.account(conn, account_id)
    if account is None:
        raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}")
    return account


async def find_account(d: Deposits, branch_code: str, account_number: int) -> DepositAccount:
    async with d.pool.acquire() as conn:
        account = await store.account_by_number(conn, branch_code, account_number)
    if account is None:
        raise NotFound(f"no account {branch_code}-{account_number:07d}")
    return account


async def accounts_of_customer(d: Deposits, customer_id: int) -> list[DepositAccount]:
    async with d.pool.acquire() as conn:
        return await store.accounts_of_customer(conn, customer_id)


async def balance(d: Deposits, account_id: int) -> Balance:
    await get_account(d, account_id)
    found = await d.ledger.lookup_accounts([account_id])
    if not found:
        raise LedgerUnavailable("the account's ledger record is not there yet; retry")
    a = found[0]
    posted = a.credits_posted - a.debits_posted
    return Balance(posted, a.debits_pending, posted - a.debits_pending)


# -- money ---------------------------------------------------------------------------------------------

async def deposit_cash(d: Deposits, request_id: int, account_id: int, amount_minor: int) -> Posting:
    """Cash in at a teller: debit the vault, credit the customer."""
    return await _move(d, request_id, "cash-deposit", gl_account_id(CASH_VAULT), account_id, amount_minor,
                       CASH_DEPOSIT_CODE, customer_side=[account_id])


async def withdraw_cash(d: Deposits, request_id: int, account_id: int, amount_minor: int) -> Posting:
    """Cash out at a teller: debit the customer, credit the vault."""
    return await _move(d, request_id, "cash-withdrawal", account_id, gl_account_id(CASH_VAULT), amount_minor,
                       CASH_WITHDRAWAL_CODE, customer_side=[account_id])


async def transfer(d: Deposits, request_id: int, from_account_id: int, to_account_id: int,
                   amount_minor: int) -> Posting:
    """An intra-bank transfer between two customers' ordinary accounts (振替)."""
    if from_account_id == to_account_id:
        raise Refused("same_account", "the accounts to debit and to credit are the same")
    return await _move(d, request_id, "transfer", from_account_id, to_account_id, amount_minor, TRANSFER_CODE,
                       customer_side=[from_account_id, to_account_id])


async def _move(d: Deposits, request_id: int, leg: str, debit_id: int, credit_id: int, amount_minor: int,
                code: int, customer_side: list[int]) -> Posting:
    if not 1 <= amount_minor <= AMOUNT_PER_TRANSACTION_MAX:
        if amount_minor > AMOUNT_PER_TRANSACTION_MAX:
            raise LimitReached(limits.get("deposit_amount_per_transaction_max_minor"), amount_minor)
        raise Refused("invalid_amount", "the amount must be at least ¥1")
    transfer_id = derived_id(request_id, leg)
    prior = await d.ledger.lookup_transfers([transfer_id])
    if not prior:  # a first attempt: the accounts must allow it now
        for account_id in customer_side:
            account = await get_account(d, account_id)
            check_can_move(account.status, debit=account_id == debit_id)
    t = Transfer(id=transfer_id, debit_account_id=debit_id, credit_account_id=credit_id, amount=amount_minor,
                 ledger=JPY, code=code, business_date=prior[0].business_date if prior else d.business_date())
    [outcome] = await d.ledger.create_transfers([t])
    result = outcome.result
    if result is R.OK or result is R.EXISTS:
        async with d.pool.acquire() as conn:
            await store.touch(conn, customer_side, t.business_date or d.business_date())
        return Posting(transfer_id, outcome.amount, outcome.timestamp, replayed=result is R.EXISTS)
    raise _refusal(result, d, debit_id, amount_minor)


def _refusal(result: CreateTransferResult, d: Deposits, debit_id: int, amount_minor: int) -> Refused:
    name = result.name.lower()
    if name.startswith("exists_with_different_"):
        field = name.removeprefix("exists_with_different_")
        return Refused("request_reused", f"this request id was already used with a different {field}")
    if result is R.EXCEEDS_CREDITS:
        return Refused("insufficient_funds", f"the available balance is less than ¥{amount_minor:,}")
    if result in (R.DEBIT_ACCOUNT_ALREADY_CLOSED, R.CREDIT_ACCOUNT_ALREADY_CLOSED):
        return Refused("account_closed", "the account is closed")
    return Refused(name, f"the ledger refused the posting: {name}")


# -- statements ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StatementLine:
    timestamp: int
    business_date: dt.date
    description: str
    deposit_minor: int
    withdrawal_minor: int
    balance_minor: int
    pending: bool


async def statement(d: Deposits, account_id: int, *, after_timestamp: int = 0, limit: int = 100) -> list[StatementLine]:
    """入出金明細: the account's movements in booking order, each with the balance after it."""
    if limit > STATEMENT_LINES_MAX:
        raise LimitReached(limits.get("deposit_statement_lines_max"), limit)
    await get_account(d, account_id)
    transfers = await d.ledger.get_account_transfers(account_id, timestamp_min=after_timestamp + 1, limit=limit)
    balances = {b.timestamp: b for b in await d.ledger.get_account_balances(
        account_id, timestamp_min=after_timestamp + 1, limit=max(limit * 2, 1))}
    lines = []
    for t in transfers:
        credit = t.credit_account_id == account_id
        b = balances.get(t.timestamp)
        lines.append(StatementLine(
            timestamp=t.timestamp, business_date=t.business_date or d.business_date(),
            description=CODE_LABELS.get(t.code, str(t.code)),
            deposit_minor=t.amount if credit else 0, withdrawal_minor=0 if credit else t.amount,
            balance_minor=(b.credits_posted - b.debits_posted) if b else 0,
            pending=bool(t.flags & int(TransferFlags.PENDING)),
        ))
    return lines


# -- status ----------------------------------------------------------------------------------------------

async def change_status(d: Deposits, request_id: int, account_id: int, action: Action, reason: str) -> DepositAccount:
    """freeze / unfreeze / mark dormant / revive. Idempotent by request id."""
    if action is Action.CLOSE:
        raise ValueError("use close_account")
    async with d.pool.acquire() as conn, conn.transaction():
        done = await store.status_change(conn, request_id)
        if done is not None:
            if done["account_id"] != account_id or done["action"] != action.value:
                raise Refused("request_reused", "this request id already changed another account or status")
        else:
            account = await store.account(conn, account_id, for_update=True)
            if account is None:
                raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}")
            target = transition(account.status, action)
            await store.record_status_change(conn, request_id, account_id, action.value, account.status, target,
                                             reason, None)
    return await get_account(d, account_id)


async def close_account(d: Deposits, request_id: int, account_id: int, reason: str) -> DepositAccount:
    """解約: only at a zero balance with nothing held; the ledger then refuses any further posting."""
    async with d.pool.acquire() as conn:
        done = await store.status_change(conn, request_id)
    if done is not None and (done["account_id"] != account_id or done["action"] != Action.CLOSE.value):
        raise Refused("request_reused", "this request id already changed another account or status")
    account = await get_account(d, account_id)
    if done is None:
        transition(account.status, Action.CLOSE)  # refuses closing a frozen or closed account
        now = await balance(d, account_id)
        if now.balance_minor != 0 or now.held_minor != 0:
            raise Refused("balance_not_zero", f"the balance is ¥{now.balance_minor:,} with ¥{now.held_minor:,} held:"
                          " pay it out before closing")
    closing = Transfer(id=derived_id(request_id, "close"), debit_account_id=account_id,
                       credit_account_id=gl_account_id(ACCOUNT_CLOSURES), amount=0, ledger=JPY, code=CLOSING_CODE,
                       flags=int(TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT))
    [outcome] = await d.ledger.create_transfers([closing])
    if outcome.result not in (R.OK, R.EXISTS):
        raise _refusal(outcome.result, d, account_id, 0)
    if done is None:
        async with d.pool.acquire() as conn, conn.transaction():
            current = await store.account(conn, account_id, for_update=True)
            assert current is not None
            if current.status is not Status.CLOSED:
                transition(current.status, Action.CLOSE)
                await store.record_status_change(conn, request_id, account_id, Action.CLOSE.value, current.status,
                                                 Status.CLOSED, reason, d.business_date())
    return await get_account(d, account_id)
