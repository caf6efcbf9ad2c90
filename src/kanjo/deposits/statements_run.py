"""The month-end statements job (当座勘定照合表): after the cut-off of the month's last business date, one issued
statement per account that has no passbook, per month, its figures checked against the ledger.

Who gets one. An account whose subject has no passbook (today 当座預金, `model.PASSBOOK_SUBJECTS`): a passbook is
the customer's own record of an ordinary account or a 総合口座 (記帳 prints it), so a bank mails nothing for those;
a current account has only the statement. A current account gets one *every* month it was open, even a month without
a movement: the 照合表 is how a company reconciles its cheque book and books with the bank's each month, and its
auditor confirms the month-end balance from it, so a silent month still needs its balance confirmed (a statement
with no line). Two exceptions: an account closed before the month began gets none (its last statement was the final
one), and a dormant account with no movement in the month gets none (its owner has lost touch: the mail would come
back, and a statement is no reason to write to someone the bank is protecting from takeover). A frozen account gets
its statement (an attachment order makes the balance matter more, not less).

What a statement holds. The period is the month's business dates, from its first business date to D, the month's
last. Its movements are the posted transfers dated in the period (holds are not movements until posted; a void or
an expiry moves nothing); opening is the balance dated before the period, closing is opening + credits − debits.
Business dates, not booking order: after the cut-off online books on D', and those transfers belong to next month.

Checked against the ledger. The transfers are read from the first one that can be dated in the period (the same
bisection and backdating slack as statements by period, `deposit_statement_backdating_days_max`) until one dated
beyond the period by more than the slack; the ledger's own balance history must then have moved, between just before
the first transfer read and just after the last, by exactly the sum of what was read. A statement that does not add
up is an invariant violation: the job fails and nothing wrong is ever issued. When an account's previous statement
closed at another balance than this one opens (a movement dated in an earlier month was booked after that month's
statement), the run counts it (`opening_differs`): the ledger, not the older statement, is right.

At scale: accounts are read in pages by id (keyset: `deposit_statement_accounts_per_page_max`), a few accounts'
histories at once (`deposit_statement_accounts_in_flight_max`), each page's statements written in one transaction.
Idempotent per (account, period) by the table's primary key: a page skips accounts already issued, so a rerun adds
nothing and a run resumed after a crash continues where the first stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from kanjo.business_calendar import BankCalendar
from kanjo.deposits.limits import STATEMENT_BACKDATING_DAYS_MAX
from kanjo.deposits.model import PASSBOOK_SUBJECTS, Refused, Status, Subject
from kanjo.deposits.service import Deposits, _first_dated_on_or_after, get_account
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import Transfer, TransferFlags

ACCOUNTS_PER_PAGE_MAX = limits.declare(
    "deposit_statement_accounts_per_page_max", 1_000, "accounts",
    "accounts read per page of the month-end statements job (keyset by id): a million never load at once, and a"
    " page's statements are written in one short transaction",
).maximum
ACCOUNTS_IN_FLIGHT_MAX = limits.declare(
    "deposit_statement_accounts_in_flight_max", 4, "accounts",
    "accounts whose ledger history the statements job reads at once: a few connections of the pool, the rest"
    " left to online",
).maximum
TRANSFERS_PER_STATEMENT_MAX = limits.declare(
    "deposit_statement_transfers_read_max", 2_000_000, "transfers",
    "transfers read to issue one account's monthly statement (a busy company's current account books tens of"
    " thousands); an account beyond it is left out of the run and counted, never guessed",
).maximum
ISSUED_LISTED_MAX = limits.declare(
    "deposit_statements_issued_listed_max", 120, "statements",
    "issued statements answered per request: ten years of months, the period books are kept; page with `before`",
).maximum
PAGE_ROWS = limits.get("ledger_page_rows_max").maximum
NOT_MOVEMENTS = int(TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER)
STATEMENT_SUBJECTS = [s.value for s in Subject if s not in PASSBOOK_SUBJECTS]


@dataclass(frozen=True, slots=True)
class StatementRun:
    """What one run of the month-end statements job did (a rerun: the same period, nothing issued)."""

    business_date: dt.date
    period_first: dt.date
    period_last: dt.date
    accounts: int  # accounts due and not yet issued when the run met them
    issued: int  # statements this run recorded
    without_movement: int  # of them, with no line (a month-end balance confirmation)
    skipped_dormant: int  # dormant accounts without a movement in the period
    over_limit: int  # accounts left out: more transfers than `deposit_statement_transfers_read_max`
    opening_differs: int  # opening ≠ the previous statement's closing (a late movement dated in an earlier month)
    pages: int


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    account_id: int
    period_first: dt.date
    period_last: dt.date
    opening_minor: int
    credits_minor: int
    debits_minor: int
    closing_minor: int
    lines: int
    business_date: dt.date
    issued_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Figures:
    opening_minor: int  # from the ledger's balance history and the transfers dated before the period
    credits_minor: int  # from the transfers dated in the period
    debits_minor: int
    closing_minor: int  # from the ledger's balance history less the transfers dated after the period
    lines: int


def is_statement_day(calendar: BankCalendar, day: dt.date) -> bool:
    """Statements are issued for the month whose last business date this is (月末営業日)."""
    return calendar.is_month_end_business_day(day)


def statement_month(calendar: BankCalendar, day: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the month ending on `day`: its first business date and `day` itself."""
    return calendar.next_business_day(day.replace(day=1), include_today=True), day


