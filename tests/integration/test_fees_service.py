"""Fees against a real ledger and PostgreSQL: quotes by channel and day, charges, refusals, bulk refunds."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from kanjo.accounting import FEE_INCOME, ensure_chart, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.deposits import Deposits, balance, close_account, deposit_cash, open_ordinary_account, withdraw_cash
from kanjo.fees import (
    Channel,
    FeeImplausible,
    FeeQuote,
    Fees,
    Kind,
    RefundSelection,
    Refused,
    Rule,
    charge_fee,
    quote,
    refund_fees,
)
from kanjo.ledger import Ledger, verify_ledger
from kanjo.platform import db

TODAY = dt.date(2026, 2, 27)  # a Friday
JST = dt.timezone(dt.timedelta(hours=9))


def rid() -> int:
    return uuid.uuid4().int


def at(day: int, hour: int, minute: int = 0, month: int = 2) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=JST)


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    fees: Fees
    deposits: Deposits


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: TODAY)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(Fees(pool=ledger.pool, ledger=ledger, business_date=lambda: TODAY, calendar=BankCalendar()),
                   Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: TODAY, customer_check=eligible))
    finally:
        await ledger.stop()


async def _customer(b: Bank, yen: int) -> int:
    account = await open_ordinary_account(b.deposits, rid(), rid(), "101")
    await deposit_cash(b.deposits, rid(), account.id, yen)
    return account.id


async def _fee_income(b: Bank) -> int:
    [a] = await b.fees.ledger.lookup_accounts([gl_account_id(FEE_INCOME)])
    return a.credits_posted - a.debits_posted


async def _verify(b: Bank) -> None:
    conn = await db.connect(b.fees.ledger.dsn)
    try:
        report = await verify_ledger(conn)
    finally:
        await conn.close()
    assert report["ok"], report


async def test_quotes_by_channel_hour_and_day_type(bank: Bank) -> None:
    f = bank.fees
    w = Kind.WITHDRAWAL
    assert quote(f, Channel.ATM_OWN, w, 10_000, at(27, 10)).amount_minor == 0  # Friday daytime
    assert quote(f, Channel.ATM_OWN, w, 10_000, at(27, 20)).amount_minor == 110  # Friday evening
    assert quote(f, Channel.ATM_OWN, w, 10_000, at(28, 10)).amount_minor == 110  # Saturday
    assert quote(f, Channel.ATM_OWN, w, 10_000, at(1, 10, month=3)).amount_minor == 110  # Sunday
    assert quote(f, Channel.ATM_OWN, w, 10_000, at(23, 10)).amount_minor == 110  # 天皇誕生日 (a Monday)
    assert quote(f, Channel.ATM_CONVENIENCE, w, 10_000, at(27, 10)).amount_minor == 110
    assert quote(f, Channel.ATM_CONVENIENCE, w, 10_000, at(1, 10, month=3)).amount_minor == 220
    # 01:30 UTC is 10:30 in Tokyo: the tariff reads the Japanese wall clock
    assert quote(f, Channel.ATM_OWN, w, 10_000, dt.datetime(2026, 2, 27, 1, 30, tzinfo=dt.UTC)).amount_minor == 0
    q = quote(f, Channel.INTERNET, Kind.TRANSFER_OTHER_BANK, 30_000, at(1, 3, month=3))
    assert (q.amount_minor, q.rule_id) == (229, "internet.transfer_other_bank.30000_and_over")


async def test_charging_moves_exactly_the_fee_once(bank: Bank) -> None:
    account = await _customer(bank, 10_000)
    income_before = await _fee_income(bank)
    q = quote(bank.fees, Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL, 5_000, at(27, 22))
    request = rid()
    first = await charge_fee(bank.fees, request, account, q)
    again = await charge_fee(bank.fees, request, account, q)
    assert first is not None and again is not None and not first.replayed and again.replayed
    assert first.fee_id == again.fee_id and first.amount_minor == 220
    assert (await balance(bank.deposits, account)).balance_minor == 9_780
    assert await _fee_income(bank) == income_before + 220
    free = quote(bank.fees, Channel.ATM_OWN, Kind.WITHDRAWAL, 5_000, at(27, 10))
    assert await charge_fee(bank.fees, rid(), account, free) is None  # ¥0: nothing moves
    with pytest.raises(Refused) as reused:
        await charge_fee(bank.fees, request, account,
                         quote(bank.fees, Channel.TELLER, Kind.TRANSFER_OTHER_BANK, 50_000, at(27, 10)))
    assert reused.value.code == "request_reused"
    poor = await _customer(bank, 100)
    with pytest.raises(Refused) as short:
        await charge_fee(bank.fees, rid(), poor, q)
    assert short.value.code == "insufficient_funds"
    assert (await balance(bank.deposits, account)).balance_minor == 9_780
    await _verify(bank)


async def test_an_implausible_fee_is_refused_alerted_and_nothing_moves(bank: Bank) -> None:
    account = await _customer(bank, 200_000)
    income_before = await _fee_income(bank)
    sentinel = Rule("atm_convenience.withdrawal.sentinel", Kind.WITHDRAWAL, Channel.ATM_CONVENIENCE, 99999)
    tariff = bank.fees.tariff
    bank.fees.tariff = type(tariff)(tariff.name, tariff.fee_max_minor, (sentinel, *tariff.rules))
    labels = {"rule": "atm_convenience.withdrawal.sentinel"}
    before = REGISTRY.get_sample_value("kanjo_fees_implausible_total", labels) or 0.0
    with pytest.raises(FeeImplausible) as refused:
        quote(bank.fees, Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL, 10_000, at(27, 22))
    assert refused.value.rule_id == "atm_convenience.withdrawal.sentinel" and "sentinel" in str(refused.value)
    # a quote forged or corrupted on its way to the charge is refused too
    with pytest.raises(FeeImplausible):
        await charge_fee(bank.fees, rid(), account, FeeQuote(99999, "atm_convenience.withdrawal.sentinel", "x"))
    with pytest.raises(FeeImplausible):
        await charge_fee(bank.fees, rid(), account, FeeQuote(99999, "atm_own.withdrawal.other_hours", "x"))
    assert REGISTRY.get_sample_value("kanjo_fees_implausible_total", labels) == before + 2
    assert (await balance(bank.deposits, account)).balance_minor == 200_000
    assert await _fee_income(bank) == income_before
    await _verify(bank)


async def test_bulk_refund_after_an_outage_refunds_each_fee_exactly_once(bank: Bank) -> None:
    f = bank.fees
    accounts = [await _customer(bank, 10_000) for _ in range(20)]
    outage_fees: list[int] = []
    for n in range(100):  # 22:00–22:49 on Friday the convenience ATMs charged ¥220 while the bank was down
        when = at(27, 22, n // 2)
        q = quote(f, Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL, 10_000, when)
        charged = await charge_fee(f, rid(), accounts[n % 20], q, at=when)
        assert charged is not None
        outage_fees.append(charged.fee_id)
    other = quote(f, Channel.INTERNET, Kind.TRANSFER_OTHER_BANK, 10_000, at(27, 22, 10))
    unrelated = [await charge_fee(f, rid(), accounts[i], other, at=at(27, 22, 10)) for i in range(10)]
    income_after_charges = await _fee_income(bank)
    assert [(await balance(bank.deposits, a)).balance_minor for a in accounts] == [
        10_000 - 5 * 220 - (145 if i < 10 else 0) for i in range(20)]

    window = RefundSelection(channel=Channel.ATM_CONVENIENCE, charged_from=at(27, 22), charged_until=at(27, 23))
    request = rid()
    first = await refund_fees(f, request, window, "convenience ATM outage 2026-02-27 22:00")
    assert (first.requested, first.refunded, first.refunded_minor, first.already_refunded) == (100, 100, 22_000, 0)
    assert first.not_refunded == []
    again = await refund_fees(f, request, window, "convenience ATM outage 2026-02-27 22:00")
    assert again == first  # the same request answers the same, moving nothing

    overlapping = RefundSelection(fee_ids=(*outage_fees[:50], *(u.fee_id for u in unrelated if u), uuid.uuid4().int))
    second = await refund_fees(f, rid(), overlapping, "a second list from the call centre")
    assert (second.requested, second.refunded, second.refunded_minor, second.already_refunded) == (61, 10, 1_450, 50)
    assert [n.reason for n in second.not_refunded] == ["no such fee"]

    assert [(await balance(bank.deposits, a)).balance_minor for a in accounts] == [10_000] * 20
    assert await _fee_income(bank) == income_after_charges - 22_000 - 1_450
    with pytest.raises(Refused) as reused:
        await refund_fees(f, request, overlapping, "the same id for another list")
    assert reused.value.code == "request_reused"
    await _verify(bank)


async def test_a_fee_on_a_closed_account_is_left_for_a_teller(bank: Bank) -> None:
    account = await _customer(bank, 1_000)
    charged = await charge_fee(bank.fees, rid(), account,
                               quote(bank.fees, Channel.ATM_OWN, Kind.WITHDRAWAL, 500, at(28, 10)))
    assert charged is not None
    await withdraw_cash(bank.deposits, rid(), account, 890)
    await close_account(bank.deposits, rid(), account, "moved away")
    report = await refund_fees(bank.fees, rid(), RefundSelection(fee_ids=(charged.fee_id,)), "outage")
    assert (report.refunded, report.refunded_minor) == (0, 0)
    assert [(n.fee_id, n.reason) for n in report.not_refunded] == [
        (charged.fee_id, "the account is closed: refund in cash at a teller")]
    await _verify(bank)


async def test_a_retry_on_a_later_business_date_answers_the_first_charge(bank: Bank) -> None:
    """A channel retries a charge after the day changed (its first answer was lost over the night): the fee moved
    once, on its first date, and the retry is told so — also when the charge's own record was lost."""
    account = await _customer(bank, 10_000)
    q = quote(bank.fees, Channel.ATM_CONVENIENCE, Kind.WITHDRAWAL, 5_000, at(27, 22))
    request, lost = rid(), rid()
    first = await charge_fee(bank.fees, request, account, q)
    await charge_fee(bank.fees, lost, account, q)
    async with bank.fees.pool.acquire() as conn:  # the second charge's record is gone; its transfer stays
        await conn.execute("DELETE FROM fees.charges WHERE request_id = $1", lost)
    bank.fees.business_date = lambda: TODAY + dt.timedelta(days=1)
    again = await charge_fee(bank.fees, request, account, q)
    assert again is not None and first is not None and again.replayed and again.fee_id == first.fee_id
    recovered = await charge_fee(bank.fees, lost, account, q)
    assert recovered is not None and recovered.replayed
    async with bank.fees.pool.acquire() as conn:
        booked = await conn.fetchval("SELECT business_date FROM fees.charges WHERE request_id = $1", lost)
    assert booked == TODAY  # recorded again with the date the money moved
    assert (await balance(bank.deposits, account)).balance_minor == 10_000 - 2 * 220
    await _verify(bank)
