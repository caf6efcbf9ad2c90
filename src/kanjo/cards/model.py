"""Cash cards (キャッシュカード): numbers, expiry, PINs and their verification value, the card state machine, and the
ordered reasons a card is refused at an ATM.

Pure standard library. Stated rules (a banker should find each one here, not in the handlers):
- A card number is 16 digits: the issuer prefix (6), a serial from a sequence (9, never reused) and a Luhn check
  digit. Reads show only its last four digits.
- A card is valid through the last day of the month five years after the month it was issued in.
- A PIN is 4 ASCII digits; all-same digits, runs (1234, 9876) and the holder's birth date (MMDD, YYYY) are refused.
  Only a keyed verification value is stored: HMAC-SHA256 under the bank's PIN key over (card number, PIN).
- At an ATM the first failing check wins: unknown card; lost, stolen, fraud suspected (the card is retained);
  expired; cancelled; PIN locked (retained); wrong PIN. The wrong PIN that reaches the try limit locks the card
  and retains it. A cash deposit to one's own card needs no PIN, so a PIN lock does not refuse it.
- The daily ATM withdrawal limit (1日の引出限度額) is ¥500,000 unless the customer sets another at a teller,
  in units of ¥10,000 up to the bank's maximum.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import hashlib
import hmac
import itertools
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
ISSUER_PREFIX = "639212"  # the bank's issuer identification number (fictional)
SERIAL_DIGITS = 9
CARD_NUMBER_DIGITS = 16
PIN_DIGITS = 4
EXPIRY_YEARS = 5
DAILY_LIMIT_DEFAULT_MINOR = 500_000
DAILY_LIMIT_STEP_MINOR = 10_000  # set in 万円 on the teller's form
PIN_KEY_BYTES_MIN = 32  # an HMAC-SHA256 key shorter than its output weakens it
PIN_VALUE_CONTEXT = b"kanjo/card-pin/v1"  # domain separation: this key's MACs mean "PIN of a card", nothing else
MASK_VISIBLE_DIGITS = 4
ACTOR_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
CUSTOMER = "customer"  # the actor of changes the card holder makes (a PIN change at an ATM)

_DIGITS = frozenset("0123456789")


class Status(enum.StrEnum):
    ACTIVE = "active"
    LOST = "lost"  # 紛失届: refused and retained until found or replaced
    STOLEN = "stolen"  # 盗難届
    FRAUD_SUSPECTED = "fraud_suspected"  # 不正利用の疑い (ops)
    CANCELLED = "cancelled"  # 解約・再発行済: final; the number is never used again


class Action(enum.StrEnum):
    REPORT_LOST = "report_lost"
    REPORT_STOLEN = "report_stolen"
    REPORT_FRAUD = "report_fraud"
    FOUND = "found"
    UNLOCK_PIN = "unlock_pin"
    CHANGE_PIN = "change_pin"
    CHANGE_LIMIT = "change_limit"
    CANCEL = "cancel"
    REISSUE = "reissue"


# Events that no action causes: a card issued, a PIN locked by wrong tries.
ISSUED = "issued"
PIN_LOCKED = "pin_locked"

_BLOCKED = (Status.LOST, Status.STOLEN, Status.FRAUD_SUSPECTED)
TRANSITIONS: dict[tuple[Action, Status], Status] = {
    (Action.REPORT_LOST, Status.ACTIVE): Status.LOST,
    (Action.REPORT_STOLEN, Status.ACTIVE): Status.STOLEN,
    (Action.REPORT_STOLEN, Status.LOST): Status.STOLEN,  # the lost card turns out to have been stolen
    (Action.REPORT_FRAUD, Status.ACTIVE): Status.FRAUD_SUSPECTED,
    (Action.REPORT_FRAUD, Status.LOST): Status.FRAUD_SUSPECTED,
    (Action.REPORT_FRAUD, Status.STOLEN): Status.FRAUD_SUSPECTED,
    (Action.FOUND, Status.LOST): Status.ACTIVE,  # only a lost card comes back; a stolen one is replaced
    (Action.UNLOCK_PIN, Status.ACTIVE): Status.ACTIVE,
    (Action.CHANGE_PIN, Status.ACTIVE): Status.ACTIVE,
    **{(Action.CHANGE_LIMIT, s): s for s in (Status.ACTIVE, *_BLOCKED)},  # a blocked card keeps its setting
    **{(Action.CANCEL, s): Status.CANCELLED for s in (Status.ACTIVE, *_BLOCKED)},
    **{(Action.REISSUE, s): Status.CANCELLED for s in (Status.ACTIVE, *_BLOCKED)},  # the old card; a new one is issued
}

_ACTION_WORDS = {
    Action.REPORT_LOST: "report as lost", Action.REPORT_STOLEN: "report as stolen",
    Action.REPORT_FRAUD: "mark as fraud suspected", Action.FOUND: "report as found",
    Action.UNLOCK_PIN: "unlock the PIN of", Action.CHANGE_PIN: "change the PIN of",
    Action.CHANGE_LIMIT: "change the daily limit of", Action.CANCEL: "cancel", Action.REISSUE: "reissue",
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, status: Status) -> None:
        self.action = action
        self.status = status
        super().__init__(f"cannot {_ACTION_WORDS[action]} a card that is {status.value.replace('_', ' ')}")


class Refused(Exception):
    """A business rule refused the request; `code` is machine-readable. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class RefusalCode(enum.StrEnum):
    """Why a card is refused at an ATM, in the order the checks run (the first failing check wins)."""

    UNKNOWN_CARD = "unknown_card"
    CARD_LOST = "card_lost"
    CARD_STOLEN = "card_stolen"
    FRAUD_SUSPECTED = "fraud_suspected"
    CARD_EXPIRED = "card_expired"
    CARD_CANCELLED = "card_cancelled"
    PIN_LOCKED = "pin_locked"
    WRONG_PIN = "wrong_pin"


