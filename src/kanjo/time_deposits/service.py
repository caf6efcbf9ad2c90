"""Handlers of time deposits: place, change the maturity instruction, mature what falls due (set-based,
idempotent), withdraw early.

Money moves only through the ledger. A placement's transfer id derives from the caller's request id;
a settlement's transfer ids derive from (deposit id, generation, leg), so a maturity or an early
withdrawal of one generation can be posted once only, however often it is run or retried.

Settlements pay the deposit's payout account (入金口座: the funding account unless another ordinary
account of the same customer was named at placement or by an instruction change); the deposit stays
attached to the account it was placed from (its `ordinary_account_id`, the 総合口座 it secures).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import asyncpg

from kanjo.accounting import (
    DEPOSIT_INTEREST_EXPENSE,
    GUARDED_DEPOSIT_FLAGS,
    JPY,
    ORDINARY_DEPOSIT,
    TIME_DEPOSIT,
    WITHHOLDING_TAX_PAYABLE,
    gl_account_id,
)
from kanjo.business_calendar import BankCalendar
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import Account, CreateAccountResult, CreateTransferResult, Ledger, Transfer, TransferFlags
from kanjo.time_deposits import store
from kanjo.time_deposits.limits import MATURITIES_PER_BATCH_MAX, MATURITY_BATCHES_IN_FLIGHT_MAX, PRINCIPAL_MAX
from kanjo.time_deposits.model import (
    EARLY_PAYOUT_CODE,
    INTEREST_CODE,
    LOCAL_TAX_CODE,
    MATURITY_PAYOUT_CODE,
    NATIONAL_TAX_CODE,
    PLACEMENT_CODE,
    Action,
    Instruction,
    RateTable,
    Refused,
    Settlement,
    Status,
    TaxClass,
    Term,
    TimeDeposit,
    reinstructed,
    renewed,
    settle_at_maturity,
    settle_early,
    transition,
)

R = CreateTransferResult
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-74696d656470")
_NAMESPACE_BYTES = REQUEST_NAMESPACE.bytes
# Answers that mean "this transfer is in the ledger": a replay may carry a later business date.
POSTED = frozenset({R.OK, R.EXISTS, R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE})


@dataclass
class TimeDeposits:
    """The context's handle: its database pool, the ledger, the business date and the bank calendar;
    `funding_check` says why an ordinary account may not fund a placement now (frozen, dormant…), wired by the app;
    the same check refuses a payout account that could not be used."""

    pool: asyncpg.Pool
    ledger: Ledger
    business_date: Callable[[], dt.date]
    calendar: BankCalendar
    funding_check: Callable[[int], Awaitable[str | None]] | None = None


class NotFound(Exception):
    """No time deposit (or account) with that id."""


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return name_id(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}")


def settlement_transfer_id(deposit_id: int, generation: int, leg: str) -> int:
    """One id per (deposit, generation, leg): a generation is settled once, by maturity or early withdrawal.

    uuid.uuid5(REQUEST_NAMESPACE, name).int (kernel.ids.name_id): a month end derives a million.
    """
    name = f"{deposit_id:032x}:{generation}:{leg}"
    return name_id(_NAMESPACE_BYTES, name)


# -- placement -------------------------------------------------------------------------------------------

async def place_time_deposit(t: TimeDeposits, request_id: int, customer_id: int, funding_account_id: int,
                             principal_minor: int, term_months: int, instruction: Instruction,
                             tax_class: TaxClass = TaxClass.INDIVIDUAL,
                             payout_account_id: int | None = None) -> TimeDeposit:
    """預入: principal from the customer's ordinary account to a new time-deposit account, at today's rate.

    What is paid out later goes to `payout_account_id`, another ordinary account of the same customer
    (default: the funding account)."""
    term = Term(term_months)
    payout = funding_account_id if payout_account_id is None else payout_account_id
    if principal_minor > PRINCIPAL_MAX:
        raise LimitReached(limits.get("time_deposit_principal_max_minor"), principal_minor)
    if principal_minor < 1:
        raise Refused("invalid_amount", "the principal must be at least ¥1")
    today = t.business_date()
    async with t.pool.acquire() as conn:
        done = await store.request(conn, request_id)
        if done is not None:
            asked = _Asked(customer_id, funding_account_id, principal_minor, term, instruction, payout)
            return await _replayed_placement(conn, done, asked)
        rate = (await store.rate_table(conn, today)).rate(term, principal_minor)
    await _check_account(t, customer_id, funding_account_id, "funding")
    if payout != funding_account_id:
        await _check_account(t, customer_id, payout, "payout")
    deposit_id = derived_id(request_id, "time-deposit")
    [created] = await t.ledger.create_accounts([Account(
        id=deposit_id, ledger=JPY, code=TIME_DEPOSIT.code, flags=GUARDED_DEPOSIT_FLAGS, user_data_128=customer_id)])
    if created.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS):
        raise RuntimeError(f"the ledger refused the time-deposit account: {created.result.name}")
    placement = Transfer(id=derived_id(request_id, "place"), debit_account_id=funding_account_id,
                         credit_account_id=deposit_id, amount=principal_minor, ledger=JPY, code=PLACEMENT_CODE,
                         business_date=today)
    [outcome] = await t.ledger.create_transfers([placement])
    if outcome.result not in POSTED:
        raise _refusal(outcome.result, principal_minor)
    matures_on = term.maturity(today)
    deposit = TimeDeposit(deposit_id, customer_id, funding_account_id, principal_minor, rate, term.months,
                          tax_class, today, matures_on, t.calendar.next_business_day(matures_on, include_today=True),
                          instruction, Status.PLACED, 1, payout_account_id=payout)
    async with t.pool.acquire() as conn, conn.transaction():
        await store.insert_deposit(conn, deposit)
        await store.record_request(conn, request_id, "place", deposit_id, instruction, payout)
        stored = await store.deposit(conn, deposit_id)
    invariant(stored is not None and stored.principal_minor == principal_minor
              and stored.payout_account_id == payout, "the placement was recorded")
    assert stored is not None
    return stored


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a placement request asked for, to tell a retry from another request under the same id."""

    customer_id: int
    funding_account_id: int
    principal_minor: int
    term: Term
    instruction: Instruction
    payout_account_id: int


