"""Handlers of ordinary deposits, 総合口座 and 当座預金: open, deposit, withdraw, transfer, balance, statement
(by booking order or by period), status, close.

Money moves only through the ledger, by transfers whose ids derive from the caller's request id:
a retried request finds its transfer and answers as the first time, never moving money twice.
On a 総合口座 (general account) a movement also draws or repays its overdraft in the same linked
chain, planned under the account's lock (the rules are in overdraft.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from kanjo.accounting import (
    ACCOUNT_CLOSURES,
    ATM_CASH,
    CASH_VAULT,
    CURRENT_DEPOSIT,
    GUARDED_DEPOSIT_FLAGS,
    JPY,
    LOAN_INTEREST_INCOME,
    ORDINARY_DEPOSIT,
    OVERDRAFT_RECEIVABLE,
    gl_account_id,
)
from kanjo.deposits import overdraft, store
from kanjo.deposits.grouped import Grouped
from kanjo.deposits.limits import (
    AMOUNT_PER_TRANSACTION_MAX,
    STATEMENT_BACKDATING_DAYS_MAX,
    STATEMENT_LINES_MAX,
    STATEMENT_PERIOD_MONTHS_MAX,
    STATEMENT_TRANSFERS_SCANNED_MAX,
    TOUCHED_REMEMBERED_MAX,
)
from kanjo.deposits.model import (
    ATM_DEPOSIT_CODE,
    ATM_WITHDRAWAL_CODE,
    CASH_DEPOSIT_CODE,
    CASH_WITHDRAWAL_CODE,
    CLOSING_CODE,
    CODE_LABELS,
    OVERDRAFT_DRAW_CODE,
    OVERDRAFT_INTEREST_CODE,
    OVERDRAFT_REPAY_CODE,
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
from kanjo.deposits.overdraft import Collateral, Overdraft, OverdraftState, Plan
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import (
    Account,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    LedgerUnavailable,
    Transfer,
    TransferFlags,
    read_accounts,
)

R = CreateTransferResult
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-6465706f7300")

# May this account close? None when nothing else depends on it, else the reason (wired by the app).
ClosingCheck = Callable[[int], Awaitable[str | None]]

# Is this customer allowed to open an account? None when yes, else the reason (wired by the app).
CustomerCheck = Callable[[int], Awaitable[str | None]]


@dataclass
class Deposits:
    """The context's handle: its database pool, the ledger, the business date and the customer check;
    `collateral` gives a 総合口座's pledged time deposits (wired by the app; without it nothing is pledged)."""

    pool: asyncpg.Pool
    ledger: Ledger
    business_date: Callable[[], dt.date]
    customer_check: CustomerCheck
    collateral: Collateral | None = None
    closing_check: ClosingCheck | None = None
    # Statement and passbook wording of every transfer code that can touch a deposit account (其の他 contexts'
    # codes are added by the app: 定期預入, 手数料, カードローン…).
    labels: Mapping[int, str] = field(default_factory=lambda: dict(CODE_LABELS))
    # Accounts whose activity of a business date this process already recorded (bounded: see _touch).
    touched: dict[int, dt.date] = field(default_factory=dict)
    grouped: Grouped = field(init=False, repr=False)  # the account read, grouped across concurrent callers

    def __post_init__(self) -> None:
        self.grouped = Grouped(self.pool)


class NotFound(Exception):
    """No deposit account or branch with that id or number."""


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return name_id(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}")


# -- accounts ----------------------------------------------------------------------------------------

def ledger_code(subject: Subject) -> int:
    """The product code of a subject's ledger accounts: 当座預金 has its own; a 総合口座 is an ordinary deposit."""
    return CURRENT_DEPOSIT.code if subject is Subject.CURRENT else ORDINARY_DEPOSIT.code


