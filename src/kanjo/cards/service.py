"""Handlers of cash cards: issue and reissue, verification at an ATM, the daily ATM withdrawal limit, the card's
life cycle (lost, stolen, fraud, found, PIN unlock and change, limit, cancel) and the reads a teller needs.

Every change runs in one transaction under the card's row lock, claims its request id (a retry finds it and
changes nothing) and appends an event (who, what, why). The PIN try counter moves only under that lock, so the
wrong tries of cloned cards at several ATMs are counted one after another: never more than the limit between
them. A correct PIN on a card with no wrong try counted is a single read — the path of nearly every ATM
transaction. The PIN itself is never stored, logged or returned (ADR 0005).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

import asyncpg
import structlog
from prometheus_client import Counter

from kanjo.cards import store
from kanjo.cards.grouped import Grouped, ReserveIn
from kanjo.cards.limits import (
    ACTOR_CHARS_MAX,
    CARD_SERIAL_MAX,
    DAILY_LIMIT_MAX,
    PIN_TRIES_MAX,
    REASON_CHARS_MAX,
    ROWS_PER_READ_MAX,
    USAGE_PURGE_ROWS_MAX,
)
from kanjo.cards.model import (
    CUSTOMER,
    DAILY_LIMIT_DEFAULT_MINOR,
    INVALID_PIN,
    ISSUED,
    PIN_LOCKED,
    Action,
    Card,
    CardEvent,
    CardHolder,
    CardRefused,
    DailyLimitExceeded,
    DailyRelease,
    DailyReservation,
    IssuedCard,
    PinChange,
    RefusalCode,
    Refused,
    Status,
    card_number_of,
    card_refusal,
    check_actor,
    check_amount,
    check_daily_limit,
    check_new_pin,
    check_pin_key,
    check_reason,
    expiry_of,
    is_card_number,
    is_pin,
    local_date_of,
    mask_card_number,
    pin_matches,
    pin_verification_value,
    transition,
    wrong_pin,
)
from kanjo.cards.store import CardRow
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits

REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-636172647300")
ATM = "atm"  # the actor of a PIN lock: wrong tries at an ATM, no operator

# Is a card allowed on this deposit account? None when yes, else the reason (wired by the bank).
AccountCheck = Callable[[int], Awaitable[str | None]]

log = structlog.get_logger("kanjo.cards")
RETAINED_TOTAL = Counter("kanjo_cards_retained_total",
                         "Cards kept at an ATM by a business rule (lost, stolen, fraud suspected, PIN try limit)",
                         ["reason"])
REFUSALS_TOTAL = Counter("kanjo_cards_refusals_total", "Card uses refused at an ATM, by code", ["code"])
for _code in RefusalCode:
    REFUSALS_TOTAL.labels(code=_code.value)


@dataclass
class Cards:
    """The context's handle: its pool, the PIN key (from the bank's settings; at least 32 bytes), the business
    date, the wall clock (card expiry is read on the JST calendar) and the account check."""

    pool: asyncpg.Pool
    pin_key: bytes = field(repr=False)
    business_date: Callable[[], dt.date]
    now: Callable[[], dt.datetime]
    account_check: AccountCheck

    grouped: Grouped = field(init=False, repr=False)  # the ATM path's statements, grouped across messages

    def __post_init__(self) -> None:
        check_pin_key(self.pin_key)
        self.grouped = Grouped(self.pool)


class NotFound(Exception):
    """No card with that id."""


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return name_id(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}")


def _holder(row: CardRow) -> CardHolder:
    return CardHolder(row.card_id, row.account_id, row.customer_id, mask_card_number(row.card_number))


def _refuse(refusal: CardRefused, row: CardRow | None) -> NoReturn:
    REFUSALS_TOTAL.labels(code=refusal.code).inc()
    if refusal.retain:
        RETAINED_TOTAL.labels(reason=refusal.code).inc()
    log.info("card_refused", code=refusal.code, retain=refusal.retain,
             card=None if row is None else mask_card_number(row.card_number))
    raise refusal


def _check_who(by: str, reason: str) -> None:
    check_actor(by, ACTOR_CHARS_MAX)
    check_reason(reason, REASON_CHARS_MAX)


def _same_request(prior: asyncpg.Record, command: str, fingerprint: str, card_id: int | None = None) -> int:
    """The card a retried request acted on; refused when the id was used for another command or other fields."""
    if prior["command"] != command or prior["fingerprint"] != fingerprint or (
            card_id is not None and prior["card_id"] != card_id):
        raise Refused("request_reused", f"this request id was already used ({prior['command'].replace('_', ' ')})"
                      " with other fields")
    return int(prior["card_id"])


async def _locked(conn: asyncpg.Connection, card_id: int) -> CardRow:
    row = await store.card(conn, card_id, for_update=True)
    if row is None:
        raise NotFound(f"no card {uuid.UUID(int=card_id)}")
    return row


# -- issue ----------------------------------------------------------------------------------------------

class _Taken(Exception):
    """The request id was claimed by a concurrent call that has committed since: answer as a retry."""


async def issue_card(c: Cards, request_id: int, account_id: int, customer_id: int, pin: str, *,
                     birth_date: dt.date | None = None, daily_limit_minor: int = DAILY_LIMIT_DEFAULT_MINOR,
                     by: str = CUSTOMER, reason: str = "new card") -> IssuedCard:
    """A card for a deposit account (one in force per account), with its PIN; idempotent by request id (a retry's
    PIN is not compared: an answer that depended on it would test PINs past the try counter)."""
    check_new_pin(pin, birth_date)
    check_daily_limit(daily_limit_minor, DAILY_LIMIT_MAX)
    _check_who(by, reason)
    fingerprint = (f"account={account_id:032x};customer={customer_id:032x};daily_limit={daily_limit_minor};"
                   f"by={by};reason={reason}")
    replay = await _replayed_issue(c, request_id, fingerprint)
    if replay is not None:
        return replay
    refusal = await c.account_check(account_id)
    if refusal is not None:
        raise Refused("account_not_eligible", refusal)
    card_id = derived_id(request_id, "card")
    try:
        async with c.pool.acquire() as conn, conn.transaction():
            if not await store.claim_request(conn, request_id, "issue", card_id, fingerprint):
                raise _Taken
            live = await store.live_card_of_account(conn, account_id)
            if live is not None:
                raise Refused("card_exists", f"the account already has card {mask_card_number(live.card_number)}"
                              f" ({live.status.value}): reissue it to replace it")
            row = await _new_card(c, conn, request_id, card_id, account_id, customer_id, pin, daily_limit_minor)
            await store.insert_event(conn, card_id, request_id, ISSUED, Status.ACTIVE, by, reason, row.issued_on)
    except _Taken:
        replay = await _replayed_issue(c, request_id, fingerprint)
        invariant(replay is not None, "a request id claimed by a committed call has its request row")
        assert replay is not None
        return replay
    except asyncpg.UniqueViolationError:  # cards_one_live_per_account: another issue for the account committed
        raise Refused("card_exists", "another card was issued for this account at the same moment") from None
    log.info("card_issued", card=mask_card_number(row.card_number), account=str(uuid.UUID(int=account_id)))
    return IssuedCard(row.public(), row.card_number, replayed=False)


async def _replayed_issue(c: Cards, request_id: int, fingerprint: str) -> IssuedCard | None:
    async with c.pool.acquire() as conn:
        prior = await store.request(conn, request_id)
    if prior is None:
        return None
    return await _issued(c, _same_request(prior, "issue", fingerprint), replayed=True)


async def _new_card(c: Cards, conn: asyncpg.Connection, request_id: int, card_id: int, account_id: int,
                    customer_id: int, pin: str, daily_limit_minor: int, replaces_card_id: int | None = None
                    ) -> CardRow:
    """A new number from the serial sequence, the PIN's verification value, the row (in the caller's transaction)."""
    try:
        serial = await store.next_serial(conn)
    except asyncpg.SequenceGeneratorLimitExceededError:
        raise LimitReached(limits.get("card_serial_max"), CARD_SERIAL_MAX + 1) from None
    limits.observe("card_serial_max", serial)
    number = card_number_of(serial)
    today = c.business_date()
    row = CardRow(card_id, request_id, number, account_id, customer_id, Status.ACTIVE, today, expiry_of(today), None,
                  pin_verification_value(c.pin_key, number, pin), 0, daily_limit_minor, replaces_card_id)
    await store.insert_card(conn, row)
    return row


async def _issued(c: Cards, card_id: int, *, replayed: bool) -> IssuedCard:
    async with c.pool.acquire() as conn:
        row = await store.card(conn, card_id)
    invariant(row is not None, "a recorded issue request names its card")
    assert row is not None
    return IssuedCard(row.public(), row.card_number, replayed=replayed)


async def reissue_card(c: Cards, request_id: int, card_id: int, pin: str, by: str, reason: str, *,
                       birth_date: dt.date | None = None) -> IssuedCard:
    """再発行: a new number for the same account and customer (and daily limit), the old card cancelled in the
    same transaction. The PIN is given again (the holder writes it on the form): only its keyed value of the old
    number was ever stored. Idempotent by request id."""
    check_new_pin(pin, birth_date)
    _check_who(by, reason)
    fingerprint = f"replaces={card_id:032x};by={by};reason={reason}"
    async with c.pool.acquire() as conn:
        prior = await store.request(conn, request_id)
        old = await store.card(conn, card_id)
    if prior is not None:
        return await _issued(c, _same_request(prior, "reissue", fingerprint), replayed=True)
    if old is None:
        raise NotFound(f"no card {uuid.UUID(int=card_id)}")
    refusal = await c.account_check(old.account_id)
    if refusal is not None:
        raise Refused("account_not_eligible", refusal)
    new_id = derived_id(request_id, "card")
    async with c.pool.acquire() as conn, conn.transaction():
        old = await _locked(conn, card_id)
        claimed = await store.claim_request(conn, request_id, Action.REISSUE.value, new_id, fingerprint)
        if not claimed:
            new_id = _same_request(await store.request(conn, request_id), Action.REISSUE.value, fingerprint)
        else:
            new = await _replace(c, conn, request_id, old, new_id, pin, by, reason)
    if not claimed:
        return await _issued(c, new_id, replayed=True)
    log.info("card_reissued", old=mask_card_number(old.card_number), card=mask_card_number(new.card_number))
    return IssuedCard(new.public(), new.card_number, replayed=False)


async def _replace(c: Cards, conn: asyncpg.Connection, request_id: int, old: CardRow, new_id: int, pin: str,
                   by: str, reason: str) -> CardRow:
    status = transition(old.status, Action.REISSUE)
    today = c.business_date()
    await store.set_status(conn, old.card_id, status, today)
    await store.insert_event(conn, old.card_id, request_id, Action.REISSUE.value, status, by, reason, today)
    new = await _new_card(c, conn, request_id, new_id, old.account_id, old.customer_id, pin, old.daily_limit_minor,
                          old.card_id)
    await store.insert_event(conn, new_id, request_id, ISSUED, Status.ACTIVE, by,
                             f"reissue of {mask_card_number(old.card_number)}", today)
    return new


# -- at the ATM -----------------------------------------------------------------------------------------

def _today(c: Cards) -> dt.date:
    return local_date_of(c.now())


async def _usable(c: Cards, card_number: str, *, pin_needed: bool) -> CardRow:
    """The card, unless it is unknown, blocked, expired, cancelled or (when a PIN is needed) locked."""
    row = None
    if is_card_number(card_number):
        row = await c.grouped.card_by_number(card_number)
    if row is None:
        _refuse(CardRefused(RefusalCode.UNKNOWN_CARD, "the card is not one of the bank's cards", False), None)
    refusal = card_refusal(row.status, row.expires_on, _today(c), row.pin_failures, PIN_TRIES_MAX,
                           pin_needed=pin_needed)
    if refusal is not None:
        _refuse(refusal, row)
    return row


async def verify_card(c: Cards, card_number: str, pin: str) -> CardHolder:
    """The card holder when the card may be used and the PIN is right; else `CardRefused` with its code (first
    failing check wins) and whether the ATM keeps the card. Each wrong PIN is counted; the limit's try locks."""
    if not is_pin(pin):
        _refuse(CardRefused(INVALID_PIN, "a PIN is 4 digits 0-9", False), None)
    row = await _usable(c, card_number, pin_needed=True)
    if row.pin_failures == 0 and pin_matches(c.pin_key, row.card_number, pin, row.pin_value):
        return _holder(row)  # nothing to count or reset: no write
    return await _verify_locked(c, row.card_id, pin)