async def _replayed_placement(conn: asyncpg.Connection, done: asyncpg.Record, asked: _Asked) -> TimeDeposit:
    """A retried placement answers the deposit it made (which may since have been renewed, re-instructed or
    settled): it is compared with what the placement asked for, not with the deposit's state now."""
    existing = await store.deposit(conn, done["deposit_id"])
    invariant(existing is not None, "a recorded request names its deposit")
    assert existing is not None
    same = (done["kind"] == "place" and existing.customer_id == asked.customer_id
            and existing.ordinary_account_id == asked.funding_account_id
            and existing.term_months == asked.term.months
            and (existing.generation > 1 or existing.principal_minor == asked.principal_minor)
            and (done["instruction"] is None  # recorded before placements kept what they asked for
                 or (done["instruction"] == asked.instruction.value
                     and done["payout_account_id"] == asked.payout_account_id)))
    if not same:
        raise Refused("request_reused", "this request id was already used for a different request")
    return existing


async def _check_account(t: TimeDeposits, customer_id: int, account_id: int, role: str) -> None:
    """The funding or payout account: an ordinary deposit account of the customer, usable now (if the bank says)."""
    found = await t.ledger.lookup_accounts([account_id])
    if not found or found[0].code != ORDINARY_DEPOSIT.code:
        raise NotFound(f"no ordinary deposit account {uuid.UUID(int=account_id)}")
    if found[0].user_data_128 != customer_id:
        raise Refused("not_the_customers_account", f"the {role} account belongs to another customer")
    if t.funding_check is not None and (why := await t.funding_check(account_id)) is not None:
        if role == "funding":
            raise Refused("funding_account_not_usable", why)
        raise Refused(f"{role}_account_not_usable", f"the {role} account {uuid.UUID(int=account_id)} cannot be"
                      f" named: {why}")


def _refusal(result: CreateTransferResult, amount_minor: int) -> Refused:
    name = result.name.lower()
    if name.startswith("exists_with_different_"):
        return Refused("request_reused", f"this request id was already used with a different"
                       f" {name.removeprefix('exists_with_different_')}")
    if result is R.EXCEEDS_CREDITS:
        return Refused("insufficient_funds", f"the ordinary account's balance is less than ¥{amount_minor:,}")
    if result in (R.DEBIT_ACCOUNT_ALREADY_CLOSED, R.CREDIT_ACCOUNT_ALREADY_CLOSED):
        return Refused("account_closed", "the ordinary account is closed")
    if result in (R.DEBIT_ACCOUNT_NOT_FOUND, R.CREDIT_ACCOUNT_NOT_FOUND):
        return Refused("unknown_account", "an account of the movement is not in the ledger")
    return Refused(name, f"the ledger refused the posting: {name}")


