"""The product jobs' pre-flight on the ledger's provisioned space (the 2/28 month end, for the bank's own jobs): a
month end whose time deposits would pass `ledger_transfers_stored_max` is refused before anything matures, naming the
limit, and matures every deposit exactly once when the operator has raised it; every product job that posts to the
ledger declares at least what it posts (measured on the ledger, before and after a run); a job not due is skipped,
never refused. On a real PostgreSQL and ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kanjo import capacity
from kanjo.accounting import ensure_chart
from kanjo.bank import Bank, build_bank
from kanjo.batch import Batch, BusinessDay, JobContext, Kind, bank_kinds, day_plan
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import (
    Subject,
    accrue_interest,
    deposit_cash,
    open_ordinary_account,
    set_interest_tax_class,
    transfers_needed_for_interest_payout,
    transfers_needed_for_overdraft_accrual,
    transfers_needed_for_overdraft_charge,
    withdraw_cash,
)
from kanjo.deposits import TaxClass as InterestTaxClass
from kanjo.kernel.limits import limits
from kanjo.ledger import Ledger
from kanjo.loans import Channel, draw, open_contract, transfers_needed_for_collection
from kanjo.loans import accrue_interest as accrue_loan_interest
from kanjo.time_deposits import (
    Instruction,
    Status,
    TaxClass,
    get_time_deposit,
    place_time_deposit,
    transfers_needed_for_maturity,
)

SPACE = "ledger_transfers_stored_max"
CALENDAR = BankCalendar()
PLACED = dt.date(2026, 3, 30)  # a Monday: three-month deposits placed on it mature on June's last day
MONTH_END = dt.date(2026, 6, 30)  # a Tuesday, the month's last business day: maturity, no interest payout
NIGHT = dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def rid() -> int:
    return uuid.uuid4().int


async def eligible(_customer_id: int) -> str | None:
    return None


@pytest.fixture(autouse=True)
def restore_capacity() -> Iterator[None]:
    """The registry is the process's: each test leaves the provisioned maximum as it found it."""
    before = limits.get(SPACE).maximum
    yield
    limits.set_maximum(SPACE, before)


@dataclass
class World:
    day: BusinessDay
    ledger: Ledger
    bank: Bank

    def on(self, day: dt.date) -> None:
        self.day.moved_to(day)

    async def stored(self) -> int:
        """The ledger's transfers as the limit measures them, checked against the table an operator would count."""
        assert self.ledger.pool is not None
        async with self.ledger.pool.acquire() as conn:
            rows = int(await conn.fetchval("SELECT count(*) FROM ledger.transfers"))
        assert self.ledger.transfers_stored() == rows
        return rows

    async def batch(self, day: dt.date) -> Batch:
        """The engine on `day` (opened and planned), jobs starting only when an operator runs them."""
        assert self.ledger.pool is not None
        self.on(day)
        await BusinessDay.load(self.ledger.pool, day)  # opens `day` on this new database
        batch = Batch(self.ledger.pool, bank_kinds(self.bank), self.day, CALENDAR, day_plan(), now=lambda: NIGHT,
                      tick_s=0.05, scheduled=False)
        await batch.ensure_planned()
        return batch

    async def run(self, batch: Batch, day: dt.date, name: str) -> dict[str, Any]:
        await batch.run_now(day, name, "ops-1")
        await batch.run_until_idle(60)
        return await batch.job_report(day, name)

    def job(self, name: str, day: dt.date) -> tuple[Kind, JobContext]:
        """The catalogue's job `name` and the context the engine would give it on `day` (run by the test)."""
        assert self.ledger.pool is not None
        self.on(day)
        batch = Batch(self.ledger.pool, bank_kinds(self.bank), self.day, CALENDAR, day_plan(), scheduled=False)
        return batch.kinds[name], JobContext(batch, day, next(s for s in day_plan()(day) if s.name == name), None)

    async def need_and_posted(self, job: str, day: dt.date) -> tuple[int, int, dict[str, Any]]:
        """The job's declared need on `day` (as the catalogue wires it), then what one run of it really posted."""
        kind, ctx = self.job(job, day)
        assert kind.needs is not None, f"{job} declares no pre-flight"
        needs = await kind.needs(ctx)
        assert set(needs) == {SPACE}
        before = await self.stored()
        result = await kind.run(ctx)
        return needs[SPACE], await self.stored() - before, result

    async def customer(self, cash_minor: int, subject: Subject = Subject.ORDINARY) -> tuple[int, int]:
        customer = rid()
        account = await open_ordinary_account(self.bank.deposits, rid(), customer, "001", subject)
        if cash_minor:
            await deposit_cash(self.bank.deposits, rid(), account.id, cash_minor)
        return customer, account.id

    async def time_deposit(self, months: int, instruction: Instruction = Instruction.PAY_OUT,
                           tax_class: TaxClass = TaxClass.INDIVIDUAL, principal_minor: int = 1_000_000) -> int:
        customer, account = await self.customer(principal_minor)
        placed = await place_time_deposit(self.bank.time_deposits, rid(), customer, account, principal_minor, months,
                                          instruction, tax_class)
        return placed.id


