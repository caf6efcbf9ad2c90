"""HTTP shapes of the deposits context."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kanjo.deposits.limits import AMOUNT_PER_TRANSACTION_MAX
from kanjo.deposits.model import Balance, DepositAccount, Posting, Subject
from kanjo.deposits.overdraft import OverdraftState
from kanjo.deposits.service import StatementLine
from kanjo.platform.schemas import Id

Amount = Annotated[int, Field(strict=True, ge=1, le=AMOUNT_PER_TRANSACTION_MAX, description="yen")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAccountIn(_In):
    request_id: Id
    customer_id: Id
    branch_code: str = Field(pattern=r"^[0-9]{3}$", description="3-digit branch code, e.g. 001")
    subject: Subject = Field(default=Subject.ORDINARY,
                             description="ordinary (普通預金), sogo (総合口座: with an automatic overdraft) or"
                                         " current (当座預金: no interest, no passbook)")


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
    next_after: int | None = Field(description="pass as `after` (with the same `from` and `to`) for the next page;"
                                               " null at the end")


class OverdraftOut(BaseModel):
    """A 総合口座's automatic overdraft (自動貸越), in yen."""

    account_id: str
    overdraft_account_id: str
    drawn: int = Field(description="lent now (貸越残高)")
    limit: int = Field(description="極度額: 90 % of the pledged time deposits, at most ¥2,000,000")
    collateral: int = Field(description="principal of the pledged time deposits")
    pledges: int = Field(description="time deposits pledged")
    available: int = Field(description="the account's own available balance")
    room: int = Field(description="what may still be drawn")
    accrued_interest: int = Field(description="interest accrued since the last charge, rounded down")
    accrued_through: dt.date
    interest_unpaid: int = Field(description="interest added to the overdraft and not yet repaid")

    @classmethod
    def of(cls, s: OverdraftState) -> OverdraftOut:
        return cls(account_id=str(uuid.UUID(int=s.account_id)),
                   overdraft_account_id=str(uuid.UUID(int=s.overdraft_account_id)), drawn=s.drawn_minor,
                   limit=s.limit_minor, collateral=s.collateral_minor, pledges=s.pledges, available=s.available_minor,
                   room=s.room_minor, accrued_interest=s.accrued_interest_minor, accrued_through=s.accrued_through,
                   interest_unpaid=s.interest_unpaid_minor)