# -- instruction change (満期時の取扱変更) -------------------------------------------------------------------

async def change_instruction(t: TimeDeposits, request_id: int, deposit_id: int, instruction: Instruction,
                             payout_account_id: int | None = None) -> TimeDeposit:
    """満期時の取扱変更: what the coming maturity does, and where it pays (None keeps the payout account).

    Refused once the deposit is no longer placed, or on or after its maturity date. Idempotent by request id:
    a retry answers the deposit as it is now and changes nothing; the same id with another change is refused.
    The instruction and payout account hold for every later generation too, until changed again.
    """
    async with t.pool.acquire() as conn:
        done = await store.request(conn, request_id)
        if done is not None:
            return await _replayed_change(conn, done, deposit_id, instruction, payout_account_id)
        d = await store.deposit(conn, deposit_id)
    if d is None:
        raise NotFound(f"no time deposit {uuid.UUID(int=deposit_id)}")
    today = t.business_date()
    reinstructed(d, today, instruction, payout_account_id)  # refuses before asking about the account
    if payout_account_id is not None and payout_account_id != d.payout_account_id:
        await _check_account(t, d.customer_id, payout_account_id, "payout")
    async with t.pool.acquire() as conn, conn.transaction():
        locked = await store.deposit(conn, deposit_id, for_update=True)
        invariant(locked is not None, "a time deposit is never deleted")
        assert locked is not None
        changed = reinstructed(locked, today, instruction, payout_account_id)  # a maturity may have run
        await store.change_instruction(conn, changed)
        if not await store.record_request(conn, request_id, "change_instruction", deposit_id, instruction,
                                          payout_account_id):
            # A concurrent retry recorded it first: answer as a retry does (a different change rolls back).
            done = await store.request(conn, request_id)
            assert done is not None
            return await _replayed_change(conn, done, deposit_id, instruction, payout_account_id)
    return changed


async def _replayed_change(conn: asyncpg.Connection, done: asyncpg.Record, deposit_id: int,
                           instruction: Instruction, payout_account_id: int | None) -> TimeDeposit:
    same = (done["kind"] == "change_instruction" and done["deposit_id"] == deposit_id
            and done["instruction"] == instruction.value and done["payout_account_id"] == payout_account_id)
    if not same:
        raise Refused("request_reused", "this request id was already used for a different request")
    d = await store.deposit(conn, deposit_id)
    invariant(d is not None, "a recorded request names its deposit")
    assert d is not None
    return d


# -- reads -----------------------------------------------------------------------------------------------

async def get_time_deposit(t: TimeDeposits, deposit_id: int) -> TimeDeposit:
    async with t.pool.acquire() as conn:
        found = await store.deposit(conn, deposit_id)
    if found is None:
        raise NotFound(f"no time deposit {uuid.UUID(int=deposit_id)}")
    return found


async def time_deposits_of_customer(t: TimeDeposits, customer_id: int) -> list[TimeDeposit]:
    async with t.pool.acquire() as conn:
        return await store.deposits_of_customer(conn, customer_id)


async def overdue_unprocessed(t: TimeDeposits, on: dt.date) -> int:
    """For `kanjo verify`: placed deposits whose payment day passed before `on` without processing."""
    async with t.pool.acquire() as conn:
        return await store.count_overdue(conn, on)


# -- settlement (maturity and early withdrawal) ---------------------------------------------------------

@functools.cache
def _gl_ids() -> tuple[int, int]:
    """(interest expense, withholding tax payable): derived once, not once per deposit."""
    return gl_account_id(DEPOSIT_INTEREST_EXPENSE), gl_account_id(WITHHOLDING_TAX_PAYABLE)


