"""Handlers of ordinary-deposit interest: the day-end accrual, the half-yearly payout and interest at closing.

The rules are in interest_model; this module runs them at a bank's scale, set-based:
- `accrue_interest` (day-end, once per business day) reads every ordinary account's balance through
  the ledger's scan, page by page, COPYs the pages into a scratch table and, in one statement, starts
  a new segment for each account whose balance changed (the old one's days join its 積数). The run
  is one transaction that also records (job, business date): a second run of the day does nothing.
- `pay_interest` (the first business day of February and August) walks the accounts page by page,
  several pages in flight: each page's net interest is credited, one transfer per account (its id
  derived from (account, payout day, kind)), then the page's payments are recorded; at the end the
  tax withheld from every credited account is posted in two transfers (national, local). No account
  row is rewritten: the completed payout restarts every period on its date. A crash is finished by
  running it again: recorded accounts are skipped, the ledger answers `exists` for credits it has.
  While a payout runs (or lies unfinished) the accrual and one-account interest work are refused.
- `settle_interest_on_close` pays one account its interest to the day before closing.

Frozen and dormant accounts earn and are credited like active ones (the credit is not a customer
transaction, so it does not revive a dormant account); closed accounts were paid when they closed.
Run the payout before the payout day's accrual: its credits then count from the payout day itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from kanjo.accounting import DEPOSIT_INTEREST_EXPENSE, JPY, ORDINARY_DEPOSIT, WITHHOLDING_TAX_PAYABLE, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import interest_store as store
from kanjo.deposits import store as accounts_store
from kanjo.deposits.interest_model import (
    InterestPayment,
    PayoutKind,
    RateSchedule,
    TaxClass,
    accrual_end,
    accrued_decimal,
    interest_minor,
    interest_payout_day,
    is_interest_payout_day,
    payment_for,
    totals_before,
    withholding_tax,
)
from kanjo.deposits.limits import (
    INTEREST_BATCHES_IN_FLIGHT_MAX,
    INTEREST_CREDITS_PER_BATCH_MAX,
    INTEREST_DAYS_PER_RUN_MAX,
)
from kanjo.deposits.model import INTEREST_CODE, Refused, Status
from kanjo.deposits.service import Deposits, NotFound
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import CreateTransferResult, Transfer, TransferFlags

R = CreateTransferResult
POSTED = frozenset({R.OK, R.EXISTS})
INTEREST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-696e74657273")
ACCRUAL_JOB = "accrual"
PAYOUT_JOB = "payout"
SCAN_PAGE_ROWS = limits.get("ledger_page_rows_max").maximum  # one page of the ledger's scan
SCAN_PAGES_AHEAD = 2  # pages read from the ledger while the previous ones are copied
# user_data_32 of an interest transfer: which leg it is (all carry the code INTEREST_CODE).
LEG_CREDIT, LEG_NATIONAL_TAX, LEG_LOCAL_TAX = 1, 2, 3


# -- ids -----------------------------------------------------------------------------------------------

_NAMESPACE_BYTES = INTEREST_NAMESPACE.bytes


def _derived(name: bytes) -> int:
    """uuid.uuid5(INTEREST_NAMESPACE, name).int, without building UUID objects (a payout derives a million)."""
    return name_id(_NAMESPACE_BYTES, name)


def credit_transfer_id(account_id: int, paid_on: dt.date, kind: PayoutKind) -> int:
    """One credit per (account, payout day, kind): a payout, however often run, credits an account once."""
    return _credit_ids(paid_on, kind)(account_id)


def _credit_ids(paid_on: dt.date, kind: PayoutKind) -> Callable[[int], int]:
    """credit_transfer_id for one payout day and kind, with the constant part of the name prepared once."""
    suffix = f":{paid_on.isoformat()}:{kind.value}:credit".encode()

    def derive(account_id: int) -> int:
        return _derived(b"%032x" % account_id + suffix)
    return derive


def tax_transfer_id(paid_on: dt.date, kind: PayoutKind, key: str, leg: str) -> int:
    """The tax of a payout day (key "all") or of one closing (key: the account)."""
    return _derived(f"tax:{paid_on.isoformat()}:{kind.value}:{key}:{leg}".encode())


# -- accrual -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AccrualRun:
    """What the day-end accrual of one business date did (or, replayed, what its first run did)."""

    business_date: dt.date
    accrued_through: dt.date  # the last calendar day this run's balances count for (so far)
    accounts: int  # ordinary accounts read from the ledger
    changed: int  # accounts whose balance differed from the last run: a new segment
    new: int  # accounts seen for the first time
    unobserved_business_days: int  # business days since the previous run that had no run (their balance assumed)
    replayed: bool = False

    @classmethod
    def of(cls, counts: dict[str, Any], replayed: bool) -> AccrualRun:
        return cls(dt.date.fromisoformat(counts["business_date"]), dt.date.fromisoformat(counts["accrued_through"]),
                   counts["accounts"], counts["changed"], counts["new"], counts["unobserved_business_days"],
                   replayed)


async def accrue_interest(d: Deposits, calendar: BankCalendar, business_date: dt.date | None = None) -> AccrualRun:
    """Day-end: every ordinary account's end-of-day balance counts from this business date on. Idempotent."""
    day = business_date or d.business_date()
    if not calendar.is_business_day(day):
        raise Refused("not_a_business_day", f"{day} is not a business day: interest accrues at a business day's close")
    async with d.pool.acquire() as conn, conn.transaction():
        await store.lock_jobs(conn, exclusive=True)
        done = await store.run(conn, ACCRUAL_JOB, day)
        if done is not None:
            return AccrualRun.of(done[1], replayed=True)
        last = await store.last_run_date(conn, ACCRUAL_JOB)
        if last is not None and last > day:
            raise Refused("accrual_out_of_order", f"the accrual already ran for {last}, after {day}")
        await _refuse_while_payout_unfinished(conn)
        restarted_on = await store.last_payout(conn, day)
        rates = await store.rate_schedule(conn)
        await store.create_balances_table(conn)
        accounts = await _copy_ledger_balances(d, conn)
        earliest = await store.earliest_balance_from(conn) or day
        starts, factors = _factors_to(max(earliest, restarted_on or earliest), day, rates)
        changed, new = await store.apply_balances(conn, day, restarted_on, starts, factors)
        unobserved = len(calendar.business_days(last + dt.timedelta(days=1), day - dt.timedelta(days=1))) if last else 0
        run = AccrualRun(day, accrual_end(calendar, day) - dt.timedelta(days=1), accounts, changed, new, unobserved)
        await store.record_run(conn, ACCRUAL_JOB, day, "done", _counts(run))
    return run


