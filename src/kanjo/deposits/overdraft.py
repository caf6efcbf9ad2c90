"""総合口座 (general account): its automatic overdraft (自動貸越) — the rules, its tables and its day-end jobs.

Stated rules (a banker should find each one here, not in the handlers):
- Collateral (担保): the time deposits attached to the account (placed from it, paying into it), while placed.
- Limit (極度額) = the pledged principal × 90 %, rounded down to the yen, and at most ¥2,000,000;
  recomputed (under the account's lock) whenever money out would leave the account overdrawn.
- Money out beyond the available balance draws the shortfall from the overdraft (code 16 貸越) in one
  linked chain with the withdrawal; it is refused when the overdraft afterwards would exceed the limit.
- Money in repays the overdraft first (code 17 貸越返済), in the same chain. Credits that reach an
  overdrawn account some other way (a time deposit's payout, interest) are *spare funds*: money out
  counts them against the overdraft first, and the day-end sweep uses them to repay it.
- Rate: each pledged deposit's contract rate + 0.5 % p.a. The overdraft is secured by the deposits in
  ascending rate order (then the oldest placement first), each for 90 % of its principal; what exceeds
  their cover (interest added beyond the limit) bears the highest of those rates (the spread alone
  when nothing is pledged any more).
- Interest accrues daily on the end-of-day drawn balance (movements counted by business date),
  actual/365 also in leap years. The exact daily amounts are summed; a period's interest is rounded
  down to the yen once, when it is charged.
- Charged half-yearly (組入れ) by the first run on or after 1 February and 1 August, for the days
  before, by adding it to the overdraft (code 18 貸越利息). That may take the overdraft above the limit
  by the interest: banks allow it; money out stays refused until deposits bring it back under.
- At closing, the interest accrued since the last charge is collected from the balance.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

import asyncpg

from kanjo.accounting import JPY, LOAN_INTEREST_INCOME, gl_account_id
from kanjo.deposits.limits import (
    OVERDRAFT_ACCOUNTS_PER_BATCH_MAX,
    OVERDRAFT_CATCH_UP_DAYS_MAX,
    OVERDRAFT_PLEDGES_PER_ACCOUNT_MAX,
    OVERDRAFT_TRANSFERS_FOLDED_MAX,
)
from kanjo.deposits.model import OVERDRAFT_INTEREST_CODE, OVERDRAFT_REPAY_CODE
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import Account, AccountFlags, CreateTransferResult, Transfer, TransferFlags, read_accounts

if TYPE_CHECKING:
    from kanjo.deposits.service import Deposits

R = CreateTransferResult
POSTED = frozenset({R.OK, R.EXISTS, R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE})
OVERDRAFT_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-736f676f0000")

COLLATERAL_PERCENT = 90  # 極度額: 90 % of the pledged principal, rounded down to the yen
CEILING_MINOR = 2_000_000  # and never more than ¥2,000,000
SPREAD_PERCENT = Decimal("0.5")  # 貸越利率 = the pledged deposit's contract rate + 0.5 % p.a.
DAYS_PER_YEAR = 365  # actual/365, also in leap years
PERCENT = 100
CHARGE_MONTHS = (2, 8)  # 組入れ: February and August
# An asset: debits are what is drawn; the ledger refuses repaying more than that.
OVERDRAFT_ACCOUNT_FLAGS = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS | AccountFlags.HISTORY)


# -- rules (pure) ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Pledge:
    """A time deposit securing a 総合口座's overdraft, as the time-deposits context reports it."""

    deposit_id: int
    principal_minor: int
    rate_percent: Decimal  # the deposit's contract rate, % p.a.
    placed_on: dt.date


# What the app wires: the pledges of an account, read on the caller's connection (under its lock).
Collateral = Callable[[asyncpg.Connection, int], Awaitable[Sequence[Pledge]]]


def cover_minor(principal_minor: int) -> int:
    """What one yen amount of collateral secures: 90 %, rounded down to the yen."""
    return principal_minor * COLLATERAL_PERCENT // PERCENT


def overdraft_limit(pledges: Sequence[Pledge]) -> int:
    """極度額: 90 % of the pledged principal (rounded down), at most ¥2,000,000."""
    return min(cover_minor(sum(p.principal_minor for p in pledges)), CEILING_MINOR)