def _settlement_chain(d: TimeDeposit, s: Settlement, early: bool, business_date: dt.date | None = None
                      ) -> list[Transfer]:
    """The deposit's linked chain: interest in, taxes out, payout; zero legs are left out."""
    invariant(s.principal_minor + s.interest_minor - s.tax.total_minor - s.paid_out_minor
              == s.renewed_principal_minor, "a settlement conserves every yen")
    prefix = "early-" if early else ""
    payout_code = EARLY_PAYOUT_CODE if early else MATURITY_PAYOUT_CODE
    expense, tax_payable = _gl_ids()
    legs = [
        ("interest", expense, d.id, s.interest_minor, INTEREST_CODE),
        ("national-tax", d.id, tax_payable, s.tax.national_minor, NATIONAL_TAX_CODE),
        ("local-tax", d.id, tax_payable, s.tax.local_minor, LOCAL_TAX_CODE),
        ("payout", d.id, d.payout_account_id, s.paid_out_minor, payout_code),
    ]
    linked = int(TransferFlags.LINKED)
    # Positional: id, debit, credit, amount, ledger, code, flags, pending_id, timeout, user_data_128/64/32, date.
    chain = [Transfer(settlement_transfer_id(d.id, d.generation, prefix + leg), debit, credit, amount, JPY, code,
                      linked, 0, 0, d.id, 0, d.generation, business_date)
             for leg, debit, credit, amount, code in legs if amount > 0]
    if chain:  # a renewal with no interest moves nothing
        chain[-1].flags = 0
    return chain


@dataclass
class MaturityRun:
    """What one run of maturity processing did on a business date."""

    business_date: dt.date
    renewed: int = 0
    paid_out: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (deposit id, reason): left placed


async def mature_due(t: TimeDeposits, business_date: dt.date | None = None) -> MaturityRun:
    """Settle every placed deposit payable on or before the business date, in batches; idempotent.

    Batches are read one after another (rows locked, in (payment day, id) order) and settled
    concurrently, a few in flight: while the ledger posts one batch's chains, the next is read and
    planned. Each batch commits its own transaction once its chains are in the ledger; a crash leaves
    the unrecorded ones placed, and the next run finds their chains `exists` and records them.
    """
    day = business_date or t.business_date()
    run = MaturityRun(day)
    async with t.pool.acquire() as conn:
        rates = await store.rate_table(conn, day)
    pays_on: dict[dt.date, dt.date] = {}  # the renewals' payment days, by contractual date (a few per run)
    # A run after missed days (an outage) catches up: a renewed generation already payable is settled by the
    # next pass, until a pass settles nothing more.
    while True:
        settled = run.renewed + run.paid_out
        await _mature_pass(t, day, rates, run, pays_on)
        if run.renewed + run.paid_out == settled or run.renewed == 0:
            return run


async def _mature_pass(t: TimeDeposits, day: dt.date, rates: RateTable, run: MaturityRun,
                       pays_on: dict[dt.date, dt.date]) -> None:
    """One pass over the deposits payable on or before `day`, each settled for its current generation."""
    slots = asyncio.Semaphore(MATURITY_BATCHES_IN_FLIGHT_MAX)
    after: tuple[dt.date, int] = (dt.date.min, 0)
    async with _first_failure(), asyncio.TaskGroup() as group:
        while True:
            await slots.acquire()
            batch = _Batch(t.pool, await t.pool.acquire(), slots)
            try:
                await batch.begin()
                due = await store.due_for_update(batch.conn, day, after, MATURITIES_PER_BATCH_MAX)
            except BaseException:
                await batch.end()
                raise
            if not due:
                await batch.end()
                break
            after = (due[-1].pays_on, due[-1].id)
            limits.observe("time_deposit_maturities_per_batch_max", len(due))
            group.create_task(_settle_batch(t, batch, _plan_maturities(t, due, rates, day, run, pays_on), day, run))
            if len(due) < MATURITIES_PER_BATCH_MAX:
                break


class _Batch:
    """A batch's pooled connection and transaction (its rows stay locked until it commits) and its slot."""

    def __init__(self, pool: asyncpg.Pool, conn: asyncpg.Connection, slot: asyncio.Semaphore) -> None:
        self.pool = pool
        self.conn = conn
        self.slot = slot
        self.transaction = conn.transaction()
        self.started = False
        self.ended = False

    async def begin(self) -> None:
        await self.transaction.start()
        self.started = True

    async def end(self, commit: bool = False) -> None:
        """Commit or roll back, give the connection back and free the slot, whatever happens; once."""
        if self.ended:
            return
        self.ended = True
        try:
            if self.started:
                await (self.transaction.commit() if commit else self.transaction.rollback())
        finally:
            try:
                await self.pool.release(self.conn)
            finally:
                self.slot.release()


