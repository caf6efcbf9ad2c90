"""The ledger's HTTP shapes (Pydantic v2): strict at the edge, converted to domain types inside."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kanjo.ledger.limits import EVENTS_PER_BATCH_MAX, LOOKUP_IDS_MAX
from kanjo.ledger.model import (
    AMOUNT_MAX,
    CODE_MAX,
    LEDGER_MAX,
    TIMEOUT_S_MAX,
    USER_DATA_32_MAX,
    USER_DATA_64_MAX,
    Account,
    AccountBalance,
    AccountFlags,
    Transfer,
    TransferFlags,
)
from kanjo.platform.schemas import Id, StrictInt

TransferFlagName = Literal[
    "linked", "pending", "post_pending_transfer", "void_pending_transfer", "balancing_debit",
    "balancing_credit", "closing_debit", "closing_credit",
]
AccountFlagName = Literal["linked", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits", "history"]
_ACCOUNT_FLAG_NAMES = [*AccountFlagName.__args__, "closed"]  # type: ignore[attr-defined]


def transfer_flags_to_int(names: list[str]) -> int:
    value = 0
    for name in names:
        value |= TransferFlags[name.upper()]
    return int(value)


def flags_to_names(value: int, enum: type[TransferFlags] | type[AccountFlags]) -> list[str]:
    return [m.name.lower() for m in enum if m.value and value & m.value]  # type: ignore[union-attr]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Strict):
    id: Id
    ledger: StrictInt = Field(ge=1, le=LEDGER_MAX, description="ISO 4217 numeric currency code: 392 = JPY")
    code: StrictInt = Field(ge=1, le=CODE_MAX, description="the account's kind in the chart of accounts")
    flags: list[AccountFlagName] = Field(default_factory=list, max_length=8)
    user_data_128: Id | None = None
    user_data_64: StrictInt = Field(default=0, ge=0, le=USER_DATA_64_MAX)
    user_data_32: StrictInt = Field(default=0, ge=0, le=USER_DATA_32_MAX)

    def to_domain(self) -> Account:
        flags = 0
        for name in self.flags:
            flags |= AccountFlags[name.upper()]
        return Account(id=self.id, ledger=self.ledger, code=self.code, flags=int(flags),
                       user_data_128=self.user_data_128 or 0, user_data_64=self.user_data_64,
                       user_data_32=self.user_data_32)


class TransferIn(_Strict):
    id: Id
    debit_account_id: Id | None = None
    credit_account_id: Id | None = None
    amount: StrictInt = Field(default=0, ge=0, le=AMOUNT_MAX, description="integer minor units (yen for JPY)")
    ledger: StrictInt = Field(default=0, ge=0, le=LEDGER_MAX)
    code: StrictInt = Field(default=0, ge=0, le=CODE_MAX)
    flags: list[TransferFlagName] = Field(default_factory=list, max_length=8)
    pending_id: Id | None = None
    timeout: StrictInt = Field(default=0, ge=0, le=TIMEOUT_S_MAX, description="seconds a pending hold lives")
    user_data_128: Id | None = None
    user_data_64: StrictInt = Field(default=0, ge=0, le=USER_DATA_64_MAX)
    user_data_32: StrictInt = Field(default=0, ge=0, le=USER_DATA_32_MAX)
    business_date: Annotated[dt.date | None, Field(strict=True, description="YYYY-MM-DD")] = None

    def to_domain(self) -> Transfer:
        return Transfer(
            id=self.id, debit_account_id=self.debit_account_id or 0,
            credit_account_id=self.credit_account_id or 0, amount=self.amount, ledger=self.ledger,
            code=self.code, flags=transfer_flags_to_int(list(self.flags)), pending_id=self.pending_id or 0,
            timeout=self.timeout, user_data_128=self.user_data_128 or 0, user_data_64=self.user_data_64,
            user_data_32=self.user_data_32, business_date=self.business_date,
        )


class CreateAccountsIn(_Strict):
    accounts: list[AccountIn] = Field(min_length=1, max_length=EVENTS_PER_BATCH_MAX,
                                      description=f"at most {EVENTS_PER_BATCH_MAX} events")


class CreateTransfersIn(_Strict):
    transfers: list[TransferIn] = Field(min_length=1, max_length=EVENTS_PER_BATCH_MAX,
                                        description=f"at most {EVENTS_PER_BATCH_MAX} events")


class LookupIn(_Strict):
    ids: list[Id] = Field(min_length=1, max_length=LOOKUP_IDS_MAX)


class AccountResultOut(BaseModel):
    id: Id
    result: str
    timestamp: int


class TransferResultOut(BaseModel):
    id: Id
    result: str
    timestamp: int
    amount: int


class AccountOut(BaseModel):
    id: Id
    ledger: int
    code: int
    flags: list[str]
    user_data_128: Id
    user_data_64: int
    user_data_32: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    timestamp: int

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls.model_construct(  # ids are ints inside: no input validation (Id parses UUID text only)
            id=a.id, ledger=a.ledger, code=a.code, flags=flags_to_names(a.flags, AccountFlags),
            user_data_128=a.user_data_128, user_data_64=a.user_data_64, user_data_32=a.user_data_32,
            debits_pending=a.debits_pending, debits_posted=a.debits_posted,
            credits_pending=a.credits_pending, credits_posted=a.credits_posted, timestamp=a.timestamp)


class TransferOut(BaseModel):
    id: Id
    debit_account_id: Id
    credit_account_id: Id
    amount: int
    ledger: int
    code: int
    flags: list[str]
    pending_id: Id | None
    timeout: int
    user_data_128: Id
    user_data_64: int
    user_data_32: int
    business_date: dt.date | None
    timestamp: int
    pending_status: str | None = None

    @classmethod
    def of(cls, t: Transfer, pending_status: str | None = None) -> TransferOut:
        return cls.model_construct(  # as AccountOut.of
            id=t.id, debit_account_id=t.debit_account_id, credit_account_id=t.credit_account_id,
            amount=t.amount, ledger=t.ledger, code=t.code, flags=flags_to_names(t.flags, TransferFlags),
            pending_id=t.pending_id or None, timeout=t.timeout, user_data_128=t.user_data_128,
            user_data_64=t.user_data_64, user_data_32=t.user_data_32, business_date=t.business_date,
            timestamp=t.timestamp, pending_status=pending_status)


class BalanceOut(BaseModel):
    timestamp: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @classmethod
    def of(cls, b: AccountBalance) -> BalanceOut:
        return cls(timestamp=b.timestamp, debits_pending=b.debits_pending, debits_posted=b.debits_posted,
                   credits_pending=b.credits_pending, credits_posted=b.credits_posted)