async def open_ordinary_account(d: Deposits, request_id: int, customer_id: int, branch_code: str,
                                subject: Subject = Subject.ORDINARY) -> DepositAccount:
    """普通預金, a 総合口座 (subject SOGO) with its overdraft account, or a 当座預金 (subject CURRENT, see
    open_current_account). Numbered from the branch's one counter, whatever the subject. Idempotent by request id."""
    async with d.pool.acquire() as conn:
        existing = await store.account_by_open_request(conn, request_id)
        if existing is not None:
            if existing.customer_id != customer_id or existing.branch_code != branch_code:
                raise Refused("request_reused", "this request id already opened an account for another"
                              f" {'customer' if existing.customer_id != customer_id else 'branch'}")
            opened_as = await store.opened_as(conn, existing.id)
            if opened_as != subject.value:
                raise Refused("request_reused", f"this request id already opened a {opened_as} account")
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
    await _create_ledger_account(d, account_id, customer_id, subject)
    if subject is Subject.SOGO:
        await _create_overdraft_ledger_account(d, account_id, customer_id)
    async with d.pool.acquire() as conn, conn.transaction():
        number = await store.take_account_number(conn, branch_code)
        if number is None or number > 9_999_999:
            raise LimitReached(limits.get("deposit_account_numbers_per_branch_max"), number or 0)
        account = DepositAccount(account_id, branch_code, number, subject, customer_id, Status.ACTIVE,
                                 today, None, today)
        try:
            await store.insert_account(conn, account, request_id)
            if subject is Subject.SOGO:
                await overdraft.insert_overdraft(conn, account_id, today)
        except asyncpg.UniqueViolationError:
            raced = await store.account_by_open_request(conn, request_id)
            if raced is None:
                raise
            return raced
    return account


async def open_current_account(d: Deposits, request_id: int, customer_id: int, branch_code: str) -> DepositAccount:
    """当座預金: a payment account bearing no interest, with statements and no passbook (ledger code 2002).
    Cash, transfers, status and closing are those of an ordinary account. Idempotent by request id."""
    return await open_ordinary_account(d, request_id, customer_id, branch_code, Subject.CURRENT)


async def _create_ledger_account(d: Deposits, account_id: int, customer_id: int, subject: Subject) -> None:
    [outcome] = await d.ledger.create_accounts([Account(
        id=account_id, ledger=JPY, code=ledger_code(subject), flags=GUARDED_DEPOSIT_FLAGS,
        user_data_128=customer_id)])
    if outcome.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the deposit account: {outcome.result.name}")


async def _create_overdraft_ledger_account(d: Deposits, account_id: int, customer_id: int) -> None:
    [outcome] = await d.ledger.create_accounts([Account(
        id=overdraft.overdraft_account_id(account_id), ledger=JPY, code=OVERDRAFT_RECEIVABLE.code,
        flags=overdraft.OVERDRAFT_ACCOUNT_FLAGS, user_data_128=customer_id)])
    if outcome.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the overdraft account: {outcome.result.name}")


async def _ensure_ledger_account(d: Deposits, account: DepositAccount) -> None:
    await _create_ledger_account(d, account.id, account.customer_id, account.subject)
    if account.subject is Subject.SOGO:
        await _create_overdraft_ledger_account(d, account.id, account.customer_id)


async def convert_to_general_account(d: Deposits, account_id: int) -> DepositAccount:
    """An active ordinary account becomes a 総合口座: its time deposits become collateral. Idempotent."""
    account = await get_account(d, account_id)
    if account.subject is Subject.CURRENT:
        raise Refused("not_an_ordinary_account", f"account {account.label} is a current account (当座預金): only an"
                      " ordinary account can become a 総合口座")
    if account.subject is Subject.ORDINARY and account.status is not Status.ACTIVE:
        raise Refused("account_not_active", f"only an active account can become a 総合口座; this one is"
                      f" {account.status.value}")
    await _create_overdraft_ledger_account(d, account.id, account.customer_id)
    async with d.pool.acquire() as conn, conn.transaction():
        current = await store.account(conn, account_id, for_update=True)
        invariant(current is not None, "an account is never deleted")
        assert current is not None
        if current.subject is Subject.ORDINARY:
            if current.status is not Status.ACTIVE:
                raise Refused("account_not_active", f"only an active account can become a 総合口座; this one is"
                              f" {current.status.value}")
            await overdraft.mark_general(conn, account_id)
        await overdraft.insert_overdraft(conn, account_id, d.business_date())
    return await get_account(d, account_id)


async def get_account(d: Deposits, account_id: int) -> DepositAccount:
    account = await d.grouped.account(account_id)
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


async def deposit_at_atm(d: Deposits, request_id: int, account_id: int, amount_minor: int) -> Posting:
    """Cash in at an ATM: debit the ATMs' cash, credit the customer."""
    return await _move(d, request_id, "atm-deposit", gl_account_id(ATM_CASH), account_id, amount_minor,
                       ATM_DEPOSIT_CODE, customer_side=[account_id])


async def check_cash_deposit(d: Deposits, account_id: int, amount_minor: int) -> None:
    """Whether cash paid in now would be credited (an ATM asks before it stores the notes it counted): the amount
    within the limit and the account able to take money. Raises Refused or LimitReached; posts nothing."""
    if amount_minor > AMOUNT_PER_TRANSACTION_MAX:
        raise LimitReached(limits.get("deposit_amount_per_transaction_max_minor"), amount_minor)
    if amount_minor < 1:
        raise Refused("invalid_amount", "the amount must be at least ¥1")
    account = await get_account(d, account_id)
    check_can_move(account.status, debit=False)


