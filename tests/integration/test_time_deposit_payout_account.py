"""Time deposits paying out to a named account (満期時の入金口座の指定) and changing the maturity instruction
(満期時の取扱変更), against a real ledger and PostgreSQL, and over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo import deposits
from kanjo.accounting import ensure_chart
from kanjo.bank import build_bank
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Deposits, deposit_cash, open_ordinary_account
from kanjo.ledger import Ledger, LedgerBusy, LedgerUnavailable, verify_ledger
from kanjo.platform import db
from kanjo.platform.http import FastJSONResponse, install_error_handlers
from kanjo.time_deposits import (
    IllegalTransition,
    Instruction,
    NotFound,
    Refused,
    Status,
    Tax,
    TimeDeposits,
    change_instruction,
    get_time_deposit,
    mature_due,
    paying_into,
    place_time_deposit,
    pledges,
    verify_time_deposits,
    withdraw_early,
)
from kanjo.time_deposits.api import router

PLACED = dt.date(2026, 3, 6)  # a Friday; one year later, the contractual maturity date, is a Saturday
DAY_BEFORE = dt.date(2027, 3, 5)  # the Friday before it: the last day an instruction can be changed
MATURES = dt.date(2027, 3, 6)
PAYS = dt.date(2027, 3, 8)  # the Monday after
# ¥1,000,000 for 365 days at 0.125 %: ¥1,250; 国税 ¥191 + 地方税 ¥62; net ¥997
NET_INTEREST = 997


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits
    td: TimeDeposits

    async def balance(self, account_id: int) -> int:
        [a] = await self.td.ledger.lookup_accounts([account_id])
        return a.balance_credit_minor()

    async def account_of(self, customer_id: int, amount_minor: int = 0) -> int:
        account = await open_ordinary_account(self.deposits, rid(), customer_id, "001")
        if amount_minor:
            await deposit_cash(self.deposits, rid(), account.id, amount_minor)
        return account.id

    async def customer_with_two_accounts(self, funded_minor: int) -> tuple[int, int, int]:
        """(customer, the funding account holding `funded_minor`, an empty second account)."""
        customer = rid()
        return customer, await self.account_of(customer, funded_minor), await self.account_of(customer)


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [PLACED]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible),
                   TimeDeposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                calendar=BankCalendar()))
    finally:
        await ledger.stop()


async def _verified(bank: Bank) -> None:
    conn = await db.connect(bank.td.ledger.dsn)
    try:
        books = await verify_ledger(conn)
        products = await verify_time_deposits(conn, bank.today[0])
    finally:
        await conn.close()
    assert books["ok"], books
    assert products["ok"], products


async def test_placement_names_another_account_of_the_same_customer(bank: Bank) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(1_500_000)
    request = rid()
    d = await place_time_deposit(bank.td, request, customer, funding, 1_000_000, 12, Instruction.PAY_OUT,
                                 payout_account_id=savings)
    assert (d.ordinary_account_id, d.payout_account_id, d.status) == (funding, savings, Status.PLACED)
    assert (await bank.balance(funding), await bank.balance(savings), await bank.balance(d.id)) == (
        500_000, 0, 1_000_000)
    assert await get_time_deposit(bank.td, d.id) == d
    # A retry answers the same deposit and moves nothing; the same id naming another payout account is refused.
    again = await place_time_deposit(bank.td, request, customer, funding, 1_000_000, 12, Instruction.PAY_OUT,
                                     payout_account_id=savings)
    assert again == d
    for instruction, payout in ((Instruction.PAY_OUT, funding), (Instruction.RENEW_PRINCIPAL, savings)):
        with pytest.raises(Refused) as refused:
            await place_time_deposit(bank.td, request, customer, funding, 1_000_000, 12, instruction,
                                     payout_account_id=payout)
        assert refused.value.code == "request_reused"
    assert await bank.balance(funding) == 500_000
    # Not named: the funding account receives the payouts, as before.
    plain = await place_time_deposit(bank.td, rid(), customer, funding, 100_000, 12, Instruction.PAY_OUT)
    assert plain.payout_account_id == plain.ordinary_account_id == funding
    # The collateral stays with the account placed from (the 総合口座); the payouts go to the named one.
    assert {p.deposit_id for p in await pledges(bank.td, funding)} == {d.id, plain.id}
    assert await pledges(bank.td, savings) == []
    assert (await paying_into(bank.td, funding), await paying_into(bank.td, savings)) == (1, 1)
    await _verified(bank)


async def test_another_customers_or_an_unknown_account_is_refused_and_nothing_moves(bank: Bank) -> None:
    customer, funding, _ = await bank.customer_with_two_accounts(1_000_000)
    stranger = await bank.account_of(rid(), 10_000)
    with pytest.raises(Refused) as refused:
        await place_time_deposit(bank.td, rid(), customer, funding, 500_000, 12, Instruction.PAY_OUT,
                                 payout_account_id=stranger)
    assert refused.value.code == "not_the_customers_account" and "payout account" in str(refused.value)
    with pytest.raises(NotFound):
        await place_time_deposit(bank.td, rid(), customer, funding, 500_000, 12, Instruction.PAY_OUT,
                                 payout_account_id=rid())
    with pytest.raises(NotFound):  # the nil id is no account, not "the default"
        await place_time_deposit(bank.td, rid(), customer, funding, 500_000, 12, Instruction.PAY_OUT,
                                 payout_account_id=0)
    assert (await bank.balance(funding), await bank.balance(stranger)) == (1_000_000, 10_000)
    d = await place_time_deposit(bank.td, rid(), customer, funding, 500_000, 12, Instruction.PAY_OUT)
    with pytest.raises(Refused) as refused:
        await change_instruction(bank.td, rid(), d.id, Instruction.PAY_OUT, stranger)
    assert refused.value.code == "not_the_customers_account"
    assert (await get_time_deposit(bank.td, d.id)).payout_account_id == funding
    with pytest.raises(NotFound):
        await change_instruction(bank.td, rid(), rid(), Instruction.PAY_OUT)


async def test_a_frozen_account_cannot_be_named_to_receive_payouts(ledger_dsn: str) -> None:
    """With the bank's wiring: the same check that keeps a frozen account from funding a placement."""
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: PLACED)
    try:
        await ensure_chart(ledger)
        wired = build_bank(ledger, BankCalendar(), business_date=lambda: PLACED, customer_check=eligible)
        customer = rid()
        funding = (await deposits.open_ordinary_account(wired.deposits, rid(), customer, "101")).id
        await deposits.deposit_cash(wired.deposits, rid(), funding, 600_000)
        frozen = (await deposits.open_ordinary_account(wired.deposits, rid(), customer, "101")).id
        await deposits.change_status(wired.deposits, rid(), frozen, deposits.Action.FREEZE, "差押え")
        with pytest.raises(Refused) as refused:
            await place_time_deposit(wired.time_deposits, rid(), customer, funding, 500_000, 12,
                                     Instruction.PAY_OUT, payout_account_id=frozen)
        assert refused.value.code == "payout_account_not_usable" and "frozen" in str(refused.value)
        d = await place_time_deposit(wired.time_deposits, rid(), customer, funding, 500_000, 12,
                                     Instruction.PAY_OUT)
        with pytest.raises(Refused) as refused:
            await change_instruction(wired.time_deposits, rid(), d.id, Instruction.PAY_OUT, frozen)
        assert refused.value.code == "payout_account_not_usable"
        assert (await deposits.balance(wired.deposits, funding)).balance_minor == 100_000
    finally:
        await ledger.stop()


