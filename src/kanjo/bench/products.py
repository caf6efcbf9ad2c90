"""`kanjo bench products`: the products' day-end jobs at a bank's scale, as JSON lines (one per scenario).

A fresh database per run; setup is bulk and not timed: N ordinary accounts (ledger accounts in
batches, product rows by COPY, a cash deposit each), M time deposits falling due on one month end
(ledger accounts and placements in batches, product rows by COPY). Then, timed:
- `accrual`: the day-end interest accrual of 2 Feb 2026 (every account seen for the first time) and of
  Friday 31 Jul 2026 (after a movement on 10 % of the accounts), and a rerun of that day (changes nothing);
- `payout`: the half-yearly payout of Monday 3 Aug 2026 (every account with a yen of interest);
- `maturity`: maturity processing of Monday 31 Aug 2026 (every time deposit falls due that day).
Each result says what was checked afterwards (`verified`): the product tables against the ledger,
the amounts against an independent recomputation, and `verify_ledger` over the whole ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

from kanjo.accounting import (
    CASH_VAULT,
    DEPOSIT_INTEREST_EXPENSE,
    GUARDED_DEPOSIT_FLAGS,
    JPY,
    ORDINARY_DEPOSIT,
    TIME_DEPOSIT,
    WITHHOLDING_TAX_PAYABLE,
    ensure_chart,
    gl_account_id,
)
from kanjo.bench.ledger import _durability, _fresh_database, _progress
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Deposits, accrue_interest, pay_interest
from kanjo.kernel import invariant, limits
from kanjo.kernel.ids import name_id
from kanjo.ledger import Account, CreateAccountResult, CreateTransferResult, Ledger, Transfer, verify_ledger
from kanjo.platform import db
from kanjo.time_deposits import (
    Compounding,
    Instruction,
    TaxClass,
    Term,
    TimeDeposits,
    add_months,
    interest_to_maturity,
    mature_due,
    overdue_unprocessed,
    withholding_tax,
)

BENCH_DATABASE = "kanjo_bench_products"
BENCH_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-62656e636870")
SEED = 20_260_802
ACCOUNTS_MAX = 8 * 9_999_999  # eight branches of 7-digit account numbers
BRANCHES = ("001", "101", "102", "103", "201", "301", "401", "501")  # as in the deposits migration
FIRST_DAY = dt.date(2026, 2, 2)  # first business day of February 2026: accounts seen for the first time
LAST_DAY = dt.date(2026, 7, 31)  # Friday before the payout: 10 % of the accounts moved that day
PAYOUT_DAY = dt.date(2026, 8, 3)  # first business day of August 2026
MATURITY_DAY = dt.date(2026, 8, 31)  # Monday, the month end: every time deposit pays that day
MOVED_SHARE = 0.10
BALANCE_MIN_MINOR, BALANCE_MAX_MINOR = 1_000, 20_000_000  # log-uniform: most earn a yen or more
PRINCIPAL_MIN_MINOR, PRINCIPAL_MAX_MINOR = 100_000, 9_000_000
# (term months, placement date, rate % p.a. from the seeded table): each contractual date falls on
# Sat 29, Sun 30 or Mon 31 Aug 2026, so every deposit pays on Monday 31 Aug.
TERMS = ((1, dt.date(2026, 7, 31), Decimal("0.100")), (3, dt.date(2026, 5, 29), Decimal("0.125")),
         (12, dt.date(2025, 8, 29), Decimal("0.125")), (36, dt.date(2023, 8, 31), Decimal("0.200")))
INSTRUCTIONS = (Instruction.PAY_OUT, Instruction.RENEW_PRINCIPAL, Instruction.RENEW_PRINCIPAL_AND_INTEREST)
TAX_CLASSES = (TaxClass.INDIVIDUAL,) * 8 + (TaxClass.CORPORATE, TaxClass.EXEMPT)
CASH_DEPOSIT_CODE = 11  # 現金入金, as a teller posts it
PLACEMENT_CODE = 21  # 定期預入
REQUESTS_IN_FLIGHT = 4  # setup: ledger requests awaiting an answer at once
RATE_PERCENT = Decimal("0.200")  # the seeded ordinary-deposit rate over the whole period

Emit = Callable[[dict[str, Any]], None]


async def run_products_bench(*, dsn: str, accounts: int = 1_000_000, time_deposits: int = 250_000, emit: Emit,
                             database: str = BENCH_DATABASE) -> list[dict[str, Any]]:
    """Run the scenarios against a fresh database `database` on the server at `dsn`; emit one object each."""
    if not 1 <= accounts <= ACCOUNTS_MAX:
        raise ValueError(f"accounts must be 1..{ACCOUNTS_MAX:,}")
    if not 0 <= time_deposits <= accounts:
        raise ValueError("each time deposit is funded by its own ordinary account: 0 <= time_deposits <= accounts")
    bench_dsn = await _fresh_database(dsn, database)
    durability = await _durability(bench_dsn)
    today = [FIRST_DAY]
    calendar = BankCalendar()
    ledger = await Ledger.start(bench_dsn, business_date=lambda: today[0])
    assert ledger.pool is not None
    results: list[dict[str, Any]] = []

    def finish(result: dict[str, Any]) -> None:
        result["load_average_1m"] = round(os.getloadavg()[0], 2)
        result["cpus"] = os.cpu_count()
        result["durability"] = durability
        results.append(result)
        emit(result)

    try:
        await ensure_chart(ledger)
        d = Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], customer_check=_anyone)
        t = TimeDeposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0], calendar=calendar)
        rng = random.Random(SEED)
        book = await _setup(ledger, bench_dsn, accounts, time_deposits, rng)
        finish(await _accrual(d, calendar, today, ledger, bench_dsn, book, rng))
        finish(await _payout(d, calendar, today, ledger, bench_dsn, book))
        if time_deposits:
            finish(await _maturity(t, today, ledger, bench_dsn, book))
    finally:
        await ledger.stop()
    return results


async def _anyone(customer_id: int) -> str | None:
    return None


def _id(kind: str, i: int) -> int:
    return name_id(BENCH_NAMESPACE, f"{kind}:{i}")


class Book:
    """What the bench put in, to check the jobs' answers against."""

    def __init__(self) -> None:
        self.accounts: list[int] = []
        self.first_balances: list[int] = []  # from FIRST_DAY
        self.last_balances: list[int] = []  # from LAST_DAY
        self.deposits: list[tuple[int, int, int, Decimal, TaxClass, dt.date]] = []  # id, funding, principal, ...