async def post_atm_withdrawal(d: Deposits, request_id: int, account_id: int, amount_minor: int) -> Posting:
    """Cash that left an ATM without a hold to post (an in-doubt item the ATM's journal settled): debit the
    customer now, credit the ATMs' cash."""
    return await _move(d, request_id, "atm-withdrawal", account_id, gl_account_id(ATM_CASH), amount_minor,
                       ATM_WITHDRAWAL_CODE, customer_side=[account_id])


async def transfer(d: Deposits, request_id: int, from_account_id: int, to_account_id: int,
                   amount_minor: int) -> Posting:
    """An intra-bank transfer between two customers' ordinary accounts (振替)."""
    if from_account_id == to_account_id:
        raise Refused("same_account", "the accounts to debit and to credit are the same")
    return await _move(d, request_id, "transfer", from_account_id, to_account_id, amount_minor, TRANSFER_CODE,
                       customer_side=[from_account_id, to_account_id])


async def _move(d: Deposits, request_id: int, leg: str, debit_id: int, credit_id: int, amount_minor: int,
                code: int, customer_side: list[int], *, hold_timeout_s: int = 0) -> Posting:
    if not 1 <= amount_minor <= AMOUNT_PER_TRANSACTION_MAX:
        if amount_minor > AMOUNT_PER_TRANSACTION_MAX:
            raise LimitReached(limits.get("deposit_amount_per_transaction_max_minor"), amount_minor)
        raise Refused("invalid_amount", "the amount must be at least ¥1")
    transfer_id = derived_id(request_id, leg)
    t = Transfer(id=transfer_id, debit_account_id=debit_id, credit_account_id=credit_id, amount=amount_minor,
                 ledger=JPY, code=code, business_date=d.business_date())
    if hold_timeout_s:  # a hold: reserved now, posted or voided later (see holds.py)
        t.flags, t.timeout = int(TransferFlags.PENDING), hold_timeout_s
    accounts = [await get_account(d, account_id) for account_id in customer_side]
    plain = all(a.subject is not Subject.SOGO for a in accounts)
    if plain and all(_may_move(a, debit_id) for a in accounts):
        # the usual case, in one ledger request: the ledger itself tells a retry of the same movement (EXISTS)
        [outcome] = await d.ledger.create_transfers([t])
        if outcome.result is R.OK or outcome.result is R.EXISTS:
            await _touch(d, customer_side, t.business_date or d.business_date())
            return Posting(t.id, outcome.amount, outcome.timestamp, replayed=outcome.result is R.EXISTS)
        if not outcome.result.name.startswith("EXISTS_WITH_DIFFERENT_"):
            raise _refusal(outcome.result, d, t.debit_account_id, t.amount)
    # a retry (of another business date, of a 総合口座's chain), a 総合口座, or an account that refuses money now
    prior = await d.ledger.lookup_transfers([transfer_id])
    if prior and prior[0].flags & int(TransferFlags.LINKED):
        return _replayed(prior[0], t)  # part of a 総合口座's chain: compared here, the chain is not posted again
    if prior:  # a retry: the ledger compares it with the first
        t.business_date = prior[0].business_date
        return await _post(d, t, customer_side)
    for account in accounts:  # a first attempt: the accounts must allow it now
        check_can_move(account.status, debit=account.id == debit_id)
    general = [a.id for a in accounts if a.subject is Subject.SOGO]
    if general:
        return await _move_general(d, request_id, leg, t, general, customer_side)
    return await _post(d, t, customer_side)


def _may_move(account: DepositAccount, debit_id: int) -> bool:
    try:
        check_can_move(account.status, debit=account.id == debit_id)
    except Refused:
        return False
    return True


def _replayed(prior: Transfer, t: Transfer) -> Posting:
    """The answer to a retry of a movement already carried out in a linked chain (the ledger's order of fields)."""
    for name in ("debit_account_id", "credit_account_id", "amount", "ledger", "code", "timeout"):
        if getattr(prior, name) != getattr(t, name):
            raise Refused("request_reused", f"this request id was already used with a different {name}")
    return Posting(prior.id, prior.amount, prior.timestamp, replayed=True)


