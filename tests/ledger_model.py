"""Reference model of docs/ledger-semantics.md for the tests: plain, in memory, obviously correct.

Written from the semantics page alone, never from the engine (rules.py, engine.py), so that when
the stateful test finds the two disagreeing, one of them misread the page. Slow and simple on
purpose: dictionaries, copies for rollback, one check per line in the page's order.

Time: every event of one call happens at the `now_ns` the caller passes (the engine gives each
event its own timestamp, >= its clock and nanoseconds apart). A hold created at `now_ns` with
timeout T expires at `now_ns + T * 10**9`. Tests that compare the model with the engine must
therefore never sweep or post at an instant within a few microseconds of an expiry time (see
tests/integration/test_ledger_stateful.py: the clock moves in whole seconds plus 1 ms).

Decisions where the page is silent or ambiguous are marked `DECISION:`.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from kanjo.kernel import invariant
from kanjo.ledger.model import (
    ACCOUNT_FLAGS_KNOWN,
    AMOUNT_MAX,
    CODE_MAX,
    ID_MAX,
    LEDGER_MAX,
    TIMEOUT_S_MAX,
    TIMESTAMP_NS_MAX,
    TRANSFER_FLAGS_KNOWN,
    USER_DATA_32_MAX,
    USER_DATA_64_MAX,
    USER_DATA_128_MAX,
    Account,
    AccountFlags,
    AccountOutcome,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
    TransferOutcome,
)

TRANSFERS_PER_BATCH_MAX = 8_190  # the page: a request carries at most this many events
NS_PER_S = 1_000_000_000

A = CreateAccountResult
R = CreateTransferResult


class AF:
    """Account flags as plain ints: `~` on an IntFlag member silently drops unknown bits."""

    LINKED = int(AccountFlags.LINKED)
    DEBITS_MUST_NOT_EXCEED_CREDITS = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    CREDITS_MUST_NOT_EXCEED_DEBITS = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
    CLOSED = int(AccountFlags.CLOSED)


class TF:
    """Transfer flags as plain ints."""

    LINKED = int(TransferFlags.LINKED)
    PENDING = int(TransferFlags.PENDING)
    POST_PENDING_TRANSFER = int(TransferFlags.POST_PENDING_TRANSFER)
    VOID_PENDING_TRANSFER = int(TransferFlags.VOID_PENDING_TRANSFER)
    BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
    BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
    CLOSING_DEBIT = int(TransferFlags.CLOSING_DEBIT)
    CLOSING_CREDIT = int(TransferFlags.CLOSING_CREDIT)


RESOLVING = TF.POST_PENDING_TRANSFER | TF.VOID_PENDING_TRANSFER
BALANCING = TF.BALANCING_DEBIT | TF.BALANCING_CREDIT
CLOSING = TF.CLOSING_DEBIT | TF.CLOSING_CREDIT


class ModelError(ValueError):
    """The test fed the model something the page gives no result code for (a programmer error)."""


@dataclass
class _Record:
    """A committed transfer and, for a pending one, where its hold stands."""

    transfer: Transfer
    status: PendingStatus
    expires_at_ns: int  # 0 = never


_Event = TypeVar("_Event", Account, Transfer)
_Result = TypeVar("_Result", CreateAccountResult, CreateTransferResult)


def _has(flags: int, flag: int) -> bool:
    return flags & flag != 0


def _require_range(name: str, value: int, maximum: int) -> None:
    # DECISION: values outside the widths of model.py (negative, amount > 2^63-1, ...) have no
    # result code on the page; the model treats them as programmer errors and raises.
    if not 0 <= value <= maximum:
        raise ModelError(f"{name}={value} outside 0..{maximum}")


class LedgerModel:
    """The ledger contract, in memory. One instance is one empty ledger."""

    def __init__(self, business_date: dt.date) -> None:
        self.business_date = business_date
        self._accounts: dict[int, Account] = {}
        self._transfers: dict[int, _Record] = {}
        # id -> (the failed event as submitted, its state-dependent code)
        self._failed: dict[int, tuple[Transfer, CreateTransferResult]] = {}

    # ------------------------------------------------------------------ requests

    def create_accounts(self, events: list[Account], now_ns: int) -> list[AccountOutcome]:
        self.expire_due(now_ns)  # the sweep runs before every batch
        results = self._run_request(
            events,
            linked=AF.LINKED,
            create_one=self._create_account,
            succeeded=lambda r: r in (A.OK, A.EXISTS),
            failed=(A.LINKED_EVENT_FAILED, A.LINKED_EVENT_CHAIN_OPEN),
        )
        self._check_books()
        return [AccountOutcome(result) for result in results]

    def create_transfers(self, events: list[Transfer], now_ns: int) -> list[TransferOutcome]:
        self.expire_due(now_ns)  # the sweep runs before every batch
        results = self._run_request(
            events,
            linked=TF.LINKED,
            create_one=lambda event: self._create_transfer(event, now_ns),
            succeeded=lambda r: r.succeeded,
            failed=(R.LINKED_EVENT_FAILED, R.LINKED_EVENT_CHAIN_OPEN),
            burn_member=self._burn_chain_member,
        )
        self._check_books()
        outcomes = []
        for event, result in zip(events, results, strict=True):
            # DECISION: the outcome's amount is the stored transfer's amount (moved, held, posted
            # or released) for OK and EXISTS, and 0 for every failure.
            amount = self._transfers[event.id].transfer.amount if result.succeeded else 0
            outcomes.append(TransferOutcome(result, timestamp=0, amount=amount))
        return outcomes

    def expire_due(self, now_ns: int) -> None:
        """The sweep: release every hold whose expiry time is <= now_ns."""
        for record in self._transfers.values():
            if record.status is PendingStatus.PENDING and 0 < record.expires_at_ns <= now_ns:
                self._release_hold(record, PendingStatus.EXPIRED)
        self._check_books()

    def lookup_accounts(self, ids: Iterable[int]) -> list[Account]:
        return [replace(self._accounts[i]) for i in ids if i in self._accounts]

    def lookup_transfers(self, ids: Iterable[int]) -> list[Transfer]:
        return [replace(self._transfers[i].transfer) for i in ids if i in self._transfers]

    def pending_status(self, transfer_id: int) -> PendingStatus | None:
        """Where a committed transfer's hold stands (NONE if not pending); None if unknown."""
        record = self._transfers.get(transfer_id)
        return None if record is None else record.status

    # ------------------------------------------------------------------ chains

    def _run_request(
        self,
        events: list[_Event],
        *,
        linked: int,
        create_one: Callable[[_Event], _Result],
        succeeded: Callable[[_Result], bool],
        failed: tuple[_Result, _Result],
        burn_member: Callable[[_Event], None] | None = None,
    ) -> list[_Result]:
        if len(events) > TRANSFERS_PER_BATCH_MAX:
            raise ModelError(f"{len(events)} events exceed transfers_per_batch_max")
        linked_event_failed, linked_event_chain_open = failed
        results: list[_Result | None] = [None] * len(events)
        start = 0
        while start < len(events):
            end = start  # the chain is events[start..end]
            while end < len(events) - 1 and _has(events[end].flags, linked):
                end += 1
            if _has(events[end].flags, linked):
                # DECISION: an open chain is refused as a whole before any of it is evaluated:
                # its last event gets chain_open, every other one linked_event_failed, even an
                # event that would have failed on its own, and nothing is burned.
                for i in range(start, end):
                    results[i] = linked_event_failed
                results[end] = linked_event_chain_open
                break
            saved = self._save()
            fail_at: int | None = None
            for i in range(start, end + 1):
                result = create_one(events[i])
                results[i] = result
                if succeeded(result):
                    continue
                if result == linked_event_failed:
                    # a remembered member of an earlier failed chain: that chain's cause may follow
                    if fail_at is None:
                        fail_at = i
                    continue
                if fail_at is None or results[fail_at] == linked_event_failed:
                    fail_at = i
                break  # the rest of the chain is not evaluated
            if fail_at is not None:
                # Nothing of the chain takes effect. The failing event's burned id (state-dependent
                # code) is kept: burning records the answer, it is not an effect on the books; and
                # then every other valid member is remembered as linked_event_failed too, so a retry
                # of the whole chain answers as the first time (docs/ledger-semantics.md).
                self._restore(saved)
                for j in range(start, end + 1):
                    if j != fail_at:
                        results[j] = linked_event_failed
                cause = results[fail_at]
                if burn_member is not None and getattr(cause, "burns_id", False):
                    for j in range(start, end + 1):
                        if j != fail_at:
                            burn_member(events[j])
            start = end + 1
        return [r for r in results if r is not None]

    def _save(self) -> tuple[dict[int, Account], dict[int, _Record]]:
        return copy.deepcopy(self._accounts), copy.deepcopy(self._transfers)

    def _restore(self, saved: tuple[dict[int, Account], dict[int, _Record]]) -> None:
        self._accounts, self._transfers = copy.deepcopy(saved)

    # ------------------------------------------------------------------ accounts

    def _create_account(self, event: Account) -> CreateAccountResult:
        _require_range("id", event.id, ID_MAX)
        _require_range("ledger", event.ledger, LEDGER_MAX)
        _require_range("code", event.code, CODE_MAX)
        _require_range("user_data_128", event.user_data_128, USER_DATA_128_MAX)
        _require_range("user_data_64", event.user_data_64, USER_DATA_64_MAX)
        _require_range("user_data_32", event.user_data_32, USER_DATA_32_MAX)
        if event.flags < 0:
            raise ModelError(f"flags={event.flags} negative")
        if event.id == 0:
            return A.ID_MUST_NOT_BE_ZERO
        if event.id == ID_MAX:
            return A.ID_MUST_NOT_BE_INT_MAX
        if event.flags & ~ACCOUNT_FLAGS_KNOWN:
            return A.RESERVED_FLAG
        limits = AF.DEBITS_MUST_NOT_EXCEED_CREDITS | AF.CREDITS_MUST_NOT_EXCEED_DEBITS
        if event.flags & limits == limits:
            return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if _has(event.flags, AF.CLOSED):
            return A.CLOSED_FLAG_NOT_ALLOWED
        if event.ledger == 0:
            return A.LEDGER_MUST_NOT_BE_ZERO
        if event.code == 0:
            return A.CODE_MUST_NOT_BE_ZERO
        existing = self._accounts.get(event.id)
        if existing is not None:
            # DECISION: `linked` is stored with the account and takes part in this comparison;
            # only `closed` is ignored, as the page says.
            if existing.flags & ~AF.CLOSED != event.flags:
                return A.EXISTS_WITH_DIFFERENT_FLAGS
            if existing.user_data_128 != event.user_data_128:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_128
            if existing.user_data_64 != event.user_data_64:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_64
            if existing.user_data_32 != event.user_data_32:
                return A.EXISTS_WITH_DIFFERENT_USER_DATA_32
            if existing.ledger != event.ledger:
                return A.EXISTS_WITH_DIFFERENT_LEDGER
            if existing.code != event.code:
                return A.EXISTS_WITH_DIFFERENT_CODE
            return A.EXISTS
        # DECISION: balances and timestamp given by the caller are ignored (the page has no
        # result code for them): the account is created with zero balances.
        self._accounts[event.id] = Account(
            id=event.id,
            ledger=event.ledger,
            code=event.code,
            flags=int(event.flags),
            user_data_128=event.user_data_128,
            user_data_64=event.user_data_64,
            user_data_32=event.user_data_32,
        )
        return A.OK

    # ------------------------------------------------------------------ transfers

    def _burn_chain_member(self, event: _Event) -> None:
        assert isinstance(event, Transfer)
        if _stateless_transfer_result(event) is not None:
            return  # invalid on its own: it would fail the same way again, nothing to remember
        if event.id in self._transfers or event.id in self._failed:
            return
        self._failed[event.id] = (replace(event, flags=int(event.flags), timestamp=0), R.LINKED_EVENT_FAILED)

    def _create_transfer(self, event: Transfer, now_ns: int) -> CreateTransferResult:
        _require_transfer_ranges(event)
        result = _stateless_transfer_result(event)
        if result is not None:
            return result
        # DECISION: a failed event's replay compares the fields as submitted, an unset business
        # date included: an identical retry gets the identical answer even across a change of
        # business date, and a retry that now spells the date out is a different event.
        submitted = replace(event, flags=int(event.flags), timestamp=0)
        if event.id in self._failed:
            failed_event, failed_result = self._failed[event.id]
            return failed_result if submitted == failed_event else R.ID_ALREADY_FAILED
        if event.id in self._transfers:
            return _replay_result(event, self._transfers[event.id].transfer)
        filled = replace(submitted)
        if filled.business_date is None:
            filled.business_date = self.business_date
        if _has(event.flags, RESOLVING):
            result = self._resolve_pending(filled, now_ns)
        else:
            result = self._create_plain_or_pending(filled, now_ns)
        if result.burns_id:
            self._failed[event.id] = (submitted, result)
        return result

    def _create_plain_or_pending(self, t: Transfer, now_ns: int) -> CreateTransferResult:
        dr = self._accounts.get(t.debit_account_id)
        cr = self._accounts.get(t.credit_account_id)
        if dr is None:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        if cr is None:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if dr.ledger != cr.ledger:
            return R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if t.ledger != dr.ledger:
            return R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
        pending = _has(t.flags, TF.PENDING)
        if pending and now_ns + t.timeout * NS_PER_S > TIMESTAMP_NS_MAX:
            return R.OVERFLOWS_TIMEOUT
        if _has(dr.flags, AF.CLOSED):
            return R.DEBIT_ACCOUNT_ALREADY_CLOSED
        if _has(cr.flags, AF.CLOSED):
            return R.CREDIT_ACCOUNT_ALREADY_CLOSED
        amount = t.amount
        if _has(t.flags, TF.BALANCING_DEBIT):
            amount = min(amount, max(0, dr.credits_posted - dr.debits_posted - dr.debits_pending))
        if _has(t.flags, TF.BALANCING_CREDIT):
            amount = min(amount, max(0, cr.debits_posted - cr.credits_posted - cr.credits_pending))
        if pending:
            if dr.debits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_PENDING
            if cr.credits_pending + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_PENDING
        else:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_POSTED
            if cr.credits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_POSTED
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_DEBITS
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return R.OVERFLOWS_CREDITS
        if (
            _has(dr.flags, AF.DEBITS_MUST_NOT_EXCEED_CREDITS)
            and dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        ):
            return R.EXCEEDS_CREDITS
        if (
            _has(cr.flags, AF.CREDITS_MUST_NOT_EXCEED_DEBITS)
            and cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        ):
            return R.EXCEEDS_DEBITS
        if pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
            expires_at_ns = now_ns + t.timeout * NS_PER_S if t.timeout else 0
            record = _Record(replace(t, amount=amount), PendingStatus.PENDING, expires_at_ns)
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
            record = _Record(replace(t, amount=amount), PendingStatus.NONE, 0)
        if _has(t.flags, TF.CLOSING_DEBIT):
            dr.flags |= AF.CLOSED
        if _has(t.flags, TF.CLOSING_CREDIT):
            cr.flags |= AF.CLOSED
        self._transfers[t.id] = record
        return R.OK

    def _resolve_pending(self, t: Transfer, now_ns: int) -> CreateTransferResult:
        record = self._transfers.get(t.pending_id)
        if record is None:
            return R.PENDING_TRANSFER_NOT_FOUND
        p = record.transfer
        if not _has(p.flags, TF.PENDING):
            return R.PENDING_TRANSFER_NOT_PENDING
        if t.debit_account_id != 0 and t.debit_account_id != p.debit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if t.credit_account_id != 0 and t.credit_account_id != p.credit_account_id:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if t.ledger != 0 and t.ledger != p.ledger:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if t.code != 0 and t.code != p.code:
            return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        post = _has(t.flags, TF.POST_PENDING_TRANSFER)
        if post and t.amount > p.amount:
            return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
        if not post and t.amount not in (0, p.amount):
            return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
        if record.status is PendingStatus.POSTED:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if record.status is PendingStatus.VOIDED:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if record.status is PendingStatus.EXPIRED or 0 < record.expires_at_ns <= now_ns:
            return R.PENDING_TRANSFER_EXPIRED
        dr = self._accounts[p.debit_account_id]
        cr = self._accounts[p.credit_account_id]
        amount = (t.amount or p.amount) if post else p.amount
        if post:
            if _has(dr.flags, AF.CLOSED) and not _has(p.flags, TF.CLOSING_DEBIT):
                return R.DEBIT_ACCOUNT_ALREADY_CLOSED
            if _has(cr.flags, AF.CLOSED) and not _has(p.flags, TF.CLOSING_CREDIT):
                return R.CREDIT_ACCOUNT_ALREADY_CLOSED
            if dr.debits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_DEBITS_POSTED
            if cr.credits_posted + amount > AMOUNT_MAX:
                return R.OVERFLOWS_CREDITS_POSTED
        self._release_hold(record, PendingStatus.POSTED if post else PendingStatus.VOIDED)
        if post:
            dr.debits_posted += amount
            cr.credits_posted += amount
        stored = replace(
            t,
            debit_account_id=p.debit_account_id,
            credit_account_id=p.credit_account_id,
            ledger=p.ledger,
            code=p.code,
            amount=amount,
        )
        self._transfers[t.id] = _Record(stored, PendingStatus.NONE, 0)
        return R.OK

    def _release_hold(self, record: _Record, status: PendingStatus) -> None:
        """End a hold: pending balances shrink by its amount; a closing hold not posted reopens."""
        invariant(record.status is PendingStatus.PENDING, f"hold {record.transfer.id} is not pending")
        p = record.transfer
        dr = self._accounts[p.debit_account_id]
        cr = self._accounts[p.credit_account_id]
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        record.status = status
        if status is not PendingStatus.POSTED:
            if _has(p.flags, TF.CLOSING_DEBIT):
                dr.flags &= ~AF.CLOSED
            if _has(p.flags, TF.CLOSING_CREDIT):
                cr.flags &= ~AF.CLOSED

    # ------------------------------------------------------------------ self-check

    def _check_books(self) -> None:
        """The page's invariants, on the model itself: a broken model must not judge the engine."""
        sums: dict[int, list[int]] = {}
        for account in self._accounts.values():
            balances = (
                account.debits_pending,
                account.debits_posted,
                account.credits_pending,
                account.credits_posted,
            )
            invariant(all(0 <= b <= AMOUNT_MAX for b in balances), f"balance out of range: {account}")
            if _has(account.flags, AF.DEBITS_MUST_NOT_EXCEED_CREDITS):
                debits = account.debits_pending + account.debits_posted
                invariant(debits <= account.credits_posted, f"debits exceed credits: {account}")
            if _has(account.flags, AF.CREDITS_MUST_NOT_EXCEED_DEBITS):
                credits = account.credits_pending + account.credits_posted
                invariant(credits <= account.debits_posted, f"credits exceed debits: {account}")
            total = sums.setdefault(account.ledger, [0, 0, 0, 0])
            for i, b in enumerate(balances):
                total[i] += b
        for dp, dpo, cp, cpo in sums.values():
            invariant(dp == cp and dpo == cpo, f"a ledger does not balance: {sums}")