async def _verify_locked(c: Cards, card_id: int, pin: str) -> CardHolder:
    """Everything checked again under the card's lock, then the counter counted up (wrong) or reset (right)."""
    async with c.pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, card_id)
        refusal = card_refusal(row.status, row.expires_on, _today(c), row.pin_failures, PIN_TRIES_MAX,
                               pin_needed=True)
        if refusal is None and pin_matches(c.pin_key, row.card_number, pin, row.pin_value):
            if row.pin_failures:
                await store.set_pin_failures(conn, card_id, 0)
        elif refusal is None:
            failures = row.pin_failures + 1
            invariant(failures <= PIN_TRIES_MAX, "a locked card's PIN is never compared")
            await store.set_pin_failures(conn, card_id, failures)
            refusal = wrong_pin(failures, PIN_TRIES_MAX)
            if refusal.code == RefusalCode.PIN_LOCKED:
                await store.insert_event(conn, card_id, None, PIN_LOCKED, row.status, ATM,
                                         f"the PIN was wrong {PIN_TRIES_MAX} times in a row", c.business_date())
                log.warning("card_pin_locked", card=mask_card_number(row.card_number))
    if refusal is not None:
        _refuse(refusal, row)
    return _holder(row)


async def card_for_deposit(c: Cards, card_number: str) -> CardHolder:
    """A cash deposit to the card's own account needs no PIN (as at every Japanese ATM): a lost, stolen or
    fraud-suspected card is still refused and kept, an expired or cancelled one refused; a PIN lock does not matter."""
    return _holder(await _usable(c, card_number, pin_needed=False))


