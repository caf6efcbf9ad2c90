"""HTTP shapes of the loans context (card loans)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kanjo.loans.model import COLLECTION_DAY_MAX, Channel, Collection, ContractView, Movement
from kanjo.platform.schemas import Id

# Over a named limit is refused by the handlers (413 naming it), so amounts are bounded only below here.
Amount = Annotated[int, Field(strict=True, ge=1, description="yen")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenContractIn(_In):
    request_id: Id
    customer_id: Id
    account_id: Id = Field(description="the customer's ordinary deposit account: draws, repayments, collections")
    credit_line: Amount = Field(description="限度額 in yen: ¥100,000 to ¥8,000,000 in steps of ¥10,000")
    rate_percent: str = Field(pattern=r"^[0-9]{1,2}(\.[0-9]{1,3})?$", examples=["14.500"],
                              description="annual rate in percent, as text (exact), quoted to 0.001 %")
    collection_day: int = Field(strict=True, ge=1, le=COLLECTION_DAY_MAX, description="約定日: day of the month")


class DrawIn(_In):
    request_id: Id
    amount: Amount
    to: Channel = Field(description="account: to the linked account; cash: at an ATM (¥1,000 notes)")


class RepayIn(_In):
    request_id: Id
    amount: Amount
    source: Channel = Field(description="account: from the linked account; cash: at an ATM (¥1,000 notes)")


class StatusIn(_In):
    request_id: Id
    reason: str = Field(min_length=1, max_length=200)


class ContractOut(BaseModel):
    id: str
    customer_id: str
    account_id: str
    credit_line: int
    rate_percent: str
    collection_day: int
    status: str
    opened_on: dt.date
    closed_on: dt.date | None
    drawn: int = Field(description="利用残高")
    available: int = Field(description="利用可能額: 0 unless active")
    accrued_interest: str = Field(description="accrued, not yet collected, in yen to the sen (rounded down)")
    accrued_through: dt.date
    arrears: int = Field(description="延滞額: unpaid interest of past collections")
    arrears_since: dt.date | None
    days_past_due: int = Field(description="延滞日数")
    next_due_on: dt.date = Field(description="the next collection's contractual day")
    next_collect_on: dt.date = Field(description="the business day it is collected")

    @classmethod
    def of(cls, v: ContractView) -> ContractOut:
        c = v.contract
        return cls(id=str(uuid.UUID(int=c.id)), customer_id=str(uuid.UUID(int=c.customer_id)),
                   account_id=str(uuid.UUID(int=c.account_id)), credit_line=c.credit_line_minor,
                   rate_percent=str(c.rate_percent), collection_day=c.collection_day, status=c.status.value,
                   opened_on=c.opened_on, closed_on=c.closed_on, drawn=v.drawn_minor, available=v.available_minor,
                   accrued_interest=str(v.accrued_interest), accrued_through=c.accrued_through,
                   arrears=v.arrears_minor, arrears_since=c.arrears_since, days_past_due=v.days_past_due,
                   next_due_on=c.due_on, next_collect_on=c.collect_on)


class MovementOut(BaseModel):
    request_id: str
    contract_id: str
    kind: str
    amount: int
    interest: int = Field(description="of a repayment: the arrears of interest it paid")
    principal: int
    business_date: dt.date
    replayed: bool

    @classmethod
    def of(cls, m: Movement) -> MovementOut:
        return cls(request_id=str(uuid.UUID(int=m.request_id)), contract_id=str(uuid.UUID(int=m.contract_id)),
                   kind=m.kind, amount=m.amount_minor, interest=m.interest_minor, principal=m.principal_minor,
                   business_date=m.business_date, replayed=m.replayed)


class CollectionOut(BaseModel):
    due_on: dt.date
    kind: str
    collect_on: dt.date
    balance_days: int = Field(description="積数: the period's sum of end-of-day balance × days")
    rate_percent: str
    interest: int
    collected: int
    outstanding: int

    @classmethod
    def of(cls, c: Collection) -> CollectionOut:
        return cls(due_on=c.due_on, kind=c.kind, collect_on=c.collect_on, balance_days=c.balance_days,
                   rate_percent=str(c.rate_percent), interest=c.interest_minor, collected=c.collected_minor,
                   outstanding=c.outstanding_minor)
