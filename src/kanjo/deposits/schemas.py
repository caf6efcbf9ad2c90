"""HTTP shapes of the deposits context."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kanjo.deposits.limits import AMOUNT_PER_TRANSACTION_MAX
from kanjo.deposits.model import Balance, DepositAccount, Posting
from kanjo.deposits.service import StatementLine
from kanjo.platform.schemas import Id

Amount = Annotated[int, Field(strict=True, ge=1, le=AMOUNT_PER_TRANSACTION_MAX, description="yen")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAccountIn(_In):
    request_id: Id
    customer_id: Id
    branch_code: str = Field(pattern=r"^[0-9]{3}$", description="3-digit branch code, e.g. 001")


class CashIn(_In):
    request_id: Id
    amount: Amount


class TransferIn(_In):
    request_id: Id
    from_account_id: Id
    to_account_id: Id
    amount: Amount


class StatusIn(_In):
    request_id: Id
    reason: str = Field(min_length=1, max_length=200)


class AccountOut(BaseModel):
    id: str
    branch_code: str
    account_number: str
    label: str
    subject: str
    customer_id: str
    status: str
    opened_on: dt.date
    closed_on: dt.date | None
    last_activity_on: dt.date

    @classmethod
    def of(cls, a: DepositAccount) -> AccountOut:
        return cls(id=str(uuid.UUID(int=a.id)), branch_code=a.branch_code, account_number=f"{a.account_number:07d}",
                   label=a.label, subject=a.subject.value, customer_id=str(uuid.UUID(int=a.customer_id)),
                   status=a.status.value, opened_on=a.opened_on, closed_on=a.closed_on,  # type: ignore[arg-type]
                   last_activity_on=a.last_activity_on)  # type: ignore[arg-type]


class BalanceOut(BaseModel):
    balance: int
    held: int
    available: int

    @classmethod
    def of(cls, b: Balance) -> BalanceOut:
        return cls(balance=b.balance_minor, held=b.held_minor, available=b.available_minor)


class PostingOut(BaseModel):
    transfer_id: str
    amount: int
    timestamp: int
    replayed: bool

    @classmethod
    def of(cls, p: Posting) -> PostingOut:
        return cls(transfer_id=str(uuid.UUID(int=p.transfer_id)), amount=p.amount_minor, timestamp=p.timestamp,
                   replayed=p.replayed)


class StatementLineOut(BaseModel):
    timestamp: int
    business_date: dt.date
    description: str
    deposit: int
    withdrawal: int
    balance: int
    pending: bool

    @classmethod
    def of(cls, line: StatementLine) -> StatementLineOut:
        return cls(timestamp=line.timestamp, business_date=line.business_date, description=line.description,
                   deposit=line.deposit_minor, withdrawal=line.withdrawal_minor, balance=line.balance_minor,
                   pending=line.pending)


class StatementOut(BaseModel):
    lines: list[StatementLineOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the end")