async def _post(d: Deposits, t: Transfer, customer_side: list[int]) -> Posting:
    [outcome] = await d.ledger.create_transfers([t])
    result = outcome.result
    if result is R.OK or result is R.EXISTS:
        await _touch(d, customer_side, t.business_date or d.business_date())
        return Posting(t.id, outcome.amount, outcome.timestamp, replayed=result is R.EXISTS)
    raise _refusal(result, d, t.debit_account_id, t.amount)


async def _touch(d: Deposits, account_ids: list[int], on: dt.date) -> None:
    """Record the customers' activity of the day (dormancy.py): once per account and day from this process — the
    busiest accounts move many times a day, and a second write of the same date changes nothing."""
    fresh = [a for a in account_ids if d.touched.get(a) != on]
    if not fresh:
        return
    async with d.pool.acquire() as conn:
        await store.touch(conn, fresh, on)
    if len(d.touched) + len(fresh) > TOUCHED_REMEMBERED_MAX:
        d.touched.clear()
    d.touched.update(dict.fromkeys(fresh, on))


async def _move_general(d: Deposits, request_id: int, leg: str, main: Transfer, general: list[int],
                        customer_side: list[int]) -> Posting:
    """A movement touching a 総合口座: plan the overdraft legs under its lock, then post one linked chain.

    The lock serialises money in and out of the account, so the limit checked is the limit kept;
    the plan is recorded before posting, so a retry (or a concurrent duplicate) posts the same chain
    and gets the ledger's first answer.
    """
    refusal: Refused | None = None
    posted = None
    async with d.pool.acquire() as conn, conn.transaction():
        locked = await overdraft.lock_overdrafts(conn, general)
        invariant(set(locked) == set(general), "every 総合口座 has its overdraft row")
        plan = await overdraft.planned(conn, request_id)
        if plan is None:
            plan = await _plan(d, conn, leg, main, locked)
            await overdraft.record_plan(conn, request_id, plan)
        elif (plan.leg, plan.debit_account_id, plan.credit_account_id, plan.amount_minor) != (
                leg, main.debit_account_id, main.credit_account_id, main.amount):
            raise Refused("request_reused", "this request id was already used for a different movement")
        if plan.refused is not None:
            refusal = Refused(plan.refused, f"the available balance and the overdraft (limit ¥{plan.limit_minor:,})"
                              f" do not cover ¥{plan.amount_minor:,}")
        else:
            chain = _chain(request_id, main, plan, locked)
            outcomes = await d.ledger.create_transfers(chain)
            failed = [o.result for o in outcomes if o.result not in (R.OK, R.EXISTS)]
            if failed:
                cause = next((r for r in failed if r is not R.LINKED_EVENT_FAILED), failed[0])
                refusal = _refusal(cause, d, main.debit_account_id, main.amount)
            else:
                await _after_chain(conn, plan, chain, outcomes, locked)
                await store.touch(conn, customer_side, plan.business_date)
                posted = next(o for t, o in zip(chain, outcomes, strict=True) if t.id == main.id)
    if refusal is not None:
        raise refusal  # after the commit: the plan stays, and a retry is answered the same
    assert posted is not None
    return Posting(main.id, posted.amount, posted.timestamp, replayed=posted.result is R.EXISTS)


async def _plan(d: Deposits, conn: asyncpg.Connection, leg: str, main: Transfer,
                locked: dict[int, Overdraft]) -> Plan:
    """How much the movement draws or repays on each 総合口座 it touches (the caller holds their locks)."""
    ids = [main.debit_account_id, main.credit_account_id, *(od.overdraft_account_id for od in locked.values())]
    found = {a.id: a for a in await read_accounts(conn, ids)}
    invariant(all(i in found for i in ids), "a deposit account and its overdraft account are in the ledger")
    debit_overdraft, credit_repaid, limit = 0, 0, None
    od = locked.get(main.debit_account_id)
    if od is not None:
        available = overdraft.available_minor(found[od.account_id])
        drawn = overdraft.drawn_minor(found[od.overdraft_account_id])
        after = overdraft.drawn_after_money_out(available, drawn, main.amount)
        if after > 0:
            limit = overdraft.overdraft_limit(await overdraft.pledges_of(d, conn, od.account_id))
            if after > limit:
                return Plan(leg, main.debit_account_id, main.credit_account_id, main.amount, 0, 0, limit,
                            "insufficient_funds", main.business_date or d.business_date())
        debit_overdraft = after - drawn
    od = locked.get(main.credit_account_id)
    if od is not None:
        credit_repaid = overdraft.repaid_by_money_in(overdraft.available_minor(found[od.account_id]),
                                                     overdraft.drawn_minor(found[od.overdraft_account_id]),
                                                     main.amount)
    return Plan(leg, main.debit_account_id, main.credit_account_id, main.amount, debit_overdraft, credit_repaid,
                limit, None, main.business_date or d.business_date())