async def test_maturity_pays_the_named_account_and_a_renewal_keeps_it(bank: Bank) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(2_000_000)
    paid = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12, Instruction.PAY_OUT,
                                    payout_account_id=savings)
    kept = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12, Instruction.RENEW_PRINCIPAL,
                                    payout_account_id=savings)
    assert await bank.balance(funding) == 0
    bank.today[0] = PAYS
    run = await mature_due(bank.td)
    assert (run.renewed, run.paid_out, run.failed) == (1, 1, [])
    # Pay-out: principal and net interest; renew-principal: the net interest only. Nothing to the funding account.
    assert (await bank.balance(funding), await bank.balance(savings)) == (0, 1_000_000 + 2 * NET_INTEREST)
    assert (await bank.balance(paid.id), await bank.balance(kept.id)) == (0, 1_000_000)
    renewed = await get_time_deposit(bank.td, kept.id)
    assert (renewed.generation, renewed.matures_on, renewed.payout_account_id, renewed.ordinary_account_id) == (
        2, dt.date(2028, 3, 6), savings, funding)
    assert (await mature_due(bank.td)).renewed == 0  # twice changes nothing
    assert await bank.balance(savings) == 1_001_994
    # The renewed generation, 6 Mar 2027 to 6 Mar 2028 (366 days, a leap year) at 0.125 %: 1,253.42 → ¥1,253;
    # 国税 ¥191 + 地方税 ¥62; net ¥1,000, again to the named account.
    bank.today[0] = dt.date(2028, 3, 6)
    run = await mature_due(bank.td)
    assert (run.renewed, run.failed) == (1, [])
    assert (await bank.balance(funding), await bank.balance(savings)) == (0, 1_002_994)
    await _verified(bank)


