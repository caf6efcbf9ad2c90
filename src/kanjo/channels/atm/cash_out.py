"""Cash out at an ATM, in two phases: authorise (hold the amount and fee, reserve the card's daily limit) →
the ATM dispenses → its acknowledgement posts the hold. No acknowledgement before the deadline: the sweep voids the
hold and opens an in-doubt item, which the ATM's own word (a late acknowledgement or its journal) settles — never a
guess. Nothing is final without the device's acknowledgement (DESIGN §1.4)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from kanjo.cards import CardRefused, release_daily_amount, reserve_daily_amount, verify_card
from kanjo.channels.atm import store
from kanjo.channels.atm.acknowledgement import AckRules, acknowledge_item, settle_doubt
from kanjo.channels.atm.limits import HOLD_MARGIN_S
from kanjo.channels.atm.model import (
    ACK_REUSED_TEXT,
    HoldState,
    JournalOutcome,
    MachineKind,
    Operation,
    approved,
    refused,
    request_id_of,
)
from kanjo.channels.atm.operations import charge
from kanjo.channels.atm.service import FEE_CHANNEL_OF, AtmChannel, Reply
from kanjo.deposits import Hold, derived_id, place_atm_hold, post_atm_withdrawal, post_hold, void_hold
from kanjo.deposits import Refused as DepositRefused
from kanjo.fees import FeeImplausible, FeeQuote, Kind, charge_transfer, quote, record_charge
from kanjo.fees import Refused as FeeRefused
from kanjo.ledger import PendingStatus, Transfer

log = structlog.get_logger("kanjo.atm")


async def authorise(ch: AtmChannel, kind: MachineKind, request_id: int, card_number: str, pin: str,
                    amount_minor: int) -> tuple[Any, dict[str, Any]]:
    holder = await ch.call(kind, "cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    recorded: dict[str, Any] = {"account_id": holder.account_id, "card_id": holder.card_id,
                                "amount_minor": amount_minor}
    fee = quote(ch.fees, FEE_CHANNEL_OF[kind], Kind.WITHDRAWAL, amount_minor, ch.now())
    today = ch.business_date()
    # The daily limit and the funds are checked side by side (one round fewer on the busiest message). A hold placed
    # for a withdrawal the daily limit refuses is voided at once; a reservation for one the funds refuse is given
    # back. A system error on either leaves both for the retry, which finds them by the request id.
    reserved, held = await asyncio.gather(
        ch.call(kind, "cards", "reserve", lambda: reserve_daily_amount(ch.cards, request_id, holder.card_id, today,
                                                                       amount_minor)),
        ch.call(kind, "deposits", "hold", lambda: place_atm_hold(
            ch.deposits, request_id, holder.account_id, amount_minor + fee.amount_minor,
            ch.ack_timeout_s + HOLD_MARGIN_S)),
        return_exceptions=True)
    if isinstance(reserved, CardRefused) and isinstance(held, Hold):
        await ch.call(kind, "deposits", "void", lambda: void_hold(ch.deposits, request_id))
    if isinstance(reserved, BaseException):
        raise reserved
    if isinstance(held, BaseException) and not isinstance(held, DepositRefused):
        raise held
    if isinstance(held, DepositRefused):
        answer = refused(held.code, str(held))
    elif held.status is not PendingStatus.PENDING:  # a retry after its first processing died and the hold lapsed
        answer = refused("hold_lapsed", "a retry after this request's hold was let go")
    else:
        answer = None
    if answer is not None:
        await ch.call(kind, "cards", "release", lambda: release_daily_amount(ch.cards, request_id))
        return answer, recorded
    deadline = ch.now() + dt.timedelta(seconds=ch.ack_timeout_s)
    # No balance on this answer: two more queries on the busiest message; the receipt's balance is an inquiry away.
    fields: dict[str, Any] = {"dispense_minor": amount_minor, "fee_minor": fee.amount_minor,
                              "ack_deadline_at": deadline.isoformat()}
    return approved(**fields), {**recorded, "fee_minor": fee.amount_minor, "fee_rule": fee.rule_id,
                                "hold_state": HoldState.AUTHORISED.value, "ack_deadline": deadline}


async def acknowledge(ch: AtmChannel, atm_id: str, journal_no: int, dispensed_minor: int) -> Reply:
    """The ATM says how much cash left the machine for this authorisation; post, void, or settle the doubt."""
    return await acknowledge_item(ch, RULES, atm_id, journal_no, dispensed_minor)


def early_answer(w: store.CashItem | None, atm_id: str, journal_no: int, dispensed_minor: int) -> Reply | None:
    """Unknown, already acknowledged, or an amount that cannot have been dispensed."""
    if w is None:
        return ack_reply(atm_id, journal_no, refused("unknown_transaction"))
    if w.ack_answer is not None:
        if w.dispensed_minor == dispensed_minor:
            return Reply(200, {**w.ack_answer, "replayed": True})
        return ack_reply(atm_id, journal_no, refused("request_reused", screen=ACK_REUSED_TEXT))
    if dispensed_minor > w.amount_minor or dispensed_minor % 1_000:
        return ack_reply(atm_id, journal_no, refused(
            "invalid_amount", f"¥{dispensed_minor:,} is not notes within the ¥{w.amount_minor:,} authorised"))
    return None


def state_after(code: str, w: store.CashItem) -> str:
    return {"posted": HoldState.POSTED.value, "voided": HoldState.VOIDED.value,
            "in_doubt": HoldState.IN_DOUBT.value}.get(code, w.hold_state)


async def settle_authorised(ch: AtmChannel, kind: MachineKind, w: store.CashItem, dispensed_minor: int) -> Any:
    """Post or void the hold; None when the hold is no longer there to post (voided by the sweep, or lapsed)."""
    request_id = request_id_of(w.atm_id, w.journal_no)
    if dispensed_minor == 0:
        await ch.call(kind, "deposits", "void", lambda: void_hold(ch.deposits, request_id))
        await ch.call(kind, "cards", "release", lambda: release_daily_amount(ch.cards, request_id))
        return approved("voided")
    fee = _fee(w)
    linked = await _fee_transfer(ch, request_id, w.account_id, fee)
    try:
        posted = await ch.call(kind, "deposits", "post", lambda: post_hold(ch.deposits, request_id, dispensed_minor,
                                                                           linked=linked))
    except DepositRefused as e:
        log.warning("atm_hold_lapsed", atm=w.atm_id, journal_no=w.journal_no, reason=e.code)
        return None
    if linked is not None and posted.linked_moved:
        await ch.call(kind, "fees", "record", lambda: record_charge(ch.fees, request_id, w.account_id, fee, linked.id,
                                                                    replayed=posted.replayed))
    else:
        await charge(ch, kind, request_id, w.account_id, fee)
    return approved("posted")


async def _fee_transfer(ch: AtmChannel, request_id: int, account_id: int, fee: FeeQuote) -> Transfer | None:
    """The fee's transfer, to move in one ledger request with the post (one round of the ledger fewer on the
    acknowledgement); None for no fee, or one the fees product refuses — then charge() deals with it as before."""
    try:
        return await charge_transfer(ch.fees, request_id, account_id, fee, leg="charge-with-cash")
    except (FeeRefused, FeeImplausible):
        return None


Resolve = Callable[[AtmChannel, asyncpg.Connection, MachineKind, store.CashItem, JournalOutcome, int], Awaitable[str]]
Settle = Callable[[AtmChannel, asyncpg.Connection, MachineKind, store.CashItem, int], Awaitable[Any]]


def settle_otherwise(resolve_by: Resolve) -> Settle:
    """An acknowledgement of cash out after the sweep (in doubt) or after the journal settled it: the ATM's word
    settles a doubt (by `resolve_by`); an acknowledgement that agrees with a settled item is answered as such."""
    async def settle(ch: AtmChannel, conn: asyncpg.Connection, kind: MachineKind, w: store.CashItem,
                     dispensed_minor: int) -> Any:
        if w.hold_state in (HoldState.AUTHORISED.value, HoldState.IN_DOUBT.value):
            outcome = JournalOutcome.DISPENSED if dispensed_minor else JournalOutcome.NOT_DISPENSED
            resolution = await resolve_by(ch, conn, kind, w, outcome, dispensed_minor)
            return approved("posted" if resolution == "posted" else "voided", late=True) if resolution != "break" \
                else refused("in_doubt", screen="係員が確認します。")
        agrees = (w.hold_state == HoldState.POSTED.value and dispensed_minor and dispensed_minor == w.dispensed_minor) \
            or (w.hold_state == HoldState.VOIDED.value and not dispensed_minor)
        if agrees:
            return approved("posted" if dispensed_minor else "voided", late=True)
        log.error("atm_acknowledgement_conflicts", atm=w.atm_id, journal_no=w.journal_no, state=w.hold_state,
                  dispensed_minor=dispensed_minor)
        return refused("in_doubt", screen="係員が確認します。")
    return settle


def _fee(w: store.CashItem) -> FeeQuote:
    return FeeQuote(w.fee_minor or 0, w.fee_rule or "", "ATM")


SETTLED = {"posted": HoldState.POSTED.value, "nothing_dispensed": HoldState.VOIDED.value}


async def resolve(ch: AtmChannel, conn: asyncpg.Connection, kind: MachineKind, w: store.CashItem,
                  outcome: JournalOutcome, dispensed_minor: int) -> str:
    """Settle an in-doubt withdrawal by what the ATM says (once). Cash out → post it now (with its fee); nothing out →
    nothing to post, the daily limit is given back."""
    request_id = request_id_of(w.atm_id, w.journal_no)

    async def decide() -> tuple[str, int | None]:
        if outcome is JournalOutcome.DISPENSED and dispensed_minor > 0:
            try:
                posting = await ch.call(kind, "deposits", "post-late", lambda: post_atm_withdrawal(
                    ch.deposits, derived_id(request_id, "in-doubt"), w.account_id, dispensed_minor))
            except DepositRefused as e:  # the money is gone from the account: people must recover it
                log.error("atm_in_doubt_break", atm=w.atm_id, journal_no=w.journal_no, reason=e.code,
                          amount_minor=dispensed_minor)
                return "break", None
            await charge(ch, kind, request_id, w.account_id, _fee(w))
            return "posted", posting.transfer_id
        await ch.call(kind, "cards", "release", lambda: release_daily_amount(ch.cards, request_id))
        return "nothing_dispensed", None
    return await settle_doubt(conn, w, outcome, dispensed_minor, decide, SETTLED)


RULES = AckRules(Operation.WITHDRAWAL.value, "withdrawal_ack", early_answer, settle_authorised,
                 settle_otherwise(resolve), state_after)


def ack_reply(atm_id: str, journal_no: int, answer: Any) -> Reply:
    return Reply(200, answer.body(atm_id, journal_no))