def _chain(request_id: int, main: Transfer, plan: Plan, locked: dict[int, Overdraft]) -> list[Transfer]:
    """[draw, or repay from spare funds, on the debit side] → the movement → [repay on the credit side]."""
    chain: list[Transfer] = []
    debit_od, credit_od = locked.get(main.debit_account_id), locked.get(main.credit_account_id)
    if plan.debit_overdraft_minor > 0:
        assert debit_od is not None
        chain.append(Transfer(id=derived_id(request_id, f"{plan.leg}:overdraft-draw"),
                              debit_account_id=debit_od.overdraft_account_id, credit_account_id=debit_od.account_id,
                              amount=plan.debit_overdraft_minor, code=OVERDRAFT_DRAW_CODE))
    elif plan.debit_overdraft_minor < 0:
        assert debit_od is not None
        chain.append(Transfer(id=derived_id(request_id, f"{plan.leg}:overdraft-repay-spare"),
                              debit_account_id=debit_od.account_id, credit_account_id=debit_od.overdraft_account_id,
                              amount=-plan.debit_overdraft_minor, code=OVERDRAFT_REPAY_CODE))
    main.business_date = plan.business_date
    chain.append(main)
    if plan.credit_repaid_minor > 0:
        assert credit_od is not None
        chain.append(Transfer(id=derived_id(request_id, f"{plan.leg}:overdraft-repay"),
                              debit_account_id=credit_od.account_id, credit_account_id=credit_od.overdraft_account_id,
                              amount=plan.credit_repaid_minor, code=OVERDRAFT_REPAY_CODE))
    for t in chain:
        t.ledger, t.business_date = JPY, plan.business_date
    for t in chain[:-1]:
        t.flags |= int(TransferFlags.LINKED)
    return chain


async def _after_chain(conn: asyncpg.Connection, plan: Plan, chain: list[Transfer], outcomes: list,
                       locked: dict[int, Overdraft]) -> None:
    """Repayments pay added interest first; a drawing is re-checked against its limit (pair assertion)."""
    first_time = {t.id for t, o in zip(chain, outcomes, strict=True) if o.result is R.OK}
    for t in chain:
        if t.code == OVERDRAFT_REPAY_CODE and t.id in first_time:
            await overdraft.note_repaid(conn, t.debit_account_id, t.amount)
    if plan.debit_overdraft_minor > 0 and chain[0].id in first_time:
        od = locked[plan.debit_account_id]
        [after] = await read_accounts(conn, [od.overdraft_account_id])
        invariant(overdraft.drawn_minor(after) <= (plan.limit_minor or 0),
                  "a 総合口座's overdraft stays within its limit after a drawing")


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


@dataclass(frozen=True, slots=True)
class StatementPage:
    lines: list[StatementLine]
    next_after: int | None  # pass as `after_timestamp` (with the same period) for the next page; None at the end


async def statement(d: Deposits, account_id: int, *, after_timestamp: int = 0, limit: int = 100,
                    from_date: dt.date | None = None, to_date: dt.date | None = None) -> list[StatementLine]:
    """入出金明細: the account's movements in booking order, each with the balance after it (see statement_page)."""
    return (await statement_page(d, account_id, after_timestamp=after_timestamp, limit=limit, from_date=from_date,
                                 to_date=to_date)).lines


async def statement_page(d: Deposits, account_id: int, *, after_timestamp: int = 0, limit: int = 100,
                         from_date: dt.date | None = None, to_date: dt.date | None = None) -> StatementPage:
    """入出金明細, one page: the movements booked after `after_timestamp`, in booking order, with the balance after
    each. With a period (`from_date` / `to_date`, inclusive business dates) only the movements of those days:
    a missing `to_date` is today, a missing `from_date` the day the account opened; at most
    `deposit_statement_period_months_max` calendar months."""
    if limit > STATEMENT_LINES_MAX:
        raise LimitReached(limits.get("deposit_statement_lines_max"), limit)
    if limit < 1:
        raise ValueError("a statement page has at least one line")
    account = await get_account(d, account_id)
    if from_date is None and to_date is None:
        transfers = await d.ledger.get_account_transfers(account_id, timestamp_min=after_timestamp + 1, limit=limit)
        next_after = transfers[-1].timestamp if len(transfers) == limit else None
    else:
        first_day, last_day = statement_period(account, from_date, to_date, d.business_date())
        transfers, next_after = await _transfers_in_period(d, account_id, first_day, last_day, after_timestamp,
                                                           limit)
    return StatementPage(await _statement_lines(d, account_id, transfers), next_after)


