"""Holds (two-phase cash out): reserve a withdrawal on a deposit account, then post it when the device confirms the
cash left, or void it; a hold nobody settles expires by itself in the ledger.

A hold is a pending ledger transfer from the customer's account whose id derives from the caller's request id, so
every retry finds the same hold. On a 総合口座 the reservation may draw the overdraft (posted in the same linked
chain, planned under the account's lock); voiding repays from the funds the void freed, so a cancelled withdrawal
leaves the overdraft as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from kanjo.accounting import ATM_CASH, JPY, gl_account_id
from kanjo.deposits.limits import HOLD_TIMEOUT_S_MAX
from kanjo.deposits.model import ATM_WITHDRAWAL_CODE, Refused
from kanjo.deposits.service import Deposits, _move, derived_id, repay_overdraft
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import CreateTransferResult, PendingStatus, Transfer, TransferFlags

R = CreateTransferResult
LEG = "hold"
NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation on an account and where it stands."""

    hold_id: int  # the pending ledger transfer
    account_id: int
    amount_minor: int
    status: PendingStatus  # PENDING, POSTED, VOIDED or EXPIRED
    expires_at_ns: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class HoldPosted:
    """A hold posted: how much of it moved."""

    hold_id: int
    amount_minor: int
    replayed: bool = False
    linked_moved: bool = False  # the transfer linked to the post (post_hold's `linked`) moved with it


def hold_id_of(request_id: int) -> int:
    """The id of the hold a request places: the same on every retry."""
    return derived_id(request_id, LEG)


async def place_atm_hold(d: Deposits, request_id: int, account_id: int, amount_minor: int, timeout_s: int) -> Hold:
    """Reserve `amount_minor` on the account for cash out at an ATM, for `timeout_s` seconds (refused like a
    withdrawal when the funds, or a 総合口座's overdraft, do not cover it)."""
    if not 1 <= timeout_s <= HOLD_TIMEOUT_S_MAX:
        raise LimitReached(limits.get("deposit_hold_timeout_s_max"), timeout_s)
    posting = await _move(d, request_id, LEG, account_id, gl_account_id(ATM_CASH), amount_minor,
                          ATM_WITHDRAWAL_CODE, customer_side=[account_id], hold_timeout_s=timeout_s)
    if posting.replayed:  # a retry: the hold may have moved on since (posted, voided, expired)
        return await _read(d, posting.transfer_id, replayed=True)
    # just placed: pending, expiring as the ledger computes it (no read back on the ATM's busiest path)
    return Hold(posting.transfer_id, account_id, posting.amount_minor, PendingStatus.PENDING,
                posting.timestamp + timeout_s * NS_PER_S)


async def hold_status(d: Deposits, request_id: int) -> Hold | None:
    """The hold a request placed, or None when it placed none (refused, or never seen)."""
    records = await d.ledger.lookup_transfer_records([hold_id_of(request_id)])
    if not records:
        return None
    return _hold(records[0].transfer, records[0].pending_status, records[0].expires_at)


async def post_hold(d: Deposits, request_id: int, amount_minor: int | None = None, *,
                    linked: Transfer | None = None) -> HoldPosted:
    """Post the hold placed by `request_id` (all of it, or `amount_minor` of it: the rest is released). One ledger
    request: the hold's id derives from the request id, and the ledger checks the rest.

    `linked` (a transfer of the caller's, such as the fee for the cash) moves in the same ledger request, as one
    linked chain with the post: both or neither (`linked_moved`). When the linked transfer is refused, the hold is
    posted alone and `linked_moved` is False — the caller moves it its own way, or not at all.

    Refused with `hold_expired` / `hold_voided` when it can no longer be posted; a retry answers as the first time.
    """
    if amount_minor is not None and amount_minor < 1:
        raise Refused("invalid_amount", "a hold posts at least ¥1")
    hold_id = hold_id_of(request_id)
    if linked is not None:
        posted = await _post_linked(d, request_id, hold_id, amount_minor, linked)
        if posted is not None:
            return posted
    t = Transfer(id=derived_id(request_id, "hold-post"), pending_id=hold_id, amount=amount_minor or 0,
                 ledger=JPY, flags=int(TransferFlags.POST_PENDING_TRANSFER))
    [outcome] = await d.ledger.create_transfers([t])
    result = outcome.result
    if result in (R.OK, R.EXISTS):
        return HoldPosted(hold_id, outcome.amount, replayed=result is R.EXISTS)
    if result is R.PENDING_TRANSFER_ALREADY_POSTED:  # posted under another id: answer as it stands
        records = await d.ledger.lookup_transfer_records([hold_id])
        return HoldPosted(hold_id, records[0].transfer.amount if records else 0, replayed=True)
    raise _post_refusal(result)


