"""Card-loan cash at an ATM, in two phases like a deposit withdrawal: hold the amount on the line (a pending ledger
transfer from the card-loan account to the ATMs' cash) → the ATM dispenses → its acknowledgement posts what left the
machine, and only then is it a draw. No acknowledgement: the hold is voided (or lapses by its timeout) and the line is
whole again; the ATM's journal decides an in-doubt item, and cash it says it paid out is drawn then.

The line holds because a hold is placed under the contract's row lock, against the line less what is drawn and what
other holds keep (the ledger's pending debits of the card-loan account); posting or voiding needs no check of the
line (a post never exceeds its hold). Every step is idempotent by the ATM request id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from kanjo.accounting import ATM_CASH, JPY, gl_account_id
from kanjo.kernel.invariants import invariant
from kanjo.ledger import Account, CreateTransferResult, Transfer, TransferFlags, read_accounts
from kanjo.loans import store
from kanjo.loans.model import DRAW_CASH_CODE, Channel, Movement, Refused, check_can_draw
from kanjo.loans.service import POSTED, Loans, _check_size, _locked, _refusal, derived_id

R = CreateTransferResult
KIND = "draw_cash"


@dataclass(frozen=True, slots=True)
class CashHold:
    """Cash reserved on a card loan for an ATM to pay out: what the ATM may dispense, and what is left after it."""

    hold_id: int
    contract_id: int
    amount_minor: int
    available_after_minor: int  # 利用可能額 once this cash is out
    replayed: bool = False


def hold_id_of(request_id: int) -> int:
    return derived_id(request_id, "cash-hold")


async def hold_cash_draw(h: Loans, request_id: int, customer_id: int, amount_minor: int, timeout_s: int) -> CashHold:
    """Reserve `amount_minor` of the customer's open card loan for cash out, for `timeout_s` seconds. Refused (nothing
    held) when the customer has no usable card loan or the line does not cover it."""
    _check_size(amount_minor, Channel.CASH, cash_max=True)
    hold_id = hold_id_of(request_id)
    async with h.pool.acquire() as conn:
        c = await store.open_contract_of_customer(conn, customer_id)
    if c is None:
        raise Refused("no_card_loan", "the customer has no card loan to draw on")
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, c.id)
        [a] = await _card_loan_account(conn, c.id)
        prior = await h.ledger.lookup_transfers([hold_id])
        if prior:  # a retry: the hold stands as placed (the ledger answers a post or void of it)
            p = prior[0]
            if (p.debit_account_id, p.amount) != (c.id, amount_minor):
                raise Refused("request_reused", "this request id already reserved other cash")
            return CashHold(hold_id, c.id, p.amount, c.available_minor(_committed(a)), replayed=True)
        check_can_draw(c.status)
        committed = _committed(a)
        if amount_minor > c.credit_line_minor - committed:
            raise Refused("exceeds_available", f"¥{amount_minor:,} is more than the ¥{c.available_minor(committed):,}"
                          f" available (line ¥{c.credit_line_minor:,}, drawn ¥{a.balance_debit_minor():,},"
                          f" on hold ¥{a.debits_pending:,})")
        t = Transfer(id=hold_id, debit_account_id=c.id, credit_account_id=gl_account_id(ATM_CASH),
                     amount=amount_minor, ledger=JPY, code=DRAW_CASH_CODE, flags=int(TransferFlags.PENDING),
                     timeout=timeout_s, user_data_128=c.id)
        [outcome] = await h.ledger.create_transfers([t])
        if outcome.result not in POSTED:
            raise _refusal(outcome.result, amount_minor)
    return CashHold(hold_id, c.id, amount_minor, c.available_minor(committed + amount_minor),
                    replayed=outcome.result is R.EXISTS)


async def post_cash_draw(h: Loans, request_id: int, dispensed_minor: int) -> Movement:
    """The ATM paid out `dispensed_minor` (at most the hold; the rest is released): that much is drawn from today.
    Refused `hold_voided` / `hold_expired` when the hold is gone (the in-doubt path decides then)."""
    if dispensed_minor < 1:
        raise Refused("invalid_amount", "a draw posts at least ¥1")
    hold_id = hold_id_of(request_id)
    post_id = derived_id(request_id, "cash-post")
    [outcome] = await h.ledger.create_transfers([Transfer(
        id=post_id, pending_id=hold_id, amount=dispensed_minor, ledger=JPY,
        flags=int(TransferFlags.POST_PENDING_TRANSFER))])
    if outcome.result not in POSTED:
        raise _hold_refusal(outcome.result)
    [posted] = await h.ledger.lookup_transfers([post_id])
    return await _record(h, Movement(request_id, posted.debit_account_id, KIND, posted.amount, 0, posted.amount,
                                     _date_of(posted)))


async def void_cash_draw(h: Loans, request_id: int) -> None:
    """Nothing left the ATM: release the hold (idempotent; a hold that lapsed counts as released). Refused
    `hold_posted` when the cash was already drawn."""
    [outcome] = await h.ledger.create_transfers([Transfer(
        id=derived_id(request_id, "cash-void"), pending_id=hold_id_of(request_id), ledger=JPY,
        flags=int(TransferFlags.VOID_PENDING_TRANSFER))])
    if outcome.result is R.PENDING_TRANSFER_ALREADY_POSTED:
        raise Refused("hold_posted", "the cash was already drawn: the hold cannot be voided")
    if outcome.result not in (R.OK, R.EXISTS, R.PENDING_TRANSFER_ALREADY_VOIDED, R.PENDING_TRANSFER_EXPIRED):
        raise _hold_refusal(outcome.result)


async def draw_cash_late(h: Loans, request_id: int, contract_id: int, amount_minor: int) -> Movement:
    """Cash the ATM's journal says it paid out after its hold was let go (an in-doubt item): drawn now, under the
    contract's lock. The cash is already in the customer's hand, so neither the contract's state nor the time
    decide; only the line does — a draw beyond it is refused (`exceeds_line`) for people to recover, never posted."""
    transfer_id = derived_id(request_id, "cash-late")
    async with h.pool.acquire() as conn:
        done = await store.movement(conn, request_id)
    if done is not None:
        return done
    async with h.pool.acquire() as conn, conn.transaction():
        c = await _locked(conn, contract_id)
        prior = await h.ledger.lookup_transfers([transfer_id])
        if not prior:
            [a] = await _card_loan_account(conn, c.id)
            if amount_minor > c.credit_line_minor - _committed(a):
                raise Refused("exceeds_line", f"¥{amount_minor:,} paid out would pass the line of"
                              f" ¥{c.credit_line_minor:,} (drawn ¥{a.balance_debit_minor():,})")
        [outcome] = await h.ledger.create_transfers([Transfer(
            id=transfer_id, debit_account_id=c.id, credit_account_id=gl_account_id(ATM_CASH), amount=amount_minor,
            ledger=JPY, code=DRAW_CASH_CODE, user_data_128=c.id,
            business_date=prior[0].business_date if prior else None)])
        if outcome.result not in POSTED:
            raise _refusal(outcome.result, amount_minor)
        [posted] = await h.ledger.lookup_transfers([transfer_id])
        m = Movement(request_id, c.id, KIND, amount_minor, 0, amount_minor, _date_of(posted))
        if await store.movement(conn, request_id) is None:
            await store.insert_movement(conn, m)
    return m


async def _record(h: Loans, m: Movement) -> Movement:
    """The movement the day-end's interest sees, once per request (a retried acknowledgement finds it)."""
    async with h.pool.acquire() as conn, conn.transaction():
        await _locked(conn, m.contract_id)
        done = await store.movement(conn, m.request_id)
        if done is not None:
            return done
        await store.insert_movement(conn, m)
    return m


