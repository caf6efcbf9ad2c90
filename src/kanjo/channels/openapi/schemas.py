"""The open API's HTTP shapes: providers' request bodies (validated by the channel itself, after authentication), the
bank's operations and customers' bodies (validated at the edge), and the answers as documented in the OpenAPI
schema."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from kanjo.channels.openapi.limits import (
    CLIENT_BURST_MAX,
    CLIENT_DAILY_QUOTA_MAX,
    CLIENT_RATE_PER_S_MAX,
    TRANSFER_AMOUNT_MAX,
    TRANSFER_DAILY_AMOUNT_MAX,
)
from kanjo.channels.openapi.model import Scope
from kanjo.platform.schemas import Id

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _not_zero(number: str) -> str:
    if int(number) == 0:
        raise ValueError("account numbers start at 0000001")
    return number


ACTOR = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
BranchCode = Annotated[str, Field(pattern=r"^[0-9]{3}$", description="支店番号, 3 digits")]
AccountNumber = Annotated[str, Field(pattern=r"^[0-9]{7}$", description="口座番号, 7 digits (not 0000000)"),
                          AfterValidator(_not_zero)]
Scopes = Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
Actor = Annotated[str, Field(pattern=ACTOR, description="who does it (an operator id)")]
Reason = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- providers' bodies ---------------------------------------------------------------------------------------------

class ConsentIn(_Strict):
    """A consent asked of the customer who holds the account."""

    branch_code: BranchCode
    account_number: AccountNumber
    scopes: Scopes
    expires_at: AwareDatetime = Field(description="when the consent ends (at most 180 days ahead)")
    transfer_max_minor: Annotated[int, Field(strict=True, ge=1, le=TRANSFER_AMOUNT_MAX)] | None = Field(
        default=None, description="with the transfer scope: the most one transfer may move (yen)")
    daily_transfer_max_minor: Annotated[int, Field(strict=True, ge=1, le=TRANSFER_DAILY_AMOUNT_MAX)] | None = Field(
        default=None, description="with the transfer scope: the most the consent's transfers may move per JST day")


class TransferIn(_Strict):
    """A transfer from the consented account (in the path) to another account of this bank."""

    to_branch_code: BranchCode
    to_account_number: AccountNumber
    amount_minor: Annotated[int, Field(strict=True, ge=1, le=TRANSFER_AMOUNT_MAX, description="yen")]


# -- the bank's and the customer's bodies ------------------------------------------------------------------------

class ClientIn(_Strict):
    request_id: Id = Field(description="chosen by the operator: a retry registers nothing more")
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE)]
    registration_number: Annotated[str, Field(min_length=1, max_length=40, pattern=PRINTABLE,
                                              description="電子決済等代行業者の登録番号: 関東財務局長（電代）第1号")]
    scopes: Scopes
    rate_per_s: Annotated[int, Field(strict=True, ge=1, le=CLIENT_RATE_PER_S_MAX)] = 5
    burst: Annotated[int, Field(strict=True, ge=1, le=CLIENT_BURST_MAX)] = 10
    daily_quota: Annotated[int, Field(strict=True, ge=1, le=CLIENT_DAILY_QUOTA_MAX)] = 10_000
    by: Actor


class ChangeIn(_Strict):
    by: Actor
    reason: Reason


class LimitsIn(_Strict):
    rate_per_s: Annotated[int, Field(strict=True, ge=1, le=CLIENT_RATE_PER_S_MAX)]
    burst: Annotated[int, Field(strict=True, ge=1, le=CLIENT_BURST_MAX)]
    daily_quota: Annotated[int, Field(strict=True, ge=1, le=CLIENT_DAILY_QUOTA_MAX)]
    by: Actor
    reason: Reason


class RotateIn(_Strict):
    request_id: Id
    by: Actor
    reason: Reason


class IntrospectIn(_Strict):
    token: Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]


class CardIn(_Strict):
    """The customer's own credential: the account's cash card and its PIN (as at an ATM)."""

    card_number: Annotated[str, Field(pattern=r"^[0-9]{16}$")]
    pin: Annotated[str, Field(pattern=r"^[0-9]{4}$")]


# -- answers -----------------------------------------------------------------------------------------------------

class OAuthErrorOut(BaseModel):
    """Every refusal of the provider-facing API (RFC 6749 §5.2 shape)."""

    model_config = ConfigDict(extra="allow")
    error: str
    error_description: str


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class AccountOut(BaseModel):
    branch_code: str
    account_number: str


class ConsentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    consent_id: str
    client_id: str
    status: Literal["pending", "active", "revoked", "superseded", "expired"]
    account: AccountOut
    scopes: list[str]
    transfer_max_minor: int | None
    daily_transfer_max_minor: int | None
    requested_at: str
    expires_at: str
    authorised_at: str | None
    revoked_at: str | None
    revoked_by: str | None


class BalanceOut(BaseModel):
    account: AccountOut
    currency: Literal["JPY"]
    balance_minor: int
    available_minor: int
    as_of: str


class StatementLineOut(BaseModel):
    business_date: str
    description: str
    deposit_minor: int
    withdrawal_minor: int
    balance_minor: int
    pending: bool


class StatementOut(BaseModel):
    account: AccountOut
    currency: Literal["JPY"]
    from_date: str
    to_date: str
    lines: list[StatementLineOut]
    next_cursor: str | None


class TransferOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    transfer_id: str
    status: Literal["processing", "completed", "refused"]
    amount_minor: int


class ClientOut(BaseModel):
    client_id: str
    name: str
    registration_number: str
    scopes: list[str]
    status: Literal["active", "suspended", "revoked"]
    rate_per_s: int
    burst: int
    daily_quota: int
    created_at: dt.datetime
    updated_at: dt.datetime


class IssuedClientOut(ClientOut):
    client_secret: str | None = Field(description="shown on the first answer only; a retry answers null")
    replayed: bool


class IntrospectionOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    active: bool


class AccessLogOut(BaseModel):
    entries: list[dict[str, Any]]
    next_before_id: int | None
