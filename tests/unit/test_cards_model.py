"""Cash cards as a bank's card department reads them: the state machine, numbers, expiry, PINs and the order of
refusals at an ATM — pure, no database."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from kanjo.cards import DAILY_LIMIT_MAX, ISSUER_PREFIX, PIN_TRIES_MAX, RETAINED, RefusalCode
from kanjo.cards.model import (
    INVALID_PIN,
    Action,
    IllegalTransition,
    Refused,
    Status,
    card_number_of,
    card_refusal,
    check_actor,
    check_amount,
    check_daily_limit,
    check_new_pin,
    check_pin_key,
    check_reason,
    expiry_of,
    is_card_number,
    is_pin,
    local_date_of,
    luhn_check_digit,
    mask_card_number,
    pin_matches,
    pin_verification_value,
    pin_weakness,
    transition,
    wrong_pin,
)
from kanjo.kernel.limits import limits

A, LOST, STOLEN, FRAUD, CANCELLED = (Status.ACTIVE, Status.LOST, Status.STOLEN, Status.FRAUD_SUSPECTED,
                                     Status.CANCELLED)
KEY = bytes(range(32))

# Every (action, status) pair the card department allows, written out by hand; everything else is illegal.
ALLOWED = {
    (Action.REPORT_LOST, A): LOST,
    (Action.REPORT_STOLEN, A): STOLEN, (Action.REPORT_STOLEN, LOST): STOLEN,
    (Action.REPORT_FRAUD, A): FRAUD, (Action.REPORT_FRAUD, LOST): FRAUD, (Action.REPORT_FRAUD, STOLEN): FRAUD,
    (Action.FOUND, LOST): A,
    (Action.UNLOCK_PIN, A): A,
    (Action.CHANGE_PIN, A): A,
    (Action.CHANGE_LIMIT, A): A, (Action.CHANGE_LIMIT, LOST): LOST, (Action.CHANGE_LIMIT, STOLEN): STOLEN,
    (Action.CHANGE_LIMIT, FRAUD): FRAUD,
    (Action.CANCEL, A): CANCELLED, (Action.CANCEL, LOST): CANCELLED, (Action.CANCEL, STOLEN): CANCELLED,
    (Action.CANCEL, FRAUD): CANCELLED,
    (Action.REISSUE, A): CANCELLED, (Action.REISSUE, LOST): CANCELLED, (Action.REISSUE, STOLEN): CANCELLED,
    (Action.REISSUE, FRAUD): CANCELLED,
}


@pytest.mark.parametrize(("action", "status"), list(itertools.product(Action, Status)))
def test_every_transition_is_allowed_or_refused_as_the_table_says(action: Action, status: Status) -> None:
    expected = ALLOWED.get((action, status))
    if expected is None:
        with pytest.raises(IllegalTransition) as refused:
            transition(status, action)
        assert refused.value.action is action and refused.value.status is status
        assert status.value.replace("_", " ") in str(refused.value)
    else:
        assert transition(status, action) is expected


def test_a_cancelled_card_is_final_and_only_a_lost_card_is_found() -> None:
    assert all((action, CANCELLED) not in ALLOWED for action in Action)
    assert [s for s in Status if (Action.FOUND, s) in ALLOWED] == [LOST]
    assert str(IllegalTransition(Action.FOUND, STOLEN)) == "cannot report as found a card that is stolen"


# -- numbers -------------------------------------------------------------------------------------------

def test_luhn_check_digit_of_known_numbers() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the textbook example, 79927398713
    assert luhn_check_digit("453957876362148") == "6"
    assert luhn_check_digit("0") == "0"


def test_card_numbers_from_serials() -> None:
    first, last = card_number_of(1), card_number_of(999_999_999)
    assert first.startswith(ISSUER_PREFIX) and first[6:15] == "000000001" and len(first) == 16
    assert last[6:15] == "999999999"
    assert all(is_card_number(card_number_of(s)) for s in (1, 2, 10, 12_345_678, 999_999_999))
    assert len({card_number_of(s) for s in range(1, 2_000)}) == 1_999  # one number per serial
    for bad in (0, -1, 1_000_000_000):
        with pytest.raises(ValueError):
            card_number_of(bad)


def test_the_check_digit_catches_every_single_digit_error_and_adjacent_swap() -> None:
    number = card_number_of(31_415_926)
    for i, d in itertools.product(range(16), "0123456789"):
        if number[i] != d:
            assert not is_card_number(number[:i] + d + number[i + 1:]), (i, d)
    for i in range(15):
        swapped = number[:i] + number[i + 1] + number[i] + number[i + 2:]
        if swapped != number and {number[i], number[i + 1]} != {"0", "9"}:  # Luhn's one blind spot
            assert not is_card_number(swapped), i


@pytest.mark.parametrize("bad", ["", "1234", card_number_of(7)[:-1], card_number_of(7) + "0", "4539578763621486",
                                 "６" + card_number_of(7)[1:], None, 6392120000000070])
def test_what_is_not_a_card_number(bad: object) -> None:
    assert not is_card_number(bad)


def test_masking_shows_only_the_last_four_digits() -> None:
    number = card_number_of(123_456_789)
    masked = mask_card_number(number)
    assert masked == "************" + number[-4:] and len(masked) == 16
    assert ISSUER_PREFIX not in masked and "123456" not in masked


@pytest.mark.parametrize(("issued", "expires"), [
    (dt.date(2026, 2, 27), dt.date(2031, 2, 28)),
    (dt.date(2027, 2, 1), dt.date(2032, 2, 29)),  # a leap February five years on
    (dt.date(2028, 2, 29), dt.date(2033, 2, 28)),  # issued on a leap day
    (dt.date(2026, 12, 31), dt.date(2031, 12, 31)),
    (dt.date(2026, 4, 1), dt.date(2031, 4, 30)),
])
def test_a_card_expires_at_the_month_end_five_years_on(issued: dt.date, expires: dt.date) -> None:
    assert expiry_of(issued) == expires


def test_the_expiry_is_read_on_the_japanese_calendar() -> None:
    assert local_date_of(dt.datetime(2031, 2, 28, 15, 30, tzinfo=dt.UTC)) == dt.date(2031, 3, 1)  # 00:30 JST
    with pytest.raises(ValueError):
        local_date_of(dt.datetime(2031, 2, 28, 15, 30))


# -- PINs ----------------------------------------------------------------------------------------------

def test_every_same_digit_pin_and_every_run_is_weak() -> None:
    for d in "0123456789":
        assert pin_weakness(d * 4) == "all four digits are the same"
    for start in range(7):
        up = "".join(str(start + i) for i in range(4))
        assert pin_weakness(up) == "the digits run upwards (like 1234)", up
        assert pin_weakness(up[::-1]) == "the digits run downwards (like 9876)", up[::-1]
    weak = [p for p in (f"{n:04d}" for n in range(10_000)) if pin_weakness(p) is not None]
    assert len(weak) == 10 + 7 + 7  # nothing else is refused without a birth date


def test_a_pin_made_of_the_birth_date_is_weak() -> None:
    born = dt.date(1985, 3, 7)
    assert pin_weakness("0307", born) == "it is the holder's birthday (MMDD)"
    assert pin_weakness("1985", born) == "it is the holder's year of birth"
    assert pin_weakness("0307") is None and pin_weakness("1985") is None  # without the birth date, fine
    assert pin_weakness("0703", born) is None and pin_weakness("8503", born) is None
    with pytest.raises(Refused) as refused:
        check_new_pin("1985", born)
    assert refused.value.code == "weak_pin" and "year of birth" in str(refused.value)


@pytest.mark.parametrize("pin", ["2580", "1357", "7890", "1243", "0987", "4096"])
def test_ordinary_pins_are_accepted(pin: str) -> None:
    assert check_new_pin(pin, dt.date(1990, 6, 15)) == pin


@pytest.mark.parametrize("bad", ["123", "12345", "12a4", "１２３４", "٣٤٥٦", " 123", "1234\n", "", None, 1357])
def test_a_pin_is_four_ascii_digits(bad: object) -> None:
    assert not is_pin(bad)
    with pytest.raises(Refused) as refused:
        check_new_pin(bad)
    assert refused.value.code == INVALID_PIN


def test_the_pin_verification_value_is_keyed_and_bound_to_the_card() -> None:
    number, other = card_number_of(1), card_number_of(2)
    value = pin_verification_value(KEY, number, "2580")
    assert len(value) == 32 and value == pin_verification_value(KEY, number, "2580")
    assert value != pin_verification_value(KEY, number, "2581")
    assert value != pin_verification_value(KEY, other, "2580")  # the same PIN on two cards: two values
    assert value != pin_verification_value(bytes(32), number, "2580")  # another key: another value
    assert b"2580" not in value
    assert pin_matches(KEY, number, "2580", value) and not pin_matches(KEY, number, "0852", value)


def test_a_short_pin_key_is_refused() -> None:
    check_pin_key(KEY)
    for bad in (b"", b"x" * 31, "k" * 32):
        with pytest.raises(ValueError):
            check_pin_key(bad)  # type: ignore[arg-type]


# -- refusals at the ATM, in order ------------------------------------------------------------------------

TODAY = dt.date(2027, 5, 10)


def _expected(status: Status, expired: bool, locked: bool, pin_needed: bool) -> str | None:
    """The specification, in words: the first failing check wins."""
    blocked = {LOST: "card_lost", STOLEN: "card_stolen", FRAUD: "fraud_suspected"}
    if status in blocked:
        return blocked[status]
    if expired:
        return "card_expired"
    if status is CANCELLED:
        return "card_cancelled"
    if locked and pin_needed:
        return "pin_locked"
    return None


@pytest.mark.parametrize(("status", "expired", "locked", "pin_needed"),
                         list(itertools.product(Status, (False, True), (False, True), (False, True))))
def test_the_first_failing_check_wins(status: Status, expired: bool, locked: bool, pin_needed: bool) -> None:
    expires_on = TODAY - dt.timedelta(days=1) if expired else TODAY  # valid through its last day
    refusal = card_refusal(status, expires_on, TODAY, PIN_TRIES_MAX if locked else PIN_TRIES_MAX - 1, PIN_TRIES_MAX,
                           pin_needed=pin_needed)
    expected = _expected(status, expired, locked, pin_needed)
    assert (refusal.code if refusal else None) == expected
    if refusal is not None:
        assert refusal.retain is (refusal.code in RETAINED)


def test_the_codes_are_in_the_order_of_the_checks_and_only_business_rules_retain() -> None:
    assert [c.value for c in RefusalCode] == ["unknown_card", "card_lost", "card_stolen", "fraud_suspected",
                                              "card_expired", "card_cancelled", "pin_locked", "wrong_pin"]
    assert RETAINED == {RefusalCode.CARD_LOST, RefusalCode.CARD_STOLEN, RefusalCode.FRAUD_SUSPECTED,
                        RefusalCode.PIN_LOCKED}


def test_wrong_pins_count_down_then_lock_and_retain() -> None:
    answers = [wrong_pin(n, PIN_TRIES_MAX) for n in range(1, PIN_TRIES_MAX + 1)]
    assert [(a.code, a.retain) for a in answers] == [("wrong_pin", False), ("wrong_pin", False),
                                                     ("pin_locked", True)]
    assert "2 tries left" in str(answers[0]) and "1 try left" in str(answers[1])
    assert "locked" in str(answers[2])


def test_the_try_limit_and_daily_limit_are_named_limits_with_reasons() -> None:
    tries = limits.get("card_pin_consecutive_wrong_max")
    assert (tries.maximum, PIN_TRIES_MAX) == (3, 3) and "4-digit PIN" in tries.reason
    daily = limits.get("card_daily_withdrawal_limit_max_minor")
    assert (daily.maximum, DAILY_LIMIT_MAX, daily.unit) == (2_000_000, 2_000_000, "yen") and daily.reason


# -- teller input ----------------------------------------------------------------------------------------

def test_daily_limits_are_whole_steps_within_the_maximum() -> None:
    for good in (0, 10_000, 500_000, 2_000_000):
        assert check_daily_limit(good, DAILY_LIMIT_MAX) == good
    for bad in (-10_000, 2_010_000, 15_000, 1.0, "500000", True, None):
        with pytest.raises(Refused) as refused:
            check_daily_limit(bad, DAILY_LIMIT_MAX)
        assert refused.value.code == "invalid_daily_limit"


def test_amounts_actors_and_reasons() -> None:
    assert check_amount(1_000) == 1_000
    for bad in (0, -1, 1.5, True, "1000"):
        with pytest.raises(Refused):
            check_amount(bad)
    assert check_actor("customer", 64) == "customer" and check_actor("T0123.osaka", 64) == "T0123.osaka"
    for bad_actor in ("", "-x", "a b", "テラー", "x" * 65, None):
        with pytest.raises(Refused) as refused:
            check_actor(bad_actor, 64)
        assert refused.value.code == "invalid_actor"
    assert check_reason("本人より電話で紛失の届出　(24時間窓口)", 200)
    for bad_reason in ("", "   ", "x" * 201, "nul\x00", "bell\x07", "\ud800", None):
        with pytest.raises(Refused) as refused:
            check_reason(bad_reason, 200)
        assert refused.value.code == "invalid_reason"
