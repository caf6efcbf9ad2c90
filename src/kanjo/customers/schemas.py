"""The customers context's HTTP shapes (Pydantic v2): strict at the edge, checked by the domain's own field rules."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from kanjo.customers.model import (
    Contact,
    Customer,
    CustomerKind,
    IdentityVerification,
    IdentityVerificationUpdate,
    InvalidField,
    NewCustomer,
    normalise_address,
    normalise_email,
    normalise_name_kana,
    normalise_name_kanji,
    normalise_phone,
    normalise_postal_code,
    normalise_reason,
)
from kanjo.platform.schemas import Id

TEXT_CHARS_MAX = 1000  # raw input guard; the field rules then apply their own, smaller maximum
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _rule(normalise: Callable[[str], Any]) -> AfterValidator:
    """The domain's rule for a field, reported by Pydantic under the field's own name."""

    def check(value: Any) -> Any:
        try:
            return normalise(value)
        except InvalidField as exc:
            raise PydanticCustomError("invalid_field", exc.reason) from None

    return AfterValidator(check)


def _iso_date(value: object) -> dt.date:
    """Strict: a calendar date written YYYY-MM-DD (not a timestamp, not a number)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("invalid_field", "no such day in the calendar") from None
    raise PydanticCustomError("invalid_field", "a date written YYYY-MM-DD")


Text = Annotated[str, Field(strict=True, max_length=TEXT_CHARS_MAX)]
NameKanji = Annotated[Text, _rule(normalise_name_kanji), Field(description="as written: 山田 太郎, 株式会社山田商事")]
NameKana = Annotated[Text, _rule(normalise_name_kana),
                     Field(description="full-width katakana, ー, ・, 全角スペース; half-width is converted")]
Phone = Annotated[Text, _rule(normalise_phone), Field(description="10 or 11 digits, hyphens allowed: 090-1234-5678")]
Email = Annotated[Text, _rule(normalise_email), Field(description="taro.yamada@example.jp")]
PostalCode = Annotated[Text, _rule(normalise_postal_code), Field(description="NNN-NNNN")]
Address = Annotated[Text, _rule(normalise_address), Field(description="at most 200 characters")]
Reason = Annotated[Text, _rule(normalise_reason), Field(description="why, as the clerk records it (≤ 200 chars)")]
Date = Annotated[dt.date, BeforeValidator(_iso_date), Field(description="YYYY-MM-DD")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_Strict):
    id: Id = Field(description="chosen by the client: the idempotency key of the registration")
    kind: Literal["individual", "corporate"]
    name_kanji: NameKanji
    name_kana: NameKana
    birth_date: Date | None = Field(default=None, description="individuals: in the past, age at most 130")
    registration_date: Date | None = Field(default=None, description="corporations: date of incorporation")
    phone: Phone
    email: Email | None = None
    postal_code: PostalCode
    address: Address

    def to_domain(self) -> NewCustomer:
        return NewCustomer(
            id=self.id, kind=CustomerKind(self.kind), name_kanji=self.name_kanji, name_kana=self.name_kana,
            contact=Contact(self.phone, self.email, self.postal_code, self.address),
            birth_date=self.birth_date, registration_date=self.registration_date,
        )


class ContactIn(_Strict):
    request_id: Id
    phone: Phone
    email: Email | None = Field(description="required; null removes the address")
    postal_code: PostalCode
    address: Address

    def to_domain(self) -> Contact:
        return Contact(self.phone, self.email, self.postal_code, self.address)


class IdentityVerificationIn(_Strict):
    request_id: Id
    status: Literal["unverified", "verified", "expired"]
    verified_on: Date | None = Field(default=None, description="with verified: the day the documents were checked")

    def to_domain(self) -> IdentityVerificationUpdate:
        return IdentityVerificationUpdate(IdentityVerification(self.status), self.verified_on)


class StatusChangeIn(_Strict):
    request_id: Id
    reason: Reason


class DeathIn(_Strict):
    request_id: Id
    died_on: Date
    reason: Reason = Field(description="how the bank learned of it, e.g. 親族からの届出")


class CustomerOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    cif_number: str = Field(description="10 digits, zero-padded")
    kind: Literal["individual", "corporate"]
    name_kanji: str
    name_kana: str
    birth_date: dt.date | None
    registration_date: dt.date | None
    phone: str
    email: str | None
    postal_code: str
    address: str
    identity_verification: Literal["unverified", "verified", "expired"]
    identity_verified_on: dt.date | None
    status: Literal["active", "frozen", "deceased"]
    status_reason: str | None
    died_on: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class SearchOut(BaseModel):
    customers: list[CustomerOut]
    more: bool = Field(description="more customers match than this page holds: narrow the search")


class EventOut(BaseModel):
    at: dt.datetime
    kind: str
    version: int
    request_id: str
    details: dict[str, Any]


def customer_out(c: Customer) -> dict[str, Any]:
    """The JSON of a customer (shaped as CustomerOut; rendered by orjson)."""
    return {
        "id": str(uuid.UUID(int=c.id)), "cif_number": c.cif_text, "kind": c.kind.value,
        "name_kanji": c.name_kanji, "name_kana": c.name_kana, "birth_date": c.birth_date,
        "registration_date": c.registration_date, "phone": c.contact.phone, "email": c.contact.email,
        "postal_code": c.contact.postal_code, "address": c.contact.address,
        "identity_verification": c.identity_verification.value, "identity_verified_on": c.identity_verified_on,
        "status": c.status.value, "status_reason": c.status_reason, "died_on": c.died_on,
        "created_at": c.created_at, "updated_at": c.updated_at, "version": c.version,
    }