INVALID_PIN = "invalid_pin"  # not 4 digits: bad input, checked before anything else and never counted
# Business rules that keep the card in the machine (DESIGN §1.7: only these retain, never a system error).
RETAINED = frozenset({RefusalCode.CARD_LOST, RefusalCode.CARD_STOLEN, RefusalCode.FRAUD_SUSPECTED,
                      RefusalCode.PIN_LOCKED})
_BLOCKED_CODES = {Status.LOST: RefusalCode.CARD_LOST, Status.STOLEN: RefusalCode.CARD_STOLEN,
                  Status.FRAUD_SUSPECTED: RefusalCode.FRAUD_SUSPECTED}


class CardRefused(Exception):
    """The card may not be used; `retain` says whether the ATM keeps it."""

    def __init__(self, code: str, message: str, retain: bool) -> None:
        self.code = code
        self.retain = retain
        super().__init__(message)


class DailyLimitExceeded(CardRefused):
    """The withdrawal would pass the card's daily ATM limit: refused for this amount, the card returned (it is a
    `CardRefused`, so the ATM channel answers it like any other refusal of the card); `remaining_minor` is what
    may still be withdrawn today."""

    def __init__(self, limit_minor: int, remaining_minor: int) -> None:
        self.limit_minor = limit_minor
        self.remaining_minor = remaining_minor
        super().__init__("daily_limit_exceeded", f"the card's daily ATM withdrawal limit is ¥{limit_minor:,}:"
                         f" ¥{remaining_minor:,} remains today", False)


def transition(status: Status, action: Action) -> Status:
    target = TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalTransition(action, status)
    return target


# -- numbers -----------------------------------------------------------------------------------------