def _counts(run: AccrualRun) -> dict[str, Any]:
    return {"business_date": run.business_date.isoformat(), "accrued_through": run.accrued_through.isoformat(),
            "accounts": run.accounts, "changed": run.changed, "new": run.new,
            "unobserved_business_days": run.unobserved_business_days}


def _factors_to(earliest: dt.date, end: dt.date, rates: RateSchedule) -> tuple[list[dt.date], list[int]]:
    """For each possible segment start in [earliest, end]: Σ rate over [start, end) (0.001 % units)."""
    days = (end - earliest).days + 1
    if days > INTEREST_DAYS_PER_RUN_MAX:
        raise LimitReached(limits.get("deposit_interest_days_per_run_max"), days)
    invariant(days >= 1, "no accrual segment starts after the day it is brought up to")
    starts = [earliest + dt.timedelta(days=i) for i in range(days)]
    return starts, rates.rate_days_to(end, starts)


async def _copy_ledger_balances(d: Deposits, conn: asyncpg.Connection) -> int:
    """Every ordinary account's posted balance, read page by page from the ledger and COPYed as it comes."""
    pages: asyncio.Queue[list[tuple[int, int]] | None] = asyncio.Queue(maxsize=SCAN_PAGES_AHEAD)

    async def read() -> None:
        after_id = 0
        while True:
            page = await d.ledger.scan_accounts(ledger=JPY, code=ORDINARY_DEPOSIT.code, after_id=after_id,
                                                limit=SCAN_PAGE_ROWS)
            if page:
                # A negative balance (there should be none on a guarded account) earns nothing.
                await pages.put([(a.id, max(0, a.credits_posted - a.debits_posted)) for a in page])
                after_id = page[-1].id
            if len(page) < SCAN_PAGE_ROWS:
                await pages.put(None)
                return

    async def copy() -> int:
        copied = 0
        while (rows := await pages.get()) is not None:
            await store.copy_balances(conn, rows)
            copied += len(rows)
        return copied

    async with _first_failure(), asyncio.TaskGroup() as group:
        group.create_task(read())
        copying = group.create_task(copy())
    return copying.result()


