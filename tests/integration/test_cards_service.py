"""Cash cards against a real PostgreSQL: issue, verification at an ATM (codes in order, the try counter under
concurrency), the daily ATM limit (idempotent and concurrent), the life cycle, reissue, reads and verification."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from prometheus_client import REGISTRY

from kanjo.cards import (
    DAILY_LIMIT_DEFAULT_MINOR,
    Card,
    CardRefused,
    Cards,
    DailyLimitExceeded,
    DailyRelease,
    IllegalTransition,
    NotFound,
    Refused,
    Status,
    cancel_card,
    card_closing_refusal,
    card_events,
    card_for_deposit,
    cards_of_account,
    cards_of_customer,
    change_pin,
    get_card,
    issue_card,
    purge_daily_usage,
    reissue_card,
    release_daily_amount,
    report_found,
    report_fraud_suspected,
    report_lost,
    report_stolen,
    reserve_daily_amount,
    set_daily_limit,
    unlock_pin,
    verify_card,
    verify_cards,
)
from kanjo.cards.model import ISSUER_PREFIX, JST, is_card_number, pin_verification_value
from kanjo.platform import db

TEST_PIN_KEY = bytes.fromhex("6b616e6a6f2d746573742d70696e2d6b65792d6e6f742d666f722d70726f6475")  # 32 bytes
TODAY = dt.date(2026, 2, 27)
TELLER = "T0042"


def rid() -> int:
    return uuid.uuid4().int


@dataclass
class World:
    """The handle, its clock and business date (moved by tests), and the accounts the account check refuses."""

    cards: Cards
    pool: asyncpg.Pool
    dsn: str
    at: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 2, 27, 10, 0, tzinfo=JST))
    business_date: dt.date = TODAY
    closed_accounts: set[int] = field(default_factory=set)
    checked: list[int] = field(default_factory=list)


@pytest.fixture
async def world(ledger_dsn: str) -> AsyncIterator[World]:
    pool = await db.create_pool(ledger_dsn, size_max=30)
    holder: list[World] = []

    async def account_check(account_id: int) -> str | None:
        holder[0].checked.append(account_id)
        return "the account is closed" if account_id in holder[0].closed_accounts else None

    cards = Cards(pool, TEST_PIN_KEY, lambda: holder[0].business_date, lambda: holder[0].at, account_check)
    holder.append(World(cards, pool, ledger_dsn))
    try:
        yield holder[0]
    finally:
        await pool.close()


async def new_card(w: World, pin: str = "2580", account_id: int | None = None) -> tuple[int, str]:
    """(card id, full number) of a fresh card, on a fresh account unless one is named."""
    issued = await issue_card(w.cards, rid(), account_id or rid(), rid(), pin)
    return issued.card.card_id, issued.card_number


async def refusal(call: object) -> CardRefused:
    with pytest.raises(CardRefused) as refused:
        await call  # type: ignore[misc]
    return refused.value


async def pin_failures(w: World, card_id: int) -> int:
    return int(await w.pool.fetchval("SELECT pin_failures FROM cards.cards WHERE card_id = $1", card_id))


async def used_minor(w: World, card_id: int, day: dt.date = TODAY) -> int:
    found = await w.pool.fetchval("SELECT used_minor FROM cards.daily_usage WHERE card_id = $1 AND business_date = $2",
                                  card_id, day)
    return int(found or 0)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- issue -------------------------------------------------------------------------------------------------

async def test_issue_is_idempotent_by_request_id(world: World) -> None:
    request, account, customer = rid(), rid(), rid()
    first = await issue_card(world.cards, request, account, customer, "2580")
    again = await issue_card(world.cards, request, account, customer, "2580")
    assert not first.replayed and again.replayed
    assert (again.card, again.card_number) == (first.card, first.card_number)
    card = first.card
    assert is_card_number(first.card_number) and first.card_number.startswith(ISSUER_PREFIX)
    assert card.card_number_masked == "*" * 12 + first.card_number[-4:]
    assert (card.account_id, card.customer_id, card.status) == (account, customer, Status.ACTIVE)
    assert (card.issued_on, card.expires_on) == (TODAY, dt.date(2031, 2, 28))
    assert card.daily_limit_minor == DAILY_LIMIT_DEFAULT_MINOR == 500_000
    # A retry's PIN is not compared (that would test PINs past the try counter): the card keeps the first PIN.
    assert (await issue_card(world.cards, request, account, customer, "1357")).card == card
    assert (await verify_card(world.cards, first.card_number, "2580")).card_id == card.card_id
    for other in ({"account_id": rid()}, {"customer_id": rid()}):
        fields = {"account_id": account, "customer_id": customer, **other}
        with pytest.raises(Refused) as reused:
            await issue_card(world.cards, request, fields["account_id"], fields["customer_id"], "2580")
        assert reused.value.code == "request_reused"
    with pytest.raises(Refused) as reused:
        await issue_card(world.cards, request, account, customer, "2580", daily_limit_minor=100_000)
    assert reused.value.code == "request_reused"
    assert [e.kind for e in await card_events(world.cards, card.card_id)] == ["issued"]


async def test_one_card_in_force_per_account_and_numbers_never_repeat(world: World) -> None:
    account = rid()
    _, number = await new_card(world, account_id=account)
    with pytest.raises(Refused) as exists:
        await issue_card(world.cards, rid(), account, rid(), "2580")
    assert exists.value.code == "card_exists" and number[-4:] in str(exists.value)
    numbers = {number} | {(await new_card(world))[1] for _ in range(20)}
    assert len(numbers) == 21 and all(is_card_number(n) for n in numbers)
    serials = sorted(int(n[6:15]) for n in numbers)
    assert serials == list(range(serials[0], serials[0] + 21))  # from the sequence; none burnt by the refusal


async def test_concurrent_issues_for_one_account_give_one_card(world: World) -> None:
    account = rid()
    outcomes = await asyncio.gather(*(issue_card(world.cards, rid(), account, rid(), "2580") for _ in range(8)),
                                    return_exceptions=True)
    issued = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(issued) == 1
    assert all(isinstance(o, Refused) and o.code == "card_exists" for o in outcomes if o not in issued)
    assert len(await cards_of_account(world.cards, account)) == 1


async def test_one_issue_request_sent_many_times_at_once_issues_one_card(world: World) -> None:
    request, account, customer = rid(), rid(), rid()
    answers = await asyncio.gather(*(issue_card(world.cards, request, account, customer, "2580") for _ in range(8)))
    assert sum(not a.replayed for a in answers) == 1 and len({a.card_number for a in answers}) == 1
    assert await world.pool.fetchval("SELECT count(*) FROM cards.cards") == 1


async def test_issue_refusals_change_nothing(world: World) -> None:
    account = rid()
    world.closed_accounts.add(account)
    with pytest.raises(Refused) as closed:
        await issue_card(world.cards, rid(), account, rid(), "2580")
    assert (closed.value.code, str(closed.value)) == ("account_not_eligible", "the account is closed")
    assert world.checked == [account]  # the port was asked
    born = dt.date(1985, 3, 7)
    for pin, code in (("1111", "weak_pin"), ("1234", "weak_pin"), ("9876", "weak_pin"), ("0307", "weak_pin"),
                      ("1985", "weak_pin"), ("123", "invalid_pin"), ("１２３４", "invalid_pin")):
        with pytest.raises(Refused) as refused:
            await issue_card(world.cards, rid(), rid(), rid(), pin, birth_date=born)
        assert refused.value.code == code, pin
    for limit in (-10_000, 2_010_000, 123_456):
        with pytest.raises(Refused) as refused:
            await issue_card(world.cards, rid(), rid(), rid(), "2580", daily_limit_minor=limit)
        assert refused.value.code == "invalid_daily_limit"
    with pytest.raises(Refused) as refused:
        await issue_card(world.cards, rid(), rid(), rid(), "2580", by="a teller")
    assert refused.value.code == "invalid_actor"
    assert await world.pool.fetchval("SELECT count(*) FROM cards.cards") == 0
    assert await world.pool.fetchval("SELECT count(*) FROM cards.requests") == 0


async def test_nothing_about_the_pin_is_stored_in_clear(world: World) -> None:
    card_id, number = await new_card(world, pin="4096")
    row = await world.pool.fetchrow("SELECT * FROM cards.cards WHERE card_id = $1", card_id)
    assert [k for k in row.keys() if "pin" in k] == ["pin_value", "pin_failures"]
    assert bytes(row["pin_value"]) == pin_verification_value(TEST_PIN_KEY, number, "4096")  # the HMAC, no PIN
    card = await get_card(world.cards, card_id)
    assert not [name for name in ("card_number", "pin_value", "pin_failures") if hasattr(card, name)]


# -- verification at the ATM --------------------------------------------------------------------------------

async def test_wrong_pins_count_down_a_right_one_resets_and_the_limit_locks(world: World) -> None:
    card_id, number = await new_card(world)
    holder = await verify_card(world.cards, number, "2580")
    assert (holder.card_id, holder.card_number_masked) == (card_id, "*" * 12 + number[-4:])
    locked_before = metric("kanjo_cards_retained_total", reason="pin_locked")
    wrong_before = metric("kanjo_cards_refusals_total", code="wrong_pin")

    first = await refusal(verify_card(world.cards, number, "0000"))
    assert (first.code, first.retain) == ("wrong_pin", False) and "2 tries left" in str(first)
    second = await refusal(verify_card(world.cards, number, "1111"))
    assert (second.code, second.retain) == ("wrong_pin", False) and "1 try left" in str(second)
    assert await pin_failures(world, card_id) == 2
    await verify_card(world.cards, number, "2580")  # right: the counter starts again
    assert await pin_failures(world, card_id) == 0

    answers = [await refusal(verify_card(world.cards, number, "9999")) for _ in range(3)]
    assert [(a.code, a.retain) for a in answers] == [("wrong_pin", False), ("wrong_pin", False), ("pin_locked", True)]
    already = await refusal(verify_card(world.cards, number, "2580"))  # even the right PIN: locked, kept
    assert (already.code, already.retain) == ("pin_locked", True)
    assert await pin_failures(world, card_id) == 3
    assert metric("kanjo_cards_retained_total", reason="pin_locked") == locked_before + 2
    assert metric("kanjo_cards_refusals_total", code="wrong_pin") == wrong_before + 4
    events = await card_events(world.cards, card_id)
    assert [(e.kind, e.by, e.status_after) for e in events] == [("issued", "customer", Status.ACTIVE),
                                                               ("pin_locked", "atm", Status.ACTIVE)]

    await unlock_pin(world.cards, rid(), card_id, TELLER, "identity checked with a driving licence")
    assert (await verify_card(world.cards, number, "2580")).card_id == card_id
    assert await pin_failures(world, card_id) == 0


async def test_the_first_failing_check_wins(world: World) -> None:
    unknown = await refusal(verify_card(world.cards, "6392120000000000", "2580"))
    assert (unknown.code, unknown.retain) == ("unknown_card", False)
    for malformed in ("", "1234", "4539578763621486", "６３９２１２" + "0" * 10):
        assert (await refusal(verify_card(world.cards, malformed, "2580"))).code == "unknown_card"
    card_id, number = await new_card(world)
    assert (await refusal(verify_card(world.cards, number, "25800"))).code == "invalid_pin"
    assert await pin_failures(world, card_id) == 0  # bad input is not a try

    for _ in range(3):
        await refusal(verify_card(world.cards, number, "0000"))
    assert (await refusal(verify_card(world.cards, number, "2580"))).code == "pin_locked"
    await report_lost(world.cards, rid(), card_id, TELLER, "lost on the train")  # lost comes before locked
    lost = await refusal(verify_card(world.cards, number, "2580"))
    assert (lost.code, lost.retain) == ("card_lost", True)

    world.at = dt.datetime(2031, 3, 1, 0, 0, tzinfo=JST)  # past the expiry (2031-02-28): lost still comes first
    assert (await refusal(verify_card(world.cards, number, "2580"))).code == "card_lost"
    await cancel_card(world.cards, rid(), card_id, TELLER, "the holder asked")
    expired = await refusal(verify_card(world.cards, number, "2580"))  # expired comes before cancelled
    assert (expired.code, expired.retain) == ("card_expired", False)
    world.at = dt.datetime(2031, 2, 28, 23, 59, tzinfo=JST)  # its last valid minute
    cancelled = await refusal(verify_card(world.cards, number, "2580"))
    assert (cancelled.code, cancelled.retain) == ("card_cancelled", False)


async def test_an_expired_card_is_refused_from_the_day_after_its_month_end(world: World) -> None:
    card_id, number = await new_card(world)
    world.at = dt.datetime(2031, 2, 28, 14, 59, tzinfo=dt.UTC)  # 23:59 JST on 2031-02-28: still valid
    assert (await verify_card(world.cards, number, "2580")).card_id == card_id
    world.at = dt.datetime(2031, 2, 28, 15, 0, tzinfo=dt.UTC)  # 00:00 JST on 2031-03-01
    expired = await refusal(verify_card(world.cards, number, "2580"))
    assert (expired.code, expired.retain) == ("card_expired", False)
    assert (await refusal(card_for_deposit(world.cards, number))).code == "card_expired"
    assert await pin_failures(world, card_id) == 0  # an expired card's PIN is not compared


async def test_many_wrong_tries_at_once_count_exactly_the_limit(world: World) -> None:
    """Cloned cards at several ATMs at once: the counter is counted under the card's lock."""
    card_id, number = await new_card(world)
    retained_before = metric("kanjo_cards_retained_total", reason="pin_locked")
    answers = await asyncio.gather(*(refusal(verify_card(world.cards, number, f"{n:04d}")) for n in range(30, 55)))
    codes = sorted(a.code for a in answers)
    assert codes.count("wrong_pin") == 2 and codes.count("pin_locked") == 23
    assert all(a.retain for a in answers if a.code == "pin_locked")
    assert await pin_failures(world, card_id) == 3
    locks = [e for e in await card_events(world.cards, card_id) if e.kind == "pin_locked"]
    assert len(locks) == 1
    assert metric("kanjo_cards_retained_total", reason="pin_locked") == retained_before + 23
    assert (await refusal(verify_card(world.cards, number, "2580"))).code == "pin_locked"
    assert await verify_cards(world.pool) == []


