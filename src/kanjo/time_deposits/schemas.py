"""HTTP shapes of the time-deposits context."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kanjo.platform.schemas import Id
from kanjo.time_deposits.limits import PRINCIPAL_MAX
from kanjo.time_deposits.model import (
    TERM_MONTHS_MAX,
    TERM_MONTHS_MIN,
    Instruction,
    RateTable,
    Settlement,
    TaxClass,
    TimeDeposit,
)


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Id
    customer_id: Id
    funding_account_id: Id = Field(description="the customer's ordinary account: pays the principal; the deposit is"
                                   " attached to it (総合口座)")
    principal: Annotated[int, Field(strict=True, ge=1, le=PRINCIPAL_MAX, description="yen")]
    term_months: Annotated[int, Field(strict=True, ge=TERM_MONTHS_MIN, le=TERM_MONTHS_MAX)]
    instruction: Instruction = Field(description="at maturity: renew principal (interest paid out), renew principal"
                                     " and interest, or pay everything out")
    tax_class: TaxClass = TaxClass.INDIVIDUAL
    payout_account_id: Id | None = Field(default=None, description="入金口座: another ordinary account of the same"
                                         " customer that receives interest and principal (default: the funding"
                                         " account)")


class InstructionIn(BaseModel):
    """満期時の取扱変更, before the maturity date."""

    model_config = ConfigDict(extra="forbid")

    request_id: Id
    instruction: Instruction = Field(description="at maturity: renew principal (interest paid out), renew principal"
                                     " and interest, or pay everything out")
    payout_account_id: Id | None = Field(default=None, description="a new payout account (an ordinary account of"
                                         " the same customer); omitted: the payout account is kept")


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Id


class TimeDepositOut(BaseModel):
    id: str
    customer_id: str
    ordinary_account_id: str = Field(description="funded the placement; the 総合口座 the deposit is attached to")
    payout_account_id: str = Field(description="入金口座: receives what is paid out")
    principal: int
    rate_percent: Decimal
    term_months: int
    compounding: str
    tax_class: str
    placed_on: dt.date
    matures_on: dt.date
    pays_on: dt.date
    instruction: str
    status: str
    generation: int
    closed_on: dt.date | None

    @classmethod
    def of(cls, d: TimeDeposit) -> TimeDepositOut:
        return cls(id=str(uuid.UUID(int=d.id)), customer_id=str(uuid.UUID(int=d.customer_id)),
                   ordinary_account_id=str(uuid.UUID(int=d.ordinary_account_id)),
                   payout_account_id=str(uuid.UUID(int=d.payout_account_id)), principal=d.principal_minor,
                   rate_percent=d.rate_percent, term_months=d.term_months, compounding=d.compounding.value,
                   tax_class=d.tax_class.value, placed_on=d.placed_on, matures_on=d.matures_on, pays_on=d.pays_on,
                   instruction=d.instruction.value, status=d.status.value, generation=d.generation,
                   closed_on=d.closed_on)


class SettlementOut(BaseModel):
    principal: int
    interest: int = Field(description="gross interest, yen")
    national_tax: int
    local_tax: int
    net_interest: int
    paid_out: int = Field(description="to the payout account")
    renewed_principal: int

    @classmethod
    def of(cls, s: Settlement) -> SettlementOut:
        return cls(principal=s.principal_minor, interest=s.interest_minor, national_tax=s.tax.national_minor,
                   local_tax=s.tax.local_minor, net_interest=s.net_interest_minor, paid_out=s.paid_out_minor,
                   renewed_principal=s.renewed_principal_minor)


class RateOut(BaseModel):
    term_months: int
    band_min: int = Field(description="the amount band's lower bound, yen")
    rate_percent: Decimal


class RatesOut(BaseModel):
    on: dt.date
    rates: list[RateOut]

    @classmethod
    def of(cls, on: dt.date, table: RateTable) -> RatesOut:
        return cls(on=on, rates=[RateOut(term_months=t, band_min=b, rate_percent=r)
                                 for (t, b), r in sorted(table.rates.items())])