Plan = tuple[TimeDeposit, Settlement, TimeDeposit, list[Transfer]]


def _plan_maturities(t: TimeDeposits, due: list[TimeDeposit], rates: RateTable, day: dt.date, run: MaturityRun,
                     pays_on: dict[dt.date, dt.date]) -> list[Plan]:
    plans: list[Plan] = []
    for d in due:
        s = settle_at_maturity(d)
        try:
            after = _after_maturity(t, d, s, rates.rate(d.term, s.renewed_principal_minor)
                                    if s.renewed_principal_minor else None, day, pays_on)
        except Refused as exc:
            run.failed.append((d.id, str(exc)))
            continue
        plans.append((d, s, after, _settlement_chain(d, s, early=False, business_date=day)))
    return plans


async def _settle_batch(t: TimeDeposits, batch: _Batch, plans: list[Plan], day: dt.date, run: MaturityRun) -> None:
    """Post the batch's chains, record what the ledger took, commit (a failure rolls the batch back)."""
    try:
        outcomes = iter(await t.ledger.create_transfers([x for p in plans for x in p[3]]))
        settled = []
        failed = []
        for d, s, after, chain in plans:
            results = [next(outcomes).result for _ in chain]
            if all(r in POSTED for r in results):
                settled.append((d, s, after))
            else:
                failed.append((d.id, next(r for r in results if r not in POSTED).name.lower()))
        await store.record_settlements(batch.conn, "maturity", day, settled)
        await batch.end(commit=True)
    finally:
        await batch.end()  # rolls back unless committed above
    run.failed.extend(failed)
    run.renewed += sum(after.status is Status.PLACED for _, _, after in settled)
    run.paid_out += sum(after.status is Status.MATURED for _, _, after in settled)


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


def _after_maturity(t: TimeDeposits, d: TimeDeposit, s: Settlement, renewal_rate: Decimal | None,
                    day: dt.date, pays_on: dict[dt.date, dt.date]) -> TimeDeposit:
    if s.renewed_principal_minor == 0:
        return replace(d, status=transition(d.status, Action.PAY_OUT_AT_MATURITY), closed_on=day)
    invariant(renewal_rate is not None, "a renewal has its rate")
    assert renewal_rate is not None
    next_matures_on = d.term.maturity(d.matures_on)
    next_pays_on = pays_on.get(next_matures_on)
    if next_pays_on is None:
        next_pays_on = pays_on[next_matures_on] = t.calendar.next_business_day(next_matures_on, include_today=True)
    return renewed(d, s, renewal_rate, next_pays_on)


async def withdraw_early(t: TimeDeposits, request_id: int, deposit_id: int) -> Settlement:
    """中途解約 on the business date: principal and interest at the early-withdrawal rate, less tax."""
    async with t.pool.acquire() as conn, conn.transaction():
        done = await store.request(conn, request_id)
        if done is not None:
            if done["kind"] != "withdraw_early" or done["deposit_id"] != deposit_id:
                raise Refused("request_reused", "this request id was already used for another request")
            d = await store.deposit(conn, deposit_id)
            assert d is not None
            answered = await store.settlement(conn, deposit_id, d.generation)
            invariant(answered is not None, "a recorded early withdrawal has its settlement")
            assert answered is not None
            return answered
        d = await store.deposit(conn, deposit_id, for_update=True)
        if d is None:
            raise NotFound(f"no time deposit {uuid.UUID(int=deposit_id)}")
        day = t.business_date()
        s = settle_early(d, day)  # refuses a deposit that is not placed, or already at maturity
        after = replace(d, status=transition(d.status, Action.WITHDRAW_EARLY), closed_on=day)
        chain = _settlement_chain(d, s, early=True)
        for transfer in chain:
            transfer.business_date = day
        outcomes = await t.ledger.create_transfers(chain)
        failed = [o.result for o in outcomes if o.result not in POSTED]
        if failed:
            raise _refusal(failed[0], s.paid_out_minor)
        await store.record_settlements(conn, "early", day, [(d, s, after)])
        await store.record_request(conn, request_id, "withdraw_early", deposit_id)
    return s