async def test_right_and_wrong_pins_at_once_never_pass_the_limit(world: World) -> None:
    card_id, number = await new_card(world)
    calls = [verify_card(world.cards, number, "2580" if n % 3 == 0 else "0000") for n in range(30)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert not [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, CardRefused)]
    assert 0 <= await pin_failures(world, card_id) <= 3
    assert await verify_cards(world.pool) == []


async def test_a_cash_deposit_needs_no_pin_but_a_lost_card_is_still_kept(world: World) -> None:
    card_id, number = await new_card(world)
    for _ in range(3):
        await refusal(verify_card(world.cards, number, "0000"))
    assert (await card_for_deposit(world.cards, number)).card_id == card_id  # a PIN lock does not matter
    before = metric("kanjo_cards_retained_total", reason="card_stolen")
    await report_stolen(world.cards, rid(), card_id, "OPS7", "police report 2026-123")
    stolen = await refusal(card_for_deposit(world.cards, number))
    assert (stolen.code, stolen.retain) == ("card_stolen", True)
    assert metric("kanjo_cards_retained_total", reason="card_stolen") == before + 1
    assert (await refusal(card_for_deposit(world.cards, "6392120000000000"))).code == "unknown_card"


# -- the life cycle -------------------------------------------------------------------------------------------