@contextlib.asynccontextmanager
async def _first_failure() -> AsyncIterator[None]:
    """A task group's failure as the exception itself (the other tasks were cancelled), not a group of one."""
    try:
        yield
    except ExceptionGroup as group:
        first = group.exceptions[0]
        if len(group.exceptions) == 1 and isinstance(first, Exception):
            raise first from None
        raise


# -- reads ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AccruedInterest:
    """An account's interest so far in its current period, unrounded (the payout rounds down once)."""

    account_id: int
    period_start: dt.date
    through: dt.date  # inclusive
    balance_days: int  # 積数
    accrued: Decimal  # yen, before tax, not rounded
    tax_class: TaxClass


async def accrued_interest(d: Deposits, account_id: int, through: dt.date) -> AccruedInterest:
    """Interest accrued from the period start to `through` (inclusive), at the balances observed at day-ends."""
    end = through + dt.timedelta(days=1)
    async with d.pool.acquire() as conn:
        if await accounts_store.account(conn, account_id) is None:
            raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}")
        accrual = await store.accrual(conn, account_id)
        restarted_on = await store.last_payout(conn, end)
        rates = await store.rate_schedule(conn)
    if accrual is None or accrual.period_from(restarted_on) >= end:  # nothing observed in this period yet
        tax_class = accrual.tax_class if accrual else TaxClass.INDIVIDUAL
        return AccruedInterest(account_id, end, through, 0, Decimal(0), tax_class)
    balance_days, weighted = accrual.totals_before(end, rates, restarted_on)
    return AccruedInterest(account_id, accrual.period_from(restarted_on), through, balance_days,
                           accrued_decimal(weighted), accrual.tax_class)


async def set_interest_tax_class(d: Deposits, account_id: int, tax_class: TaxClass) -> None:
    """Individual (default), corporate or exempt: decides the tax withheld at the next payout."""
    async with d.pool.acquire() as conn, conn.transaction():
        if await accounts_store.account(conn, account_id) is None:
            raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}")
        await store.lock_jobs(conn, exclusive=False)
        await _refuse_while_payout_unfinished(conn)
        await store.set_tax_class(conn, account_id, tax_class, d.business_date())


async def interest_payments(d: Deposits, account_id: int) -> list[InterestPayment]:
    """The interest an account was paid (credited), oldest first: for the passbook and the tax report."""
    async with d.pool.acquire() as conn:
        rows = await store.payments_of(conn, account_id)
    return [p for p, status, _ in rows if status == "paid"]


# -- payout --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PayoutRun:
    """What the half-yearly payout of one day did (or, replayed, what it had done)."""

    business_date: dt.date
    credited: int  # accounts credited their net interest
    failed: int  # credits the ledger refused (the payment row says why; their interest is not paid)
    gross_minor: int  # of the credited accounts
    net_minor: int
    national_tax_minor: int
    local_tax_minor: int
    pages: int  # pages of accounts read by this run (a resumed run reads only what was left)
    replayed: bool = False


