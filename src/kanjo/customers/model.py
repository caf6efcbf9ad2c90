"""The customer information file (CIF, 顧客管理): who a customer is, how to reach them, and their status.

Pure standard library. Field rules normalise what a clerk types (half-width kana, full-width digits)
and refuse the rest with a reason that names the field. The status is a state machine with named
transitions: freeze (active → frozen), unfreeze (frozen → active), record_death (active or frozen →
deceased, final). Every change returns the new customer (version + 1) and the event to append.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

CIF_NUMBER_MAX = 9_999_999_999  # printed as 10 digits; numbers are never reused
CIF_NUMBER_DIGITS = 10
NAME_CHARS_MAX = 60
ADDRESS_CHARS_MAX = 200
REASON_CHARS_MAX = 200
EMAIL_CHARS_MAX = 254  # RFC 5321's path limit
AGE_YEARS_MAX = 130  # older than anyone alive: a typo in the birth year
JST = dt.timezone(dt.timedelta(hours=9), "JST")  # Japan keeps no daylight saving time

KANA_SPACE = "\u3000"  # 全角スペース: the separator between family and given names
KANA_EXTRA = frozenset("ー・" + KANA_SPACE)
KANA_FIRST, KANA_LAST = "ァ", "ヶ"  # U+30A1..U+30F6: the katakana letters, small ones, ヴ, ヵ, ヶ
_PHONE_TEXT = re.compile(r"^[0-9]+(-[0-9]+)*$")
_POSTAL_CODE = re.compile(r"^([0-9]{3})-?([0-9]{4})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class CustomerKind(Enum):
    INDIVIDUAL = "individual"
    CORPORATE = "corporate"


class CustomerStatus(Enum):
    ACTIVE = "active"
    FROZEN = "frozen"
    DECEASED = "deceased"  # final


class IdentityVerification(Enum):
    """本人確認 (the Act on Prevention of Transfer of Criminal Proceeds): done, never done, or lapsed."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    EXPIRED = "expired"


# -- errors ---------------------------------------------------------------------------------------


class CustomerError(Exception):
    """An expected refusal: the caller's input or the customer's state does not allow the request."""


class InvalidField(CustomerError, ValueError):
    """A field breaks its rule; nothing changed."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field = field_name
        self.reason = reason
        super().__init__(f"{field_name}: {reason}")


class IllegalTransition(CustomerError):
    """The customer's current state does not allow the named transition; nothing changed."""

    def __init__(self, transition: str, status: str, message: str) -> None:
        self.transition = transition
        self.status = status  # the state that refused it (the status, or the identity verification)
        super().__init__(message)


class CustomerNotFound(CustomerError):
    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        super().__init__(f"no customer {_uuid_text(customer_id)}")


class RequestConflict(CustomerError):
    """A request id already used with a different body (or for another command): a retry must repeat it exactly."""

    def __init__(self, request_id: int, field_name: str, message: str) -> None:
        self.request_id = request_id
        self.field = field_name
        super().__init__(message)


# -- field rules ----------------------------------------------------------------------------------


def normalise_name_kana(text: str, field_name: str = "name_kana", *, prefix: bool = False) -> str:
    """Full-width katakana, ー, ・ and one 全角スペース between words; 1-60 characters.

    NFKC turns half-width katakana into full-width (ﾀﾞ → ダ, ｰ → ー, ･ → ・) and both spaces into
    U+0020; runs of spaces then become one U+3000, and spaces at either end are dropped.
    'ﾔﾏﾀﾞ ﾀﾛｳ' → 'ヤマダ　タロウ'. Hiragana, Latin letters, digits and symbols are refused.
    A search prefix (`prefix=True`) keeps one trailing space: 'ヤマダ ' finds ヤマダ　タロウ, not ヤマダイ.
    """
    if not isinstance(text, str):
        raise InvalidField(field_name, "must be text")
    words = unicodedata.normalize("NFKC", text).split(" ")
    kana = KANA_SPACE.join(w for w in words if w)
    if not kana:
        raise InvalidField(field_name, "must not be empty")
    if prefix and len(words) > 1 and words[-1] == "":
        kana += KANA_SPACE
    if len(kana) > NAME_CHARS_MAX:
        raise InvalidField(field_name, f"at most {NAME_CHARS_MAX} characters, got {len(kana)}")
    for position, char in enumerate(kana, start=1):
        if not (KANA_FIRST <= char <= KANA_LAST or char in KANA_EXTRA):
            raise InvalidField(field_name, f"character {position} {_describe(char)} is not allowed: "
                               "use full-width katakana, ー, ・ and spaces (half-width katakana is converted)")
    return kana