async def test_lost_is_retained_until_found(world: World) -> None:
    card_id, number = await new_card(world)
    request = rid()
    lost = await report_lost(world.cards, request, card_id, TELLER, "the holder called the 24-hour line")
    assert lost.status is Status.LOST
    assert await report_lost(world.cards, request, card_id, TELLER, "the holder called the 24-hour line") == lost
    with pytest.raises(Refused) as reused:
        await report_lost(world.cards, request, card_id, TELLER, "another reason")
    assert reused.value.code == "request_reused"
    for use in (verify_card(world.cards, number, "2580"), card_for_deposit(world.cards, number)):
        kept = await refusal(use)
        assert (kept.code, kept.retain) == ("card_lost", True)
    found = await report_found(world.cards, rid(), card_id, TELLER, "found at home")
    assert found.status is Status.ACTIVE
    assert (await verify_card(world.cards, number, "2580")).card_id == card_id
    events = await card_events(world.cards, card_id)
    assert [(e.kind, e.status_after, e.by) for e in events] == [
        ("issued", Status.ACTIVE, "customer"), ("report_lost", Status.LOST, TELLER),
        ("found", Status.ACTIVE, TELLER)]
    assert events[1].reason == "the holder called the 24-hour line" and events[1].business_date == TODAY


async def test_illegal_transitions_are_refused_and_change_nothing(world: World) -> None:
    card_id, number = await new_card(world)
    with pytest.raises(IllegalTransition):
        await report_found(world.cards, rid(), card_id, TELLER, "not lost")
    await report_stolen(world.cards, rid(), card_id, TELLER, "bag stolen")
    for step in (report_found, report_lost, unlock_pin):
        with pytest.raises(IllegalTransition):
            await step(world.cards, rid(), card_id, TELLER, "try")
    fraud = await report_fraud_suspected(world.cards, rid(), card_id, "OPS1", "used abroad twice in a minute")
    assert fraud.status is Status.FRAUD_SUSPECTED
    assert (await refusal(verify_card(world.cards, number, "2580"))).code == "fraud_suspected"
    await cancel_card(world.cards, rid(), card_id, TELLER, "closed by the bank")
    for step in (cancel_card, report_lost, report_fraud_suspected, report_found, unlock_pin):
        with pytest.raises(IllegalTransition):
            await step(world.cards, rid(), card_id, TELLER, "try")
    with pytest.raises(IllegalTransition):
        await set_daily_limit(world.cards, rid(), card_id, 100_000, TELLER, "try")
    card = await get_card(world.cards, card_id)
    assert (card.status, card.cancelled_on, card.daily_limit_minor) == (Status.CANCELLED, TODAY, 500_000)
    assert [e.kind for e in await card_events(world.cards, card_id)] == ["issued", "report_stolen", "report_fraud",
                                                                         "cancel"]
    with pytest.raises(NotFound):
        await report_lost(world.cards, rid(), rid(), TELLER, "no such card")
    assert await verify_cards(world.pool) == []