async def change_pin(c: Cards, request_id: int, card_number: str, old_pin: str, new_pin: str, *,
                     birth_date: dt.date | None = None) -> PinChange:
    """暗証番号変更 at an ATM: the old PIN is verified (a wrong one counts as a wrong try), then replaced.
    Idempotent by request id: a retry is answered without comparing any PIN, and authenticates nothing."""
    check_new_pin(new_pin, birth_date)
    if new_pin == old_pin:
        raise Refused("pin_unchanged", "the new PIN is the same as the old one")
    async with c.pool.acquire() as conn:
        prior = await store.request(conn, request_id)
        known = await store.card_by_number(conn, card_number) if is_card_number(card_number) else None
    if prior is not None:
        card_id = _same_request(prior, Action.CHANGE_PIN.value, "", -1 if known is None else known.card_id)
        return PinChange(card_id, mask_card_number(card_number), replayed=True)
    holder = await verify_card(c, card_number, old_pin)
    async with c.pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, holder.card_id)
        claimed = await store.claim_request(conn, request_id, Action.CHANGE_PIN.value, row.card_id, "")
        if not claimed:
            _same_request(await store.request(conn, request_id), Action.CHANGE_PIN.value, "", row.card_id)
        else:
            status = transition(row.status, Action.CHANGE_PIN)
            if not pin_matches(c.pin_key, row.card_number, old_pin, row.pin_value):
                raise Refused("pin_changed_meanwhile", "the PIN was changed by another request at the same moment")
            await store.set_pin(conn, row.card_id, pin_verification_value(c.pin_key, row.card_number, new_pin))
            await store.insert_event(conn, row.card_id, request_id, Action.CHANGE_PIN.value, status, CUSTOMER,
                                     "PIN changed by the holder", c.business_date())
    return PinChange(row.card_id, holder.card_number_masked, replayed=not claimed)