@pytest.fixture
async def world(ledger_dsn: str) -> AsyncIterator[World]:
    day = BusinessDay(PLACED)
    ledger = await Ledger.start(ledger_dsn, business_date=day)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    capacity.register_probes(ledger, ledger.pool, Path("var"))  # as the composition root does: the real probe
    try:
        yield World(day, ledger, build_bank(ledger, CALENDAR, business_date=day, customer_check=eligible))
    finally:
        await ledger.stop()


async def test_a_month_end_that_would_pass_the_space_matures_nothing_then_every_deposit_once(world: World) -> None:
    due = [await world.time_deposit(3) for _ in range(5)]  # each: interest, national tax, local tax, payout
    later = await world.time_deposit(6)  # matures in September: not part of June's need
    batch = await world.batch(MONTH_END)
    usage = await world.stored()
    limits.set_maximum(SPACE, usage + 19)  # one transfer short of what the month end posts

    job = await world.run(batch, MONTH_END, "time_deposit_maturity")
    assert job["state"] == "failed" and job["done_items"] == 0
    assert job["result"] == {"limit": SPACE, "preflight": [
        {"limit": SPACE, "usage": usage, "need": 20, "maximum": usage + 19, "unit": "transfers"}]}
    assert SPACE in job["error"] and "20" in job["error"] and "refused before posting anything" in job["error"]
    assert await world.stored() == usage  # nothing posted
    assert {(await get_time_deposit(world.bank.time_deposits, i)).status for i in due} == {Status.PLACED}
    gate = (await batch.day_report(MONTH_END))["gate"]
    assert [g["job"] for g in gate if g["state"] == "failed"] == ["time_deposit_maturity"]  # the day stays open

    limits.set_maximum(SPACE, usage + 20)  # exactly what it needs
    await batch.rerun(MONTH_END, "time_deposit_maturity", "ops-1")
    job = await world.run(batch, MONTH_END, "time_deposit_maturity")
    assert (job["state"], job["result"]["paid_out"], job["result"]["renewed"]) == ("succeeded", 5, 0)
    assert await world.stored() == usage + 20
    for deposit_id in due:
        d = await get_time_deposit(world.bank.time_deposits, deposit_id)
        assert (d.status, d.generation, d.closed_on) == (Status.MATURED, 1, MONTH_END)
    assert (await get_time_deposit(world.bank.time_deposits, later)).status is Status.PLACED
    assert await transfers_needed_for_maturity(world.bank.time_deposits, MONTH_END) == 0  # nothing is left

    await batch.rerun(MONTH_END, "time_deposit_maturity", "ops-1")  # a rerun of the done job: nothing twice
    job = await world.run(batch, MONTH_END, "time_deposit_maturity")
    assert (job["state"], job["result"]["paid_out"]) == ("succeeded", 0)
    assert await world.stored() == usage + 20


async def test_a_job_not_due_is_skipped_and_one_with_nothing_to_post_runs_without_headroom(world: World) -> None:
    await world.customer(10_000_000)
    world.on(dt.date(2026, 6, 29))
    await accrue_interest(world.bank.deposits, CALENDAR, dt.date(2026, 6, 29))  # an account with interest to pay
    batch = await world.batch(MONTH_END)
    usage = await world.stored()
    limits.set_maximum(SPACE, usage)  # full: not one more transfer fits
    payout = await world.run(batch, MONTH_END, "deposit_interest_payout")
    assert (payout["state"], payout["result"], payout["error"]) == (
        "skipped", {"skipped": "not an interest payout day"}, None)
    for name in ("time_deposit_maturity", "card_loan_collection"):  # due every day, nothing to post today
        job = await world.run(batch, MONTH_END, name)
        assert (job["state"], job["error"]) == ("succeeded", None), job
    assert await transfers_needed_for_overdraft_charge(world.bank.deposits, MONTH_END) == 0  # between charge points
    assert await world.stored() == usage
    assert (await batch.day_report(MONTH_END))["gate"] == [  # what is left of the day: only the night's jobs
        {"job": n, "state": "waiting", "held": False, "why": "not started"} for n in (
            "card_loan_accrual", "cut_off", "deposit_interest_accrual", "overdraft_interest_accrual",
            "overdraft_interest_charge", "statements")]


