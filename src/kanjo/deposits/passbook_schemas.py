"""HTTP shapes of passbooks (通帳): the passbook's state, its unposted lines, prints, renewals."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from kanjo.deposits.passbook import Passbook, PassbookLine, PassbookView, PrintResult
from kanjo.platform.schemas import Id


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrintIn(_In):
    request_id: Id = Field(description="the same id on every retry: a retried print answers the same lines")


class CarryForwardIn(_In):
    request_id: Id


class ReasonIn(_In):
    request_id: Id
    reason: str = Field(min_length=1, max_length=200, description="e.g. 紛失 (lost), 汚損 (damaged)")


class PassbookLineOut(BaseModel):
    kind: str = Field(description="movement, consolidated (合算記帳: おまとめ) or carried_forward (繰越)")
    business_date: dt.date
    description: str = Field(description="摘要")
    withdrawal: int = Field(description="お支払金額 (yen)")
    deposit: int = Field(description="お預り金額 (yen)")
    balance: int = Field(description="差引残高 (yen)")
    items: int = Field(description="movements the line stands for (several for おまとめ)")
    page: int | None = Field(description="where it printed; null while unposted")
    line: int | None

    @classmethod
    def of(cls, x: PassbookLine) -> PassbookLineOut:
        return cls(kind=x.kind.value, business_date=x.business_date, description=x.description,
                   withdrawal=x.withdrawal_minor, deposit=x.deposit_minor, balance=x.balance_minor, items=x.items,
                   page=x.page or None, line=x.line or None)


class PassbookOut(BaseModel):
    id: str
    account_id: str
    number: int = Field(description="issue sequence: 1, then +1 at each 繰越 or 再発行")
    status: str = Field(description="active, full (満冊), lost, carried_forward or replaced")
    issue_kind: str
    issued_on: dt.date
    page: int = Field(description="the printed position: the page of the last line used")
    line: int = Field(description="the last line used on that page (0: none yet)")
    lines_left: int
    printed_timestamp: int = Field(description="ledger timestamp of the last movement printed (0: none yet)")
    printed_balance: int = Field(description="the balance on the last line printed (yen)")
    retired_on: dt.date | None

    @classmethod
    def of(cls, b: Passbook) -> PassbookOut:
        return cls(id=str(uuid.UUID(int=b.id)), account_id=str(uuid.UUID(int=b.account_id)), number=b.number,
                   status=b.status.value, issue_kind=b.issue_kind.value, issued_on=b.issued_on, page=b.position.page,
                   line=b.position.line, lines_left=b.lines_left, printed_timestamp=b.printed_timestamp,
                   printed_balance=b.printed_balance_minor,
                   retired_on=b.retired_on)


class PassbookViewOut(BaseModel):
    passbook: PassbookOut
    unposted_items: int = Field(description="未記帳: movements not printed yet")
    unposted_lines: list[PassbookLineOut] = Field(description="as they would print now")

    @classmethod
    def of(cls, v: PassbookView) -> PassbookViewOut:
        return cls(passbook=PassbookOut.of(v.passbook), unposted_items=v.unposted.items,
                   unposted_lines=[PassbookLineOut.of(x) for x in v.unposted.lines])


class PrintOut(BaseModel):
    passbook_id: str
    passbook_number: int
    lines: list[PassbookLineOut]
    items_left: int = Field(description="movements still unposted because the passbook filled up")
    page_turns: int
    passbook_full: bool = Field(description="満冊: carry forward (繰越) to print the rest")
    replayed: bool = Field(description="true when this answers a retry of a print already done")

    @classmethod
    def of(cls, r: PrintResult) -> PrintOut:
        return cls(passbook_id=str(uuid.UUID(int=r.passbook_id)), passbook_number=r.passbook_number,
                   lines=[PassbookLineOut.of(x) for x in r.lines], items_left=r.items_left,
                   page_turns=r.page_turns, passbook_full=r.passbook_full, replayed=r.replayed)