async def pay_interest(d: Deposits, calendar: BankCalendar, business_date: dt.date | None = None) -> PayoutRun:
    """決算: credit every account its period's interest, net of tax. Idempotent; a rerun finishes a crash."""
    day = business_date or d.business_date()
    if not is_interest_payout_day(calendar, day):
        nxt = _next_payout_day(calendar, day)
        raise Refused("not_an_interest_payout_day", f"{day} is not an interest payout day; the next one is {nxt}")
    async with d.pool.acquire() as conn:
        await store.lock_jobs_for_session(conn)  # held across the run's many transactions
        try:
            return await _pay(d, calendar, conn, day)
        finally:
            try:
                await store.unlock_jobs_for_session(conn)
            except BaseException:
                conn.terminate()  # the pool does not reset sessions: a lock that cannot be released goes with it
                raise


async def _pay(d: Deposits, calendar: BankCalendar, conn: asyncpg.Connection, day: dt.date) -> PayoutRun:
    done = await store.run(conn, PAYOUT_JOB, day)
    if done is not None and done[0] == "done":
        return _payout_run(day, done[1], replayed=True)
    resuming = done is not None
    if not resuming:
        await _refuse_while_payout_unfinished(conn)
        await _check_accrual_current(conn, calendar, day)
        last = await store.last_run_date(conn, ACCRUAL_JOB)
        if last is not None and last > day:
            raise Refused("interest_payout_too_late", f"the accrual already ran for {last}, after the payout day"
                          f" {day}: the period is paid at the next payout day")
        await store.record_run(conn, PAYOUT_JOB, day, "running", {})
    restarted_on = await store.last_payout(conn, day - dt.timedelta(days=1))
    rates = await store.rate_schedule(conn)
    pages = await _pay_pages(d, day, restarted_on, rates, resuming=resuming)
    totals = await store.payout_totals(conn, PayoutKind.HALF_YEARLY, day)
    await _post_tax(d, PayoutKind.HALF_YEARLY, day, "all", totals["national_tax_minor"], totals["local_tax_minor"])
    counts = {**totals, "pages": pages}
    await store.record_run(conn, PAYOUT_JOB, day, "done", counts)
    return _payout_run(day, counts, replayed=False)


def _payout_run(day: dt.date, counts: dict[str, Any], replayed: bool) -> PayoutRun:
    return PayoutRun(day, counts["credited"], counts["failed"], counts["gross_minor"], counts["net_minor"],
                     counts["national_tax_minor"], counts["local_tax_minor"], counts["pages"], replayed)


def _next_payout_day(calendar: BankCalendar, day: dt.date) -> dt.date:
    for year, month in ((day.year, 2), (day.year, 8), (day.year + 1, 2)):
        candidate = interest_payout_day(calendar, year, month)
        if candidate > day:
            return candidate
    raise AssertionError("a payout day falls within a year")


async def _refuse_while_payout_unfinished(conn: asyncpg.Connection) -> None:
    """A payout that died midway is finished first: until then its accounts' totals must not move."""
    unfinished = await store.running_payout(conn)
    if unfinished is not None:
        raise Refused("interest_payout_in_progress", f"the interest payout of {unfinished} has not finished:"
                      " run it again to complete it")


async def _check_accrual_current(conn: asyncpg.Connection, calendar: BankCalendar, day: dt.date) -> None:
    """Paying to the day before `day` needs the previous business day's balances: its accrual must have run."""
    last = await store.last_run_date(conn, ACCRUAL_JOB)
    wanted = calendar.previous_business_day(day)
    if last is None or last < wanted:
        raise Refused("interest_accrual_behind", f"interest is accrued only up to the run of {last or 'no day'}:"
                      f" run the accrual of {wanted} first")


async def _pay_pages(d: Deposits, day: dt.date, restarted_on: dt.date | None, rates: RateSchedule, *,
                     resuming: bool) -> int:
    """Read the due accounts page by page; each page is credited and recorded by its own task (a few at once)."""
    slots = asyncio.Semaphore(INTEREST_BATCHES_IN_FLIGHT_MAX)
    page_rows = INTEREST_CREDITS_PER_BATCH_MAX
    pages = after_id = 0
    async with _first_failure(), asyncio.TaskGroup() as group:
        while True:
            await slots.acquire()
            try:
                async with d.pool.acquire() as conn:
                    rows = await store.due_page(conn, day, after_id, page_rows, resuming=resuming)
            except BaseException:
                slots.release()
                raise
            if not rows:
                slots.release()
                break
            after_id = rows[-1][0]
            pages += 1
            group.create_task(_credit_page(d, _page_payments(rows, day, restarted_on, rates), slots))
            if len(rows) < page_rows:
                break
    return pages