# -- setup (not timed) -------------------------------------------------------------------------------

async def _setup(ledger: Ledger, bench_dsn: str, accounts: int, time_deposits: int, rng: random.Random) -> Book:
    started = time.perf_counter()
    book = Book()
    book.accounts = [_id("ordinary", i) for i in range(accounts)]
    book.first_balances = [_log_uniform(rng, BALANCE_MIN_MINOR, BALANCE_MAX_MINOR) for _ in range(accounts)]
    await _bulk(ledger.create_accounts, [Account(id=i, ledger=JPY, code=ORDINARY_DEPOSIT.code,
                                                 flags=GUARDED_DEPOSIT_FLAGS, user_data_128=_id("customer", n))
                                         for n, i in enumerate(book.accounts)])
    await _copy_ordinary_rows(bench_dsn, book.accounts)
    for n in range(time_deposits):
        _, placed_on, rate = TERMS[n % len(TERMS)]
        book.deposits.append((_id("time-deposit", n), book.accounts[n], rng.randrange(
            PRINCIPAL_MIN_MINOR, PRINCIPAL_MAX_MINOR, 1_000), rate, TAX_CLASSES[n % len(TAX_CLASSES)], placed_on))
    vault = gl_account_id(CASH_VAULT)
    # The funding accounts receive their deposits' principal on top, and place it at once.
    extra = {funding: principal for _, funding, principal, _, _, _ in book.deposits}
    await _bulk(ledger.create_transfers, [
        Transfer(id=_id("cash", n), debit_account_id=vault, credit_account_id=a,
                 amount=book.first_balances[n] + extra.get(a, 0), ledger=JPY, code=CASH_DEPOSIT_CODE,
                 business_date=FIRST_DAY) for n, a in enumerate(book.accounts)])
    _progress(f"{accounts:,} ordinary accounts with balances in {time.perf_counter() - started:.1f} s")
    if time_deposits:
        await _setup_time_deposits(ledger, bench_dsn, book)
        _progress(f"{time_deposits:,} time deposits placed; setup {time.perf_counter() - started:.1f} s")
    return book


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(low * (high / low) ** rng.random())


async def _bulk(submit: Callable[[Sequence[Any]], Awaitable[list[Any]]], events: list[Any]) -> None:
    """Submit events in full ledger batches, a few requests in flight; every answer must be OK."""
    size = limits.get("ledger_events_per_batch_max").maximum
    slots = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
    ok = (CreateAccountResult.OK, CreateTransferResult.OK)

    async def one(chunk: list[Any]) -> None:
        async with slots:
            outcomes = await submit(chunk)
        failed = [o.result.name for o in outcomes if o.result not in ok]
        invariant(not failed, f"bench setup must succeed: {failed[:3]}")

    async with asyncio.TaskGroup() as group:
        for first in range(0, len(events), size):
            group.create_task(one(events[first:first + size]))