def statement_period(account: DepositAccount, from_date: dt.date | None, to_date: dt.date | None,
                     today: dt.date) -> tuple[dt.date, dt.date]:
    """The inclusive business dates a statement covers; refuses a reversed period or one over the limit."""
    opened_on = account.opened_on
    assert isinstance(opened_on, dt.date)
    first_day = from_date or opened_on
    last_day = to_date or max(today, first_day)  # nothing is booked on a later day than today
    if first_day > last_day:
        raise Refused("invalid_period", f"the period starts on {first_day} after it ends on {last_day}")
    months = (last_day.year - first_day.year) * 12 + last_day.month - first_day.month + 1
    if months > STATEMENT_PERIOD_MONTHS_MAX:
        raise LimitReached(limits.get("deposit_statement_period_months_max"), months)
    return first_day, last_day


async def _transfers_in_period(d: Deposits, account_id: int, first_day: dt.date, last_day: dt.date,
                               after_timestamp: int, limit: int) -> tuple[list[Transfer], int | None]:
    """The account's transfers dated in [first_day, last_day] booked after `after_timestamp`, and the cursor.

    Reads only around the period, not the history before it. What it relies on: for one account, a transfer
    is never dated more than `deposit_statement_backdating_days_max` days before one booked earlier (the
    ledger dates a transfer with the business date of its booking unless the caller dates it, and callers
    date it with that day or the day a day-end job closes). So the scan starts at the first transfer dated on
    or after first_day − that slack (found by bisecting the ledger's timestamps) and stops at the first
    dated after last_day + it. Every transfer is kept or dropped by its own date, so a transfer outside the
    period never shows and ordering quirks inside the slack are harmless; the reading gauge of the slack
    limit reports the largest backdating seen. A page scans at most `deposit_statement_transfers_scanned_max`
    transfers: a page cut short returns the cursor of the last transfer read."""
    slack = dt.timedelta(days=STATEMENT_BACKDATING_DAYS_MAX)
    read_from = first_day - slack if first_day - dt.date.min > slack else dt.date.min
    read_to = last_day + slack if dt.date.max - last_day > slack else dt.date.max
    cursor = await _first_dated_on_or_after(d, account_id, read_from, after_timestamp + 1)
    page_rows_max = limits.get("ledger_page_rows_max").maximum
    rows, scanned, newest = limit, 0, dt.date.min
    found: list[Transfer] = []
    while True:
        page = await d.ledger.get_account_transfers(account_id, timestamp_min=cursor, limit=rows)
        for t in page:
            scanned += 1
            day = _dated(d, t)
            if day < newest:
                limits.observe("deposit_statement_backdating_days_max", (newest - day).days)
            newest = max(newest, day)
            if day > read_to:
                return found, None
            if first_day <= day <= last_day:
                found.append(t)
                if len(found) == limit:
                    return found, t.timestamp
            if scanned >= STATEMENT_TRANSFERS_SCANNED_MAX:
                limits.observe("deposit_statement_transfers_scanned_max", scanned)
                return found, t.timestamp
        if len(page) < rows:
            return found, None
        cursor = page[-1].timestamp + 1
        rows = min(page_rows_max, rows * 2)  # the slack days before the period are read in growing pages


async def _first_dated_on_or_after(d: Deposits, account_id: int, day: dt.date, timestamp_min: int) -> int:
    """Where to read from to meet the first transfer at or after `timestamp_min` dated on or after `day`, were
    dates in booking order: a bisection of the ledger's timestamps, one indexed probe each, at most 64."""
    first = await d.ledger.get_account_transfers(account_id, timestamp_min=timestamp_min, limit=1)
    if not first or _dated(d, first[0]) >= day:
        return timestamp_min
    [last] = await d.ledger.get_account_transfers(account_id, timestamp_min=timestamp_min, limit=1, reverse=True)
    if _dated(d, last) < day:
        return last.timestamp + 1
    # low: a transfer dated before `day`; high: reading from here meets one dated on or after it first.
    low, high = first[0].timestamp, last.timestamp
    for _ in range(64):  # each probe at least halves high − low, which is below 2**63
        if high - low <= 1:
            return high
        middle = (low + high) // 2
        [t] = await d.ledger.get_account_transfers(account_id, timestamp_min=middle, limit=1)
        if _dated(d, t) >= day:
            high = middle
        else:
            invariant(t.timestamp < high, "a transfer dated before the day lies before the bisection's upper end")
            low = t.timestamp
    invariant(False, "a bisection of 63-bit timestamps ends within 64 probes")
    return high