async def test_reissue_gives_a_new_number_and_cancels_the_old_card(world: World) -> None:
    account, customer = rid(), rid()
    old = await issue_card(world.cards, rid(), account, customer, "2580", daily_limit_minor=200_000)
    await report_lost(world.cards, rid(), old.card.card_id, TELLER, "lost")
    request = rid()
    new = await reissue_card(world.cards, request, old.card.card_id, "7391", TELLER, "lost card replaced")
    again = await reissue_card(world.cards, request, old.card.card_id, "7391", TELLER, "lost card replaced")
    assert not new.replayed and again.replayed and again.card_number == new.card_number
    assert new.card_number != old.card_number and is_card_number(new.card_number)
    assert (new.card.account_id, new.card.customer_id, new.card.daily_limit_minor) == (account, customer, 200_000)
    assert new.card.replaces_card_id == old.card.card_id
    retired = await get_card(world.cards, old.card.card_id)
    assert (retired.status, retired.cancelled_on) == (Status.CANCELLED, TODAY)
    cancelled = await refusal(verify_card(world.cards, old.card_number, "2580"))
    assert (cancelled.code, cancelled.retain) == ("card_cancelled", False)
    assert (await verify_card(world.cards, new.card_number, "7391")).card_id == new.card.card_id
    assert (await refusal(verify_card(world.cards, new.card_number, "2580"))).code == "wrong_pin"
    with pytest.raises(IllegalTransition):
        await reissue_card(world.cards, rid(), old.card.card_id, "7391", TELLER, "again")
    with pytest.raises(Refused) as reused:
        await reissue_card(world.cards, request, old.card.card_id, "7391", TELLER, "another reason")
    assert reused.value.code == "request_reused"
    assert [c.card_id for c in await cards_of_account(world.cards, account)] == [old.card.card_id, new.card.card_id]
    assert [c.card_id for c in await cards_of_customer(world.cards, customer)] == [old.card.card_id,
                                                                                   new.card.card_id]
    assert [e.kind for e in await card_events(world.cards, new.card.card_id)] == ["issued"]
    assert [e.kind for e in await card_events(world.cards, old.card.card_id)] == ["issued", "report_lost", "reissue"]
    world.closed_accounts.add(account)
    with pytest.raises(Refused) as closed:
        await reissue_card(world.cards, rid(), new.card.card_id, "7391", TELLER, "worn out")
    assert closed.value.code == "account_not_eligible"
    assert await verify_cards(world.pool) == []


