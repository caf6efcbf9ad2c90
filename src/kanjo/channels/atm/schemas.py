"""The ATM protocol's message shapes (docs/atm-protocol.md), validated at the edge: a bad field is a 422 naming it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kanjo.channels.atm.limits import (
    DEPOSIT_AMOUNT_MAX,
    JOURNAL_ENTRIES_PER_UPLOAD_MAX,
    JOURNAL_NO_MAX,
    MACHINES_PER_REGISTRATION_MAX,
    TRANSFER_AMOUNT_MAX,
    WITHDRAWAL_AMOUNT_MAX,
)
from kanjo.channels.atm.model import MachineKind

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (a NUL cannot be stored, none can be shown)
AtmId = Annotated[str, Field(pattern=r"^[A-Z0-9]{4,12}$", description="a registered ATM")]
JournalNo = Annotated[int, Field(strict=True, ge=1, le=JOURNAL_NO_MAX, description="the ATM's journal number")]
CashAmount = Annotated[int, Field(strict=True, gt=0, multiple_of=1_000, description="yen, notes only")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Card(_Strict):
    number: str = Field(pattern=r"^[0-9]{16}$")
    pin: str = Field(pattern=r"^[0-9]{4}$")


class DepositCard(_Strict):
    number: str = Field(pattern=r"^[0-9]{16}$")


class _Message(_Strict):
    atm_id: AtmId
    journal_no: JournalNo


class InquiryIn(_Message):
    card: Card


class WithdrawalIn(_Message):
    card: Card
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=WITHDRAWAL_AMOUNT_MAX, multiple_of=1_000)]


class AckIn(_Message):
    dispensed_minor: Annotated[int, Field(strict=True, ge=0, le=WITHDRAWAL_AMOUNT_MAX, multiple_of=1_000)]


class LoanDrawIn(_Message):
    """Cash from the card loan (カードローン借入) of the card's holder: the customer's cash card and PIN."""

    card: Card
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=WITHDRAWAL_AMOUNT_MAX, multiple_of=1_000)]


class DepositIn(_Message):
    card: DepositCard
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=DEPOSIT_AMOUNT_MAX, multiple_of=1_000)]


class DepositAckIn(_Message):
    """The ATM stored the counted notes (`stored_minor` = the amount accepted) or gave them back (0)."""

    stored_minor: Annotated[int, Field(strict=True, ge=0, le=DEPOSIT_AMOUNT_MAX, multiple_of=1_000)]


class AccountRef(_Strict):
    branch_code: str = Field(pattern=r"^[0-9]{3}$")
    account_number: str = Field(pattern=r"^[0-9]{7}$")


class TransferIn(_Message):
    card: Card
    to: AccountRef
    amount_minor: Annotated[int, Field(strict=True, gt=0, le=TRANSFER_AMOUNT_MAX)]


class PassbookIn(_Message):
    passbook: AccountRef


class TimeDepositIn(_Message):
    card: Card
    amount_minor: CashAmount
    term_months: Annotated[int, Field(strict=True, ge=1, le=120)]


class JournalEntryIn(_Strict):
    journal_no: JournalNo
    operation: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    amount_minor: Annotated[int, Field(strict=True, ge=0, le=DEPOSIT_AMOUNT_MAX)]
    outcome: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]


class JournalIn(_Strict):
    atm_id: AtmId
    entries: Annotated[list[JournalEntryIn], Field(min_length=1, max_length=JOURNAL_ENTRIES_PER_UPLOAD_MAX)]


class MachineIn(_Strict):
    atm_id: AtmId
    kind: MachineKind
    location: Annotated[str, Field(max_length=200, pattern=PRINTABLE)] = ""


class MachinesIn(_Strict):
    machines: Annotated[list[MachineIn], Field(min_length=1, max_length=MACHINES_PER_REGISTRATION_MAX)]


class NoticeIn(_Strict):
    text: Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
    atm_ids: Annotated[list[AtmId], Field(min_length=1, max_length=MACHINES_PER_REGISTRATION_MAX)] | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime
    created_by: Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]


class AnswerOut(BaseModel):
    """Every ATM answer (approved, refused, unavailable) has these; operation fields come besides."""

    model_config = ConfigDict(extra="allow")
    atm_id: str
    journal_no: int
    result: Literal["approved", "refused", "unavailable"]
    code: str
    message: str
    card_action: Literal["return", "retain"]
    replayed: bool