async def test_early_withdrawal_pays_the_named_account(bank: Bank) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(1_000_000)
    d = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12, Instruction.RENEW_PRINCIPAL,
                                 payout_account_id=savings)
    bank.today[0] = dt.date(2026, 11, 6)  # 245 days (67 % of the term): 70 % of 0.125 % = 0.087 %: ¥583
    request = rid()
    s = await withdraw_early(bank.td, request, d.id)
    assert (s.interest_minor, s.tax, s.paid_out_minor) == (583, Tax(89, 29), 1_000_465)
    assert (await bank.balance(funding), await bank.balance(savings), await bank.balance(d.id)) == (0, 1_000_465, 0)
    assert await withdraw_early(bank.td, request, d.id) == s
    assert await bank.balance(savings) == 1_000_465
    await _verified(bank)


async def test_an_instruction_change_then_maturity(bank: Bank) -> None:
    """Placed to renew principal and interest into itself; the day before maturity the customer asks for
    everything to be paid into a second account: maturity pays ¥1,000,997 there."""
    customer, funding, savings = await bank.customer_with_two_accounts(1_000_000)
    d = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12,
                                 Instruction.RENEW_PRINCIPAL_AND_INTEREST)
    bank.today[0] = DAY_BEFORE
    request = rid()
    changed = await change_instruction(bank.td, request, d.id, Instruction.PAY_OUT, savings)
    assert (changed.instruction, changed.payout_account_id, changed.ordinary_account_id) == (
        Instruction.PAY_OUT, savings, funding)
    assert (changed.principal_minor, changed.generation, changed.matures_on) == (1_000_000, 1, MATURES)
    assert await get_time_deposit(bank.td, d.id) == changed
    assert await bank.balance(funding) == 0  # a change moves no money
    bank.today[0] = PAYS
    run = await mature_due(bank.td)
    assert (run.renewed, run.paid_out, run.failed) == (0, 1, [])
    assert (await bank.balance(funding), await bank.balance(savings), await bank.balance(d.id)) == (
        0, 1_000_000 + NET_INTEREST, 0)
    matured = await get_time_deposit(bank.td, d.id)
    assert (matured.status, matured.closed_on) == (Status.MATURED, PAYS)
    await _verified(bank)