def secured_order(pledges: Sequence[Pledge]) -> list[Pledge]:
    """The order in which deposits secure the overdraft: lowest rate first, then the oldest placement."""
    return sorted(pledges, key=lambda p: (p.rate_percent, p.placed_on, p.deposit_id))


def interest_product(drawn_minor: int, pledges: Sequence[Pledge]) -> Decimal:
    """One day's Σ portion × (rate + spread), in yen·percent: that day's interest is this / 36,500 (exact)."""
    left = drawn_minor
    product = Decimal(0)
    for p in secured_order(pledges):
        portion = min(left, cover_minor(p.principal_minor))
        product += portion * (p.rate_percent + SPREAD_PERCENT)
        left -= portion
    excess_rate = max((p.rate_percent for p in pledges), default=Decimal(0)) + SPREAD_PERCENT
    return product + left * excess_rate


def interest_of(product_sum: Decimal) -> int:
    """A period's interest from its summed daily products: / 100 / 365, rounded down to the yen."""
    return int((product_sum / (PERCENT * DAYS_PER_YEAR)).to_integral_value(rounding=ROUND_DOWN))


def charge_point(day: dt.date) -> dt.date:
    """The latest 1 February or 1 August not after `day`: the interest of the days before it is due."""
    points = [dt.date(year, month, 1) for year in (day.year - 1, day.year) for month in CHARGE_MONTHS]
    return max(p for p in points if p <= day)


def drawn_after_money_out(available_minor: int, drawn_minor: int, amount_minor: int) -> int:
    """The overdraft after `amount` leaves the account: spare funds count against it first."""
    return max(0, drawn_minor + amount_minor - available_minor)


def repaid_by_money_in(available_minor: int, drawn_minor: int, amount_minor: int) -> int:
    """What `amount` coming in (with any spare funds) repays of the overdraft: all of it, up to what is drawn."""
    return min(drawn_minor, available_minor + amount_minor)


@dataclass(frozen=True, slots=True)
class Movement:
    """One posting on an overdraft account: + drawn (貸越, interest added), − repaid."""

    timestamp: int
    business_date: dt.date
    drawn_delta_minor: int


@dataclass(frozen=True, slots=True)
class Fold:
    """How far an accrual has read the overdraft account's movements: up to a ledger timestamp."""

    timestamp: int = 0
    volume_minor: int = 0  # Σ |amounts| read: equal to the ledger's debits + credits when nothing is new
    drawn_minor: int = 0  # drawn after them


def end_of_day_drawn(fold: Fold, movements: Sequence[Movement], days: Sequence[dt.date]) -> tuple[list[int], Fold]:
    """The drawn balance at the end of each day (movements counted by business date), and the new fold.

    The fold takes in the movements, in ledger order, up to the first one booked after the last day;
    later ones (and any booked earlier behind them) are read again next time.
    """
    by_date = sorted(movements, key=lambda m: m.business_date)
    drawn, i, eods = fold.drawn_minor, 0, []
    for day in days:
        while i < len(by_date) and by_date[i].business_date <= day:
            drawn += by_date[i].drawn_delta_minor
            i += 1
        invariant(drawn >= 0, "an overdraft is never below zero at the end of a day")
        eods.append(drawn)
    timestamp, volume, folded = fold.timestamp, fold.volume_minor, fold.drawn_minor
    for m in movements:
        if not days or m.business_date > days[-1]:
            break
        timestamp, volume, folded = m.timestamp, volume + abs(m.drawn_delta_minor), folded + m.drawn_delta_minor
    return eods, Fold(timestamp, volume, folded)


def overdraft_account_id(account_id: int) -> int:
    """The ledger id of a 総合口座's overdraft account: derived from the deposit account's id."""
    return name_id(OVERDRAFT_NAMESPACE, f"{account_id:032x}:overdraft")


def job_transfer_id(overdraft_id: int, job: str, day: dt.date) -> int:
    """One transfer per (overdraft account, job, date): a day-end job posts it once however often it runs."""
    return name_id(OVERDRAFT_NAMESPACE, f"{overdraft_id:032x}:{job}:{day.isoformat()}")


@dataclass(frozen=True, slots=True)
class OverdraftState:
    """A 総合口座's overdraft as a teller sees it."""

    account_id: int
    overdraft_account_id: int
    drawn_minor: int
    limit_minor: int
    collateral_minor: int  # pledged principal
    pledges: int  # time deposits pledged
    available_minor: int  # the deposit account's own available balance
    room_minor: int  # what more may be drawn now
    accrued_interest_minor: int  # accrued since the last charge, rounded down (not yet charged)
    accrued_through: dt.date
    interest_unpaid_minor: int  # interest added to the overdraft and not yet repaid