def _require_transfer_ranges(t: Transfer) -> None:
    for name, value in (
        ("id", t.id),
        ("debit_account_id", t.debit_account_id),
        ("credit_account_id", t.credit_account_id),
        ("pending_id", t.pending_id),
    ):
        _require_range(name, value, ID_MAX)
    _require_range("amount", t.amount, AMOUNT_MAX)
    _require_range("ledger", t.ledger, LEDGER_MAX)
    _require_range("code", t.code, CODE_MAX)
    _require_range("timeout", t.timeout, TIMEOUT_S_MAX)
    _require_range("user_data_128", t.user_data_128, USER_DATA_128_MAX)
    _require_range("user_data_64", t.user_data_64, USER_DATA_64_MAX)
    _require_range("user_data_32", t.user_data_32, USER_DATA_32_MAX)
    if t.flags < 0:
        raise ModelError(f"flags={t.flags} negative")


def _stateless_transfer_result(t: Transfer) -> CreateTransferResult | None:
    """Section 1 of the page: checks of the event alone. None when it passes them all."""
    if t.id == 0:
        return R.ID_MUST_NOT_BE_ZERO
    if t.id == ID_MAX:
        return R.ID_MUST_NOT_BE_INT_MAX
    if t.flags & ~TRANSFER_FLAGS_KNOWN:
        return R.RESERVED_FLAG
    flags = t.flags
    post = _has(flags, TF.POST_PENDING_TRANSFER)
    void = _has(flags, TF.VOID_PENDING_TRANSFER)
    if (
        (_has(flags, TF.PENDING) and (post or void))
        or (post and void)
        or (_has(flags, BALANCING) and (post or void))
        or (_has(flags, CLOSING) and (post or void))
    ):
        return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if post or void:
        if t.pending_id == 0:
            return R.PENDING_ID_MUST_NOT_BE_ZERO
        if t.pending_id == ID_MAX:
            return R.PENDING_ID_MUST_NOT_BE_INT_MAX
        if t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout != 0:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        return None
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
    if t.pending_id != 0:
        return R.PENDING_ID_MUST_BE_ZERO
    if t.timeout != 0 and not _has(flags, TF.PENDING):
        return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    if _has(flags, CLOSING) and not _has(flags, TF.PENDING):
        return R.CLOSING_TRANSFER_MUST_BE_PENDING
    if t.amount == 0 and not _has(flags, CLOSING):
        return R.AMOUNT_MUST_NOT_BE_ZERO
    if t.ledger == 0:
        return R.LEDGER_MUST_NOT_BE_ZERO
    if t.code == 0:
        return R.CODE_MUST_NOT_BE_ZERO
    return None