# -- the daily ATM withdrawal limit ----------------------------------------------------------------------

async def reserve_daily_amount(c: Cards, request_id: int, card_id: int, business_date: dt.date,
                               amount_minor: int) -> DailyReservation:
    """Count `amount_minor` against the card's limit for `business_date`, or refuse (`DailyLimitExceeded`, a
    `CardRefused` that returns the card, with what remains). Idempotent by request id: a retry reserves nothing
    more and a refusal is remembered. It checks only the limit: `verify_card` decides whether the card may be
    used at all."""
    check_amount(amount_minor)
    outcome, used, limit_minor = await c.grouped.reserve_daily(ReserveIn(request_id, card_id, business_date,
                                                                          amount_minor))
    if outcome == "unknown_card":
        raise NotFound(f"no card {uuid.UUID(int=card_id)}")
    if outcome == "replay":
        async with c.pool.acquire() as conn, conn.transaction():
            return await _reserved_before(conn, await _locked(conn, card_id), request_id, business_date,
                                          amount_minor)
    if outcome == "refused":
        _refuse(DailyLimitExceeded(limit_minor, max(limit_minor - used, 0)), None)
    invariant(used <= limit_minor, "a card's daily usage stays within its limit")
    return DailyReservation(request_id, card_id, business_date, amount_minor, used, limit_minor,
                            released=False, replayed=False)