async def test_maturity_needs_at_least_what_it_posts_catch_up_generations_included(world: World) -> None:
    # One month, renewed whole, no run since: 30 April, 1 June (30 May is a Saturday) and 30 June are settled by
    # one run on June's last day, 3 legs each (nothing is paid out).
    catching_up = await world.time_deposit(1, Instruction.RENEW_PRINCIPAL_AND_INTEREST)
    await world.time_deposit(3)  # 4 legs
    await world.time_deposit(3, Instruction.RENEW_PRINCIPAL, TaxClass.CORPORATE)  # no local tax: 3 legs
    await world.time_deposit(3, tax_class=TaxClass.EXEMPT)  # interest and payout: 2 legs
    need, posted, result = await world.need_and_posted("time_deposit_maturity", MONTH_END)
    assert (result["paid_out"], result["renewed"]) == (2, 4)
    assert (await get_time_deposit(world.bank.time_deposits, catching_up)).generation == 4
    assert posted == need == 4 + 3 + 2 + 3 * 3


async def test_interest_payout_needs_at_least_what_it_posts(world: World) -> None:
    world.on(dt.date(2026, 7, 1))
    await world.customer(10_000_000)
    _, exempt = await world.customer(10_000_000)
    await set_interest_tax_class(world.bank.deposits, exempt, InterestTaxClass.EXEMPT)
    await world.customer(0)  # nothing earned: read by the payout, credited nothing
    for day in (dt.date(2026, 7, 1), dt.date(2026, 7, 31)):
        world.on(day)
        await accrue_interest(world.bank.deposits, CALENDAR, day)
    payout_day = dt.date(2026, 8, 3)  # the first business day of August
    need, posted, result = await world.need_and_posted("deposit_interest_payout", payout_day)
    assert (result["credited"], result["failed"]) == (2, 0)
    assert (need, posted) == (3 + 2, 2 + 2)  # three accounts read and the two tax transfers; two credited
    assert await transfers_needed_for_interest_payout(world.bank.deposits, CALENDAR, payout_day) == 0  # done


async def test_card_loan_collection_needs_at_least_what_it_posts(world: World) -> None:
    opened, collected = dt.date(2026, 4, 1), dt.date(2026, 5, 11)  # the 10th is a Sunday: collected on the 11th
    world.on(opened)
    for drawn_minor in (500_000, 0):  # the second owes no interest: nothing is asked of its account
        customer, account = await world.customer(100_000)
        contract = await open_contract(world.bank.loans, rid(), customer, account, 1_000_000, Decimal("14.5"), 10)
        if drawn_minor:
            await draw(world.bank.loans, rid(), contract.id, drawn_minor, Channel.ACCOUNT)
    for day in (opened, dt.date(2026, 5, 8)):
        world.on(day)
        await accrue_loan_interest(world.bank.loans, day)
    need, posted, result = await world.need_and_posted("card_loan_collection", collected)
    assert (result["due"], result["collected_minor"] > 0) == (2, True)
    assert (need, posted) == (2, 1)
    assert await transfers_needed_for_collection(world.bank.loans, collected) == 0  # collected: nothing is left


async def test_overdraft_interest_charge_needs_at_least_what_it_posts(world: World) -> None:
    world.on(dt.date(2026, 7, 1))
    customer, drawn = await world.customer(1_000_000, Subject.SOGO)
    await place_time_deposit(world.bank.time_deposits, rid(), customer, drawn, 1_000_000, 12, Instruction.PAY_OUT)
    await world.customer(50_000, Subject.SOGO)  # never overdrawn: nothing to charge
    world.on(dt.date(2026, 7, 21))
    await withdraw_cash(world.bank.deposits, rid(), drawn, 500_000)
    monday = dt.date(2026, 8, 3)
    # Before the day's accrual both accounts have days to catch up: both are counted.
    assert await transfers_needed_for_overdraft_charge(world.bank.deposits, monday) == 2
    world.on(monday)
    accrual, ctx = world.job("overdraft_interest_accrual", monday)  # the night's accrual runs first (its DAG)
    await accrual.run(ctx)
    need, posted, result = await world.need_and_posted("overdraft_interest_charge", monday)
    assert (result["accounts"], result["amount_minor"] > 0) == (1, True)
    assert (need, posted) == (1, 1)
    assert await transfers_needed_for_overdraft_charge(world.bank.deposits, monday) == 0  # charged


async def test_overdraft_accrual_needs_at_least_what_its_sweep_posts(world: World) -> None:
    world.on(dt.date(2026, 7, 1))
    customer, drawn = await world.customer(1_000_000, Subject.SOGO)
    await place_time_deposit(world.bank.time_deposits, rid(), customer, drawn, 1_000_000, 12, Instruction.PAY_OUT)
    await world.customer(50_000, Subject.SOGO)  # never overdrawn: its sweep finds nothing to repay
    world.on(dt.date(2026, 7, 21))
    await withdraw_cash(world.bank.deposits, rid(), drawn, 500_000)
    await deposit_cash(world.bank.deposits, rid(), drawn, 200_000)
    need, posted, _ = await world.need_and_posted("overdraft_interest_accrual", dt.date(2026, 7, 21))
    assert need == 2 and posted <= need  # one repayment at most per active 総合口座
    assert await transfers_needed_for_overdraft_accrual(world.bank.deposits, dt.date(2026, 7, 21)) == need - posted
