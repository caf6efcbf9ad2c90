"""The fee tariff as a teller would read it: the yen for each channel, day type, hour and amount band."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from kanjo.fees import (
    STANDARD_TARIFF,
    Channel,
    DayType,
    FeeContext,
    FeeImplausible,
    FeeQuote,
    Kind,
    NoTariffRule,
    Rule,
    Tariff,
    check_plausible,
    day_type_of,
    quote_fee,
)

BIZ, SAT, HOL = DayType.BUSINESS_DAY, DayType.SATURDAY, DayType.HOLIDAY


def fee(channel: Channel, kind: Kind, amount: int, day: DayType, hhmm: str) -> int:
    h, m = map(int, hhmm.split(":"))
    return quote_fee(STANDARD_TARIFF, FeeContext(channel, kind, amount, day, dt.time(h, m))).amount_minor


@pytest.mark.parametrize(("channel", "day", "hhmm", "yen"), [
    (Channel.ATM_OWN, BIZ, "10:00", 0),
    (Channel.ATM_OWN, BIZ, "08:45", 0),  # the free band starts at 08:45 …
    (Channel.ATM_OWN, BIZ, "08:44", 110),
    (Channel.ATM_OWN, BIZ, "17:59", 0),
    (Channel.ATM_OWN, BIZ, "18:00", 110),  # … and ends before 18:00
    (Channel.ATM_OWN, BIZ, "20:00", 110),
    (Channel.ATM_OWN, SAT, "10:00", 110),
    (Channel.ATM_OWN, HOL, "10:00", 110),
    (Channel.ATM_OTHER_BANK, BIZ, "10:00", 110),
    (Channel.ATM_OTHER_BANK, HOL, "10:00", 220),
    (Channel.ATM_CONVENIENCE, BIZ, "12:00", 110),
    (Channel.ATM_CONVENIENCE, BIZ, "22:00", 220),
    (Channel.ATM_CONVENIENCE, HOL, "12:00", 220),
    (Channel.TELLER, BIZ, "10:00", 0),
])
def test_cash_withdrawal_fees(channel: Channel, day: DayType, hhmm: str, yen: int) -> None:
    assert fee(channel, Kind.WITHDRAWAL, 10_000, day, hhmm) == yen


@pytest.mark.parametrize(("channel", "kind", "amount", "yen"), [
    (Channel.TELLER, Kind.TRANSFER_OTHER_BANK, 29_999, 660),
    (Channel.TELLER, Kind.TRANSFER_OTHER_BANK, 30_000, 880),
    (Channel.TELLER, Kind.TRANSFER_SAME_BANK, 10_000, 220),
    (Channel.TELLER, Kind.TRANSFER_SAME_BANK, 50_000, 440),
    (Channel.ATM_OWN, Kind.TRANSFER_OTHER_BANK, 10_000, 220),
    (Channel.ATM_OWN, Kind.TRANSFER_OTHER_BANK, 100_000, 330),
    (Channel.INTERNET, Kind.TRANSFER_OTHER_BANK, 29_999, 145),
    (Channel.INTERNET, Kind.TRANSFER_OTHER_BANK, 30_000, 229),
    (Channel.INTERNET, Kind.TRANSFER_SAME_BANK, 1_000_000, 0),
    (Channel.OPEN_API, Kind.TRANSFER_OTHER_BANK, 5_000, 145),
])
def test_transfer_fees_by_amount_band(channel: Channel, kind: Kind, amount: int, yen: int) -> None:
    assert fee(channel, kind, amount, BIZ, "11:00") == yen


def test_a_branch_closed_on_sunday_has_no_teller_fee_and_some_channels_offer_no_transfer() -> None:
    with pytest.raises(NoTariffRule):
        fee(Channel.TELLER, Kind.WITHDRAWAL, 10_000, HOL, "11:00")
    with pytest.raises(NoTariffRule):
        fee(Channel.ATM_CONVENIENCE, Kind.TRANSFER_OTHER_BANK, 10_000, BIZ, "11:00")


def test_fees_are_tax_inclusive() -> None:
    assert FeeQuote(110, "r", "").tax_included_minor == 10
    assert FeeQuote(880, "r", "").tax_included_minor == 80
    assert FeeQuote(145, "r", "").tax_included_minor == 13  # ¥131.8 + ¥13.2: the tax rounded down


def test_the_standard_tariff_is_well_formed() -> None:
    assert STANDARD_TARIFF.defects() == []
    assert max(r.fee_minor for r in STANDARD_TARIFF.rules) == STANDARD_TARIFF.fee_max_minor == 880


def _broken(rule_fee: object) -> Tariff:
    broken = Rule("atm_own.withdrawal.broken", Kind.WITHDRAWAL, Channel.ATM_OWN, rule_fee)  # type: ignore[arg-type]
    return dataclasses.replace(STANDARD_TARIFF, rules=(broken, *STANDARD_TARIFF.rules))


@pytest.mark.parametrize(("rule_fee", "why"), [
    (99999, "sentinel"), (881, "maximum"), (-110, "negative"), (110.0, "whole number"), (True, "whole number"),
])
def test_an_implausible_fee_is_refused_naming_the_rule(rule_fee: object, why: str) -> None:
    tariff = _broken(rule_fee)
    with pytest.raises(FeeImplausible) as refused:
        quote_fee(tariff, FeeContext(Channel.ATM_OWN, Kind.WITHDRAWAL, 10_000, BIZ, dt.time(10)))
    assert refused.value.rule_id == "atm_own.withdrawal.broken" and why in str(refused.value)
    assert [rid for rid, _ in tariff.defects()] == ["atm_own.withdrawal.broken"]


def test_a_forged_quote_is_refused_before_charging() -> None:
    with pytest.raises(FeeImplausible):
        check_plausible(STANDARD_TARIFF, "atm_own.withdrawal.other_hours", 99999)
    with pytest.raises(FeeImplausible):
        check_plausible(STANDARD_TARIFF, "no.such.rule", 110)
    check_plausible(STANDARD_TARIFF, "atm_own.withdrawal.other_hours", 110)


def test_malformed_bands_are_defects() -> None:
    empty_time = Rule("t", Kind.DEPOSIT, Channel.ATM_OWN, 110, time_from=dt.time(18), time_until=dt.time(8))
    empty_amount = Rule("a", Kind.DEPOSIT, Channel.ATM_OWN, 110, amount_min_minor=5, amount_below_minor=5)
    assert Tariff("x", 880, (empty_time, empty_amount, empty_amount)).defects() == [
        ("t", "the time band is empty"), ("a", "the amount band is empty"), ("a", "the amount band is empty"),
        ("a", "the rule id is used twice")]


def test_day_type_from_the_calendar_answer() -> None:
    assert day_type_of(dt.date(2026, 2, 27), None) is BIZ
    assert day_type_of(dt.date(2026, 2, 28), "Saturday") is SAT
    assert day_type_of(dt.date(2026, 3, 1), "Sunday") is HOL
    assert day_type_of(dt.date(2026, 2, 23), "天皇誕生日") is HOL