def _describe(char: str) -> str:
    name = unicodedata.name(char, "unnamed")
    if unicodedata.combining(char):
        return f"U+{ord(char):04X} {name} (a voiced mark on a letter that takes none)"
    if "\u3041" <= char <= "\u309f":
        return f"'{char}' (hiragana; write it in katakana)"
    return f"'{char}' (U+{ord(char):04X} {name})"


def normalise_name_kanji(text: str, field_name: str = "name_kanji") -> str:
    """The name as written (kanji, kana, Latin letters): 1-60 characters, no control or private-use characters."""
    return _plain_text(text, field_name, NAME_CHARS_MAX)


def normalise_address(text: str, field_name: str = "address") -> str:
    return _plain_text(text, field_name, ADDRESS_CHARS_MAX)


def normalise_reason(text: str, field_name: str = "reason") -> str:
    return _plain_text(text, field_name, REASON_CHARS_MAX)


def _plain_text(text: str, field_name: str, chars_max: int) -> str:
    if not isinstance(text, str):
        raise InvalidField(field_name, "must be text")
    value = unicodedata.normalize("NFC", text).strip()
    if not value:
        raise InvalidField(field_name, "must not be empty")
    if len(value) > chars_max:
        raise InvalidField(field_name, f"at most {chars_max} characters, got {len(value)}")
    for position, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category == "Co":
            raise InvalidField(field_name, f"character {position} is a private-use character (外字), which other "
                               "systems cannot print: register the standard form")
        if category.startswith("C"):
            raise InvalidField(field_name, f"character {position} (U+{ord(char):04X}) is a control, format or"
                               " unassigned character")
    return value


def normalise_phone(text: str, field_name: str = "phone") -> str:
    """A Japanese number: digits with optional single hyphens between groups; 10 or 11 digits starting with 0.

    Full-width digits and hyphens are converted (NFKC). '０９０－１２３４－５６７８' → '090-1234-5678'.
    """
    if not isinstance(text, str):
        raise InvalidField(field_name, "must be text")
    value = unicodedata.normalize("NFKC", text).strip()
    if not _PHONE_TEXT.match(value):
        raise InvalidField(field_name, "digits with optional hyphens between groups, such as 03-1234-5678")
    digits = value.replace("-", "")
    if not 10 <= len(digits) <= 11:
        raise InvalidField(field_name, f"a Japanese number has 10 or 11 digits, got {len(digits)}")
    if digits[0] != "0":
        raise InvalidField(field_name, "a Japanese number starts with 0 (write it as dialled within Japan)")
    return value


def phone_digits(phone: str) -> str:
    return phone.replace("-", "")


def normalise_email(text: str | None, field_name: str = "email") -> str | None:
    """Optional; one @, a dotted domain, no spaces. Deliverability is the mail server's question, not ours."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidField(field_name, "must be text or null")
    value = text.strip()
    if not value:
        return None
    if len(value) > EMAIL_CHARS_MAX:
        raise InvalidField(field_name, f"at most {EMAIL_CHARS_MAX} characters, got {len(value)}")
    if not _EMAIL.match(value) or not (value.isascii() and value.isprintable()):
        raise InvalidField(field_name, "an address such as taro.yamada@example.jp")
    return value


def normalise_postal_code(text: str, field_name: str = "postal_code") -> str:
    """NNN-NNNN; seven digits without the hyphen (or full-width) are accepted and written NNN-NNNN."""
    if not isinstance(text, str):
        raise InvalidField(field_name, "must be text")
    match = _POSTAL_CODE.match(unicodedata.normalize("NFKC", text).strip())
    if not match:
        raise InvalidField(field_name, "seven digits written NNN-NNNN, such as 100-0005")
    return f"{match[1]}-{match[2]}"


def check_birth_date(birth_date: dt.date, today: dt.date, field_name: str = "birth_date") -> None:
    if birth_date >= today:
        raise InvalidField(field_name, f"must be in the past (today is {today.isoformat()})")
    if age_on(birth_date, today) > AGE_YEARS_MAX:
        raise InvalidField(field_name, f"gives an age over {AGE_YEARS_MAX} years")


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Full years of age on `day` (one turns a year older on the birthday; 2/29 births on 3/1 in other years)."""
    birthday_passed = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if birthday_passed else 1)