_TAX_CLASSES = {c.value: c for c in TaxClass}


def _page_payments(rows: list[asyncpg.Record], day: dt.date, restarted_on: dt.date | None,
                   rates: RateSchedule) -> list[tuple]:
    """The page's payments of at least one yen, as payment rows without their status (a million of them:
    plain tuples in interest_store.PAYMENT_COLUMNS order, the rules still those of interest_model)."""
    factors: dict[dt.date, int] = {}

    def rate_days(start: dt.date, end: dt.date) -> int:
        found = factors.get(start)
        if found is None:
            found = factors[start] = rates.rate_days(start, end)
        return found

    kind = PayoutKind.HALF_YEARLY.value
    period_end = day - dt.timedelta(days=1)
    payments = []
    for account_id, tax_class, period_start, balance, balance_from, balance_days, weighted in rows:
        days_total, weighted_total = totals_before(period_start, balance, balance_from, int(balance_days),
                                                   int(weighted), day, restarted_on, rate_days)
        gross = interest_minor(weighted_total)
        if gross:
            tax = withholding_tax(gross, _TAX_CLASSES[tax_class])
            start = max(period_start, restarted_on) if restarted_on else period_start
            payments.append((day, kind, account_id, tax_class, start, period_end, days_total, gross,
                             tax.national_minor, tax.local_minor, gross - tax.total_minor))
    return payments


def _page_credit(row: tuple, derive: Callable[[int], int]) -> Transfer:
    """The credit of one payment row (positional: id, debit, credit, amount, ledger, code, flags, pending_id,
    timeout, user_data_128/64/32, business date)."""
    account_id = row[2]
    return Transfer(derive(account_id), _EXPENSE_ID, account_id, row[10], JPY, INTEREST_CODE, 0, 0, 0, 0, 0,
                    LEG_CREDIT, row[0])


_EXPENSE_ID = gl_account_id(DEPOSIT_INTEREST_EXPENSE)
_TAX_PAYABLE_ID = gl_account_id(WITHHOLDING_TAX_PAYABLE)


def _credit(p: InterestPayment, transfer_id: int | None = None) -> Transfer:
    """The net interest, from the interest expense to the account (passbook: 決算利息)."""
    return Transfer(transfer_id or credit_transfer_id(p.account_id, p.paid_on, p.kind), _EXPENSE_ID, p.account_id,
                    p.net_minor, JPY, INTEREST_CODE, 0, 0, 0, 0, 0, LEG_CREDIT, p.paid_on)


def _tax_legs(kind: PayoutKind, paid_on: dt.date, key: str, national_minor: int, local_minor: int) -> list[Transfer]:
    legs = (("national-tax", LEG_NATIONAL_TAX, national_minor), ("local-tax", LEG_LOCAL_TAX, local_minor))
    return [Transfer(id=tax_transfer_id(paid_on, kind, key, leg), debit_account_id=_EXPENSE_ID,
                     credit_account_id=_TAX_PAYABLE_ID, amount=amount, ledger=JPY, code=INTEREST_CODE,
                     user_data_32=leg_code, business_date=paid_on)
            for leg, leg_code, amount in legs if amount > 0]


async def _credit_page(d: Deposits, payments: list[tuple], slot: asyncio.Semaphore) -> None:
    """Credit a page's accounts, then record each payment as paid or failed (the ledger's answer)."""
    try:
        if not payments:
            return
        derive = _credit_ids(payments[0][0], PayoutKind.HALF_YEARLY)
        outcomes = await d.ledger.create_transfers([_page_credit(p, derive) for p in payments])
        paid = ("paid", None)
        rows = [p + paid if o.result in POSTED else (*p, "failed", o.result.name.lower())
                for p, o in zip(payments, outcomes, strict=True)]
        async with d.pool.acquire() as conn:
            await store.copy_payments(conn, rows)
    finally:
        slot.release()