async def _reserved_before(conn: asyncpg.Connection, row: CardRow, request_id: int, business_date: dt.date,
                           amount_minor: int) -> DailyReservation:
    prior = await store.reservation(conn, request_id)
    invariant(prior is not None, "a claimed reservation id has its row")
    assert prior is not None
    if prior["card_id"] is None:
        raise Refused("request_released", "this request was released before it reserved anything: nothing reserved")
    if (prior["card_id"], prior["business_date"], prior["amount_minor"]) != (row.card_id, business_date,
                                                                             amount_minor):
        raise Refused("request_reused", "this request id already reserved another amount, card or business date")
    if prior["state"] == "refused":
        raise DailyLimitExceeded(prior["limit_minor"], prior["remaining_minor"])
    used = await store.used(conn, row.card_id, business_date)
    return DailyReservation(request_id, row.card_id, business_date, amount_minor, used, row.daily_limit_minor,
                            released=prior["state"] == "released", replayed=True)


async def release_daily_amount(c: Cards, request_id: int) -> DailyRelease:
    """Give a reservation back (its withdrawal was voided). Idempotent; a release that comes before its
    reservation spends the request id, so the late reservation reserves nothing."""
    async with c.pool.acquire() as conn, conn.transaction():
        prior = await store.reservation(conn, request_id, for_update=True)
        if prior is None:
            if await store.tombstone_reservation(conn, request_id, c.business_date()):
                return DailyRelease(request_id, 0, replayed=False)
            prior = await store.reservation(conn, request_id, for_update=True)  # reserved meanwhile: committed now
            invariant(prior is not None, "a reservation id taken by a concurrent call has its row")
            assert prior is not None
        if prior["state"] == "released":
            return DailyRelease(request_id, prior["amount_minor"], replayed=True)
        if prior["state"] == "refused":
            return DailyRelease(request_id, 0, replayed=False)  # nothing was counted
        left = await store.take_usage(conn, prior["card_id"], prior["business_date"], prior["amount_minor"])
        invariant(left is not None, "a reservation's amount is in its card's usage of that business date")
        await store.mark_released(conn, request_id)
    return DailyRelease(request_id, prior["amount_minor"], replayed=False)


async def purge_daily_usage(c: Cards, before: dt.date) -> int:
    """Daily usage and reservations of business dates before `before` (a day-end job keeps about a year): rows
    deleted by one run, at most `card_usage_purge_rows_per_run_max` of each; run again until it returns 0."""
    async with c.pool.acquire() as conn, conn.transaction():
        return await store.purge_usage(conn, before, USAGE_PURGE_ROWS_MAX)


# -- the life cycle --------------------------------------------------------------------------------------

Apply = Callable[[asyncpg.Connection, CardRow], Awaitable[None]]
# A life-cycle handler: (handle, request id, card id, by, reason) → the card after it.
Change = Callable[[Cards, int, int, str, str], Awaitable[Card]]


async def _change(c: Cards, request_id: int, card_id: int, action: Action, by: str, reason: str, *,
                  detail: str = "", apply: Apply | None = None) -> Card:
    """One life-cycle step under the card's lock: the state machine decides, the event records; a retry of the
    same request answers with the card as it is and changes nothing."""
    _check_who(by, reason)
    fingerprint = f"by={by};reason={reason}{detail}"
    async with c.pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, card_id)
        if not await store.claim_request(conn, request_id, action.value, card_id, fingerprint):
            _same_request(await store.request(conn, request_id), action.value, fingerprint, card_id)
            return row.public()
        status = transition(row.status, action)
        if status is not row.status:
            await store.set_status(conn, card_id, status, c.business_date() if status is Status.CANCELLED else None)
        if apply is not None:
            await apply(conn, row)
        await store.insert_event(conn, card_id, request_id, action.value, status, by, reason, c.business_date())
        after = await _locked(conn, card_id)
    invariant(after.status is status, "the card has the status its event records")
    log.info("card_changed", action=action.value, card=mask_card_number(row.card_number), status=status.value, by=by)
    return after.public()