async def test_change_pin_checks_the_old_one_and_is_idempotent(world: World) -> None:
    card_id, number = await new_card(world)
    with pytest.raises(Refused) as weak:
        await change_pin(world.cards, rid(), number, "2580", "0307", birth_date=dt.date(1985, 3, 7))
    assert weak.value.code == "weak_pin"
    with pytest.raises(Refused) as same:
        await change_pin(world.cards, rid(), number, "2580", "2580")
    assert same.value.code == "pin_unchanged"
    wrong = await refusal(change_pin(world.cards, rid(), number, "0000", "7391"))
    assert wrong.code == "wrong_pin" and await pin_failures(world, card_id) == 1  # a wrong old PIN is a try
    request = rid()
    changed = await change_pin(world.cards, request, number, "2580", "7391")
    assert (changed.card_id, changed.replayed) == (card_id, False) and await pin_failures(world, card_id) == 0
    retry = await change_pin(world.cards, request, number, "2580", "7391")  # the old PIN is wrong now: no try
    assert retry.replayed and await pin_failures(world, card_id) == 0
    assert (await verify_card(world.cards, number, "7391")).card_id == card_id
    assert (await refusal(verify_card(world.cards, number, "2580"))).code == "wrong_pin"
    _, other_number = await new_card(world)
    with pytest.raises(Refused) as reused:
        await change_pin(world.cards, request, other_number, "2580", "7391")
    assert reused.value.code == "request_reused"
    assert [e.kind for e in await card_events(world.cards, card_id)] == ["issued", "change_pin"]