async def _post_tax(d: Deposits, kind: PayoutKind, paid_on: dt.date, key: str, national_minor: int,
                    local_minor: int) -> None:
    """The tax withheld, from the interest expense to the tax payable (never refused: both are the bank's)."""
    legs = _tax_legs(kind, paid_on, key, national_minor, local_minor)
    if legs:
        answers = await d.ledger.create_transfers(legs)
        refused = [a.result.name for a in answers if a.result not in POSTED]
        invariant(not refused, f"the bank's own tax transfers are never refused: {refused}")


# -- closing -------------------------------------------------------------------------------------------

async def settle_interest_on_close(d: Deposits, calendar: BankCalendar, account_id: int,
                                   business_date: dt.date | None = None) -> InterestPayment:
    """解約利息: pay an account about to close its interest to the day before closing. Idempotent per day.

    Returns the payment (gross 0 when nothing is due: no money moves). Call it before paying out the
    balance and closing. The net credit and the two taxes go in one linked chain.
    """
    day = business_date or d.business_date()
    async with d.pool.acquire() as conn:
        account = await accounts_store.account(conn, account_id)
    if account is None:
        raise NotFound(f"no deposit account {uuid.UUID(int=account_id)}")
    if account.status is Status.CLOSED:
        raise Refused("account_closed", "the account is closed: its interest was paid when it closed")
    async with d.pool.acquire() as conn, conn.transaction():
        await store.lock_jobs(conn, exclusive=False)
        await _refuse_while_payout_unfinished(conn)
        found = await store.payment(conn, account_id, day, PayoutKind.CLOSING)
        if found is not None:
            payment, status, failure = found
        else:
            payment = await _plan_closing(conn, calendar, account_id, day)
            if payment.gross_minor == 0:
                return payment
            await store.insert_payment(conn, payment, "planned")
            status, failure = "planned", None
    if status == "planned":
        failure = await _post_closing(d, payment)
    if failure is not None:
        raise Refused("interest_not_credited", f"the ledger refused the interest credit: {failure}")
    return payment


async def _plan_closing(conn: asyncpg.Connection, calendar: BankCalendar, account_id: int,
                        day: dt.date) -> InterestPayment:
    """The account's interest to the day before `day`; its period restarts on `day` (the fraction dropped)."""
    accrual = await store.accrual(conn, account_id, for_update=True)
    restarted_on = await store.last_payout(conn, day)
    start = accrual.period_from(restarted_on) if accrual else day
    if accrual is None or start >= day:
        return payment_for(account_id, PayoutKind.CLOSING, day, min(start, day - dt.timedelta(days=1)), 0, 0,
                           accrual.tax_class if accrual else TaxClass.INDIVIDUAL)
    await _check_accrual_current(conn, calendar, day)
    rates = await store.rate_schedule(conn)
    balance_days, weighted = accrual.totals_before(day, rates, restarted_on)
    payment = payment_for(account_id, PayoutKind.CLOSING, day, start, balance_days, weighted, accrual.tax_class)
    await store.restart_period(conn, account_id, day)
    return payment


async def _post_closing(d: Deposits, p: InterestPayment) -> str | None:
    """The credit and its taxes as one chain; the payment is marked paid, or failed with the ledger's answer."""
    chain = [_credit(p), *_tax_legs(p.kind, p.paid_on, f"{p.account_id:032x}", p.tax.national_minor,
                                     p.tax.local_minor)]
    for transfer in chain[:-1]:
        transfer.flags = int(TransferFlags.LINKED)
    outcomes = await d.ledger.create_transfers(chain)
    failures = [o.result for o in outcomes if o.result not in POSTED]
    failure = None
    if failures:
        failure = next((r for r in failures if r is not R.LINKED_EVENT_FAILED), failures[0]).name.lower()
    async with d.pool.acquire() as conn:
        await store.mark_payment(conn, p, failure)
    return failure