async def report_lost(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """紛失届: refused and kept at its next use, until found or replaced."""
    return await _change(c, request_id, card_id, Action.REPORT_LOST, by, reason)


async def report_stolen(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """盗難届: refused and kept at its next use; a stolen card is replaced, never found."""
    return await _change(c, request_id, card_id, Action.REPORT_STOLEN, by, reason)


async def report_fraud_suspected(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """Operations suspect a forged or misused card: refused and kept at its next use."""
    return await _change(c, request_id, card_id, Action.REPORT_FRAUD, by, reason)


async def report_found(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """A lost card is back with its holder: usable again."""
    return await _change(c, request_id, card_id, Action.FOUND, by, reason)


async def cancel_card(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """解約: final; the number is never used again."""
    return await _change(c, request_id, card_id, Action.CANCEL, by, reason)


async def _reset_pin_failures(conn: asyncpg.Connection, row: CardRow) -> None:
    await store.set_pin_failures(conn, row.card_id, 0)


async def unlock_pin(c: Cards, request_id: int, card_id: int, by: str, reason: str) -> Card:
    """A teller, having checked the holder's identity, resets the wrong-PIN counter (the PIN itself is kept)."""
    return await _change(c, request_id, card_id, Action.UNLOCK_PIN, by, reason, apply=_reset_pin_failures)


async def set_daily_limit(c: Cards, request_id: int, card_id: int, daily_limit_minor: int, by: str,
                          reason: str) -> Card:
    """The holder's daily ATM withdrawal limit, ¥0 to the maximum in units of ¥10,000; what was already withdrawn
    today stays, and the new limit counts from the next withdrawal."""
    check_daily_limit(daily_limit_minor, DAILY_LIMIT_MAX)

    async def apply(conn: asyncpg.Connection, row: CardRow) -> None:
        await store.set_daily_limit(conn, row.card_id, daily_limit_minor)

    return await _change(c, request_id, card_id, Action.CHANGE_LIMIT, by, reason,
                         detail=f";daily_limit={daily_limit_minor}", apply=apply)


# -- reads ----------------------------------------------------------------------------------------------

async def get_card(c: Cards, card_id: int) -> Card:
    async with c.pool.acquire() as conn:
        row = await store.card(conn, card_id)
    if row is None:
        raise NotFound(f"no card {uuid.UUID(int=card_id)}")
    return row.public()


async def cards_of_account(c: Cards, account_id: int) -> list[Card]:
    """Every card the account has had, oldest first (masked)."""
    return await _cards_where(c, "account_id", account_id)


async def cards_of_customer(c: Cards, customer_id: int) -> list[Card]:
    """Every card the customer has had, on all accounts, oldest first (masked)."""
    return await _cards_where(c, "customer_id", customer_id)


async def _cards_where(c: Cards, column: str, value: int) -> list[Card]:
    async with c.pool.acquire() as conn:
        rows = await store.cards_where(conn, column, value, ROWS_PER_READ_MAX + 1)
    if len(rows) > ROWS_PER_READ_MAX:
        raise LimitReached(limits.get("card_rows_per_read_max"), len(rows))
    return [r.public() for r in rows]


async def card_events(c: Cards, card_id: int) -> list[CardEvent]:
    """The card's history, oldest first: who did what, when and why."""
    async with c.pool.acquire() as conn:
        if await store.card(conn, card_id) is None:
            raise NotFound(f"no card {uuid.UUID(int=card_id)}")
        found = await store.events(conn, card_id, ROWS_PER_READ_MAX + 1)
    if len(found) > ROWS_PER_READ_MAX:
        raise LimitReached(limits.get("card_rows_per_read_max"), len(found))
    return found


async def card_closing_refusal(pool: asyncpg.Pool, account_id: int) -> str | None:
    """Why the deposit account may not close while a card draws on it, or None (for the deposits closing check)."""
    async with pool.acquire() as conn:
        live = await store.live_card_of_account(conn, account_id)
    if live is None:
        return None
    return (f"cash card {mask_card_number(live.card_number)} ({live.status.value}) draws on this account:"
            " cancel it first")