async def test_daily_limit_changes_at_a_teller(world: World) -> None:
    card_id, _ = await new_card(world)
    request = rid()
    card = await set_daily_limit(world.cards, request, card_id, 1_000_000, TELLER, "the holder asked")
    assert card.daily_limit_minor == 1_000_000
    assert await set_daily_limit(world.cards, request, card_id, 1_000_000, TELLER, "the holder asked") == card
    with pytest.raises(Refused) as reused:
        await set_daily_limit(world.cards, request, card_id, 0, TELLER, "the holder asked")
    assert reused.value.code == "request_reused"
    for bad in (2_010_000, -1, 5_000):
        with pytest.raises(Refused) as refused:
            await set_daily_limit(world.cards, rid(), card_id, bad, TELLER, "the holder asked")
        assert refused.value.code == "invalid_daily_limit"
    assert (await set_daily_limit(world.cards, rid(), card_id, 0, TELLER, "no ATM cash")).daily_limit_minor == 0
    with pytest.raises(DailyLimitExceeded):
        await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 1_000)


# -- the daily ATM withdrawal limit ---------------------------------------------------------------------------

async def test_reservations_are_idempotent_and_refusals_remembered(world: World) -> None:
    card_id, _ = await new_card(world)
    first_request = rid()
    r = await reserve_daily_amount(world.cards, first_request, card_id, TODAY, 300_000)
    assert (r.used_minor, r.remaining_minor, r.replayed, r.released) == (300_000, 200_000, False, False)
    again = await reserve_daily_amount(world.cards, first_request, card_id, TODAY, 300_000)
    assert again.replayed and again.used_minor == 300_000 and await used_minor(world, card_id) == 300_000
    with pytest.raises(Refused) as reused:
        await reserve_daily_amount(world.cards, first_request, card_id, TODAY, 200_000)
    assert reused.value.code == "request_reused"

    over_request = rid()
    refused_before = metric("kanjo_cards_refusals_total", code="daily_limit_exceeded")
    with pytest.raises(DailyLimitExceeded) as over:
        await reserve_daily_amount(world.cards, over_request, card_id, TODAY, 250_000)
    assert (over.value.code, over.value.remaining_minor, over.value.limit_minor) == ("daily_limit_exceeded",
                                                                                     200_000, 500_000)
    assert isinstance(over.value, CardRefused) and not over.value.retain  # the ATM returns the card
    assert metric("kanjo_cards_refusals_total", code="daily_limit_exceeded") == refused_before + 1
    assert "¥200,000 remains today" in str(over.value)
    assert (await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 200_000)).remaining_minor == 0

    released = await release_daily_amount(world.cards, first_request)
    assert (released.released_minor, released.replayed) == (300_000, False)
    assert await used_minor(world, card_id) == 200_000
    assert (await release_daily_amount(world.cards, first_request)).replayed
    assert await used_minor(world, card_id) == 200_000  # a second release gives nothing back
    assert (await reserve_daily_amount(world.cards, first_request, card_id, TODAY, 300_000)).released
    assert await used_minor(world, card_id) == 200_000  # a retry of a released reservation reserves nothing
    with pytest.raises(DailyLimitExceeded):  # the refusal is remembered, though room was given back since
        await reserve_daily_amount(world.cards, over_request, card_id, TODAY, 250_000)
    assert (await release_daily_amount(world.cards, over_request)).released_minor == 0
    assert await verify_cards(world.pool) == []


