"""The device protocol's messages, one function each from a validated body to the reply: shared by the documented
routes (api.py) and the hot path in front of the web framework (wire.py), so both answer alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from kanjo.channels.atm import cash_in, cash_out, loan_cash, operations
from kanjo.channels.atm.model import Operation, request_id_of
from kanjo.channels.atm.schemas import (
    AckIn,
    DepositAckIn,
    DepositIn,
    InquiryIn,
    LoanDrawIn,
    PassbookIn,
    TimeDepositIn,
    TransferIn,
    WithdrawalIn,
)
from kanjo.channels.atm.service import AtmChannel, Reply, handle_message


async def inquiry(ch: AtmChannel, body: InquiryIn) -> Reply:
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.INQUIRY, {"card": body.card.number},
        lambda kind: operations.inquiry(ch, kind, body.card.number, body.card.pin))


async def withdrawal(ch: AtmChannel, body: WithdrawalIn) -> Reply:
    rid = request_id_of(body.atm_id, body.journal_no)
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.WITHDRAWAL,
        {"card": body.card.number, "amount": body.amount_minor},
        lambda kind: cash_out.authorise(ch, kind, rid, body.card.number, body.card.pin, body.amount_minor))


async def withdrawal_ack(ch: AtmChannel, body: AckIn) -> Reply:
    """Raises UnknownMachine for an ATM not registered (the routes answer 404)."""
    return await cash_out.acknowledge(ch, body.atm_id, body.journal_no, body.dispensed_minor)


async def loan_draw(ch: AtmChannel, body: LoanDrawIn) -> Reply:
    rid = request_id_of(body.atm_id, body.journal_no)
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.LOAN_DRAW,
        {"card": body.card.number, "amount": body.amount_minor},
        lambda kind: loan_cash.authorise(ch, kind, rid, body.card.number, body.card.pin, body.amount_minor))


async def loan_draw_ack(ch: AtmChannel, body: AckIn) -> Reply:
    """Raises UnknownMachine for an ATM not registered (the routes answer 404)."""
    return await loan_cash.acknowledge(ch, body.atm_id, body.journal_no, body.dispensed_minor)


async def deposit(ch: AtmChannel, body: DepositIn) -> Reply:
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.DEPOSIT, {"card": body.card.number, "amount": body.amount_minor},
        lambda kind: cash_in.accept(ch, kind, body.card.number, body.amount_minor))


async def deposit_ack(ch: AtmChannel, body: DepositAckIn) -> Reply:
    """Raises UnknownMachine for an ATM not registered (the routes answer 404)."""
    return await cash_in.confirm(ch, body.atm_id, body.journal_no, body.stored_minor)


async def transfer(ch: AtmChannel, body: TransferIn) -> Reply:
    rid = request_id_of(body.atm_id, body.journal_no)
    to = body.to
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.TRANSFER,
        {"card": body.card.number, "to": f"{to.branch_code}-{to.account_number}", "amount": body.amount_minor},
        lambda kind: operations.transfer_to(ch, kind, rid, body.card.number, body.card.pin, to.branch_code,
                                            int(to.account_number), body.amount_minor))


async def passbook(ch: AtmChannel, body: PassbookIn) -> Reply:
    rid = request_id_of(body.atm_id, body.journal_no)
    book = body.passbook
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.PASSBOOK, {"passbook": f"{book.branch_code}-{book.account_number}"},
        lambda kind: operations.passbook(ch, kind, rid, book.branch_code, int(book.account_number)))


async def time_deposit(ch: AtmChannel, body: TimeDepositIn) -> Reply:
    rid = request_id_of(body.atm_id, body.journal_no)
    return await handle_message(
        ch, body.atm_id, body.journal_no, Operation.TIME_DEPOSIT,
        {"card": body.card.number, "amount": body.amount_minor, "term": body.term_months},
        lambda kind: operations.time_deposit(ch, kind, rid, body.card.number, body.card.pin, body.amount_minor,
                                             body.term_months))


Handler = Callable[[AtmChannel, Any], Awaitable[Reply]]
# path → (the body's model, the handler): every transaction message of the protocol
MESSAGES: dict[str, tuple[type[BaseModel], Handler]] = {
    "/atm/v1/inquiry": (InquiryIn, inquiry),
    "/atm/v1/withdrawal": (WithdrawalIn, withdrawal),
    "/atm/v1/withdrawal/ack": (AckIn, withdrawal_ack),
    "/atm/v1/deposit": (DepositIn, deposit),
    "/atm/v1/deposit/ack": (DepositAckIn, deposit_ack),
    "/atm/v1/loan-draw": (LoanDrawIn, loan_draw),
    "/atm/v1/loan-draw/ack": (AckIn, loan_draw_ack),
    "/atm/v1/transfer": (TransferIn, transfer),
    "/atm/v1/passbook": (PassbookIn, passbook),
    "/atm/v1/time-deposit": (TimeDepositIn, time_deposit),
}
