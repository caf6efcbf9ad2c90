"""HTTP shapes of the cards context. No answer carries a PIN or anything about one; the full card number appears
only in the answer to an issue or a reissue (it goes to card production), every read shows it masked."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kanjo.cards.limits import ACTOR_CHARS_MAX, DAILY_LIMIT_MAX, REASON_CHARS_MAX
from kanjo.cards.model import (
    CUSTOMER,
    DAILY_LIMIT_DEFAULT_MINOR,
    DAILY_LIMIT_STEP_MINOR,
    Card,
    CardEvent,
    IssuedCard,
)
from kanjo.platform.schemas import Id

Pin = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="4 digits; never all the same, a run, or the birth"
                           " date", json_schema_extra={"format": "password", "writeOnly": True})]
DailyLimit = Annotated[int, Field(strict=True, ge=0, le=DAILY_LIMIT_MAX, multiple_of=DAILY_LIMIT_STEP_MINOR,
                                  description="1日の引出限度額 in yen, in units of ¥10,000")]
Actor = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$", min_length=1, max_length=ACTOR_CHARS_MAX,
                             description=f"the operator id, or \"{CUSTOMER}\"")]
Reason = Annotated[str, Field(min_length=1, max_length=REASON_CHARS_MAX)]
BirthDate = Annotated[dt.date | None, Field(description="the holder's birth date, to refuse a PIN made of it"
                                                        " (MMDD or YYYY); not stored")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueIn(_In):
    request_id: Id
    account_id: Id = Field(description="the deposit account the card draws on (普通, 総合口座 or 当座)")
    customer_id: Id
    pin: Pin
    birth_date: BirthDate = None
    daily_limit: DailyLimit = DAILY_LIMIT_DEFAULT_MINOR
    by: Actor = CUSTOMER
    reason: Reason = "new card"


class ChangeIn(_In):
    request_id: Id
    by: Actor
    reason: Reason


class DailyLimitIn(ChangeIn):
    daily_limit: DailyLimit


class ReissueIn(ChangeIn):
    pin: Pin = Field(description="the PIN of the new card (the holder writes it on the form)")
    birth_date: BirthDate = None


class CardOut(BaseModel):
    id: str
    account_id: str
    customer_id: str
    card_number_masked: str = Field(description="the last four digits only")
    status: str
    issued_on: dt.date
    expires_on: dt.date = Field(description="valid through this day (a month end)")
    daily_limit: int
    replaces_card_id: str | None
    cancelled_on: dt.date | None

    @classmethod
    def of(cls, c: Card) -> CardOut:
        return cls(id=_uuid(c.card_id), account_id=_uuid(c.account_id), customer_id=_uuid(c.customer_id),
                   card_number_masked=c.card_number_masked, status=c.status.value, issued_on=c.issued_on,
                   expires_on=c.expires_on, daily_limit=c.daily_limit_minor,
                   replaces_card_id=None if c.replaces_card_id is None else _uuid(c.replaces_card_id),
                   cancelled_on=c.cancelled_on)


class IssuedOut(CardOut):
    card_number: str = Field(description="the full number, for card production; no read ever shows it again")
    replayed: bool

    @classmethod
    def of_issued(cls, i: IssuedCard) -> IssuedOut:
        return cls(**CardOut.of(i.card).model_dump(), card_number=i.card_number, replayed=i.replayed)


class EventOut(BaseModel):
    event_id: int
    kind: str
    status_after: str
    by: str
    reason: str
    at: AwareDatetime
    business_date: dt.date

    @classmethod
    def of(cls, e: CardEvent) -> EventOut:
        return cls(event_id=e.event_id, kind=e.kind, status_after=e.status_after.value, by=e.by, reason=e.reason,
                   at=e.at, business_date=e.business_date)


def _uuid(value: int) -> str:
    return str(uuid.UUID(int=value))