async def _copy_ordinary_rows(bench_dsn: str, account_ids: list[int]) -> None:
    rows = []
    for n, account_id in enumerate(account_ids):
        branch, number = BRANCHES[n % len(BRANCHES)], n // len(BRANCHES) + 1
        rows.append((account_id, branch, number, "ordinary", _id("customer", n), "active", FIRST_DAY, None,
                     FIRST_DAY, _id("open", n)))
    conn = await db.connect(bench_dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "accounts", schema_name="deposits", records=rows,
                columns=("id", "branch_code", "account_number", "subject", "customer_id", "status", "opened_on",
                         "closed_on", "last_activity_on", "open_request_id"))
            await conn.execute(
                "UPDATE deposits.branches b SET next_account_number = m.n + 1 FROM (SELECT branch_code,"
                " max(account_number) AS n FROM deposits.accounts GROUP BY branch_code) m"
                " WHERE b.branch_code = m.branch_code")
        await conn.execute("ANALYZE deposits.accounts")
    finally:
        await conn.close()


async def _setup_time_deposits(ledger: Ledger, bench_dsn: str, book: Book) -> None:
    await _bulk(ledger.create_accounts, [
        Account(id=deposit_id, ledger=JPY, code=TIME_DEPOSIT.code, flags=GUARDED_DEPOSIT_FLAGS,
                user_data_128=_id("customer", n)) for n, (deposit_id, *_) in enumerate(book.deposits)])
    await _bulk(ledger.create_transfers, [
        Transfer(id=_id("place", n), debit_account_id=funding, credit_account_id=deposit_id, amount=principal,
                 ledger=JPY, code=PLACEMENT_CODE, business_date=placed_on)
        for n, (deposit_id, funding, principal, _, _, placed_on) in enumerate(book.deposits)])
    rows = []
    calendar = BankCalendar()
    for n, (deposit_id, funding, principal, rate, tax_class, placed_on) in enumerate(book.deposits):
        term = TERMS[n % len(TERMS)][0]
        matures_on = add_months(placed_on, term)
        rows.append((deposit_id, _id("customer", n), funding, principal, rate, term, tax_class.value, placed_on,
                     matures_on, calendar.next_business_day(matures_on, include_today=True),
                     INSTRUCTIONS[n % len(INSTRUCTIONS)].value, "placed", 1, None))
        invariant(rows[-1][9] == MATURITY_DAY, "every bench time deposit pays on the maturity day")
    conn = await db.connect(bench_dsn)
    try:
        await conn.copy_records_to_table(
            "deposits", schema_name="time_deposits", records=rows,
            columns=("id", "customer_id", "ordinary_account_id", "principal_minor", "rate_percent", "term_months",
                     "tax_class", "placed_on", "matures_on", "pays_on", "instruction", "status", "generation",
                     "closed_on"))
        await conn.execute("ANALYZE time_deposits.deposits")
    finally:
        await conn.close()


# -- scenarios ------------------------------------------------------------------------------------------