async def _card_loan_account(conn: asyncpg.Connection, contract_id: int) -> list[Account]:
    found = await read_accounts(conn, [contract_id])
    invariant(len(found) == 1, "a contract has its card-loan ledger account")
    return found


def _committed(a: Account) -> int:
    """Drawn plus held: what the line no longer has."""
    return a.balance_debit_minor() + a.debits_pending


def _date_of(t: Transfer) -> dt.date:
    invariant(t.business_date is not None, "a posted transfer has its business date")
    assert t.business_date is not None
    return t.business_date


def _hold_refusal(result: CreateTransferResult) -> Refused:
    if result is R.PENDING_TRANSFER_NOT_FOUND:
        return Refused("unknown_hold", "no cash was reserved by this request")
    if result is R.EXCEEDS_PENDING_TRANSFER_AMOUNT:
        return Refused("invalid_amount", "more than was reserved cannot be drawn")
    if result is R.PENDING_TRANSFER_ALREADY_VOIDED:
        return Refused("hold_voided", "the reserved cash was released: nothing can be drawn from it")
    if result is R.PENDING_TRANSFER_EXPIRED:
        return Refused("hold_expired", "the reservation lapsed before the ATM confirmed: nothing was drawn")
    if result is R.PENDING_TRANSFER_ALREADY_POSTED:
        return Refused("hold_posted", "the reserved cash was already drawn under another request")
    return Refused(result.name.lower(), f"the ledger refused: {result.name.lower()}")