async def issue_statements(d: Deposits, calendar: BankCalendar, business_date: dt.date) -> StatementRun:
    """The month-end job: a statement for every account due, page by page. Only on the month's last business
    date and only after its cut-off (online already books on the next date), so the month's movements are all in."""
    day = business_date
    if not is_statement_day(calendar, day):
        raise Refused("not_a_statement_day", f"{day} is not the last business day of its month: statements are"
                      " issued for whole months")
    if d.business_date() <= day:
        raise Refused("day_not_cut_off", f"online still books on {d.business_date()}: the statements of {day} are"
                      " issued after its cut-off")
    first, last = statement_month(calendar, day)
    previous_last = calendar.previous_business_day(first)
    counts = dict.fromkeys(("accounts", "issued", "without_movement", "skipped_dormant", "over_limit",
                            "opening_differs", "pages"), 0)
    after_id = 0
    while True:
        async with d.pool.acquire() as conn:
            page = await conn.fetch(_DUE_PAGE, STATEMENT_SUBJECTS, after_id, first, last, ACCOUNTS_PER_PAGE_MAX,
                                    previous_last)
        invariant(len(page) <= ACCOUNTS_PER_PAGE_MAX, "a page holds at most a page of accounts")
        counts["pages"] += 1
        counts["accounts"] += len(page)
        await _issue_page(d, page, first, last, day, counts)
        if len(page) < ACCOUNTS_PER_PAGE_MAX:
            return StatementRun(day, first, last, **counts)
        after_id = page[-1]["id"]


# Accounts of the subjects due, open at some time in the period, without this period's statement yet; with the
# previous period's closing when there is one.
_DUE_PAGE = """
SELECT a.id, a.status, p.closing_minor AS previous_closing
FROM deposits.accounts a
LEFT JOIN deposits.statements p ON p.account_id = a.id AND p.period_last = $6
WHERE a.subject = ANY($1::text[]) AND a.id > $2::uuid
  AND a.opened_on <= $4 AND (a.closed_on IS NULL OR a.closed_on >= $3)
  AND NOT EXISTS (SELECT 1 FROM deposits.statements s WHERE s.account_id = a.id AND s.period_last = $4)
ORDER BY a.id
LIMIT $5
"""


async def _issue_page(d: Deposits, page: list[asyncpg.Record], first: dt.date, last: dt.date, day: dt.date,
                      counts: dict[str, int]) -> None:
    """Read the page's accounts from the ledger (a few at once), then write their statements in one transaction."""
    gate = asyncio.Semaphore(ACCOUNTS_IN_FLIGHT_MAX)

    async def read(account_id: int) -> _Figures | None:
        async with gate:
            return await _figures(d, account_id, first, last)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read(row["id"])) for row in page]
    except ExceptionGroup as failed:  # the page is not written; the job fails naming the first cause
        raise failed.exceptions[0] from failed
    rows = []
    for row, task in zip(page, tasks, strict=True):
        f = task.result()
        if f is None:
            counts["over_limit"] += 1
            continue
        if f.lines == 0 and row["status"] == Status.DORMANT.value:
            counts["skipped_dormant"] += 1
            continue
        if row["previous_closing"] is not None and row["previous_closing"] != f.opening_minor:
            counts["opening_differs"] += 1
        invariant(f.opening_minor + f.credits_minor - f.debits_minor == f.closing_minor,
                  "a statement's opening, credits and debits add up to its closing")  # the table checks it again
        counts["without_movement"] += int(f.lines == 0)
        rows.append((row["id"], f))
    if not rows:
        return
    async with d.pool.acquire() as conn, conn.transaction():
        issued = await conn.fetchval(
            "WITH issued AS ("
            " INSERT INTO deposits.statements (account_id, period_first, period_last, opening_minor, credits_minor,"
            "  debits_minor, closing_minor, lines, business_date)"
            " SELECT a, $2, $3, o, c, db, cl, n, $4"
            " FROM unnest($1::uuid[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::integer[])"
            "  AS u(a, o, c, db, cl, n)"
            " ON CONFLICT (account_id, period_last) DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM issued",
            [a for a, _ in rows], first, last, day, [f.opening_minor for _, f in rows],
            [f.credits_minor for _, f in rows], [f.debits_minor for _, f in rows],
            [f.closing_minor for _, f in rows], [f.lines for _, f in rows])
    invariant(issued <= len(rows), "a page records at most one statement per account it read")
    counts["issued"] += issued