def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` + digit pass the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # the digit left of the check digit is doubled, then every other one
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def is_card_number(number: object) -> bool:
    """16 ASCII digits of our issuer with a right check digit."""
    return (type(number) is str and len(number) == CARD_NUMBER_DIGITS and set(number) <= _DIGITS
            and number.startswith(ISSUER_PREFIX) and luhn_check_digit(number[:-1]) == number[-1])


def card_number_of(serial: int) -> str:
    """The card number a serial gives; each serial once, so no number is ever reused."""
    if not 1 <= serial < 10 ** SERIAL_DIGITS:
        raise ValueError(f"a card serial has {SERIAL_DIGITS} digits, not {serial}")
    body = f"{ISSUER_PREFIX}{serial:0{SERIAL_DIGITS}d}"
    return body + luhn_check_digit(body)


def mask_card_number(number: str) -> str:
    """What reads, logs and receipts show: the last four digits only."""
    return "*" * (len(number) - MASK_VISIBLE_DIGITS) + number[-MASK_VISIBLE_DIGITS:]


def expiry_of(issued_on: dt.date) -> dt.date:
    """The last day of the month five years after the month of issue."""
    year = issued_on.year + EXPIRY_YEARS
    return dt.date(year, issued_on.month, calendar.monthrange(year, issued_on.month)[1])


def local_date_of(at: dt.datetime) -> dt.date:
    """The JST calendar date of an aware instant: the card's printed expiry is read on the Japanese calendar."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the time must carry a time zone")
    return at.astimezone(JST).date()


# -- PINs ---------------------------------------------------------------------------------------------

def is_pin(pin: object) -> bool:
    """4 ASCII digits (str.isdigit would also take full-width and other scripts' digits)."""
    return type(pin) is str and len(pin) == PIN_DIGITS and set(pin) <= _DIGITS


def pin_weakness(pin: str, birth_date: dt.date | None = None) -> str | None:
    """Why a (well-formed) PIN is too easy to guess, or None."""
    if len(set(pin)) == 1:
        return "all four digits are the same"
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if steps == {1}:
        return "the digits run upwards (like 1234)"
    if steps == {-1}:
        return "the digits run downwards (like 9876)"
    if birth_date is not None:
        if pin == f"{birth_date.month:02d}{birth_date.day:02d}":
            return "it is the holder's birthday (MMDD)"
        if pin == f"{birth_date.year:04d}":
            return "it is the holder's year of birth"
    return None


def check_new_pin(pin: object, birth_date: dt.date | None = None) -> str:
    """A PIN a card may be given; refused when malformed or weak (the reason says which rule)."""
    if not is_pin(pin):
        raise Refused(INVALID_PIN, f"a PIN is {PIN_DIGITS} digits 0-9")
    assert isinstance(pin, str)
    weakness = pin_weakness(pin, birth_date)
    if weakness is not None:
        raise Refused("weak_pin", f"choose another PIN: {weakness}")
    return pin


def check_pin_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < PIN_KEY_BYTES_MIN:
        raise ValueError(f"the card PIN key must be at least {PIN_KEY_BYTES_MIN} bytes")


def pin_verification_value(key: bytes, card_number: str, pin: str) -> bytes:
    """HMAC-SHA256 under the PIN key over (card number, PIN): what is stored instead of the PIN (ADR 0005)."""
    message = b"\x00".join((PIN_VALUE_CONTEXT, card_number.encode("ascii"), pin.encode("ascii")))
    return hmac.new(key, message, hashlib.sha256).digest()


def pin_matches(key: bytes, card_number: str, pin: str, stored: bytes) -> bool:
    """Compared in constant time, so the answer's timing says nothing about how much of the value matched."""
    return hmac.compare_digest(pin_verification_value(key, card_number, pin), stored)


# -- use at an ATM -----------------------------------------------------------------------------------

def card_refusal(status: Status, expires_on: dt.date, today: dt.date, pin_failures: int, pin_tries_max: int,
                 *, pin_needed: bool) -> CardRefused | None:
    """Why the card may not be used today, before its PIN is compared (first failing check wins), or None."""
    code = _BLOCKED_CODES.get(status)
    if code is not None:
        return CardRefused(code, f"the card is reported {status.value.replace('_', ' ')}: it is kept", True)
    if today > expires_on:
        return CardRefused(RefusalCode.CARD_EXPIRED, f"the card expired on {expires_on}: a new one is issued at a"
                           " branch", False)
    if status is Status.CANCELLED:
        return CardRefused(RefusalCode.CARD_CANCELLED, "the card is cancelled", False)
    if pin_needed and pin_failures >= pin_tries_max:
        return CardRefused(RefusalCode.PIN_LOCKED, "the PIN is locked after too many wrong tries: the card is kept;"
                           " a branch unlocks it after checking the holder's identity", True)
    return None


def wrong_pin(pin_failures: int, pin_tries_max: int) -> CardRefused:
    """The answer to a wrong PIN once it is counted: tries left, or locked (and kept) on the try that hit the limit."""
    left = pin_tries_max - pin_failures
    if left <= 0:
        return CardRefused(RefusalCode.PIN_LOCKED, f"the PIN was wrong {pin_tries_max} times in a row: the card is"
                           " locked and kept; a branch unlocks it after checking the holder's identity", True)
    return CardRefused(RefusalCode.WRONG_PIN, f"wrong PIN: {left} {'try' if left == 1 else 'tries'} left before the"
                       " card is locked", False)


# -- teller input ---------------------------------------------------------------------------------------

def check_daily_limit(limit_minor: object, maximum_minor: int) -> int:
    if type(limit_minor) is not int or not 0 <= limit_minor <= maximum_minor:
        raise Refused("invalid_daily_limit", f"a daily ATM withdrawal limit is ¥0 to ¥{maximum_minor:,}")
    if limit_minor % DAILY_LIMIT_STEP_MINOR:
        raise Refused("invalid_daily_limit", f"a daily ATM withdrawal limit is set in units of"
                      f" ¥{DAILY_LIMIT_STEP_MINOR:,}, not ¥{limit_minor:,}")
    return limit_minor


def check_amount(amount_minor: object) -> int:
    if type(amount_minor) is not int or amount_minor <= 0:
        raise Refused("invalid_amount", "an amount is a whole number of yen above zero")
    return amount_minor


def check_actor(by: object, chars_max: int) -> str:
    """Who made a change: an operator id, or "customer"."""
    if type(by) is not str or not 1 <= len(by) <= chars_max or not ACTOR_PATTERN.match(by):
        raise Refused("invalid_actor", f"`by` is an operator id or \"{CUSTOMER}\": 1 to {chars_max} letters, digits"
                      " or ._@-")
    return by


def check_reason(reason: object, chars_max: int) -> str:
    """Text for a teller's screen: no control characters or lone surrogates (PostgreSQL text cannot hold NUL, nor
    UTF-8 a surrogate)."""
    if (type(reason) is not str or not reason.strip() or len(reason) > chars_max
            or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in reason)):
        raise Refused("invalid_reason", f"a reason is 1 to {chars_max} characters, none of them control characters")
    return reason


# -- what the other contexts and reads see ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CardHolder:
    """Whom a card authenticates: the answer to a card (and PIN) accepted at an ATM."""

    card_id: int
    account_id: int
    customer_id: int
    card_number_masked: str


@dataclass(frozen=True, slots=True)
class Card:
    """A card as reads show it: never its full number, nothing about its PIN."""

    card_id: int
    account_id: int
    customer_id: int
    card_number_masked: str
    status: Status
    issued_on: dt.date
    expires_on: dt.date
    daily_limit_minor: int
    replaces_card_id: int | None  # the card this one replaced (再発行)
    cancelled_on: dt.date | None


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """The answer to an issue or a reissue: the full number goes to card production (券面・磁気ストライプ), once."""

    card: Card
    card_number: str
    replayed: bool  # True when this answers a retry of a request already carried out


@dataclass(frozen=True, slots=True)
class CardEvent:
    event_id: int
    card_id: int
    kind: str  # an Action's value, ISSUED or PIN_LOCKED
    status_after: Status
    by: str  # an operator id, "customer", or "atm" for a PIN locked by wrong tries
    reason: str
    at: dt.datetime
    business_date: dt.date


@dataclass(frozen=True, slots=True)
class PinChange:
    card_id: int
    card_number_masked: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class DailyReservation:
    """An amount counted against a card's daily ATM withdrawal limit for one business date."""

    request_id: int
    card_id: int
    business_date: dt.date
    amount_minor: int
    used_minor: int  # the card's usage that business date, now
    limit_minor: int  # the card's limit, now
    released: bool  # given back since (a voided withdrawal)
    replayed: bool

    @property
    def remaining_minor(self) -> int:
        return max(self.limit_minor - self.used_minor, 0)


@dataclass(frozen=True, slots=True)
class DailyRelease:
    request_id: int
    released_minor: int  # what this release (or the earlier one it replays) gave back
    replayed: bool