# -- tables --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Overdraft:
    account_id: int
    overdraft_account_id: int
    accrued_through: dt.date
    charged_before: dt.date
    fold: Fold
    interest_unpaid_minor: int  # interest added to the overdraft and not yet repaid: may exceed the limit


_COLUMNS = ("o.account_id, o.overdraft_account_id, o.accrued_through, o.charged_before, o.folded_timestamp,"
            " o.folded_volume_minor, o.folded_drawn_minor, o.interest_unpaid_minor")


def _overdraft(r: asyncpg.Record) -> Overdraft:
    return Overdraft(r[0], r[1], r[2], r[3], Fold(r[4], r[5], r[6]), r[7])


async def lock_overdrafts(conn: asyncpg.Connection, account_ids: Sequence[int]) -> dict[int, Overdraft]:
    """Take the money-out locks of these 総合口座, in id order (no deadlock between two transfers)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM deposits.overdrafts o WHERE o.account_id = ANY($1::uuid[])"
                            " ORDER BY o.account_id FOR UPDATE", list(account_ids))
    return {r[0]: _overdraft(r) for r in rows}


async def overdraft_row(conn: asyncpg.Connection, account_id: int) -> Overdraft | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM deposits.overdrafts o WHERE o.account_id = $1", account_id)
    return _overdraft(row) if row else None


async def insert_overdraft(conn: asyncpg.Connection, account_id: int, starts_on: dt.date) -> None:
    """A 総合口座's overdraft row: interest counts from `starts_on`."""
    await conn.execute(
        "INSERT INTO deposits.overdrafts (account_id, overdraft_account_id, accrued_through, charged_before)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO NOTHING",
        account_id, overdraft_account_id(account_id), starts_on - dt.timedelta(days=1), starts_on)


async def mark_general(conn: asyncpg.Connection, account_id: int) -> None:
    """An ordinary account becomes a 総合口座 (the caller holds its row lock and inserts its overdraft row)."""
    await conn.execute("UPDATE deposits.accounts SET subject = 'sogo' WHERE id = $1 AND subject = 'ordinary'",
                       account_id)


async def note_repaid(conn: asyncpg.Connection, account_id: int, repaid_minor: int) -> None:
    """A repayment pays the interest added to the overdraft first (it alone may exceed the limit)."""
    await conn.execute("UPDATE deposits.overdrafts SET interest_unpaid_minor = greatest(0, interest_unpaid_minor - $2)"
                       " WHERE account_id = $1", account_id, repaid_minor)


@dataclass(frozen=True, slots=True)
class Plan:
    """The legs of one movement of money touching a 総合口座, fixed under its lock before posting."""

    leg: str
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    debit_overdraft_minor: int  # > 0 drawn, < 0 repaid from spare funds, on the debit account's overdraft
    credit_repaid_minor: int  # repaid on the credit account's overdraft
    limit_minor: int | None  # what a drawing was checked against
    refused: str | None  # the refusal's code: a retry answers it again
    business_date: dt.date


async def planned(conn: asyncpg.Connection, request_id: int) -> Plan | None:
    r = await conn.fetchrow(
        "SELECT leg, debit_account_id, credit_account_id, amount_minor, debit_overdraft_minor, credit_repaid_minor,"
        " limit_minor, refused, business_date FROM deposits.overdraft_requests WHERE request_id = $1", request_id)
    return Plan(*r) if r else None


async def record_plan(conn: asyncpg.Connection, request_id: int, p: Plan) -> None:
    await conn.execute(
        "INSERT INTO deposits.overdraft_requests (request_id, leg, debit_account_id, credit_account_id, amount_minor,"
        " debit_overdraft_minor, credit_repaid_minor, limit_minor, refused, business_date)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        request_id, p.leg, p.debit_account_id, p.credit_account_id, p.amount_minor, p.debit_overdraft_minor,
        p.credit_repaid_minor, p.limit_minor, p.refused, p.business_date)