async def _figures(d: Deposits, account_id: int, first: dt.date, last: dt.date) -> _Figures | None:
    """One account's figures for the period from its ledger transfers, reconciled with the ledger's balance history;
    None when it has more transfers to read than `deposit_statement_transfers_read_max`."""
    slack = dt.timedelta(days=STATEMENT_BACKDATING_DAYS_MAX)
    # Everything booked before `cursor` is dated before `first` (see service._transfers_in_period).
    cursor = await _first_dated_on_or_after(d, account_id, first - slack, 1)
    base_minor = await _posted_as_of(d, account_id, cursor - 1)
    before = credits = debits = after = lines = read = 0
    last_read, done = cursor - 1, False
    while not done:
        page = await d.ledger.get_account_transfers(account_id, timestamp_min=cursor, limit=PAGE_ROWS)
        done = len(page) < PAGE_ROWS
        for t in page:
            day = _business_date(t)
            if day > last + slack:  # nothing booked after it is dated in the period
                done = True
                break
            read += 1
            if read > TRANSFERS_PER_STATEMENT_MAX:
                limits.observe("deposit_statement_transfers_read_max", read)
                return None
            last_read = t.timestamp
            if t.flags & NOT_MOVEMENTS or t.amount == 0:
                continue
            signed = t.amount if t.credit_account_id == account_id else -t.amount
            if day < first:
                before += signed
            elif day > last:
                after += signed
            else:
                lines += 1
                credits += max(signed, 0)
                debits += max(-signed, 0)
        cursor = last_read + 1
    limits.observe("deposit_statement_transfers_read_max", read)
    end_minor = await _posted_as_of(d, account_id, last_read)
    moved, summed = end_minor - base_minor, before + credits - debits + after
    invariant(moved == summed, f"the ledger's balance history of account {uuid.UUID(int=account_id)} moved by"
              f" {moved} over the transfers read, which sum to {summed}")
    return _Figures(base_minor + before, credits, debits, end_minor - after, lines)


def _business_date(t: Transfer) -> dt.date:
    invariant(t.business_date is not None, "a stored transfer carries its business date")
    assert t.business_date is not None
    return t.business_date


async def _posted_as_of(d: Deposits, account_id: int, timestamp: int) -> int:
    """The account's posted balance just after the event at `timestamp` (0 before its first)."""
    if timestamp < 1:
        return 0
    b = await d.ledger.balance_as_of(account_id, timestamp)
    return b.credits_posted - b.debits_posted if b is not None else 0


async def issued_statements(d: Deposits, account_id: int, *, before: dt.date | None = None,
                            limit: int = 24) -> list[IssuedStatement]:
    """An account's issued statements, newest period first; `before`: periods ending before this date."""
    if limit > ISSUED_LISTED_MAX:
        raise LimitReached(limits.get("deposit_statements_issued_listed_max"), limit)
    if limit < 1:
        raise Refused("invalid_limit", "ask for at least one statement")
    await get_account(d, account_id)
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT account_id, period_first, period_last, opening_minor, credits_minor, debits_minor, closing_minor,"
            " lines, business_date, issued_at FROM deposits.statements"
            " WHERE account_id = $1 AND period_last < $2 ORDER BY period_last DESC LIMIT $3",
            account_id, before or dt.date.max, limit)
    return [IssuedStatement(*r) for r in rows]