def _dated(d: Deposits, t: Transfer) -> dt.date:
    return t.business_date or d.business_date()


async def _statement_lines(d: Deposits, account_id: int, transfers: list[Transfer]) -> list[StatementLine]:
    """Each transfer with the posted balance after it, from the account's history in the ledger."""
    if not transfers:
        return []
    history = await d.ledger.get_account_balances(
        account_id, timestamp_min=transfers[0].timestamp, timestamp_max=transfers[-1].timestamp,
        limit=limits.get("ledger_page_rows_max").maximum)
    balances = {b.timestamp: b.credits_posted - b.debits_posted for b in history}
    lines = []
    for t in transfers:
        credit = t.credit_account_id == account_id
        balance_minor = balances.get(t.timestamp)
        if balance_minor is None:  # more history rows between the first and last line than one page
            b = await d.ledger.balance_as_of(account_id, t.timestamp)
            balance_minor = b.credits_posted - b.debits_posted if b else 0
        lines.append(StatementLine(
            timestamp=t.timestamp, business_date=_dated(d, t), description=d.labels.get(t.code, str(t.code)),
            deposit_minor=t.amount if credit else 0, withdrawal_minor=0 if credit else t.amount,
            balance_minor=balance_minor, pending=bool(t.flags & int(TransferFlags.PENDING)),
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
            if action is Action.REVIVE:  # the customer came to the branch: the silence starts again today
                await store.touch(conn, [account_id], d.business_date())
    return await get_account(d, account_id)


async def close_account(d: Deposits, request_id: int, account_id: int, reason: str) -> DepositAccount:
    """解約: only at a zero balance with nothing held; the ledger then refuses any further posting.
    A 総合口座 also needs its overdraft repaid; the interest accrued since the last charge is collected."""
    async with d.pool.acquire() as conn:
        done = await store.status_change(conn, request_id)
    if done is not None and (done["account_id"] != account_id or done["action"] != Action.CLOSE.value):
        raise Refused("request_reused", "this request id already changed another account or status")
    account = await get_account(d, account_id)
    if done is None and d.closing_check is not None and (why := await d.closing_check(account_id)) is not None:
        raise Refused("account_in_use", why)
    if account.subject is Subject.SOGO:
        await _close_general(d, request_id, account, replay=done is not None)
    else:
        if done is None:
            transition(account.status, Action.CLOSE)  # refuses closing a frozen or closed account
            now = await balance(d, account_id)
            if now.balance_minor != 0 or now.held_minor != 0:
                raise Refused("balance_not_zero", f"the balance is ¥{now.balance_minor:,} with"
                              f" ¥{now.held_minor:,} held: pay it out before closing")
        [outcome] = await d.ledger.create_transfers([_closing(request_id, account_id)])
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


def _closing(request_id: int, account_id: int, leg: str = "close") -> Transfer:
    """A zero-amount closing hold: the ledger marks the account closed and refuses any further posting."""
    return Transfer(id=derived_id(request_id, leg), debit_account_id=account_id,
                    credit_account_id=gl_account_id(ACCOUNT_CLOSURES), amount=0, ledger=JPY, code=CLOSING_CODE,
                    flags=int(TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT))


async def _close_general(d: Deposits, request_id: int, account: DepositAccount, *, replay: bool) -> None:
    """Close a 総合口座 and its overdraft account in one chain, collecting the interest not yet charged."""
    closing, interest_id = _closing(request_id, account.id), derived_id(request_id, "close-interest")
    async with d.pool.acquire() as conn, conn.transaction():
        [od] = (await overdraft.lock_overdrafts(conn, [account.id])).values()
        prior = {t.id: t for t in await d.ledger.lookup_transfers([closing.id, interest_id])}
        if closing.id in prior:  # closed before: the ledger answers the closing transfer as the first time
            [outcome] = await d.ledger.create_transfers([closing])
            if outcome.result is not R.EXISTS:
                raise _refusal(outcome.result, d, account.id, 0)
            today = prior[closing.id].business_date or d.business_date()
            interest = prior[interest_id].amount if interest_id in prior else 0
        else:
            if not replay:
                transition(account.status, Action.CLOSE)  # refuses closing a frozen or closed account
            today = d.business_date()
            interest = await _closing_interest(d, conn, od, today)
            chain = [_closing(request_id, od.overdraft_account_id, "close-overdraft"), closing]
            if interest:
                chain.insert(0, Transfer(id=interest_id, debit_account_id=account.id,
                                         credit_account_id=gl_account_id(LOAN_INTEREST_INCOME), amount=interest,
                                         ledger=JPY, code=OVERDRAFT_INTEREST_CODE, business_date=today))
            for t in chain[:-1]:
                t.flags |= int(TransferFlags.LINKED)
            outcomes = await d.ledger.create_transfers(chain)
            failed = [o.result for o in outcomes if o.result not in (R.OK, R.EXISTS)]
            if failed:
                raise _refusal(next((r for r in failed if r is not R.LINKED_EVENT_FAILED), failed[0]), d,
                               account.id, interest)
        current = await overdraft.overdraft_row(conn, account.id)
        assert current is not None
        if current.charged_before <= today:
            await overdraft.record_charge(conn, current, today, "closing", interest, interest_id if interest else None,
                                          today)


async def _closing_interest(d: Deposits, conn: asyncpg.Connection, od: Overdraft, today: dt.date) -> int:
    """What closing collects: the overdraft interest accrued since the last charge. Refuses what blocks closing."""
    pledges = await overdraft.pledges_of(d, conn, od.account_id)
    if pledges:
        raise Refused("time_deposits_attached", f"{len(pledges)} time deposit(s) are attached to the account:"
                      " withdraw them or attach them to another account before closing")
    deposit, lent = await read_accounts(conn, [od.account_id, od.overdraft_account_id])
    drawn = overdraft.drawn_minor(lent)
    if drawn:
        raise Refused("overdraft_outstanding", f"¥{drawn:,} is overdrawn: repay it before closing")
    yesterday = today - dt.timedelta(days=1)
    if await overdraft.accrue_account(d, conn, od, yesterday, lent) < yesterday:
        raise Refused("interest_not_accrued", "the overdraft interest is not accrued up to yesterday: run the"
                      " accrual first")
    current = await overdraft.overdraft_row(conn, od.account_id)
    assert current is not None
    interest = overdraft.interest_of(await overdraft.uncharged_product(conn, current))
    balance_minor = deposit.credits_posted - deposit.debits_posted
    if balance_minor != interest or deposit.debits_pending:
        due = f" all but ¥{interest:,} (the overdraft interest to collect)" if interest else " it"
        raise Refused("balance_not_zero", f"the balance is ¥{balance_minor:,} with ¥{deposit.debits_pending:,} held:"
                      f" pay{due} out before closing")
    return interest


# -- 総合口座 ----------------------------------------------------------------------------------------------

async def overdraft_state(d: Deposits, account_id: int) -> OverdraftState:
    """A 総合口座's overdraft: drawn, limit and collateral, room left, interest accrued and not yet charged."""
    account = await get_account(d, account_id)
    if account.subject is not Subject.SOGO:
        raise Refused("not_a_general_account", f"account {account.label} is a {account.subject.value} account, not a"
                      " 総合口座: it has no overdraft")
    async with d.pool.acquire() as conn:
        od = await overdraft.overdraft_row(conn, account_id)
        invariant(od is not None, "every 総合口座 has its overdraft row")
        assert od is not None
        found = {a.id: a for a in await read_accounts(conn, [account_id, od.overdraft_account_id])}
        if len(found) < 2:
            raise LedgerUnavailable("the account's ledger records are not there yet; retry")
        pledges = await overdraft.pledges_of(d, conn, account_id)
        product = await overdraft.uncharged_product(conn, od)
    drawn = overdraft.drawn_minor(found[od.overdraft_account_id])
    limit = overdraft.overdraft_limit(pledges)
    return OverdraftState(
        account_id=account_id, overdraft_account_id=od.overdraft_account_id, drawn_minor=drawn, limit_minor=limit,
        collateral_minor=sum(p.principal_minor for p in pledges), pledges=len(pledges),
        available_minor=overdraft.available_minor(found[account_id]), room_minor=max(0, limit - drawn),
        accrued_interest_minor=overdraft.interest_of(product), accrued_through=od.accrued_through,
        interest_unpaid_minor=od.interest_unpaid_minor)


async def repay_overdraft(d: Deposits, request_id: int, account_id: int) -> int:
    """Repay a 総合口座's overdraft from its spare funds now (for credits that did not come through deposits,
    such as a time deposit's payout); returns what was repaid. Idempotent by request id."""
    account = await get_account(d, account_id)
    if account.subject is not Subject.SOGO or account.status is not Status.ACTIVE:
        return 0
    async with d.pool.acquire() as conn, conn.transaction():
        [od] = (await overdraft.lock_overdrafts(conn, [account_id])).values()
        return await overdraft.repay_from_spare_funds(d, conn, od, derived_id(request_id, "overdraft-repay"),
                                                      d.business_date())
