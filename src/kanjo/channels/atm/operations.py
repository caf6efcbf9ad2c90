"""The ATM's operations without cash in the machine's hands: balance inquiry, transfer, passbook update (記帳) and a
time deposit placed from the card's account. Each returns the answer and what the channel's journal records."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog

from kanjo.cards import verify_card
from kanjo.channels.atm.model import Answer, MachineKind, approved, refused
from kanjo.channels.atm.service import FEE_CHANNEL_OF, AtmChannel
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.deposits import Refused as DepositRefused
from kanjo.deposits import balance, find_account, print_passbook, transfer
from kanjo.fees import ChargedFee, FeeQuote, Kind, charge_fee, quote
from kanjo.fees import Refused as FeeRefused
from kanjo.time_deposits import Instruction, place_time_deposit
from kanjo.time_deposits import Refused as TimeDepositRefused

log = structlog.get_logger("kanjo.atm")
Outcome = tuple[Answer, dict[str, Any]]


async def inquiry(ch: AtmChannel, kind: MachineKind, card_number: str, pin: str) -> Outcome:
    holder = await ch.call(kind, "cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    b = await ch.call(kind, "deposits", "balance", lambda: balance(ch.deposits, holder.account_id))
    return approved(balance_minor=b.balance_minor, available_minor=b.available_minor), {
        "account_id": holder.account_id, "card_id": holder.card_id}


async def transfer_to(ch: AtmChannel, kind: MachineKind, request_id: int, card_number: str, pin: str,
                      branch_code: str, account_number: int, amount_minor: int) -> Outcome:
    if kind is not MachineKind.OWN:
        return refused("not_offered_here"), {}
    holder = await ch.call(kind, "cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    recorded: dict[str, Any] = {"account_id": holder.account_id, "card_id": holder.card_id,
                                "amount_minor": amount_minor}
    try:
        payee = await ch.call(kind, "deposits", "find", lambda: find_account(ch.deposits, branch_code, account_number))
    except DepositNotFound:
        return refused("unknown_payee"), recorded
    fee = quote(ch.fees, FEE_CHANNEL_OF[kind], Kind.TRANSFER_SAME_BANK, amount_minor, ch.now())
    b = await ch.call(kind, "deposits", "balance", lambda: balance(ch.deposits, holder.account_id))
    if b.available_minor < amount_minor + fee.amount_minor:
        needed = amount_minor + fee.amount_minor
        detail = f"手数料 ¥{fee.amount_minor:,} を含めて ¥{needed:,} が必要です。"
        return refused("insufficient_funds", screen=detail), recorded
    try:
        await ch.call(kind, "deposits", "transfer",
                      lambda: transfer(ch.deposits, request_id, holder.account_id, payee.id, amount_minor))
    except DepositRefused as e:
        return refused(e.code, str(e)), recorded
    charged = await charge(ch, kind, request_id, holder.account_id, fee)
    after = await ch.call(kind, "deposits", "balance", lambda: balance(ch.deposits, holder.account_id))
    return approved(fee_minor=charged, balance_after_minor=after.balance_minor,
                    payee=payee.label), {
        **recorded, "fee_minor": charged, "fee_rule": fee.rule_id}


async def passbook(ch: AtmChannel, kind: MachineKind, request_id: int, branch_code: str,
                   account_number: int) -> Outcome:
    try:
        account = await ch.call(kind, "deposits", "find", lambda: find_account(ch.deposits, branch_code,
                                                                              account_number))
    except DepositNotFound:
        return refused("unknown_account", screen="この通帳はお取扱いできません。"), {}
    try:
        printed = await ch.call(kind, "deposits", "passbook", lambda: print_passbook(ch.deposits, request_id,
                                                                                    account.id))
    except DepositRefused as e:
        return refused(e.code, str(e)), {"account_id": account.id}
    lines = [{"date": line.business_date.isoformat(), "label": line.description,
              "withdrawn_minor": line.withdrawal_minor, "deposited_minor": line.deposit_minor,
              "balance_minor": line.balance_minor, "page": line.page, "line": line.line} for line in printed.lines]
    return approved(lines=lines, more=printed.items_left > 0, passbook_full=printed.passbook_full), {
        "account_id": account.id}


async def time_deposit(ch: AtmChannel, kind: MachineKind, request_id: int, card_number: str, pin: str,
                       amount_minor: int, term_months: int) -> Outcome:
    if kind is not MachineKind.OWN:
        return refused("not_offered_here"), {}
    holder = await ch.call(kind, "cards", "verify", lambda: verify_card(ch.cards, card_number, pin))
    recorded: dict[str, Any] = {"account_id": holder.account_id, "card_id": holder.card_id,
                                "amount_minor": amount_minor}
    try:
        placed = await ch.call(kind, "time_deposits", "place", lambda: place_time_deposit(
            ch.time_deposits, request_id, holder.customer_id, holder.account_id, amount_minor, term_months,
            Instruction.RENEW_PRINCIPAL_AND_INTEREST))
    except TimeDepositRefused as e:
        return refused(e.code, str(e)), recorded
    return approved(deposit_id=_uuid(placed.id), maturity_date=placed.matures_on.isoformat(),
                    rate_percent=str(placed.rate_percent)), recorded


async def charge(ch: AtmChannel, kind: MachineKind, request_id: int, account_id: int, fee: FeeQuote,
                 at: dt.datetime | None = None) -> int:
    """Charge an ATM fee once per transaction; a fee the account can no longer pay is waived and logged (the
    customer had the funds when the transaction was authorised)."""
    if fee.amount_minor == 0:
        return 0
    try:
        done: ChargedFee | None = await ch.call(kind, "fees", "charge",
                                                lambda: charge_fee(ch.fees, request_id, account_id, fee, at))
    except FeeRefused as e:
        log.warning("atm_fee_waived", account=_uuid(account_id), fee_minor=fee.amount_minor, reason=str(e))
        return 0
    return 0 if done is None else done.amount_minor


def _uuid(i: int) -> str:
    return str(uuid.UUID(int=i))