async def _post_linked(d: Deposits, request_id: int, hold_id: int, amount_minor: int | None,
                       linked: Transfer) -> HoldPosted | None:
    """The post and `linked` as one chain; None when the chain failed on `linked` (the hold is still to post).

    The chain's post has an id of its own: a failed chain remembers its members' ids, and the hold must stay
    postable alone under the usual id. The ledger posts a hold once whatever the id (PENDING_TRANSFER_ALREADY_POSTED),
    and a chain that failed once fails on every retry, so the linked transfer moves at most once either way.
    """
    invariant(not linked.flags & int(TransferFlags.LINKED), "the linked transfer ends the chain")
    post = Transfer(id=derived_id(request_id, "hold-post-linked"), pending_id=hold_id, amount=amount_minor or 0,
                    ledger=JPY, flags=int(TransferFlags.POST_PENDING_TRANSFER | TransferFlags.LINKED))
    posted, _ = await d.ledger.create_transfers([post, linked])
    result = posted.result
    if result is R.OK or result is R.EXISTS:
        return HoldPosted(hold_id, posted.amount, replayed=result is R.EXISTS, linked_moved=True)
    if result is R.LINKED_EVENT_FAILED:  # the linked transfer was refused: post alone
        return None
    if result is R.PENDING_TRANSFER_ALREADY_POSTED:  # posted alone before: the caller moves its transfer itself
        records = await d.ledger.lookup_transfer_records([hold_id])
        return HoldPosted(hold_id, records[0].transfer.amount if records else 0, replayed=True)
    raise _post_refusal(result)


def _post_refusal(result: CreateTransferResult) -> Refused:
    if result is R.PENDING_TRANSFER_NOT_FOUND:
        return Refused("unknown_hold", "no hold was placed by this request")
    if result is R.EXCEEDS_PENDING_TRANSFER_AMOUNT:
        return Refused("invalid_amount", "more than the hold cannot be posted")
    if result is R.PENDING_TRANSFER_ALREADY_VOIDED:
        return Refused("hold_voided", "the hold was voided: nothing can be posted from it")
    if result is R.PENDING_TRANSFER_EXPIRED:
        return Refused("hold_expired", "the hold expired before it was confirmed: nothing was posted")
    return Refused(result.name.lower(), f"the ledger refused to post the hold: {result.name.lower()}")


async def void_hold(d: Deposits, request_id: int) -> Hold:
    """Release the hold placed by `request_id` (idempotent; an expired hold counts as released). On a 総合口座 the
    overdraft drawn for it is repaid from the freed funds."""
    hold = await _require(d, request_id)
    t = Transfer(id=derived_id(request_id, "hold-void"), pending_id=hold.hold_id, ledger=JPY,
                 flags=int(TransferFlags.VOID_PENDING_TRANSFER))
    [outcome] = await d.ledger.create_transfers([t])
    if outcome.result is R.PENDING_TRANSFER_ALREADY_POSTED:
        raise Refused("hold_posted", "the hold was already posted: it cannot be voided (reverse it instead)")
    released = (R.OK, R.EXISTS, R.PENDING_TRANSFER_ALREADY_VOIDED, R.PENDING_TRANSFER_EXPIRED)
    if outcome.result not in released:
        raise Refused(outcome.result.name.lower(), f"the ledger refused to void the hold: {outcome.result.name}")
    await repay_overdraft(d, derived_id(request_id, "hold-void"), hold.account_id)  # a no-op unless 総合口座
    return await _read(d, hold.hold_id, replayed=outcome.result is not R.OK)


async def _require(d: Deposits, request_id: int) -> Hold:
    hold = await hold_status(d, request_id)
    if hold is None:
        raise Refused("unknown_hold", "no hold was placed by this request")
    return hold


async def _read(d: Deposits, hold_id: int, *, replayed: bool) -> Hold:
    records = await d.ledger.lookup_transfer_records([hold_id])
    invariant(len(records) == 1, "a hold the ledger accepted can be read back")
    r = records[0]
    invariant(bool(r.transfer.flags & int(TransferFlags.PENDING)), "a hold is a pending transfer")
    return _hold(r.transfer, r.pending_status, r.expires_at, replayed=replayed)


def _hold(t: Transfer, status: PendingStatus, expires_at_ns: int, *, replayed: bool = False) -> Hold:
    return Hold(t.id, t.debit_account_id, t.amount, status, expires_at_ns, replayed)
