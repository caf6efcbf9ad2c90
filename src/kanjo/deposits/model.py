"""Demand deposits (普通預金, 総合口座, 当座預金): account numbers, the account state machine and what each state
allows, and what each subject (科目) has: interest, a passbook, an overdraft."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    ACTIVE = "active"
    DORMANT = "dormant"  # 休眠: silent too long; revived at a branch
    FROZEN = "frozen"  # 凍結: nothing moves until unfrozen
    CLOSED = "closed"  # 解約: final; the number is never reused


class Action(enum.StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    MARK_DORMANT = "mark_dormant"
    REVIVE = "revive"
    CLOSE = "close"


TRANSITIONS: dict[tuple[Action, Status], Status] = {
    (Action.FREEZE, Status.ACTIVE): Status.FROZEN,
    (Action.FREEZE, Status.DORMANT): Status.FROZEN,
    (Action.UNFREEZE, Status.FROZEN): Status.ACTIVE,
    (Action.MARK_DORMANT, Status.ACTIVE): Status.DORMANT,
    (Action.REVIVE, Status.DORMANT): Status.ACTIVE,
    (Action.CLOSE, Status.ACTIVE): Status.CLOSED,
    (Action.CLOSE, Status.DORMANT): Status.CLOSED,
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, status: Status) -> None:
        self.action = action
        self.status = status
        super().__init__(f"cannot {action.value.replace('_', ' ')} an account that is {status.value}")


class Refused(Exception):
    """A business rule refused a movement of money; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def transition(status: Status, action: Action) -> Status:
    target = TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition(action, status)
    return target


def check_can_move(status: Status, *, debit: bool) -> None:
    """Money moves only on active accounts; the refusal says why and what the customer can do."""
    if status is Status.ACTIVE:
        return
    if status is Status.FROZEN:
        raise Refused("account_frozen", "the account is frozen: no deposit, withdrawal or transfer until unfrozen")
    if status is Status.DORMANT:
        raise Refused("account_dormant", "the account is dormant: the customer can revive it at a branch")
    raise Refused("account_closed", "the account is closed")


class Subject(enum.StrEnum):
    ORDINARY = "ordinary"  # 普通預金
    SOGO = "sogo"  # 総合口座: an ordinary account with time deposits attached and an automatic overdraft
    CURRENT = "current"  # 当座預金: for payments (cheques, bills); no interest by law, a statement, no passbook


# 当座預金 bears no interest (臨時金利調整法 and the 告示 under it forbid paying interest on it) and is served by
# statements (当座勘定照合表), not a passbook; the other subjects have both.
PASSBOOK_SUBJECTS = frozenset({Subject.ORDINARY, Subject.SOGO})


def check_has_passbook(subject: Subject) -> None:
    """Passbook operations exist only for subjects that have a passbook; a current account is refused."""
    if subject not in PASSBOOK_SUBJECTS:
        raise Refused("no_passbook", f"a {subject.value} account (当座預金) has a statement (入出金明細), not a"
                      " passbook: there is nothing to print, carry forward, report lost or reissue")


# Ledger transfer codes of the deposits context.
CASH_DEPOSIT_CODE = 11  # 現金入金
CASH_WITHDRAWAL_CODE = 12  # 現金出金
TRANSFER_CODE = 13  # 振替
CLOSING_CODE = 14  # 解約
INTEREST_CODE = 15  # 決算利息: the net interest credited (its tax legs carry the same code; see interest.py)
OVERDRAFT_DRAW_CODE = 16  # 貸越: the overdraft account funds the customer's account
OVERDRAFT_REPAY_CODE = 17  # 貸越返済: the customer's account repays the overdraft
OVERDRAFT_INTEREST_CODE = 18  # 貸越利息: interest added to the overdraft (or collected at closing)
ATM_WITHDRAWAL_CODE = 19  # カード: cash out at an ATM (a hold, posted on the machine's confirmation)
ATM_DEPOSIT_CODE = 20  # カード入金: cash in at an ATM
CODE_LABELS = {CASH_DEPOSIT_CODE: "現金入金", CASH_WITHDRAWAL_CODE: "現金出金", TRANSFER_CODE: "振替",
               CLOSING_CODE: "解約", INTEREST_CODE: "決算利息", OVERDRAFT_DRAW_CODE: "貸越",
               OVERDRAFT_REPAY_CODE: "貸越返済",
               OVERDRAFT_INTEREST_CODE: "貸越利息", ATM_WITHDRAWAL_CODE: "カード", ATM_DEPOSIT_CODE: "カード入金"}

BRANCH_CODE_DIGITS = 3
ACCOUNT_NUMBER_DIGITS = 7


def account_label(branch_code: str, account_number: int) -> str:
    """As printed on a passbook: 001-1234567."""
    return f"{branch_code}-{account_number:0{ACCOUNT_NUMBER_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class DepositAccount:
    id: int  # also the ledger account's id
    branch_code: str
    account_number: int
    subject: Subject
    customer_id: int
    status: Status
    opened_on: object  # datetime.date
    closed_on: object | None
    last_activity_on: object

    @property
    def label(self) -> str:
        return account_label(self.branch_code, self.account_number)


@dataclass(frozen=True, slots=True)
class Balance:
    balance_minor: int  # posted credits less debits
    held_minor: int  # pending debits (ATM holds)
    available_minor: int  # what can be withdrawn now


@dataclass(frozen=True, slots=True)
class Posting:
    """The answer to a movement of money: the ledger transfer that carried it."""

    transfer_id: int
    amount_minor: int
    timestamp: int
    replayed: bool  # True when this answers a retry of a request already carried out
