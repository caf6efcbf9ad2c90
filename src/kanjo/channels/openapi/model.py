"""The open API's vocabulary and rules: scopes, the life of a provider client and of a customer's consent, and what
a call needs to be let through. Pure standard library; every rule a banker or a provider asks about is here.

Stated rules:
- A scope is one of `balance`, `statement`, `transfer`. A token's scopes are a subset of its client's; a consent's
  scopes are a subset of the token's that asked for it.
- A data or payment call needs all of: a live token of an active client, the scope in the token, and an active,
  unexpired consent of this client for this account that grants the scope. Any failing check refuses the call; the
  answer for an account without such a consent is the same whether or not the account exists.
- A consent is pending until the customer authorises it with the account's cash card and PIN (within
  `openapi_consent_authorise_within_s_max`), then active until it expires, is revoked (by the customer, the bank
  or the provider) or is superseded by a newer consent of the same client for the same account.
- A transfer consent names a per-transfer and a per-day maximum; the first failing check wins: the per-transfer
  maximum, then the day's (transfers processing or done on the same JST calendar day count).
- Days (quotas, the day's transfer maximum) are JST calendar days: providers run around the clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import math
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
# RFC 6749 §3.3: scope = scope-token *( SP scope-token ); scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
# 電子決済等代行業者 are registered by a Local Finance Bureau: 関東財務局長（電代）第1号.
REGISTRATION_NUMBER = re.compile(
    r"^(?:(?:北海道|東北|関東|東海|北陸|近畿|中国|四国|九州)財務局長|福岡財務支局長|沖縄総合事務局長)"
    r"（電代）第[1-9][0-9]{0,5}号$")


class Scope(enum.StrEnum):
    BALANCE = "balance"  # 残高照会
    STATEMENT = "statement"  # 入出金明細照会
    TRANSFER = "transfer"  # 振込・振替の指図 (transfer initiation)


ALL_SCOPES = frozenset(Scope)


class ClientStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # 業務停止: no token is issued or accepted until reactivated
    REVOKED = "revoked"  # 契約解除・登録取消: final


class ClientAction(enum.StrEnum):
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    REVOKE = "revoke"


CLIENT_TRANSITIONS: dict[tuple[ClientAction, ClientStatus], ClientStatus] = {
    (ClientAction.SUSPEND, ClientStatus.ACTIVE): ClientStatus.SUSPENDED,
    (ClientAction.REACTIVATE, ClientStatus.SUSPENDED): ClientStatus.ACTIVE,
    (ClientAction.REVOKE, ClientStatus.ACTIVE): ClientStatus.REVOKED,
    (ClientAction.REVOKE, ClientStatus.SUSPENDED): ClientStatus.REVOKED,
}


class ConsentStatus(enum.StrEnum):
    """As a consent is stored; `effective_status` adds the statuses time gives."""

    PENDING = "pending"  # waiting for the customer's authorisation
    ACTIVE = "active"
    REVOKED = "revoked"  # by the customer, the bank or the provider: final
    SUPERSEDED = "superseded"  # a newer consent of the same client for the same account was authorised: final
    EXPIRED = "expired"  # never stored: an active consent past its expiry, or a pending one never authorised in time


class RevokedBy(enum.StrEnum):
    CUSTOMER = "customer"
    BANK = "bank"
    PROVIDER = "provider"


class Invalid(Exception):
    """A request the rules refuse before anything happens; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class Refused(Exception):
    """A business rule refused the request; `code` is machine-readable. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class NotFound(Exception):
    """No client, consent or transfer with that id (for this caller)."""


class InvalidScope(Exception):
    """A scope that is malformed, unknown, or not granted (RFC 6749 `invalid_scope`)."""


class IllegalTransition(Exception):
    def __init__(self, what: str, action: str, status: str) -> None:
        self.action = action
        self.status = status
        super().__init__(f"cannot {action} a {what} that is {status}")


def client_transition(status: ClientStatus, action: ClientAction) -> ClientStatus:
    target = CLIENT_TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition("client", action.value, status.value)
    return target


# -- scopes --------------------------------------------------------------------------------------------------

def parse_scope(text: str | None) -> frozenset[Scope] | None:
    """The scopes of an RFC 6749 `scope` parameter (None when absent or empty: the client's own scopes apply)."""
    if text is None or text == "":
        return None
    tokens = text.split(" ")
    if any(not _SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("scope is a list of scope names separated by single spaces")
    unknown = sorted({t for t in tokens if t not in ALL_SCOPES})
    if unknown:
        raise InvalidScope(f"unknown scope {unknown[0]!r}: the scopes are {format_scopes(ALL_SCOPES)}")
    return frozenset(Scope(t) for t in tokens)


def format_scopes(scopes: frozenset[Scope] | set[Scope]) -> str:
    """The RFC 6749 form, in a stable order."""
    return " ".join(s.value for s in Scope if s in scopes)


def granted_scopes(requested: frozenset[Scope] | None, allowed: frozenset[Scope]) -> frozenset[Scope]:
    """What a token gets: the requested scopes when all are the client's, the client's own when none is asked."""
    if requested is None:
        return allowed
    missing = requested - allowed
    if missing:
        raise InvalidScope(f"the client is not allowed the scope {format_scopes(missing)!r}")
    return requested


# -- consents ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConsentTerms:
    """What a provider asks a customer to allow on one account."""

    scopes: frozenset[Scope]
    expires_at: dt.datetime
    transfer_max_minor: int | None
    daily_transfer_max_minor: int | None


def check_consent_terms(terms: ConsentTerms, token_scopes: frozenset[Scope], now: dt.datetime, *,
                        validity_days_max: int, transfer_max_minor: int, daily_transfer_max_minor: int) -> None:
    """Refuses terms a consent cannot have (first failing check wins), naming the field."""
    if not terms.scopes:
        raise Invalid("scopes", "a consent grants at least one scope")
    beyond = terms.scopes - token_scopes
    if beyond:
        raise Invalid("scopes", f"the token does not carry the scope {format_scopes(beyond)!r}")
    if terms.expires_at.tzinfo is None or terms.expires_at.utcoffset() is None:
        raise Invalid("expires_at", "expires_at needs a time zone")
    if terms.expires_at <= now:
        raise Invalid("expires_at", "expires_at is in the past")
    if terms.expires_at > now + dt.timedelta(days=validity_days_max):
        raise Invalid("expires_at", f"a consent lasts at most {validity_days_max} days")
    each, daily = terms.transfer_max_minor, terms.daily_transfer_max_minor
    if Scope.TRANSFER not in terms.scopes:
        if each is not None or daily is not None:
            raise Invalid("transfer_max_minor", "transfer maximums belong to a consent with the transfer scope")
        return
    if each is None or daily is None:
        raise Invalid("transfer_max_minor" if each is None else "daily_transfer_max_minor",
                      "a transfer consent names a per-transfer and a per-day maximum")
    if not 1 <= each <= transfer_max_minor:
        raise Invalid("transfer_max_minor", f"the per-transfer maximum is ¥1 to ¥{transfer_max_minor:,}")
    if not each <= daily <= daily_transfer_max_minor:
        raise Invalid("daily_transfer_max_minor",
                      f"the per-day maximum is at least the per-transfer maximum and at most ¥"
                      f"{daily_transfer_max_minor:,}")


def effective_status(status: ConsentStatus, expires_at: dt.datetime, authorise_by: dt.datetime,
                     now: dt.datetime) -> ConsentStatus:
    """The status a consent has now: an active one past its expiry, or a pending one past its authorisation
    window, is expired."""
    if status is ConsentStatus.ACTIVE and now >= expires_at:
        return ConsentStatus.EXPIRED
    if status is ConsentStatus.PENDING and (now >= authorise_by or now >= expires_at):
        return ConsentStatus.EXPIRED
    return status


@dataclass(frozen=True, slots=True)
class TransferRefusal:
    code: str
    message: str


def transfer_refusal(amount_minor: int, transfer_max_minor: int, daily_transfer_max_minor: int,
                     used_today_minor: int) -> TransferRefusal | None:
    """Whether the consent allows this amount now (first failing check wins); None when it does."""
    if amount_minor > transfer_max_minor:
        return TransferRefusal("exceeds_transfer_maximum", f"the consent allows at most ¥{transfer_max_minor:,}"
                                                           " per transfer")
    if used_today_minor + amount_minor > daily_transfer_max_minor:
        left = max(0, daily_transfer_max_minor - used_today_minor)
        return TransferRefusal("exceeds_daily_maximum", f"the consent allows ¥{daily_transfer_max_minor:,} a day:"
                                                        f" ¥{left:,} remains today")
    return None


# -- days ------------------------------------------------------------------------------------------------------

def jst_day(at: dt.datetime) -> dt.date:
    """The JST calendar day of an aware instant (quotas and the day's transfer maximum count by it)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the time must carry a time zone")
    return at.astimezone(JST).date()


def seconds_to_next_jst_day(at: dt.datetime) -> int:
    """Whole seconds until the next JST midnight (at least 1): when a spent daily quota comes back."""
    local = at.astimezone(JST)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), JST)
    return max(1, math.ceil((midnight - local).total_seconds()))


def iso(at: dt.datetime) -> str:
    """How the channel writes an instant: ISO 8601 in JST, whatever zone it was read in."""
    return at.astimezone(JST).isoformat()


def account_label(branch_code: str, account_number: int) -> str:
    return f"{branch_code}-{account_number:07d}"


def fingerprint(kind: str, fields: dict[str, object]) -> bytes:
    """What identifies a request's content, to tell a retry from a different request under the same key."""
    canonical = repr(sorted((k, str(v)) for k, v in fields.items()))
    return hashlib.sha256(f"{kind}|{canonical}".encode()).digest()
