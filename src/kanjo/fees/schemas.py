"""HTTP shapes of the fees context."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from kanjo.fees.limits import FEES_PER_REFUND_REQUEST_MAX
from kanjo.fees.model import Channel, FeeQuote, Kind, Rule, Tariff
from kanjo.fees.service import ChargedFee, RefundReport
from kanjo.platform.schemas import Id

TRANSACTION_AMOUNT_MAX = 10_000_000_000  # yen: the largest amount any product moves at once
Amount = Annotated[int, Field(strict=True, ge=0, le=TRANSACTION_AMOUNT_MAX, description="the transaction's yen")]


def _in_calendar(at: dt.datetime | None) -> dt.datetime | None:
    if at is not None and not 1990 <= at.year <= 2099:
        raise ValueError("the bank's calendar runs from 1990 to 2099")
    return at


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuoteIn(_In):
    channel: Channel
    kind: Kind
    amount: Amount
    at: AwareDatetime | None = Field(None, description="when the transaction happens (default: now), with its zone")

    _at = field_validator("at")(_in_calendar)


class ChargeIn(QuoteIn):
    request_id: Id
    account_id: Id = Field(description="the customer's ordinary account that pays the fee")


class RefundIn(_In):
    request_id: Id
    reason: str = Field(min_length=1, max_length=200, description="e.g. the incident the refund answers")
    fee_ids: list[Id] = Field(default_factory=list, max_length=FEES_PER_REFUND_REQUEST_MAX)
    channel: Channel | None = None
    charged_from: AwareDatetime | None = None
    charged_until: AwareDatetime | None = None

    _from = field_validator("charged_from", "charged_until")(_in_calendar)

    @model_validator(mode="after")
    def _one_selection(self) -> RefundIn:
        window = self.charged_from is not None or self.charged_until is not None
        if self.fee_ids and (window or self.channel is not None):
            raise ValueError("name either fee_ids or a window (charged_from, charged_until, channel), not both")
        if not self.fee_ids and (self.charged_from is None or self.charged_until is None):
            raise ValueError("name the fees (fee_ids) or both ends of a window (charged_from, charged_until)")
        if self.charged_from and self.charged_until and self.charged_from >= self.charged_until:
            raise ValueError("charged_from must be before charged_until")
        return self


class QuoteOut(BaseModel):
    fee: int = Field(description="tax-inclusive yen")
    consumption_tax_included: int
    rule_id: str
    reason: str

    @classmethod
    def of(cls, q: FeeQuote) -> QuoteOut:
        return cls(fee=q.amount_minor, consumption_tax_included=q.tax_included_minor, rule_id=q.rule_id,
                   reason=q.reason)


class ChargeOut(BaseModel):
    charged: bool = Field(description="false when the fee is ¥0: nothing moved")
    fee_id: str | None
    transfer_id: str | None
    fee: int
    rule_id: str
    replayed: bool

    @classmethod
    def of(cls, q: FeeQuote, c: ChargedFee | None) -> ChargeOut:
        if c is None:
            return cls(charged=False, fee_id=None, transfer_id=None, fee=0, rule_id=q.rule_id, replayed=False)
        return cls(charged=True, fee_id=str(uuid.UUID(int=c.fee_id)), transfer_id=str(uuid.UUID(int=c.transfer_id)),
                   fee=c.amount_minor, rule_id=c.rule_id, replayed=c.replayed)


class NotRefundedOut(BaseModel):
    fee_id: str
    reason: str


class RefundOut(BaseModel):
    requested: int
    refunded: int
    refunded_amount: int
    already_refunded: int
    not_refunded: list[NotRefundedOut]

    @classmethod
    def of(cls, r: RefundReport) -> RefundOut:
        return cls(requested=r.requested, refunded=r.refunded, refunded_amount=r.refunded_minor,
                   already_refunded=r.already_refunded,
                   not_refunded=[NotRefundedOut(fee_id=str(uuid.UUID(int=n.fee_id)), reason=n.reason)
                                 for n in r.not_refunded])


class RuleOut(BaseModel):
    rule_id: str
    kind: str
    channel: str
    fee: int
    day_types: list[str]
    time_from: str | None = Field(description="JST wall clock HH:MM, inclusive; null: all day")
    time_until: str | None = Field(description="JST wall clock HH:MM, exclusive")
    amount_min: int
    amount_below: int | None

    @classmethod
    def of(cls, r: Rule) -> RuleOut:
        return cls(rule_id=r.rule_id, kind=r.kind.value, channel=r.channel.value, fee=r.fee_minor,
                   day_types=sorted(d.value for d in r.day_types), time_from=_hhmm(r.time_from),
                   time_until=_hhmm(r.time_until),
                   amount_min=r.amount_min_minor, amount_below=r.amount_below_minor)


def _hhmm(t: dt.time | None) -> str | None:
    return None if t is None else t.strftime("%H:%M")


class TariffOut(BaseModel):
    name: str
    fee_max: int
    rules: list[RuleOut]

    @classmethod
    def of(cls, t: Tariff) -> TariffOut:
        return cls(name=t.name, fee_max=t.fee_max_minor, rules=[RuleOut.of(r) for r in t.rules])