async def _timed(coro: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - started


async def _ordinary_total(bench_dsn: str) -> int:
    """Σ posted balance of every ordinary account in the ledger (read directly, as `kanjo verify` does)."""
    conn = await db.connect(bench_dsn)
    try:
        return int(await conn.fetchval(
            "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger.accounts WHERE code = $1",
            ORDINARY_DEPOSIT.code))
    finally:
        await conn.close()


async def _accrual(d: Deposits, calendar: BankCalendar, today: list[dt.date], ledger: Ledger, bench_dsn: str,
                   book: Book, rng: random.Random) -> dict[str, Any]:
    _progress(f"accrual: {FIRST_DAY}, every account new; load average {os.getloadavg()[0]:.2f}")
    first, first_s = await _timed(accrue_interest(d, calendar, FIRST_DAY))
    today[0] = LAST_DAY
    moved = rng.sample(range(len(book.accounts)), max(1, int(len(book.accounts) * MOVED_SHARE)))
    book.last_balances = list(book.first_balances)
    vault = gl_account_id(CASH_VAULT)
    movements = []
    for n in moved:
        amount = rng.randrange(1_000, 500_000)
        book.last_balances[n] += amount
        movements.append(Transfer(id=_id("moved", n), debit_account_id=vault, credit_account_id=book.accounts[n],
                                  amount=amount, ledger=JPY, code=CASH_DEPOSIT_CODE, business_date=LAST_DAY))
    await _bulk(ledger.create_transfers, movements)
    _progress(f"accrual: {LAST_DAY}, {len(moved):,} accounts moved; load average {os.getloadavg()[0]:.2f}")
    last, last_s = await _timed(accrue_interest(d, calendar, LAST_DAY))
    rerun, rerun_s = await _timed(accrue_interest(d, calendar, LAST_DAY))
    conn = await db.connect(bench_dsn)
    try:
        rows, observed = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(balance_minor), 0) FROM deposits.interest_accruals")
    finally:
        await conn.close()
    total = await _ordinary_total(bench_dsn)
    n = len(book.accounts)
    verified = (first.new == n and first.changed == 0 and last.changed == len(moved) and last.new == 0
                and rerun.replayed and rows == n and int(observed) == total == sum(book.last_balances))
    runs = [{"business_date": first.business_date.isoformat(), "accounts": first.accounts, "new": first.new,
             "changed": first.changed, "seconds": round(first_s, 3)},
            {"business_date": last.business_date.isoformat(), "accounts": last.accounts, "new": last.new,
             "changed": last.changed, "seconds": round(last_s, 3)}]
    seconds = max(first_s, last_s)
    _progress(f"accrual: {first_s:.1f} s (all new), {last_s:.1f} s ({len(moved):,} changed), rerun {rerun_s:.2f} s,"
              f" verified={verified}")
    return {"scenario": "accrual", "accounts": n, "seconds": round(seconds, 3),
            "accounts_per_s": round(n / seconds, 1), "runs": runs, "rerun_seconds": round(rerun_s, 3),
            "rerun_replayed": rerun.replayed, "verified": verified}


def _expected_interest(book: Book) -> tuple[int, int, int, int]:
    """(accounts paid, gross, national, local) recomputed from what the bench deposited, in Decimal.

    From 2 Feb to 30 Jul (179 days) the first balance counts, from 31 Jul to 2 Aug (3 days) the last.
    """
    days_first = (LAST_DAY - FIRST_DAY).days
    days_last = (PAYOUT_DAY - LAST_DAY).days
    per_yen = Decimal(100 * 365)  # one division, after the exact product: no rounding before the floor
    paid = gross_total = national_total = local_total = 0
    for first, last in zip(book.first_balances, book.last_balances, strict=True):
        exact = Decimal(first * days_first + last * days_last) * RATE_PERCENT / per_yen
        gross = int(exact.to_integral_value(ROUND_DOWN))
        if gross:
            tax = withholding_tax(gross, TaxClass.INDIVIDUAL)
            paid += 1
            gross_total += gross
            national_total += tax.national_minor
            local_total += tax.local_minor
    return paid, gross_total, national_total, local_total


async def _gl(ledger: Ledger) -> tuple[int, int, int]:
    """(interest expense debited, withholding tax payable credited, cash vault debited)."""
    found = {a.id: a for a in await ledger.lookup_accounts([gl_account_id(DEPOSIT_INTEREST_EXPENSE),
                                                            gl_account_id(WITHHOLDING_TAX_PAYABLE),
                                                            gl_account_id(CASH_VAULT)])}
    return (found[gl_account_id(DEPOSIT_INTEREST_EXPENSE)].balance_debit_minor(),
            found[gl_account_id(WITHHOLDING_TAX_PAYABLE)].balance_credit_minor(),
            found[gl_account_id(CASH_VAULT)].balance_debit_minor())


async def _verify_ledger(bench_dsn: str) -> tuple[bool, float]:
    started = time.perf_counter()
    conn = await db.connect(bench_dsn)
    try:
        report = await verify_ledger(conn)
    finally:
        await conn.close()
    return bool(report["ok"]), time.perf_counter() - started