async def test_each_business_date_has_its_own_limit(world: World) -> None:
    card_id, _ = await new_card(world)
    await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 500_000)
    with pytest.raises(DailyLimitExceeded):
        await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 1_000)
    tomorrow = TODAY + dt.timedelta(days=3)
    assert (await reserve_daily_amount(world.cards, rid(), card_id, tomorrow, 500_000)).used_minor == 500_000
    for bad in (0, -1_000):
        with pytest.raises(Refused) as refused:
            await reserve_daily_amount(world.cards, rid(), card_id, TODAY, bad)
        assert refused.value.code == "invalid_amount"
    with pytest.raises(NotFound):
        await reserve_daily_amount(world.cards, rid(), rid(), TODAY, 1_000)


async def test_a_release_before_its_reservation_spends_the_request(world: World) -> None:
    card_id, _ = await new_card(world)
    request = rid()
    early = await release_daily_amount(world.cards, request)
    assert (early.released_minor, early.replayed) == (0, False)
    with pytest.raises(Refused) as late:
        await reserve_daily_amount(world.cards, request, card_id, TODAY, 10_000)
    assert late.value.code == "request_released"
    assert await used_minor(world, card_id) == 0


async def test_a_lowered_limit_counts_from_the_next_withdrawal(world: World) -> None:
    card_id, _ = await new_card(world)
    await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 400_000)
    await set_daily_limit(world.cards, rid(), card_id, 100_000, TELLER, "the holder asked")
    with pytest.raises(DailyLimitExceeded) as over:
        await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 1_000)
    assert over.value.remaining_minor == 0 and await used_minor(world, card_id) == 400_000
    assert await verify_cards(world.pool) == []


async def test_concurrent_reservations_never_pass_the_limit(world: World) -> None:
    card_id, _ = await new_card(world)
    requests = [rid() for _ in range(30)]
    outcomes = await asyncio.gather(*(reserve_daily_amount(world.cards, r, card_id, TODAY, 100_000)
                                      for r in requests), return_exceptions=True)
    reserved = [r for r, o in zip(requests, outcomes, strict=True) if not isinstance(o, BaseException)]
    assert len(reserved) == 5 and await used_minor(world, card_id) == 500_000
    assert all(isinstance(o, DailyLimitExceeded) for o in outcomes if isinstance(o, BaseException))
    # Releases raced with their own retries and with new reservations: each amount comes back once.
    releases = [release_daily_amount(world.cards, r) for r in reserved for _ in range(3)]
    more = [reserve_daily_amount(world.cards, rid(), card_id, TODAY, 100_000) for _ in range(10)]
    results = await asyncio.gather(*releases, *more, return_exceptions=True)
    given_back = [o.released_minor for o in results[:15] if isinstance(o, DailyRelease) and not o.replayed]
    assert all(isinstance(o, DailyRelease) for o in results[:15])
    assert sorted(given_back) == [100_000] * 5
    newly = [o for o in results[15:] if not isinstance(o, BaseException)]
    assert await used_minor(world, card_id) == 100_000 * len(newly) <= 500_000
    assert await verify_cards(world.pool) == []