def _replay_result(e: Transfer, s: Transfer) -> CreateTransferResult:
    """Section 2, item 7: an event whose id names the committed transfer `s`."""
    resolving = _has(e.flags, RESOLVING)
    if e.flags != s.flags:
        return R.EXISTS_WITH_DIFFERENT_FLAGS
    if e.pending_id != s.pending_id:
        return R.EXISTS_WITH_DIFFERENT_PENDING_ID
    if e.timeout != s.timeout:
        return R.EXISTS_WITH_DIFFERENT_TIMEOUT
    if not (resolving and e.debit_account_id == 0) and e.debit_account_id != s.debit_account_id:
        return R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    if not (resolving and e.credit_account_id == 0) and e.credit_account_id != s.credit_account_id:
        return R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    # DECISION: "a post's amount" may be left 0 — so may a void's (0 = the whole hold, which is
    # what a void stores), so a resolving event's amount 0 matches anything.
    if resolving and e.amount == 0:
        pass
    elif _has(s.flags, BALANCING):
        if e.amount < s.amount:
            return R.EXISTS_WITH_DIFFERENT_AMOUNT
    elif e.amount != s.amount:
        return R.EXISTS_WITH_DIFFERENT_AMOUNT
    if e.user_data_128 != s.user_data_128:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_128
    if e.user_data_64 != s.user_data_64:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_64
    if e.user_data_32 != s.user_data_32:
        return R.EXISTS_WITH_DIFFERENT_USER_DATA_32
    if not (resolving and e.ledger == 0) and e.ledger != s.ledger:
        return R.EXISTS_WITH_DIFFERENT_LEDGER
    if not (resolving and e.code == 0) and e.code != s.code:
        return R.EXISTS_WITH_DIFFERENT_CODE
    if e.business_date is not None and e.business_date != s.business_date:
        return R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE
    return R.EXISTS