async def uncharged_product(conn: asyncpg.Connection, od: Overdraft, before: dt.date | None = None) -> Decimal:
    """Σ of the daily products accrued since the last charge (and before `before`)."""
    found = await conn.fetchval(
        "SELECT sum(interest_product) FROM deposits.overdraft_accruals WHERE account_id = $1"
        " AND business_date >= $2 AND business_date < coalesce($3, 'infinity'::date)",
        od.account_id, od.charged_before, before)
    return found or Decimal(0)


async def record_charge(conn: asyncpg.Connection, od: Overdraft, period_end: dt.date, kind: str,
                        interest_minor: int, transfer_id: int | None, business_date: dt.date) -> bool:
    """Write a charge and move the account's bookmark past it; False when it was already written."""
    inserted = await conn.fetchval(
        "INSERT INTO deposits.overdraft_charges (account_id, period_start, period_end, kind, interest_minor,"
        " transfer_id, business_date) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1",
        od.account_id, od.charged_before, period_end, kind, interest_minor, transfer_id, business_date)
    if not inserted:
        return False
    added = interest_minor if kind == "half_yearly" else 0  # collected at closing: never added to the overdraft
    await conn.execute(
        "UPDATE deposits.overdrafts SET charged_before = $2, interest_unpaid_minor = interest_unpaid_minor + $3"
        " WHERE account_id = $1", od.account_id, period_end, added)
    return True


# -- ledger reads ----------------------------------------------------------------------------------------

def available_minor(a: Account) -> int:
    """What can leave a deposit account now: posted credits less posted and pending debits."""
    return a.credits_posted - a.debits_posted - a.debits_pending


def drawn_minor(a: Account) -> int:
    """What an overdraft account has lent: posted debits less credits."""
    return a.debits_posted - a.credits_posted


async def pledges_of(d: Deposits, conn: asyncpg.Connection, account_id: int) -> list[Pledge]:
    """The account's collateral, read on `conn` (the caller holds the lock); none when nothing is wired."""
    if d.collateral is None:
        return []
    found = list(await d.collateral(conn, account_id))
    if len(found) > OVERDRAFT_PLEDGES_PER_ACCOUNT_MAX:
        raise LimitReached(limits.get("deposit_overdraft_pledges_per_account_max"), len(found))
    return found


async def _movements_since(d: Deposits, od: Overdraft) -> list[Movement]:
    """The overdraft account's postings after the fold, in ledger order (bounded: see the limit)."""
    page_max = limits.get("ledger_page_rows_max").maximum
    found: list[Movement] = []
    after = od.fold.timestamp
    while True:
        page = await d.ledger.get_account_transfers(od.overdraft_account_id, timestamp_min=after + 1, limit=page_max)
        for t in page:
            if t.amount and not t.flags & int(TransferFlags.PENDING | TransferFlags.VOID_PENDING_TRANSFER):
                sign = 1 if t.debit_account_id == od.overdraft_account_id else -1
                found.append(Movement(t.timestamp, t.business_date or d.business_date(), sign * t.amount))
        if len(page) < page_max:
            return found
        after = page[-1].timestamp
        if len(found) > OVERDRAFT_TRANSFERS_FOLDED_MAX:
            raise LimitReached(limits.get("deposit_overdraft_transfers_folded_max"), len(found))


# -- day-end jobs ----------------------------------------------------------------------------------------

@dataclass
class OverdraftRun:
    """What one run of an overdraft day-end job did on a business date."""

    business_date: dt.date
    accounts: int = 0  # accounts it changed
    amount_minor: int = 0  # repaid (sweep) or interest charged
    lagging: list[tuple[int, str]] = field(default_factory=list)  # (account id, why): left for the next run


async def repay_from_spare_funds(d: Deposits, conn: asyncpg.Connection, od: Overdraft, transfer_id: int,
                                 business_date: dt.date) -> int:
    """Repay the overdraft from the account's spare funds; the caller holds the account's lock. Idempotent by id."""
    deposit, overdraft = await read_accounts(conn, [od.account_id, od.overdraft_account_id])
    repaid = min(drawn_minor(overdraft), max(0, available_minor(deposit)))
    if repaid == 0:
        return 0
    [outcome] = await d.ledger.create_transfers([Transfer(
        id=transfer_id, debit_account_id=od.account_id, credit_account_id=od.overdraft_account_id, amount=repaid,
        ledger=JPY, code=OVERDRAFT_REPAY_CODE, business_date=business_date)])
    if outcome.result is not R.OK:
        return 0  # already repaid under this id (EXISTS…), or the funds just left: the next sweep tries again
    await note_repaid(conn, od.account_id, repaid)
    return repaid


