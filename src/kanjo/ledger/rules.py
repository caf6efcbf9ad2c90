"""The ledger's rules: apply a request's events to in-memory state, in order, chains as one. No I/O.

`Batch` holds what one engine batch may read (accounts, holds, known ids) and collects what it
writes (new rows, touched accounts, history). docs/ledger-semantics.md is the contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kanjo.ledger.model import (
    ACCOUNT_FLAGS_KNOWN,
    AMOUNT_MAX,
    ID_MAX,
    TIMESTAMP_NS_MAX,
    TRANSFER_FLAGS_KNOWN,
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
)

R = CreateTransferResult
A = CreateAccountResult

LINKED = int(TransferFlags.LINKED)
PENDING = int(TransferFlags.PENDING)
POST = int(TransferFlags.POST_PENDING_TRANSFER)
VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
BAL_DR = int(TransferFlags.BALANCING_DEBIT)
BAL_CR = int(TransferFlags.BALANCING_CREDIT)
CLOSE_DR = int(TransferFlags.CLOSING_DEBIT)
CLOSE_CR = int(TransferFlags.CLOSING_CREDIT)
RESOLVING = POST | VOID
BALANCING = BAL_DR | BAL_CR
CLOSING = CLOSE_DR | CLOSE_CR

DR_LIMIT = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
CR_LIMIT = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
HISTORY = int(AccountFlags.HISTORY)
CLOSED = int(AccountFlags.CLOSED)
NS_PER_S = 1_000_000_000
BURNS_FROM = int(R.DEBIT_ACCOUNT_NOT_FOUND)  # codes from here on depend on the state: they burn the id
# (the same rule as CreateTransferResult.burns_id, as a plain int comparison on the hot path)

E = TypeVar("E", Account, Transfer)


@dataclass(slots=True)
class Hold:
    """A transfer named as `pending_id`, with where its hold stands (NONE if it is not pending)."""

    transfer: Transfer
    status: PendingStatus
    expires_at: int  # ns; 0 = never


HistoryRow = tuple[int, int, int, int, int, int]
Resolution = tuple[int, int, int | None, int]  # pending_id, status, resolving transfer id, timestamp


class Batch:
    """One batch of events against loaded state. Chains roll back through an undo log."""

    def __init__(
        self,
        accounts: dict[int, Account],
        holds: dict[int, Hold],
        rejected: dict[int, tuple[Transfer, int]],
        known: dict[int, Transfer],
        business_date: dt.date,
    ) -> None:
        self.accounts = accounts  # every existing account the batch references (mutated in place)
        self.holds = holds  # every transfer named as pending_id, and the holds to expire
        self.rejected = rejected  # ids that failed before (read only)
        self.known = known  # committed transfers by id; the batch adds what it creates
        self.business_date = business_date
        self.new_accounts: dict[int, Account] = {}
        self.touched: set[int] = set()
        self.new_transfers: list[Transfer] = []
        self.new_expires: list[int | None] = []
        self.new_rejected: dict[int, tuple[Transfer, int]] = {}
        self.resolutions: list[Resolution] = []
        self.history: list[HistoryRow] = []
        self.unverified: list[int] = []  # ids answered as new but rolled back with their chain
        self._undo: list[tuple] = []  # every change to shared state, so a batch or a chain can roll back

    # -- requests ------------------------------------------------------------------------------

    def create_accounts(self, events: Sequence[Account], ts_first: int) -> list[A]:
        results = self._run_chains(events, ts_first, self._account, A.OK, A.EXISTS,
                                   A.LINKED_EVENT_FAILED, A.LINKED_EVENT_CHAIN_OPEN, None)
        return [r for r, _ in results]

    def create_transfers(self, events: Sequence[Transfer], ts_first: int) -> list[tuple[R, int]]:
        return self._run_chains(events, ts_first, self._transfer, R.OK, R.EXISTS,
                                R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN, self._reject)

    def expire(self, hold: Hold, ts: int) -> None:
        """Release a hold whose expiry time has passed (the sweep)."""
        p = hold.transfer
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        self._save(dr)
        self._save(cr)
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if p.flags & CLOSE_DR:
            dr.flags &= ~CLOSED
        if p.flags & CLOSE_CR:
            cr.flags &= ~CLOSED
        self._undo.append((1, hold, hold.status))
        hold.status = PendingStatus.EXPIRED
        self.resolutions.append((p.id, int(PendingStatus.EXPIRED), None, ts))
        self._touch(dr, ts)
        self._touch(cr, ts)

    # -- chains --------------------------------------------------------------------------------

    def _run_chains(self, events: Sequence[E], ts_first: int, one: Callable[[E, int], tuple],
                    ok: object, exists: object, failed: object, chain_open: object,
                    reject: Callable[[Any, Any, int], None] | None) -> list:
        n = len(events)
        results: list = [None] * n
        i = 0
        while i < n:
            j = i
            while j < n and events[j].flags & LINKED:
                j += 1
            if j == n:  # the request ends inside a chain
                for k in range(i, n - 1):
                    results[k] = (failed, 0)
                results[n - 1] = (chain_open, 0)
                break
            if j == i:
                outcome = one(events[i], ts_first + i)
                results[i] = outcome
                if reject is not None and outcome[0] >= BURNS_FROM:
                    reject(events[i], outcome[0], ts_first + i)
                i += 1
                continue
            marks = self._mark()
            failed_at = -1
            for k in range(i, j + 1):
                outcome = one(events[k], ts_first + k)
                results[k] = outcome
                if outcome[0] is failed:  # a remembered member of a failed chain: its cause may follow
                    if failed_at < 0:
                        failed_at = k
                elif outcome[0] is not ok and outcome[0] is not exists:
                    if failed_at < 0 or results[failed_at][0] is failed:
                        failed_at = k
                    break
            if failed_at >= 0:
                for k in range(i, failed_at):
                    if results[k][0] is ok:  # taken as new, never written: the id may yet exist
                        self.unverified.append(events[k].id)
                self._rollback_to(marks)
                code = results[failed_at][0]
                for k in range(i, j + 1):
                    if k != failed_at:
                        results[k] = (failed, 0)
                results[failed_at] = (code, 0)
                if reject is not None and code >= BURNS_FROM:
                    # The whole chain's answer depended on the state: remember every member, so a
                    # retry of the chain with the same ids gets this same answer again.
                    reject(events[failed_at], code, ts_first + failed_at)
                    for k in range(i, j + 1):
                        member = cast(Transfer, events[k])
                        if k != failed_at and member.id not in self.known and _stateless(member) is R.OK:
                            reject(member, failed, ts_first + k)
            i = j + 1
        return results

    def _mark(self) -> tuple[int, int, int, int]:
        return (len(self._undo), len(self.new_transfers), len(self.resolutions), len(self.history))

    def rollback(self) -> None:
        """Undo everything this batch did to the shared caches (its commit failed or must be redone)."""
        self._rollback_to((0, 0, 0, 0))
        self.new_rejected.clear()
        self.touched.clear()
        self.unverified.clear()

    def _rollback_to(self, marks: tuple[int, int, int, int]) -> None:
        undo_len, transfers_len, resolutions_len, history_len = marks
        undo = self._undo
        while len(undo) > undo_len:
            entry = undo.pop()
            kind = entry[0]
            if kind == 0:
                acct = entry[1]
                (acct.debits_pending, acct.debits_posted, acct.credits_pending,
                 acct.credits_posted, acct.flags) = entry[2:]
            elif kind == 1:
                entry[1].status = entry[2]
            elif kind == 2:
                del self.holds[entry[1]]
            elif kind == 3:
                del self.known[entry[1]]
            elif kind == 4:
                del self.accounts[entry[1]]
                del self.new_accounts[entry[1]]
        del self.new_transfers[transfers_len:]
        del self.new_expires[transfers_len:]
        del self.resolutions[resolutions_len:]
        del self.history[history_len:]

    def _save(self, acct: Account) -> None:
        self._undo.append((0, acct, acct.debits_pending, acct.debits_posted, acct.credits_pending,
                               acct.credits_posted, acct.flags))

    def _touch(self, acct: Account, ts: int) -> None:
        self.touched.add(acct.id)
        if acct.flags & HISTORY:
            self.history.append((acct.id, ts, acct.debits_pending, acct.debits_posted,
                                 acct.credits_pending, acct.credits_posted))

    # -- accounts ------------------------------------------------------------------------------

    def _account(self, a: Account, ts: int) -> tuple[A, int]:
        if a.id == 0:
            return A.ID_MUST_NOT_BE_ZERO, 0
        if a.id == ID_MAX:
            return A.ID_MUST_NOT_BE_INT_MAX, 0
        if a.flags & ~ACCOUNT_FLAGS_KNOWN:
            return A.RESERVED_FLAG, 0
        if a.flags & DR_LIMIT and a.flags & CR_LIMIT:
            return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE, 0
        if a.flags & CLOSED:
            return A.CLOSED_FLAG_NOT_ALLOWED, 0
        if a.ledger == 0:
            return A.LEDGER_MUST_NOT_BE_ZERO, 0
        if a.code == 0:
            return A.CODE_MUST_NOT_BE_ZERO, 0
        e = self.accounts.get(a.id)
        if e is not None:
            if a.flags != e.flags & ~CLOSED:
                return A.EXISTS_WITH_DIFFERENT_FLAGS, 0
            if a.user_data_128 != e.user_data_128:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_128, 0
            if a.user_data_64 != e.user_data_64:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_64, 0
            if a.user_data_32 != e.user_data_32:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_32, 0
            if a.ledger != e.ledger:
                return A.EXISTS_WITH_DIFFERENT_LEDGER, 0
            if a.code != e.code:
                return A.EXISTS_WITH_DIFFERENT_CODE, 0
            return A.EXISTS, e.timestamp
        created = Account(id=a.id, ledger=a.ledger, code=a.code, flags=int(a.flags),
                          user_data_128=a.user_data_128, user_data_64=a.user_data_64,
                          user_data_32=a.user_data_32, timestamp=ts)
        self.accounts[a.id] = created
        self.new_accounts[a.id] = created
        self._undo.append((4, a.id))
        return A.OK, ts

    # -- transfers -----------------------------------------------------------------------------

    def _transfer(self, t: Transfer, ts: int) -> tuple[R, int]:
        code = _stateless(t)
        if code is not R.OK:
            return code, 0
        failed_before = self.rejected.get(t.id) or self.new_rejected.get(t.id)
        if failed_before is not None:
            first, first_code = failed_before
            return (R(first_code) if _same_event(first, t) else R.ID_ALREADY_FAILED), 0
        e = self.known.get(t.id)
        if e is not None:
            code = _exists(t, e)
            return code, (e.amount if code is R.EXISTS else 0)
        if t.flags & RESOLVING:
            return self._resolve(t, ts)
        return self._create(t, ts)

    def _reject(self, t: Transfer, code: R, ts: int) -> None:
        if t.id in self.rejected or t.id in self.new_rejected:
            return  # a replay of a burned id: remembered already
        self.new_rejected[t.id] = (_copy(t, timestamp=ts, flags=int(t.flags)), int(code))

    def _create(self, t: Transfer, ts: int) -> tuple[R, int]:
        dr = self.accounts.get(t.debit_account_id)
        if dr is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND, 0
        cr = self.accounts.get(t.credit_account_id)
        if cr is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND, 0
        if dr.ledger != cr.ledger:
            return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER, 0
        if t.ledger != dr.ledger:
            return R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS, 0
        flags = t.flags
        pending = flags & PENDING
        expires_at = 0
        if pending and t.timeout:
            expires_at = ts + t.timeout * NS_PER_S
            if expires_at > TIMESTAMP_NS_MAX:
                return R.OVERFLOWS_TIMEOUT, 0
        if dr.flags & CLOSED:
            return R.DEBIT_ACCOUNT_ALREADY_CLOSED, 0
        if cr.flags & CLOSED:
            return R.CREDIT_ACCOUNT_ALREADY_CLOSED, 0
        amount = t.amount
        if flags & BALANCING:
            if flags & BAL_DR:
                amount = min(amount, max(0, dr.credits_posted - dr.debits_posted - dr.debits_pending))
            if flags & BAL_CR:
                amount = min(amount, max(0, cr.debits_posted - cr.credits_posted - cr.credits_pending))
        if pending:
            if dr.debits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_PENDING, 0
            if cr.credits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_PENDING, 0
        else:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_POSTED, 0
            if cr.credits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_POSTED, 0
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_DEBITS, 0
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_CREDITS, 0
        if dr.flags & DR_LIMIT and dr.debits_pending + dr.debits_posted + amount > dr.credits_posted:
            return R.EXCEEDS_CREDITS, 0
        if cr.flags & CR_LIMIT and cr.credits_pending + cr.credits_posted + amount > cr.debits_posted:
            return R.EXCEEDS_DEBITS, 0
        # effects
        self._save(dr)
        self._save(cr)
        if pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        if flags & CLOSE_DR:
            dr.flags |= CLOSED
        if flags & CLOSE_CR:
            cr.flags |= CLOSED
        created = Transfer(t.id, t.debit_account_id, t.credit_account_id, amount, t.ledger, t.code, int(flags),
                           0, t.timeout, t.user_data_128, t.user_data_64, t.user_data_32,
                           t.business_date or self.business_date, ts)
        self._record(created, expires_at if pending else None)
        if pending:
            self.holds[t.id] = Hold(created, PendingStatus.PENDING, expires_at)
            self._undo.append((2, t.id))
        self._touch(dr, ts)
        self._touch(cr, ts)
        return R.OK, amount

    def _resolve(self, t: Transfer, ts: int) -> tuple[R, int]:
        hold = self.holds.get(t.pending_id)
        if hold is None:
            if t.pending_id in self.known:  # created earlier in this batch, and not pending
                return R.PENDING_TRANSFER_NOT_PENDING, 0
            return R.PENDING_TRANSFER_NOT_FOUND, 0
        p = hold.transfer
        if not p.flags & PENDING:
            return R.PENDING_TRANSFER_NOT_PENDING, 0
        if t.debit_account_id and t.debit_account_id != p.debit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID, 0
        if t.credit_account_id and t.credit_account_id != p.credit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID, 0
        if t.ledger and t.ledger != p.ledger:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER, 0
        if t.code and t.code != p.code:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE, 0
        post = t.flags & POST
        if post:
            if t.amount > p.amount:
                return R.EXCEEDS_PENDING_TRANSFER_AMOUNT, 0
        elif t.amount and t.amount != p.amount:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, 0
        status = hold.status
        if status is PendingStatus.POSTED:
            return R.PENDING_TRANSFER_ALREADY_POSTED, 0
        if status is PendingStatus.VOIDED:
            return R.PENDING_TRANSFER_ALREADY_VOIDED, 0
        if status is PendingStatus.EXPIRED or (hold.expires_at and hold.expires_at <= ts):
            return R.PENDING_TRANSFER_EXPIRED, 0
        dr = self.accounts[p.debit_account_id]
        cr = self.accounts[p.credit_account_id]
        amount = (t.amount or p.amount) if post else p.amount
        if post:
            if dr.flags & CLOSED and not p.flags & CLOSE_DR:
                return R.DEBIT_ACCOUNT_ALREADY_CLOSED, 0
            if cr.flags & CLOSED and not p.flags & CLOSE_CR:
                return R.CREDIT_ACCOUNT_ALREADY_CLOSED, 0
            if dr.debits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_POSTED, 0
            if cr.credits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_POSTED, 0
        # effects
        self._save(dr)
        self._save(cr)
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if post:
            dr.debits_posted += amount
            cr.credits_posted += amount
        else:
            if p.flags & CLOSE_DR:
                dr.flags &= ~CLOSED
            if p.flags & CLOSE_CR:
                cr.flags &= ~CLOSED
        self._undo.append((1, hold, hold.status))
        hold.status = PendingStatus.POSTED if post else PendingStatus.VOIDED
        created = Transfer(
            id=t.id, debit_account_id=p.debit_account_id, credit_account_id=p.credit_account_id,
            amount=amount, ledger=p.ledger, code=p.code, flags=int(t.flags), pending_id=t.pending_id,
            timeout=0, user_data_128=t.user_data_128, user_data_64=t.user_data_64,
            user_data_32=t.user_data_32, business_date=t.business_date or self.business_date,
            timestamp=ts,
        )
        self._record(created, None)
        self.resolutions.append((p.id, int(hold.status), t.id, ts))
        self._touch(dr, ts)
        self._touch(cr, ts)
        return R.OK, amount

    def _record(self, created: Transfer, expires_at: int | None) -> None:
        self.known[created.id] = created
        self._undo.append((3, created.id))
        self.new_transfers.append(created)
        self.new_expires.append(expires_at or None)


def _stateless(t: Transfer) -> R:
    if t.id == 0:
        return R.ID_MUST_NOT_BE_ZERO
    if t.id == ID_MAX:
        return R.ID_MUST_NOT_BE_INT_MAX
    flags = t.flags
    if flags & ~TRANSFER_FLAGS_KNOWN:
        return R.RESERVED_FLAG
    resolving = flags & RESOLVING
    if resolving:
        if flags & PENDING or resolving == RESOLVING or flags & BALANCING or flags & CLOSING:
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if t.pending_id == 0:
            return R.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id == ID_MAX:
            return R.PENDING_ID_MUST_NOT_BE_INT_MAX
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        return R.OK
    if t.debit_account_id == 0:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if t.debit_account_id == ID_MAX:
        return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    if t.credit_account_id == 0:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    if t.credit_account_id == ID_MAX:
        return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    if t.debit_account_id == t.credit_account_id:
        return R.ACCOUNTS_MUST_BE_DIFFERENT
    if t.pending_id:
        return R.PENDING_ID_MUST_BE_ZERO
    if t.timeout and not flags & PENDING:
        return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    if flags & CLOSING and not flags & PENDING:
        return R.CLOSING_TRANSFER_MUST_BE_PENDING
    if t.amount == 0 and not flags & CLOSING:
        return R.AMOUNT_MUST_NOT_BE_ZERO
    if t.ledger == 0:
        return R.LEDGER_MUST_NOT_BE_ZERO
    if t.code == 0:
        return R.CODE_MUST_NOT_BE_ZERO
    return R.OK


def _exists(t: Transfer, e: Transfer) -> R:
    resolving = t.flags & RESOLVING
    if t.flags != e.flags:
        return R.EXISTS_WITH_DIFFERENT_FLAGS
    if t.pending_id != e.pending_id:
        return R.EXISTS_WITH_DIFFERENT_PENDING_ID
    if t.timeout != e.timeout:
        return R.EXISTS_WITH_DIFFERENT_TIMEOUT
    if t.debit_account_id != e.debit_account_id and not (resolving and t.debit_account_id == 0):
        return R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if t.credit_account_id != e.credit_account_id and not (resolving and t.credit_account_id == 0):
        return R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if t.flags & BALANCING:
        if t.amount < e.amount:
            return R.EXISTS_WITH_DIFFERENT_AMOUNT
    elif t.amount != e.amount and not (resolving and t.amount == 0):
        return R.EXISTS_WITH_DIFFERENT_AMOUNT
    if t.user_data_128 != e.user_data_128:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_128
    if t.user_data_64 != e.user_data_64:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_64
    if t.user_data_32 != e.user_data_32:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_32
    if t.ledger != e.ledger and not (resolving and t.ledger == 0):
        return R.EXISTS_WITH_DIFFERENT_LEDGER
    if t.code != e.code and not (resolving and t.code == 0):
        return R.EXISTS_WITH_DIFFERENT_CODE
    if t.business_date is not None and t.business_date != e.business_date:
        return R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE
    return R.EXISTS


def _same_event(a: Transfer, b: Transfer) -> bool:
    return (a.flags == b.flags and a.pending_id == b.pending_id and a.timeout == b.timeout
            and a.debit_account_id == b.debit_account_id and a.credit_account_id == b.credit_account_id
            and a.amount == b.amount and a.user_data_128 == b.user_data_128
            and a.user_data_64 == b.user_data_64 and a.user_data_32 == b.user_data_32
            and a.ledger == b.ledger and a.code == b.code and a.business_date == b.business_date)


def _copy(t: Transfer, **changes: object) -> Transfer:
    fields: dict[str, Any] = {
        "id": t.id, "debit_account_id": t.debit_account_id, "credit_account_id": t.credit_account_id,
        "amount": t.amount, "ledger": t.ledger, "code": t.code, "flags": t.flags,
        "pending_id": t.pending_id, "timeout": t.timeout, "user_data_128": t.user_data_128,
        "user_data_64": t.user_data_64, "user_data_32": t.user_data_32,
        "business_date": t.business_date, "timestamp": t.timestamp,
    }
    fields.update(changes)
    return Transfer(**fields)  # type: ignore[arg-type]
