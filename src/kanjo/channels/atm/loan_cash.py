"""Card-loan cash at an ATM (カードローン借入), in two phases like a withdrawal: the card and PIN authenticate the
customer, the loans product holds the amount on the customer's line → the ATM dispenses → its acknowledgement makes
it a draw. No acknowledgement before the deadline: the sweep releases the hold and opens an in-doubt item that the
ATM's own word settles. The channel records the card-loan contract (its ledger account) as the item's account.

No ATM fee and no card daily limit apply to card-loan cash: the fee tariff has no line for it (its cost is in the
rate) and the card's daily limit guards the deposit account; the line and the per-transaction maximum guard the loan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import structlog

from kanjo.cards import verify_card
from kanjo.channels.atm import store
from kanjo.channels.atm.acknowledgement import AckRules, acknowledge_item, settle_doubt
from kanjo.channels.atm.cash_out import SETTLED, early_answer, settle_otherwise, state_after
from kanjo.channels.atm.limits import HOLD_MARGIN_S
from kanjo.channels.atm.model import HoldState, JournalOutcome, MachineKind, Operation, approved, refused, request_id_of
from kanjo.channels.atm.service import AtmChannel, Reply
from kanjo.loans import Refused as LoanRefused
from kanjo.loans import draw_cash_late, hold_cash_draw, post_cash_draw, void_cash_draw

log = structlog.get_logger("kanjo.atm")
LOAN_DRAW = Operation.LOAN_DRAW.value


async def authorise(ch: AtmChannel, kind: MachineKind, request_id: int, card_number: str, pin: str,
                    amount_minor: int) -> tuple[Any, dict[str, Any]]:
    holder = await ch.call(kind, "cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    recorded: dict[str, Any] = {"card_id": holder.card_id, "amount_minor": amount_minor}
    try:
        hold = await ch.call(kind, "loans", "hold", lambda: hold_cash_draw(
            ch.loans, request_id, holder.customer_id, amount_minor, ch.ack_timeout_s + HOLD_MARGIN_S))
    except LoanRefused as e:
        return refused(e.code, str(e)), recorded
    deadline = ch.now() + dt.timedelta(seconds=ch.ack_timeout_s)
    return approved(dispense_minor=amount_minor, fee_minor=0, available_after_minor=hold.available_after_minor,
                    ack_deadline_at=deadline.isoformat()), {
        **recorded, "account_id": hold.contract_id, "fee_minor": 0, "hold_state": HoldState.AUTHORISED.value,
        "ack_deadline": deadline}


async def acknowledge(ch: AtmChannel, atm_id: str, journal_no: int, dispensed_minor: int) -> Reply:
    """The ATM says how much cash left the machine for this authorisation: draw it, release the hold, or settle the
    doubt."""
    return await acknowledge_item(ch, RULES, atm_id, journal_no, dispensed_minor)


async def settle_authorised(ch: AtmChannel, kind: MachineKind, item: store.CashItem, dispensed_minor: int) -> Any:
    """Draw what was dispensed or release the hold; None when the hold is gone (released by the sweep, or lapsed)."""
    request_id = request_id_of(item.atm_id, item.journal_no)
    if dispensed_minor == 0:
        await ch.call(kind, "loans", "void", lambda: void_cash_draw(ch.loans, request_id))
        return approved("voided")
    try:
        await ch.call(kind, "loans", "post", lambda: post_cash_draw(ch.loans, request_id, dispensed_minor))
    except LoanRefused as e:
        log.warning("atm_loan_hold_gone", atm=item.atm_id, journal_no=item.journal_no, reason=e.code)
        return None
    return approved("posted")


async def release(ch: AtmChannel, kind: MachineKind, request_id: int) -> None:
    """The sweep's release of an unacknowledged hold (refused `hold_posted` when an acknowledgement drew it)."""
    await ch.call(kind, "loans", "void", lambda: void_cash_draw(ch.loans, request_id))


async def resolve(ch: AtmChannel, conn: asyncpg.Connection, kind: MachineKind, item: store.CashItem,
                  outcome: JournalOutcome, dispensed_minor: int) -> str:
    """Settle an in-doubt card-loan draw by what the ATM says (once). Cash out → drawn now (from the hold if it still
    stands, else afresh within the line); nothing out → the hold, if any is left, is released."""
    request_id = request_id_of(item.atm_id, item.journal_no)

    async def decide() -> tuple[str, int | None]:
        try:
            if outcome is not JournalOutcome.DISPENSED or dispensed_minor == 0:
                await ch.call(kind, "loans", "void", lambda: void_cash_draw(ch.loans, request_id))
                return "nothing_dispensed", None
            try:
                await ch.call(kind, "loans", "post", lambda: post_cash_draw(ch.loans, request_id, dispensed_minor))
            except LoanRefused as e:
                if e.code not in ("hold_voided", "hold_expired"):
                    raise
                await ch.call(kind, "loans", "draw-late", lambda: draw_cash_late(
                    ch.loans, request_id, item.account_id, dispensed_minor))
            return "posted", None
        except LoanRefused as e:  # cash out beyond the line, or drawn though the ATM says nothing left: people look
            log.error("atm_in_doubt_break", atm=item.atm_id, journal_no=item.journal_no, reason=e.code,
                      amount_minor=dispensed_minor or item.amount_minor)
            return "break", None
    return await settle_doubt(conn, item, outcome, dispensed_minor, decide, SETTLED)


RULES = AckRules(LOAN_DRAW, "loan_draw_ack", early_answer, settle_authorised, settle_otherwise(resolve), state_after)
