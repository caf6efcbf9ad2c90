"""The ledger: double-entry accounts and immutable transfers (TigerBeetle's model) on PostgreSQL.

Public surface for other contexts: the types, the result codes and the `Ledger` engine.
"""

from kanjo.ledger.engine import Ledger, LedgerBusy, LedgerUnavailable
from kanjo.ledger.model import (
    AMOUNT_MAX,
    Account,
    AccountBalance,
    AccountFlags,
    AccountOutcome,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
    TransferOutcome,
    TransferRecord,
)
from kanjo.ledger.store import read_accounts
from kanjo.ledger.verify import trial_balance, verify_ledger

__all__ = [
    "AMOUNT_MAX",
    "Account",
    "AccountBalance",
    "AccountFlags",
    "AccountOutcome",
    "CreateAccountResult",
    "CreateTransferResult",
    "Ledger",
    "LedgerBusy",
    "LedgerUnavailable",
    "PendingStatus",
    "Transfer",
    "TransferFlags",
    "TransferOutcome",
    "TransferRecord",
    "read_accounts",
    "trial_balance",
    "verify_ledger",
]