async def sweep_overdrafts(d: Deposits, business_date: dt.date) -> OverdraftRun:
    """Day end: every active, overdrawn 総合口座 with spare funds repays its overdraft from them. Idempotent."""
    run = OverdraftRun(business_date)
    after_id = 0
    while True:
        async with d.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT o.account_id, o.overdraft_account_id FROM deposits.overdrafts o"
                " JOIN deposits.accounts a ON a.id = o.account_id WHERE a.status = 'active' AND o.account_id > $1"
                " ORDER BY o.account_id LIMIT $2", after_id, OVERDRAFT_ACCOUNTS_PER_BATCH_MAX)
            if not rows:
                return run
            after_id = rows[-1][0]
            ids = [i for r in rows for i in (r[0], r[1])]
            found = {a.id: a for a in await read_accounts(conn, ids)}
            due = [r[0] for r in rows if r[0] in found and r[1] in found
                   and drawn_minor(found[r[1]]) > 0 and available_minor(found[r[0]]) > 0]
            async with conn.transaction():
                for od in (await lock_overdrafts(conn, due)).values():
                    repaid = await repay_from_spare_funds(
                        d, conn, od, job_transfer_id(od.overdraft_account_id, "sweep", business_date), business_date)
                    run.accounts += repaid > 0
                    run.amount_minor += repaid
        if len(rows) < OVERDRAFT_ACCOUNTS_PER_BATCH_MAX:
            return run


async def accrue_account(d: Deposits, conn: asyncpg.Connection, od: Overdraft, through: dt.date,
                         overdraft: Account | None = None) -> dt.date:
    """Accrue one account's interest for each day after `accrued_through` up to `through` (catch-up bounded);
    returns the day it is accrued through. Idempotent: a day is accrued once, whoever runs it."""
    if od.accrued_through >= through:
        return od.accrued_through
    last = min(through, od.accrued_through + dt.timedelta(days=OVERDRAFT_CATCH_UP_DAYS_MAX))
    days = [od.accrued_through + dt.timedelta(days=n) for n in range(1, (last - od.accrued_through).days + 1)]
    if overdraft is None:
        [overdraft] = await read_accounts(conn, [od.overdraft_account_id])
    unchanged = overdraft.debits_posted + overdraft.credits_posted == od.fold.volume_minor
    movements = [] if unchanged else await _movements_since(d, od)
    eods, fold = end_of_day_drawn(od.fold, movements, days)
    pledges = await pledges_of(d, conn, od.account_id) if any(eods) else []
    accrued = [(day, eod, interest_product(eod, pledges)) for day, eod in zip(days, eods, strict=True) if eod > 0]
    async with conn.transaction():
        moved = await conn.fetchval(
            "UPDATE deposits.overdrafts SET accrued_through = $3, folded_timestamp = $4, folded_volume_minor = $5,"
            " folded_drawn_minor = $6 WHERE account_id = $1 AND accrued_through = $2 RETURNING 1",
            od.account_id, od.accrued_through, last, fold.timestamp, fold.volume_minor, fold.drawn_minor)
        if moved and accrued:
            await conn.execute(
                "INSERT INTO deposits.overdraft_accruals (account_id, business_date, drawn_minor, interest_product)"
                " SELECT $1, u.day, u.drawn, u.product FROM unnest($2::date[], $3::bigint[], $4::numeric[])"
                " AS u (day, drawn, product) ON CONFLICT DO NOTHING",
                od.account_id, [a[0] for a in accrued], [a[1] for a in accrued], [a[2] for a in accrued])
    return last