def format_cif_number(cif_number: int) -> str:
    return f"{cif_number:0{CIF_NUMBER_DIGITS}d}"


def _uuid_text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- commands (what a clerk asks for), normalised -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    email: str | None
    postal_code: str
    address: str

    def normalised(self) -> Contact:
        return Contact(normalise_phone(self.phone), normalise_email(self.email),
                       normalise_postal_code(self.postal_code), normalise_address(self.address))


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A registration. `id` is chosen by the client and is the idempotency key of the registration."""

    id: int
    kind: CustomerKind
    name_kanji: str
    name_kana: str
    contact: Contact
    birth_date: dt.date | None = None  # individuals
    registration_date: dt.date | None = None  # corporations: 設立日 (date of incorporation)

    def validated(self, today: dt.date) -> NewCustomer:
        if not 0 < self.id < (1 << 128) - 1:
            raise InvalidField("id", "must not be zero or the maximum UUID")
        if not isinstance(self.kind, CustomerKind):
            raise InvalidField("kind", "individual or corporate")
        if self.kind is CustomerKind.INDIVIDUAL:
            if self.registration_date is not None:
                raise InvalidField("registration_date", "is for corporations; an individual has a birth_date")
            if self.birth_date is None:
                raise InvalidField("birth_date", "is required for an individual")
            check_birth_date(self.birth_date, today)
        else:
            if self.birth_date is not None:
                raise InvalidField("birth_date", "is for individuals; a corporation has a registration_date")
            if self.registration_date is None:
                raise InvalidField("registration_date", "is required for a corporation")
            if self.registration_date > today:
                raise InvalidField("registration_date", f"must not be in the future (today is {today.isoformat()})")
        return replace(self, name_kanji=normalise_name_kanji(self.name_kanji),
                       name_kana=normalise_name_kana(self.name_kana), contact=self.contact.normalised())


@dataclass(frozen=True, slots=True)
class IdentityVerificationUpdate:
    status: IdentityVerification
    verified_on: dt.date | None = None  # the day the documents were checked; required for verified

    def validated(self, today: dt.date) -> IdentityVerificationUpdate:
        if self.status is IdentityVerification.VERIFIED:
            if self.verified_on is None:
                raise InvalidField("verified_on", "is required when identity is verified")
            if self.verified_on > today:
                raise InvalidField("verified_on", f"must not be in the future (today is {today.isoformat()})")
        elif self.verified_on is not None:
            raise InvalidField("verified_on", f"is given only with status verified, not {self.status.value}")
        return self


# -- the customer ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a customer's history, appended in the transaction of the change."""

    kind: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    customer: Customer
    event: Event


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    sources: frozenset[CustomerStatus]
    target: CustomerStatus
    event_kind: str


FREEZE = Transition("freeze", frozenset({CustomerStatus.ACTIVE}), CustomerStatus.FROZEN, "frozen")
UNFREEZE = Transition("unfreeze", frozenset({CustomerStatus.FROZEN}), CustomerStatus.ACTIVE, "unfrozen")
RECORD_DEATH = Transition("record_death", frozenset({CustomerStatus.ACTIVE, CustomerStatus.FROZEN}),
                          CustomerStatus.DECEASED, "death_recorded")