async def test_a_change_keeping_the_payout_account_and_a_retried_change(bank: Bank) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(1_000_000)
    placement = rid()
    d = await place_time_deposit(bank.td, placement, customer, funding, 1_000_000, 12, Instruction.PAY_OUT,
                                 payout_account_id=savings)
    first = rid()
    changed = await change_instruction(bank.td, first, d.id, Instruction.RENEW_PRINCIPAL)
    assert (changed.instruction, changed.payout_account_id) == (Instruction.RENEW_PRINCIPAL, savings)
    # A retry answers the same; the same id asking for another change is refused and changes nothing.
    assert await change_instruction(bank.td, first, d.id, Instruction.RENEW_PRINCIPAL) == changed
    for other in ((d.id, Instruction.PAY_OUT, None), (d.id, Instruction.RENEW_PRINCIPAL, funding)):
        with pytest.raises(Refused) as refused:
            await change_instruction(bank.td, first, *other)
        assert refused.value.code == "request_reused"
    with pytest.raises(Refused) as refused:  # a placement's request id is not a change's
        await change_instruction(bank.td, placement, d.id, Instruction.RENEW_PRINCIPAL)
    assert refused.value.code == "request_reused"
    assert await get_time_deposit(bank.td, d.id) == changed
    # A later change back to the funding account; retrying the first change then changes nothing back.
    back = await change_instruction(bank.td, rid(), d.id, Instruction.PAY_OUT, funding)
    assert (back.instruction, back.payout_account_id) == (Instruction.PAY_OUT, funding)
    assert await change_instruction(bank.td, first, d.id, Instruction.RENEW_PRINCIPAL) == back
    # A retried placement is judged by what it asked for, not by the deposit's instruction now.
    assert await place_time_deposit(bank.td, placement, customer, funding, 1_000_000, 12, Instruction.PAY_OUT,
                                    payout_account_id=savings) == back
    bank.today[0] = PAYS
    assert (await mature_due(bank.td)).paid_out == 1
    assert (await bank.balance(funding), await bank.balance(savings)) == (1_000_000 + NET_INTEREST, 0)
    await _verified(bank)


async def test_a_change_is_refused_on_and_after_maturity_and_allowed_again_for_the_next_generation(
        bank: Bank) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(2_000_000)
    paid = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12, Instruction.PAY_OUT)
    kept = await place_time_deposit(bank.td, rid(), customer, funding, 1_000_000, 12, Instruction.RENEW_PRINCIPAL)
    for day in (MATURES, PAYS):  # the maturity date itself, and the payment day before the run
        bank.today[0] = day
        with pytest.raises(IllegalTransition) as illegal:
            await change_instruction(bank.td, rid(), paid.id, Instruction.RENEW_PRINCIPAL, savings)
        assert "matures on 2027-03-06" in str(illegal.value) and illegal.value.status is Status.PLACED
    run = await mature_due(bank.td)
    assert (run.renewed, run.paid_out) == (1, 1)
    with pytest.raises(IllegalTransition) as illegal:
        await change_instruction(bank.td, rid(), paid.id, Instruction.RENEW_PRINCIPAL, savings)
    assert illegal.value.status is Status.MATURED and "matured" in str(illegal.value)
    assert (await get_time_deposit(bank.td, paid.id)).instruction is Instruction.PAY_OUT
    # The renewed deposit matures next on 6 Mar 2028: its next maturity can be instructed again.
    changed = await change_instruction(bank.td, rid(), kept.id, Instruction.PAY_OUT, savings)
    assert (changed.generation, changed.instruction, changed.payout_account_id) == (2, Instruction.PAY_OUT, savings)
    # Nothing the refused changes asked for moved money: both settlements went to the funding account.
    assert (await bank.balance(funding), await bank.balance(savings)) == (1_000_000 + 2 * NET_INTEREST, 0)
    await _verified(bank)