async def _accrue_all(d: Deposits, through: dt.date, run: OverdraftRun) -> None:
    after_id = 0
    while True:
        async with d.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM deposits.overdrafts o JOIN deposits.accounts a ON a.id = o.account_id"
                " WHERE o.accrued_through < $1 AND a.status <> 'closed' AND o.account_id > $2"
                " ORDER BY o.account_id LIMIT $3", through, after_id, OVERDRAFT_ACCOUNTS_PER_BATCH_MAX)
            if not rows:
                return
            after_id = rows[-1][0]
            batch = [_overdraft(r) for r in rows]
            found = {a.id: a for a in await read_accounts(conn, [od.overdraft_account_id for od in batch])}
            # Most accounts owe nothing and did not move: no interest on any day, one statement for them all.
            idle = [od for od in batch if od.fold.drawn_minor == 0 and (lent := found.get(od.overdraft_account_id))
                    and lent.debits_posted + lent.credits_posted == od.fold.volume_minor]
            await conn.execute(
                "UPDATE deposits.overdrafts o SET accrued_through = $1"
                " FROM unnest($2::uuid[], $3::date[]) AS u (id, old)"
                " WHERE o.account_id = u.id AND o.accrued_through = u.old", through,
                [od.account_id for od in idle], [od.accrued_through for od in idle])
            run.accounts += len(idle)
            skip = {od.account_id for od in idle}
            for od in batch:
                if od.account_id in skip:
                    continue
                if od.overdraft_account_id not in found:
                    run.lagging.append((od.account_id, "the overdraft account is not in the ledger"))
                    continue
                reached = await accrue_account(d, conn, od, through, found[od.overdraft_account_id])
                run.accounts += 1
                if reached < through:
                    run.lagging.append((od.account_id, f"accrued through {reached} (catch-up is bounded)"))
        if len(rows) < OVERDRAFT_ACCOUNTS_PER_BATCH_MAX:
            return


async def accrue_overdraft_interest(d: Deposits, business_date: dt.date) -> OverdraftRun:
    """Day end: sweep spare funds into the overdrafts, then accrue each 総合口座's interest through the day."""
    await sweep_overdrafts(d, business_date)
    run = OverdraftRun(business_date)
    await _accrue_all(d, business_date, run)
    return run


async def charge_overdraft_interest(d: Deposits, business_date: dt.date) -> OverdraftRun:
    """Half-yearly (組入れ): add the interest of the days before the latest charge point (1 Feb, 1 Aug) to each
    overdraft, catching up the accrual first. Idempotent: once per account and charge point, whenever it runs.
    Run after the day's accrual, the added interest bears interest from the next day (before it: from today)."""
    point = charge_point(business_date)
    run = OverdraftRun(business_date)
    await _accrue_all(d, point - dt.timedelta(days=1), run)
    run.accounts = 0
    after_id = 0
    while True:
        async with d.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM deposits.overdrafts o JOIN deposits.accounts a ON a.id = o.account_id"
                " WHERE o.charged_before < $1 AND a.status <> 'closed' AND o.account_id > $2"
                " ORDER BY o.account_id LIMIT $3 FOR UPDATE OF o", point, after_id, OVERDRAFT_ACCOUNTS_PER_BATCH_MAX)
            if not rows:
                return run
            after_id = rows[-1][0]
            await _charge_batch(d, conn, [_overdraft(r) for r in rows], point, business_date, run)
        if len(rows) < OVERDRAFT_ACCOUNTS_PER_BATCH_MAX:
            return run


async def _charge_batch(d: Deposits, conn: asyncpg.Connection, batch: list[Overdraft], point: dt.date,
                        business_date: dt.date, run: OverdraftRun) -> None:
    due: list[tuple[Overdraft, int]] = []
    for od in batch:
        if od.accrued_through < point - dt.timedelta(days=1):
            run.lagging.append((od.account_id, f"accrued only through {od.accrued_through}"))
            continue
        due.append((od, interest_of(await uncharged_product(conn, od, point))))
    charged = [(od, interest) for od, interest in due if interest > 0]
    outcomes = await d.ledger.create_transfers([Transfer(
        id=job_transfer_id(od.overdraft_account_id, "interest", point), debit_account_id=od.overdraft_account_id,
        credit_account_id=gl_account_id(LOAN_INTEREST_INCOME), amount=interest, ledger=JPY,
        code=OVERDRAFT_INTEREST_CODE, business_date=business_date) for od, interest in charged])
    posted = {od.account_id: o.result for (od, _), o in zip(charged, outcomes, strict=True)}
    for od, interest in due:
        result = posted.get(od.account_id, R.OK)
        if result not in POSTED:
            run.lagging.append((od.account_id, f"the ledger refused the charge: {result.name.lower()}"))
            continue
        transfer_id = job_transfer_id(od.overdraft_account_id, "interest", point) if interest else None
        if await record_charge(conn, od, point, "half_yearly", interest, transfer_id, business_date):
            run.accounts += interest > 0
            run.amount_minor += interest