async def test_the_same_reservation_sent_many_times_at_once_counts_once(world: World) -> None:
    card_id, _ = await new_card(world)
    request = rid()
    outcomes = await asyncio.gather(*(reserve_daily_amount(world.cards, request, card_id, TODAY, 50_000)
                                      for _ in range(10)))
    assert sum(not o.replayed for o in outcomes) == 1 and await used_minor(world, card_id) == 50_000


async def test_old_usage_is_purged(world: World) -> None:
    card_id, _ = await new_card(world)
    old_day = TODAY - dt.timedelta(days=400)
    await reserve_daily_amount(world.cards, rid(), card_id, old_day, 10_000)
    with pytest.raises(DailyLimitExceeded):
        await reserve_daily_amount(world.cards, rid(), card_id, old_day, 500_000)
    await reserve_daily_amount(world.cards, rid(), card_id, TODAY, 10_000)
    assert await purge_daily_usage(world.cards, TODAY - dt.timedelta(days=365)) == 3  # usage + its 2 reservations
    assert await purge_daily_usage(world.cards, TODAY - dt.timedelta(days=365)) == 0
    assert await used_minor(world, card_id, old_day) == 0 and await used_minor(world, card_id) == 10_000
    assert await verify_cards(world.pool) == []


# -- reads and checks ----------------------------------------------------------------------------------------

async def test_reads_show_the_masked_number_only(world: World) -> None:
    account, customer = rid(), rid()
    issued = await issue_card(world.cards, rid(), account, customer, "2580")
    card = await get_card(world.cards, issued.card.card_id)
    assert isinstance(card, Card) and card == issued.card
    assert issued.card_number not in repr(card) and card.card_number_masked.endswith(issued.card_number[-4:])
    assert await cards_of_account(world.cards, account) == [card]
    assert await cards_of_customer(world.cards, customer) == [card]
    assert await cards_of_account(world.cards, rid()) == []
    with pytest.raises(NotFound):
        await get_card(world.cards, rid())
    with pytest.raises(NotFound):
        await card_events(world.cards, rid())
    assert "pin_key" not in repr(world.cards) and TEST_PIN_KEY.hex() not in repr(world.cards)


async def test_an_account_with_a_card_in_force_may_not_close(world: World) -> None:
    account = rid()
    card_id, number = await new_card(world, account_id=account)
    assert number[-4:] in (await card_closing_refusal(world.pool, account) or "")
    await cancel_card(world.cards, rid(), card_id, TELLER, "account closing")
    assert await card_closing_refusal(world.pool, account) is None


async def test_card_events_are_append_only(world: World) -> None:
    card_id, _ = await new_card(world)
    for sql in ("UPDATE cards.card_events SET reason = 'x'", "DELETE FROM cards.card_events",
                "TRUNCATE cards.card_events CASCADE"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await world.pool.execute(sql)
    assert len(await card_events(world.cards, card_id)) == 1


async def test_verify_cards_names_what_is_broken(world: World) -> None:
    assert await verify_cards(world.pool) == []
    locked_id, _ = await new_card(world)
    moved_id, _ = await new_card(world)
    usage_id, _ = await new_card(world)
    await reserve_daily_amount(world.cards, rid(), usage_id, TODAY, 10_000)
    # Corruption no handler can make, written behind the context's back:
    await world.pool.execute("UPDATE cards.cards SET pin_failures = 7 WHERE card_id = $1", locked_id)
    await world.pool.execute("UPDATE cards.cards SET status = 'lost' WHERE card_id = $1", moved_id)
    await world.pool.execute("UPDATE cards.daily_usage SET used_minor = 20000 WHERE card_id = $1", usage_id)
    problems = await verify_cards(world.pool)
    assert len(problems) == 3, problems
    assert problems[0].startswith("1 broken: a card's wrong-PIN counter is 0 to 3")
    assert str(uuid.UUID(int=locked_id)) in problems[0]
    assert "status is the one its last event recorded" in problems[1] and str(uuid.UUID(int=moved_id)) in problems[1]
    assert "sum of its reservations" in problems[2] and str(uuid.UUID(int=usage_id)) in problems[2]
    conn = await db.connect(world.dsn)
    try:
        assert await verify_cards(conn) == problems  # a connection (as `kanjo verify` holds) works as well
    finally:
        await conn.close()