async def _payout(d: Deposits, calendar: BankCalendar, today: list[dt.date], ledger: Ledger, bench_dsn: str,
                  book: Book) -> dict[str, Any]:
    today[0] = PAYOUT_DAY
    before_total = await _ordinary_total(bench_dsn)
    before_gl = await _gl(ledger)
    _progress(f"payout: {PAYOUT_DAY}; load average {os.getloadavg()[0]:.2f}")
    run, seconds = await _timed(pay_interest(d, calendar, PAYOUT_DAY))
    after_total = await _ordinary_total(bench_dsn)
    after_gl = await _gl(ledger)
    expected = _expected_interest(book)
    ledger_ok, verify_s = await _verify_ledger(bench_dsn)
    matches = (run.credited, run.gross_minor, run.national_tax_minor, run.local_tax_minor) == expected
    books = (after_total - before_total == run.net_minor
             and after_gl[0] - before_gl[0] == run.gross_minor
             and after_gl[1] - before_gl[1] == run.national_tax_minor + run.local_tax_minor)
    verified = matches and books and ledger_ok and run.failed == 0
    _progress(f"payout: {run.credited:,} accounts credited in {seconds:.1f} s; ledger verified in {verify_s:.1f} s;"
              f" verified={verified}")
    return {"scenario": "payout", "accounts": len(book.accounts), "credited": run.credited, "failed": run.failed,
            "pages": run.pages, "seconds": round(seconds, 3),
            "accounts_per_s": round(run.credited / seconds, 1) if seconds else 0.0,
            "gross_minor": run.gross_minor, "net_minor": run.net_minor,
            "national_tax_minor": run.national_tax_minor, "local_tax_minor": run.local_tax_minor,
            "matches_recomputation": matches, "ledger_agrees": books, "verify_ledger_ok": ledger_ok,
            "verify_ledger_seconds": round(verify_s, 3), "verified": verified}


def _expected_maturity(book: Book) -> tuple[int, int]:
    """(Σ interest, Σ tax) of every deposit at maturity, recomputed from what the bench placed."""
    interest_total = tax_total = 0
    for n, (_, _, principal, rate, tax_class, placed_on) in enumerate(book.deposits):
        term = Term(TERMS[n % len(TERMS)][0])
        # 半年複利 from 3 years for individuals, simple interest otherwise
        compounding = (Compounding.HALF_YEARLY if term.months >= 36 and tax_class is TaxClass.INDIVIDUAL
                       else Compounding.SIMPLE)
        interest = interest_to_maturity(principal, rate, placed_on, term, compounding)
        interest_total += interest
        tax_total += withholding_tax(interest, tax_class).total_minor
    return interest_total, tax_total


async def _maturity(t: TimeDeposits, today: list[dt.date], ledger: Ledger, bench_dsn: str,
                    book: Book) -> dict[str, Any]:
    today[0] = MATURITY_DAY
    before_total = await _ordinary_total(bench_dsn)
    before_gl = await _gl(ledger)
    _progress(f"maturity: {len(book.deposits):,} time deposits due {MATURITY_DAY}; load average"
              f" {os.getloadavg()[0]:.2f}")
    run, seconds = await _timed(mature_due(t, MATURITY_DAY))
    after_total = await _ordinary_total(bench_dsn)
    after_gl = await _gl(ledger)
    conn = await db.connect(bench_dsn)
    try:
        settled = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(interest_minor), 0), coalesce(sum(national_tax_minor + local_tax_minor), 0),"
            " coalesce(sum(paid_out_minor), 0) FROM time_deposits.settlements WHERE business_date = $1", MATURITY_DAY)
        still_placed = int(await conn.fetchval(
            "SELECT coalesce(sum(principal_minor), 0) FROM time_deposits.deposits WHERE status = 'placed'"))
        in_ledger = int(await conn.fetchval(
            "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger.accounts WHERE code = $1",
            TIME_DEPOSIT.code))
    finally:
        await conn.close()
    overdue = await overdue_unprocessed(t, MATURITY_DAY + dt.timedelta(days=1))
    expected_interest, expected_tax = _expected_maturity(book)
    ledger_ok, verify_s = await _verify_ledger(bench_dsn)
    count, interest, tax, paid_out = (int(x) for x in settled)
    matches = (interest, tax) == (expected_interest, expected_tax)
    books = (after_total - before_total == paid_out and after_gl[0] - before_gl[0] == interest
             and after_gl[1] - before_gl[1] == tax and still_placed == in_ledger)
    verified = (matches and books and ledger_ok and not run.failed and overdue == 0
                and count == run.renewed + run.paid_out == len(book.deposits))
    _progress(f"maturity: {count:,} settled in {seconds:.1f} s; ledger verified in {verify_s:.1f} s;"
              f" verified={verified}")
    return {"scenario": "maturity", "time_deposits": len(book.deposits), "renewed": run.renewed,
            "paid_out": run.paid_out, "failed": len(run.failed), "seconds": round(seconds, 3),
            "deposits_per_s": round(count / seconds, 1) if seconds else 0.0, "interest_minor": interest,
            "tax_minor": tax, "paid_out_minor": paid_out, "matches_recomputation": matches, "ledger_agrees": books,
            "verify_ledger_ok": ledger_ok, "verify_ledger_seconds": round(verify_s, 3), "verified": verified}
