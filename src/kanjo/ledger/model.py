"""The ledger's domain vocabulary: accounts, transfers, their flags and the ordered result codes.

Pure standard library. TigerBeetle's data model, adapted to PostgreSQL column widths:
128-bit ids, 63-bit amounts and balances (PostgreSQL bigint), amounts in integer minor units.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NamedTuple

ID_MAX = (1 << 128) - 1  # reserved, like 0
AMOUNT_MAX = (1 << 63) - 1  # PostgreSQL bigint: the widest amount or balance kanjo stores
USER_DATA_128_MAX = (1 << 128) - 1
USER_DATA_64_MAX = (1 << 63) - 1
USER_DATA_32_MAX = (1 << 32) - 1
LEDGER_MAX = (1 << 32) - 1
CODE_MAX = (1 << 16) - 1
TIMEOUT_S_MAX = (1 << 32) - 1
TIMESTAMP_NS_MAX = (1 << 63) - 1


class AccountFlags(IntFlag):
    NONE = 0
    LINKED = 1 << 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 2
    HISTORY = 1 << 3
    CLOSED = 1 << 4  # set and cleared only by closing transfers, never at creation


ACCOUNT_FLAGS_KNOWN = int(
    AccountFlags.LINKED
    | AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    | AccountFlags.HISTORY
    | AccountFlags.CLOSED
)


class TransferFlags(IntFlag):
    NONE = 0
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3
    BALANCING_DEBIT = 1 << 4
    BALANCING_CREDIT = 1 << 5
    CLOSING_DEBIT = 1 << 6
    CLOSING_CREDIT = 1 << 7


TRANSFER_FLAGS_KNOWN = (1 << 8) - 1


class CreateAccountResult(IntEnum):
    """Outcome of one account event. Ordered: the first failing check wins."""

    OK = 0
    LINKED_EVENT_FAILED = 1
    LINKED_EVENT_CHAIN_OPEN = 2
    ID_MUST_NOT_BE_ZERO = 3
    ID_MUST_NOT_BE_INT_MAX = 4
    RESERVED_FLAG = 5
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 6
    CLOSED_FLAG_NOT_ALLOWED = 7
    LEDGER_MUST_NOT_BE_ZERO = 8
    CODE_MUST_NOT_BE_ZERO = 9
    EXISTS_WITH_DIFFERENT_FLAGS = 20
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = 21
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = 22
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = 23
    EXISTS_WITH_DIFFERENT_LEDGER = 24
    EXISTS_WITH_DIFFERENT_CODE = 25
    EXISTS = 26


class CreateTransferResult(IntEnum):
    """Outcome of one transfer event. Ordered: the first failing check wins.

    Checks run in this order: chain, stateless validation (10-39), replay of a known id (40-59),
    then checks against the current state of accounts and holds (60-). Only state-dependent
    failures (60-) burn the id: a retry of such an id answers the first outcome again.
    """

    OK = 0
    LINKED_EVENT_FAILED = 1
    LINKED_EVENT_CHAIN_OPEN = 2
    # stateless validation
    ID_MUST_NOT_BE_ZERO = 10
    ID_MUST_NOT_BE_INT_MAX = 11
    RESERVED_FLAG = 12
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 13
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 14
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 15
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 16
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 17
    ACCOUNTS_MUST_BE_DIFFERENT = 18
    PENDING_ID_MUST_BE_ZERO = 19
    PENDING_ID_MUST_NOT_BE_ZERO = 20
    PENDING_ID_MUST_NOT_BE_INT_MAX = 21
    PENDING_ID_MUST_BE_DIFFERENT = 22
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = 23
    CLOSING_TRANSFER_MUST_BE_PENDING = 24
    AMOUNT_MUST_NOT_BE_ZERO = 25
    LEDGER_MUST_NOT_BE_ZERO = 26
    CODE_MUST_NOT_BE_ZERO = 27
    # replay of a known id
    ID_ALREADY_FAILED = 40
    EXISTS_WITH_DIFFERENT_FLAGS = 41
    EXISTS_WITH_DIFFERENT_PENDING_ID = 42
    EXISTS_WITH_DIFFERENT_TIMEOUT = 43
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = 44
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = 45
    EXISTS_WITH_DIFFERENT_AMOUNT = 46
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = 47
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = 48
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = 49
    EXISTS_WITH_DIFFERENT_LEDGER = 50
    EXISTS_WITH_DIFFERENT_CODE = 51
    EXISTS_WITH_DIFFERENT_BUSINESS_DATE = 52
    EXISTS = 53
    # against the current state
    DEBIT_ACCOUNT_NOT_FOUND = 60
    CREDIT_ACCOUNT_NOT_FOUND = 61
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = 62
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = 63
    PENDING_TRANSFER_NOT_FOUND = 64
    PENDING_TRANSFER_NOT_PENDING = 65
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = 66
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = 67
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = 68
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = 69
    EXCEEDS_PENDING_TRANSFER_AMOUNT = 70
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = 71
    PENDING_TRANSFER_ALREADY_POSTED = 72
    PENDING_TRANSFER_ALREADY_VOIDED = 73
    PENDING_TRANSFER_EXPIRED = 74
    OVERFLOWS_TIMEOUT = 75
    DEBIT_ACCOUNT_ALREADY_CLOSED = 76
    CREDIT_ACCOUNT_ALREADY_CLOSED = 77
    OVERFLOWS_DEBITS_PENDING = 78
    OVERFLOWS_CREDITS_PENDING = 79
    OVERFLOWS_DEBITS_POSTED = 80
    OVERFLOWS_CREDITS_POSTED = 81
    OVERFLOWS_DEBITS = 82
    OVERFLOWS_CREDITS = 83
    EXCEEDS_CREDITS = 84
    EXCEEDS_DEBITS = 85

    @property
    def succeeded(self) -> bool:
        """True for OK and for EXISTS (an identical replay of a committed transfer)."""
        return self in (CreateTransferResult.OK, CreateTransferResult.EXISTS)

    @property
    def burns_id(self) -> bool:
        """State-dependent failures are remembered, so a retry gets the first outcome."""
        return self >= CreateTransferResult.DEBIT_ACCOUNT_NOT_FOUND


class PendingStatus(IntEnum):
    """Where a two-phase hold stands. NONE: the transfer is not pending."""

    NONE = 0
    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4


@dataclass(slots=True)
class Account:
    """An account as the caller creates it and as lookups return it (balances are set by the ledger)."""

    id: int
    ledger: int
    code: int
    flags: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    timestamp: int = 0  # assigned by the ledger (ns, unique, increasing)

    def balance_debit_minor(self) -> int:
        """Posted debits less credits: positive for an asset (cash, loans) in good standing."""
        return self.debits_posted - self.credits_posted

    def balance_credit_minor(self) -> int:
        """Posted credits less debits: positive for a liability (a customer's deposit)."""
        return self.credits_posted - self.debits_posted


@dataclass(slots=True)
class Transfer:
    """A movement of money from a debit account to a credit account. Immutable once created."""

    id: int
    debit_account_id: int = 0
    credit_account_id: int = 0
    amount: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    pending_id: int = 0
    timeout: int = 0  # seconds a pending transfer holds before it expires; 0 = never
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    business_date: dt.date | None = None  # None: the ledger's current business date
    timestamp: int = 0  # assigned by the ledger (ns, unique, increasing)


class TransferOutcome(NamedTuple):
    """What the ledger answered for one transfer event (a tuple: cheap to build by the thousand)."""

    result: CreateTransferResult
    timestamp: int = 0  # of the committed transfer (for EXISTS, the original one)
    amount: int = 0  # the amount actually moved (balancing and post-pending may differ from the request)


class AccountOutcome(NamedTuple):
    result: CreateAccountResult
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """An account's balances just after the event at `timestamp` (kept for accounts with HISTORY)."""

    account_id: int
    timestamp: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A committed transfer plus what happened to it since (for pending transfers)."""

    transfer: Transfer
    pending_status: PendingStatus
    expires_at: int = 0  # ns; 0 = never