TRANSITIONS = (FREEZE, UNFREEZE, RECORD_DEATH)


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    cif_number: int
    kind: CustomerKind
    name_kanji: str
    name_kana: str
    contact: Contact
    birth_date: dt.date | None
    registration_date: dt.date | None
    identity_verification: IdentityVerification
    identity_verified_on: dt.date | None
    status: CustomerStatus
    status_reason: str | None  # why the last status change happened, as the clerk wrote it
    died_on: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = field(default=1)

    @property
    def cif_text(self) -> str:
        return format_cif_number(self.cif_number)

    @staticmethod
    def register(new: NewCustomer, cif_number: int, at: dt.datetime) -> Change:
        """`new` must be validated; the bank assigns `cif_number`."""
        if not 0 < cif_number <= CIF_NUMBER_MAX:
            raise ValueError(f"cif_number {cif_number} outside 1..{CIF_NUMBER_MAX}")
        customer = Customer(
            id=new.id, cif_number=cif_number, kind=new.kind, name_kanji=new.name_kanji, name_kana=new.name_kana,
            contact=new.contact, birth_date=new.birth_date, registration_date=new.registration_date,
            identity_verification=IdentityVerification.UNVERIFIED, identity_verified_on=None,
            status=CustomerStatus.ACTIVE, status_reason=None, died_on=None, created_at=at, updated_at=at,
        )
        return Change(customer, Event("registered", {"cif_number": customer.cif_text, "kind": new.kind.value}))

    # -- status transitions -------------------------------------------------------------------

    def freeze(self, reason: str, at: dt.datetime) -> Change:
        return self._transition(FREEZE, normalise_reason(reason), at)

    def unfreeze(self, reason: str, at: dt.datetime) -> Change:
        return self._transition(UNFREEZE, normalise_reason(reason), at)

    def record_death(self, died_on: dt.date, reason: str, at: dt.datetime, today: dt.date) -> Change:
        """死亡の届出: the accounts are then frozen for the heirs (相続手続); the status is final."""
        reason = normalise_reason(reason)
        if self.kind is not CustomerKind.INDIVIDUAL:
            raise IllegalTransition(RECORD_DEATH.name, self.status.value,
                                    f"cannot record_death for customer {self.cif_text}: it is a corporation"
                                    " (a corporation is dissolved, not deceased)")
        self._check(RECORD_DEATH)
        if died_on > today:
            raise InvalidField("died_on", f"must not be in the future (today is {today.isoformat()})")
        if self.birth_date is not None and died_on < self.birth_date:
            raise InvalidField("died_on", f"must not be before the birth_date {self.birth_date.isoformat()}")
        return self._transition(RECORD_DEATH, reason, at, died_on=died_on)

    def _check(self, transition: Transition) -> None:
        if self.status not in transition.sources:
            allowed = " or ".join(sorted(s.value for s in transition.sources))
            raise IllegalTransition(
                transition.name, self.status.value,
                f"cannot {transition.name} customer {self.cif_text}: it is {self.status.value}"
                f" ({transition.name} is allowed only from {allowed})")

    def _transition(self, transition: Transition, reason: str, at: dt.datetime,
                    died_on: dt.date | None = None) -> Change:
        self._check(transition)
        customer = replace(self, status=transition.target, status_reason=reason, died_on=died_on or self.died_on,
                           updated_at=at, version=self.version + 1)
        details: dict[str, Any] = {"from": self.status.value, "to": transition.target.value, "reason": reason}
        if died_on is not None:
            details["died_on"] = died_on.isoformat()
        return Change(customer, Event(transition.event_kind, details))

    # -- other changes ------------------------------------------------------------------------

    def update_contact(self, contact: Contact, at: dt.datetime) -> Change:
        """Allowed in every status: notices still go out to a frozen customer, and to a deceased one's heirs."""
        contact = contact.normalised()
        changed = {name: {"from": getattr(self.contact, name), "to": getattr(contact, name)}
                   for name in ("phone", "email", "postal_code", "address")
                   if getattr(self.contact, name) != getattr(contact, name)}
        customer = replace(self, contact=contact, updated_at=at, version=self.version + 1)
        return Change(customer, Event("contact_updated", changed))

    def record_identity_verification(self, update: IdentityVerificationUpdate, at: dt.datetime,
                                     today: dt.date) -> Change:
        update = update.validated(today)
        name = "record_identity_verification"
        if self.status is CustomerStatus.DECEASED:
            raise IllegalTransition(name, self.status.value,
                                    f"cannot {name} for customer {self.cif_text}: it is deceased")
        if update.status is IdentityVerification.EXPIRED and \
                self.identity_verification is not IdentityVerification.VERIFIED:
            raise IllegalTransition(
                name, self.identity_verification.value,
                f"cannot {name} as expired for customer {self.cif_text}: its identity verification is"
                f" {self.identity_verification.value} (only a verified identity expires)")
        verified_on = update.verified_on if update.status is IdentityVerification.VERIFIED else (
            self.identity_verified_on if update.status is IdentityVerification.EXPIRED else None)
        customer = replace(self, identity_verification=update.status, identity_verified_on=verified_on,
                           updated_at=at, version=self.version + 1)
        details = {"from": self.identity_verification.value, "to": update.status.value,
                   "verified_on": verified_on.isoformat() if verified_on else None}
        return Change(customer, Event("identity_verification_recorded", details))


def today_in_japan(at: dt.datetime) -> dt.date:
    """The calendar day in Japan at an instant: birth dates and dates of death are Japanese dates."""
    return at.astimezone(JST).date()
