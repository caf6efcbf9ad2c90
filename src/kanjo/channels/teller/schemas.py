"""The teller channel's HTTP shapes, validated at the edge (a bad field is a 422 naming it). A request's `content` is
its body without the request id, ids written in canonical form, so that a retry and an approval compare exactly."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kanjo.channels.teller.limits import AMOUNT_MAX_MINOR, PASSWORD_CHARS_MAX, REQUEST_ID_CHARS_MAX
from kanjo.channels.teller.model import BRANCH_CODE_PATTERN, OPERATOR_ID_PATTERN, TERMINAL_ID_PATTERN
from kanjo.platform.http import UUID_PATTERN

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (a NUL cannot be stored, none can be shown)
REQUEST_ID_PATTERN = r"^[0-9A-Za-z-]+$"
RequestId = Annotated[str, Field(min_length=1, max_length=REQUEST_ID_CHARS_MAX, pattern=REQUEST_ID_PATTERN,
                                 description="the client's id of this request: a UUID, or the terminal id and its"
                                 " sequence number (T0012-42); a retry repeats it")]
Uuid = Annotated[str, Field(pattern=UUID_PATTERN), AfterValidator(lambda v: str(uuid.UUID(v)))]
Amount = Annotated[int, Field(strict=True, gt=0, le=AMOUNT_MAX_MINOR, description="yen")]
Reason = Annotated[str, Field(min_length=1, max_length=120, pattern=PRINTABLE)]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
OperatorId = Annotated[str, Field(pattern=OPERATOR_ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestIn(_Strict):
    request_id: RequestId

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"request_id"})


class AccountRef(_Strict):
    branch_code: str = Field(pattern=BRANCH_CODE_PATTERN)
    account_number: str = Field(pattern=r"^[0-9]{7}$")


# -- sessions ---------------------------------------------------------------------------------------------------


class SignOnIn(_Strict):
    operator_id: OperatorId
    password: str = Field(min_length=1, max_length=PASSWORD_CHARS_MAX)
    terminal_id: str = Field(pattern=TERMINAL_ID_PATTERN, description="the teller terminal (端末) signing on")


class PasswordChangeIn(_Strict):
    current_password: str = Field(min_length=1, max_length=PASSWORD_CHARS_MAX)
    new_password: str = Field(min_length=1, max_length=PASSWORD_CHARS_MAX)


class OperatorOut(BaseModel):
    operator_id: str
    name: str
    branch_code: str
    role: Literal["teller", "supervisor", "auditor"]
    active: bool
    locked: bool


class SessionOut(BaseModel):
    token: str | None = Field(default=None, description="the bearer token: returned once, at sign-on")
    operator: OperatorOut
    terminal_id: str
    signed_on_at: str
    expires_at: str


# -- customers --------------------------------------------------------------------------------------------------


class ContactIn(_Strict):
    phone: str = Field(min_length=1, max_length=20, pattern=PRINTABLE)
    email: Annotated[str, Field(max_length=254, pattern=PRINTABLE)] | None = None
    postal_code: str = Field(min_length=1, max_length=10, pattern=PRINTABLE)
    address: Text


class RegisterCustomerIn(RequestIn):
    customer_kind: Literal["individual", "corporate"]
    name_kanji: Annotated[str, Field(min_length=1, max_length=60, pattern=PRINTABLE)]
    name_kana: Annotated[str, Field(min_length=1, max_length=60, pattern=PRINTABLE)]
    birth_date: dt.date | None = None
    registration_date: dt.date | None = None
    contact: ContactIn


class VerifyIdentityIn(RequestIn):
    customer_id: Uuid
    status: Literal["verified", "expired", "unverified"] = "verified"
    verified_on: dt.date | None = Field(default=None, description="the day the documents were checked (verified)")


class ChangeContactIn(RequestIn):
    customer_id: Uuid
    contact: ContactIn


# -- deposits and time deposits ---------------------------------------------------------------------------------


class OpenAccountIn(RequestIn):
    customer_id: Uuid
    subject: Literal["ordinary", "sogo", "current"] = "ordinary"
    branch_code: str | None = Field(default=None, pattern=BRANCH_CODE_PATTERN,
                                    description="default: the operator's branch")


class CashIn(RequestIn):
    account: AccountRef
    amount_minor: Amount


class TransferIn(RequestIn):
    from_account: AccountRef
    to_account: AccountRef
    amount_minor: Amount


class TimeDepositIn(RequestIn):
    account: AccountRef = Field(description="the customer's ordinary account that funds it and is paid at maturity")
    amount_minor: Amount
    term_months: Annotated[int, Field(strict=True, ge=1, le=120)]
    instruction: Literal["renew_principal", "renew_principal_and_interest", "pay_out"] = \
        "renew_principal_and_interest"


class AccountActionIn(RequestIn):
    account: AccountRef
    reason: Reason


# -- cards ------------------------------------------------------------------------------------------------------


class CardActionIn(RequestIn):
    card_id: Uuid
    reason: Reason


# -- operators --------------------------------------------------------------------------------------------------


class RegisterOperatorIn(RequestIn):
    operator_id: OperatorId
    name: Annotated[str, Field(min_length=1, max_length=60, pattern=PRINTABLE)]
    role: Literal["teller", "supervisor", "auditor"]


class ResetPasswordIn(RequestIn):
    operator_id: OperatorId


class DeactivateOperatorIn(RequestIn):
    operator_id: OperatorId
    reason: Reason


# -- checking ---------------------------------------------------------------------------------------------------


class ApproveIn(_Strict):
    content_sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                                description="the digest of the content the checker reviewed (from the request)")


class RejectIn(_Strict):
    reason: Reason


class WithdrawIn(_Strict):
    reason: Reason = "withdrawn by the maker"


class RequestOut(BaseModel):
    """A teller request as it stands; a refused one also carries `error` and `message`."""

    model_config = ConfigDict(extra="allow")
    request_id: str
    kind: str
    state: Literal["pending", "executing", "ready", "executed", "refused", "rejected", "withdrawn", "expired"]
    approval: Literal["amount_over_threshold", "sensitive"] | None
    maker_id: str
    checker_id: str | None
    branch_code: str
    amount_minor: int | None
    targets: list[str]
    content: dict[str, Any]
    content_sha256: str
    result: dict[str, Any] | None
    replayed: bool = False
