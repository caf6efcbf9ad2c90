"""Cash in at an ATM, in two phases like cash out: the machine counts the notes into its escrow and asks (accept:
the card and the account can take them; nothing is credited) → it stores the notes → its acknowledgement credits the
account, with any fee. Notes given back (the customer cancels, a jam, or no answer reached the machine) credit
nothing. No acknowledgement before the deadline: the sweep opens an in-doubt item and the ATM's own word (a late
acknowledgement or its journal) settles it. So a deposit is never credited for notes the customer took home, and
notes the machine kept are never left uncredited without an item naming them (DESIGN §1.4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import structlog

from kanjo.cards import card_for_deposit
from kanjo.channels.atm import store
from kanjo.channels.atm.acknowledgement import AckRules, acknowledge_item, settle_doubt
from kanjo.channels.atm.cash_out import ack_reply
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
from kanjo.deposits import Refused as DepositRefused
from kanjo.deposits import balance, check_cash_deposit, deposit_at_atm
from kanjo.fees import FeeQuote, Kind, quote

log = structlog.get_logger("kanjo.atm")
DEPOSIT = Operation.DEPOSIT.value


async def accept(ch: AtmChannel, kind: MachineKind, card_number: str, amount_minor: int) -> tuple[Any, dict[str, Any]]:
    """Phase one: may the counted notes be stored for this card's account? Credits nothing."""
    holder = await ch.call(kind, "cards", "for-deposit", lambda: card_for_deposit(ch.cards, card_number))
    recorded: dict[str, Any] = {"account_id": holder.account_id, "card_id": holder.card_id,
                                "amount_minor": amount_minor}
    try:
        await ch.call(kind, "deposits", "check",
                      lambda: check_cash_deposit(ch.deposits, holder.account_id, amount_minor))
    except DepositRefused as e:
        return refused(e.code, str(e)), recorded
    fee = quote(ch.fees, FEE_CHANNEL_OF[kind], Kind.DEPOSIT, amount_minor, ch.now())
    deadline = ch.now() + dt.timedelta(seconds=ch.ack_timeout_s)
    return approved("accepted", fee_minor=fee.amount_minor, ack_deadline_at=deadline.isoformat()), {
        **recorded, "fee_minor": fee.amount_minor, "fee_rule": fee.rule_id,
        "hold_state": HoldState.AUTHORISED.value, "ack_deadline": deadline}


async def confirm(ch: AtmChannel, atm_id: str, journal_no: int, stored_minor: int) -> Reply:
    """Phase two: the ATM says how much it stored (the whole counted amount, or nothing: the notes went back)."""
    return await acknowledge_item(ch, RULES, atm_id, journal_no, stored_minor)


def _early_answer(d: store.CashItem | None, atm_id: str, journal_no: int, stored_minor: int) -> Reply | None:
    """Unknown, already acknowledged, or an amount other than the notes counted."""
    if d is None:
        return ack_reply(atm_id, journal_no, refused("unknown_transaction"))
    if d.ack_answer is not None:
        if d.dispensed_minor == stored_minor:
            return Reply(200, {**d.ack_answer, "replayed": True})
        return ack_reply(atm_id, journal_no, refused("request_reused", screen=ACK_REUSED_TEXT))
    if stored_minor not in (0, d.amount_minor):
        return ack_reply(atm_id, journal_no, refused(
            "invalid_amount", f"¥{stored_minor:,} is neither the ¥{d.amount_minor:,} counted nor nothing"))
    return None


def state_after(code: str, d: store.CashItem) -> str:
    return {"credited": HoldState.POSTED.value, "returned": HoldState.VOIDED.value,
            "in_doubt": HoldState.IN_DOUBT.value}.get(code, d.hold_state)


async def settle_accepted(ch: AtmChannel, kind: MachineKind, d: store.CashItem, stored_minor: int) -> Any:
    """Credit the notes stored (or nothing for notes returned); None when the account refuses the credit now (it was
    frozen or closed after the acceptance): the notes are in the machine, so people must settle it."""
    if stored_minor == 0:
        return approved("returned")
    request_id = request_id_of(d.atm_id, d.journal_no)
    try:
        await ch.call(kind, "deposits", "deposit",
                      lambda: deposit_at_atm(ch.deposits, request_id, d.account_id, stored_minor))
    except DepositRefused as e:
        log.error("atm_deposit_cannot_be_credited", atm=d.atm_id, journal_no=d.journal_no, reason=e.code)
        return None
    charged = await charge(ch, kind, request_id, d.account_id, _fee(d))
    b = await ch.call(kind, "deposits", "balance", lambda: balance(ch.deposits, d.account_id))
    return approved("credited", fee_minor=charged, balance_after_minor=b.balance_minor)


async def _settle_otherwise(ch: AtmChannel, conn: asyncpg.Connection, kind: MachineKind, d: store.CashItem,
                            stored_minor: int) -> Any:
    """An acknowledgement after the sweep (in doubt), after the journal settled it, or one the account refused."""
    if d.hold_state in (HoldState.AUTHORISED.value, HoldState.IN_DOUBT.value):
        outcome = JournalOutcome.DEPOSITED if stored_minor else JournalOutcome.RETURNED
        resolution = await resolve(ch, conn, kind, d, outcome, stored_minor)
        if resolution == "break":
            return refused("in_doubt", screen="係員が確認します。")
        return approved("credited" if resolution == "credited" else "returned", late=True)
    agrees = (d.hold_state == HoldState.POSTED.value and stored_minor and stored_minor == d.dispensed_minor) \
        or (d.hold_state == HoldState.VOIDED.value and not stored_minor)
    if agrees:
        return approved("credited" if stored_minor else "returned", late=True)
    log.error("atm_acknowledgement_conflicts", atm=d.atm_id, journal_no=d.journal_no, state=d.hold_state,
              stored_minor=stored_minor)
    return refused("in_doubt", screen="係員が確認します。")


RULES = AckRules(DEPOSIT, "deposit_ack", _early_answer, settle_accepted, _settle_otherwise, state_after)


def _fee(d: store.CashItem) -> FeeQuote:
    return FeeQuote(d.fee_minor or 0, d.fee_rule or "", "ATM")


SETTLED = {"credited": HoldState.POSTED.value, "cash_returned": HoldState.VOIDED.value}


async def resolve(ch: AtmChannel, conn: asyncpg.Connection, kind: MachineKind, d: store.CashItem,
                  outcome: JournalOutcome, stored_minor: int) -> str:
    """Settle an accepted deposit by what the ATM says (once). Notes stored → credit them now (the ledger's own
    idempotency by the request id makes a credit that raced this one count once); notes returned → nothing to
    credit."""
    request_id = request_id_of(d.atm_id, d.journal_no)

    async def decide() -> tuple[str, int | None]:
        if outcome is not JournalOutcome.DEPOSITED or stored_minor == 0:
            return "cash_returned", None
        try:
            posting = await ch.call(kind, "deposits", "deposit-late", lambda: deposit_at_atm(
                ch.deposits, request_id, d.account_id, stored_minor))
        except DepositRefused as e:  # the notes are in the machine and the account takes nothing: people settle it
            log.error("atm_in_doubt_break", atm=d.atm_id, journal_no=d.journal_no, reason=e.code,
                      amount_minor=stored_minor)
            return "break", None
        await charge(ch, kind, request_id, d.account_id, _fee(d))
        return "credited", posting.transfer_id
    return await settle_doubt(conn, d, outcome, stored_minor, decide, SETTLED)