async def test_a_writer_that_does_not_name_the_payout_account_gets_the_funding_account(bank: Bank) -> None:
    """Rows written without the column (a bulk load, rows from before it) pay the ordinary account."""
    customer, funding, _ = await bank.customer_with_two_accounts(0)
    deposit_id = rid()
    async with bank.td.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO time_deposits.deposits (id, customer_id, ordinary_account_id, principal_minor,"
            " rate_percent, term_months, tax_class, placed_on, matures_on, pays_on, instruction, status, generation)"
            " VALUES ($1, $2, $3, 1000, 0.125, 12, 'individual', $4, $5, $6, 'pay_out', 'placed', 1)",
            deposit_id, customer, funding, PLACED, MATURES, PAYS)
    assert (await get_time_deposit(bank.td, deposit_id)).payout_account_id == funding


# -- over HTTP ----------------------------------------------------------------------------------------------

@pytest.fixture
async def api(bank: Bank) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI(default_response_class=FastJSONResponse)
    app.state.time_deposits = bank.td
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
        yield client


def text(n: int) -> str:
    return str(uuid.UUID(int=n))


async def test_over_http_place_to_a_named_account_and_change_the_instruction(
        bank: Bank, api: httpx.AsyncClient) -> None:
    customer, funding, savings = await bank.customer_with_two_accounts(1_000_000)
    placing = {"request_id": text(rid()), "customer_id": text(customer), "funding_account_id": text(funding),
               "principal": 1_000_000, "term_months": 12, "instruction": "renew_principal",
               "payout_account_id": text(savings)}
    r = await api.post("/v1/time-deposits", json=placing)
    assert r.status_code == 200, r.text
    td = r.json()
    assert (td["ordinary_account_id"], td["payout_account_id"]) == (text(funding), text(savings))
    plain = await api.post("/v1/time-deposits", json={
        **{k: v for k, v in placing.items() if k != "payout_account_id"}, "request_id": text(rid()), "principal": 1})
    assert plain.status_code == 409 and plain.json()["error"] == "insufficient_funds"
    change = {"request_id": text(rid()), "instruction": "pay_out", "payout_account_id": text(funding)}
    r = await api.post(f"/v1/time-deposits/{td['id']}/instruction", json=change)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("instruction", "payout_account_id", "status")} == {
        "instruction": "pay_out", "payout_account_id": text(funding), "status": "placed"}
    again = await api.post(f"/v1/time-deposits/{td['id']}/instruction", json=change)
    assert again.status_code == 200 and again.json() == r.json()
    reused = await api.post(f"/v1/time-deposits/{td['id']}/instruction",
                            json={**change, "instruction": "renew_principal"})
    assert reused.status_code == 409 and reused.json()["error"] == "request_reused"
    stranger = await bank.account_of(rid())
    r = await api.post(f"/v1/time-deposits/{td['id']}/instruction", json={
        "request_id": text(rid()), "instruction": "pay_out", "payout_account_id": text(stranger)})
    assert r.status_code == 409 and r.json()["error"] == "not_the_customers_account"
    for bad in ({"instruction": "keep_forever"}, {"payout_account_id": 7}, {"colour": "red"}):
        r = await api.post(f"/v1/time-deposits/{td['id']}/instruction", json={**change, **bad})
        assert r.status_code == 422, (bad, r.text)
    r = await api.post(f"/v1/time-deposits/{text(rid())}/instruction", json={**change, "request_id": text(rid())})
    assert r.status_code == 404
    bank.today[0] = MATURES
    r = await api.post(f"/v1/time-deposits/{td['id']}/instruction", json={**change, "request_id": text(rid())})
    assert r.status_code == 409 and r.json()["error"] == "illegal_transition"
    assert "matures on 2027-03-06" in r.json()["message"]
    bank.today[0] = PAYS
    await mature_due(bank.td)
    assert (await bank.balance(funding), await bank.balance(savings)) == (1_000_000 + NET_INTEREST, 0)
