"""Fees (手数料): the tariff by channel, transaction type, day type, time of day and amount band, and its quote.

Pure domain (standard library only). Amounts are whole yen and **tax-inclusive** (10 % consumption tax
included), as Japanese banks quote them: ¥110 = ¥100 + ¥10 tax. A quote above the tariff's own maximum,
negative, or from a malformed rule (a 99999 sentinel, an empty time band) is refused with `FeeImplausible`
naming the rule: it is never charged.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
CONSUMPTION_TAX_PERCENT = 10  # included in every tariff amount


class Channel(enum.StrEnum):
    ATM_OWN = "atm_own"  # the bank's own ATMs
    ATM_OTHER_BANK = "atm_other_bank"  # 提携金融機関ATM
    ATM_CONVENIENCE = "atm_convenience"  # コンビニATM (Seven Bank, E.net, Lawson Bank)
    TELLER = "teller"  # 窓口
    INTERNET = "internet"  # インターネットバンキング
    OPEN_API = "open_api"  # 電子決済等代行業者 via open API


class Kind(enum.StrEnum):
    WITHDRAWAL = "withdrawal"
    DEPOSIT = "deposit"
    TRANSFER_SAME_BANK = "transfer_same_bank"  # 当行宛振込
    TRANSFER_OTHER_BANK = "transfer_other_bank"  # 他行宛振込


class DayType(enum.StrEnum):
    BUSINESS_DAY = "business_day"  # 平日
    SATURDAY = "saturday"  # 土曜
    HOLIDAY = "holiday"  # 日曜・祝日・年末年始 (a holiday on a Saturday counts as a holiday)


def day_type_of(day: dt.date, closed_reason: str | None) -> DayType:
    """From the bank calendar's answer for `day` (None: open)."""
    if closed_reason is None:
        return DayType.BUSINESS_DAY
    if closed_reason == "Saturday" and day.weekday() == 5:
        return DayType.SATURDAY
    return DayType.HOLIDAY


class Refused(Exception):
    """A business rule refused the request; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class FeeImplausible(Exception):
    """A fee that must not be charged: above the tariff maximum, negative, or from a malformed rule."""

    def __init__(self, rule_id: str, amount_minor: object, reason: str) -> None:
        self.rule_id = rule_id
        self.amount_minor = amount_minor
        self.reason = reason
        super().__init__(f"fee rule {rule_id} gave an implausible fee {amount_minor!r}: {reason}")


class NoTariffRule(Refused):
    """No rule of the tariff covers this transaction (e.g. a teller on a Sunday)."""

    def __init__(self, message: str) -> None:
        super().__init__("no_tariff_rule", message)


ALL_DAYS = frozenset(DayType)


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the tariff. Times are JST wall-clock, [time_from, time_until); amounts [min, below)."""

    rule_id: str
    kind: Kind
    channel: Channel
    fee_minor: int  # tax-inclusive yen
    day_types: frozenset[DayType] = ALL_DAYS
    time_from: dt.time | None = None  # None with time_until None: all day
    time_until: dt.time | None = None
    amount_min_minor: int = 0
    amount_below_minor: int | None = None  # None: no upper bound

    def covers(self, q: FeeContext) -> bool:
        if q.kind is not self.kind or q.channel is not self.channel or q.day_type not in self.day_types:
            return False
        if self.time_from is not None and self.time_until is not None:
            if not self.time_from <= q.local_time < self.time_until:
                return False
        if q.amount_minor < self.amount_min_minor:
            return False
        return self.amount_below_minor is None or q.amount_minor < self.amount_below_minor

    def defect(self, fee_max_minor: int) -> str | None:
        """Why this rule must not be used to charge anyone, or None."""
        fee = self.fee_minor
        if type(fee) is not int:  # bool, float, Decimal, str from a bad configuration load
            return f"the fee is not a whole number of yen ({type(fee).__name__})"
        if fee < 0:
            return "the fee is negative"
        if fee > fee_max_minor:
            sentinel = set(str(fee)) == {"9"}
            return (f"the fee exceeds the tariff maximum ¥{fee_max_minor:,}"
                    + (" (it looks like a 9999… sentinel)" if sentinel else ""))
        if (self.time_from is None) != (self.time_until is None):
            return "the time band has only one end"
        if self.time_from is not None and self.time_until is not None and self.time_from >= self.time_until:
            return "the time band is empty"
        if self.amount_min_minor < 0 or (self.amount_below_minor is not None
                                         and self.amount_below_minor <= self.amount_min_minor):
            return "the amount band is empty"
        if not self.day_types:
            return "the rule applies on no day"
        return None


@dataclass(frozen=True, slots=True)
class FeeContext:
    """The transaction a fee is asked for."""

    channel: Channel
    kind: Kind
    amount_minor: int  # the amount withdrawn, deposited or transferred
    day_type: DayType
    local_time: dt.time  # JST wall clock


@dataclass(frozen=True, slots=True)
class FeeQuote:
    amount_minor: int  # tax-inclusive
    rule_id: str
    reason: str  # for the customer's statement and the teller's screen

    @property
    def tax_included_minor(self) -> int:
        """The consumption tax inside the fee (¥110 → ¥10), rounded down as on a receipt."""
        return self.amount_minor * CONSUMPTION_TAX_PERCENT // (100 + CONSUMPTION_TAX_PERCENT)


@dataclass(frozen=True, slots=True)
class Tariff:
    """Rules in priority order (first match wins) and the tariff's own maximum fee."""

    name: str
    fee_max_minor: int
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)

    def defects(self) -> list[tuple[str, str]]:
        """(rule id, why) of every malformed rule: for `kanjo verify` and the tariff editor."""
        found = [(r.rule_id, why) for r in self.rules if (why := r.defect(self.fee_max_minor))]
        ids = [r.rule_id for r in self.rules]
        found += [(i, "the rule id is used twice") for i in sorted({i for i in ids if ids.count(i) > 1})]
        return found


def local_time_of(at: dt.datetime) -> tuple[dt.date, dt.time]:
    """JST date and wall-clock time of an aware instant; a naive one is refused (whose clock would it be?)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the transaction time must carry a time zone")
    local = at.astimezone(JST)
    return local.date(), local.time().replace(tzinfo=None)


def quote_fee(tariff: Tariff, q: FeeContext) -> FeeQuote:
    """The fee for `q` by the first rule that covers it; refused when that rule would give an implausible fee."""
    if q.amount_minor < 0:
        raise Refused("invalid_amount", "the transaction amount must not be negative")
    rule = next((r for r in tariff.rules if r.covers(q)), None)
    if rule is None:
        raise NoTariffRule(f"no fee rule for {q.kind.value} at {q.channel.value} on a {q.day_type.value}"
                           f" at {q.local_time:%H:%M}")
    check_plausible(tariff, rule.rule_id, rule.fee_minor)
    return FeeQuote(rule.fee_minor, rule.rule_id, _reason(rule))


def check_plausible(tariff: Tariff, rule_id: str, amount_minor: object) -> None:
    """Refuse a fee that the tariff could not have produced: the last guard before money moves."""
    rule = tariff.rule(rule_id)
    if rule is None:
        raise FeeImplausible(rule_id, amount_minor, f"no such rule in tariff {tariff.name}")
    why = rule.defect(tariff.fee_max_minor)
    if why is not None:
        raise FeeImplausible(rule_id, amount_minor, why)
    if type(amount_minor) is not int or amount_minor != rule.fee_minor:
        raise FeeImplausible(rule_id, amount_minor, f"the rule's fee is ¥{rule.fee_minor:,}")


def _reason(rule: Rule) -> str:
    when = "" if rule.time_from is None else f" {rule.time_from:%H:%M}–{rule.time_until:%H:%M}"
    days = "" if rule.day_types == ALL_DAYS else " " + "/".join(sorted(d.value for d in rule.day_types))
    return f"{rule.kind.value} at {rule.channel.value}{days}{when}: ¥{rule.fee_minor:,} (tax incl.)"


# -- the standard tariff (tax-inclusive yen) ------------------------------------------------------------
#
# Cash at ATMs (withdrawal and deposit alike):
#   own ATM:            business days 08:45–18:00 ¥0; other hours, Saturdays, Sundays/holidays ¥110
#   other banks' ATMs:  business days 08:45–18:00 ¥110; otherwise ¥220
#   convenience ATMs:   business days 08:45–18:00 ¥110; otherwise ¥220
#   teller:             ¥0 (business days only: the branch is closed otherwise)
# Transfers, by amount band (< ¥30,000 / ≥ ¥30,000):
#                       same bank       other bank
#   teller              ¥220 / ¥440     ¥660 / ¥880   (business days only)
#   own ATM (card)      ¥0   / ¥0       ¥220 / ¥330
#   internet            ¥0   / ¥0       ¥145 / ¥229
#   open API            ¥0   / ¥0       ¥145 / ¥229
# The tariff maximum is ¥880: anything above it is a defect, never a fee.

DAYTIME_FROM = dt.time(8, 45)
DAYTIME_UNTIL = dt.time(18, 0)
BAND_MINOR = 30_000
WEEKDAY = frozenset({DayType.BUSINESS_DAY})


def _cash_rules() -> list[Rule]:
    rules: list[Rule] = []
    for kind in (Kind.WITHDRAWAL, Kind.DEPOSIT):
        k = kind.value
        for channel, day_fee, other_fee in ((Channel.ATM_OWN, 0, 110), (Channel.ATM_OTHER_BANK, 110, 220),
                                            (Channel.ATM_CONVENIENCE, 110, 220)):
            c = channel.value
            rules.append(Rule(f"{c}.{k}.daytime", kind, channel, day_fee, WEEKDAY, DAYTIME_FROM, DAYTIME_UNTIL))
            rules.append(Rule(f"{c}.{k}.other_hours", kind, channel, other_fee))
        rules.append(Rule(f"teller.{k}", kind, Channel.TELLER, 0, WEEKDAY))
    return rules


def _transfer_rules() -> list[Rule]:
    table = {
        Channel.TELLER: ((220, 440), (660, 880)),
        Channel.ATM_OWN: ((0, 0), (220, 330)),
        Channel.INTERNET: ((0, 0), (145, 229)),
        Channel.OPEN_API: ((0, 0), (145, 229)),
    }
    rules: list[Rule] = []
    for channel, ((same_low, same_high), (other_low, other_high)) in table.items():
        days = WEEKDAY if channel is Channel.TELLER else ALL_DAYS
        for kind, low, high in ((Kind.TRANSFER_SAME_BANK, same_low, same_high),
                                (Kind.TRANSFER_OTHER_BANK, other_low, other_high)):
            base = f"{channel.value}.{kind.value}"
            rules.append(Rule(f"{base}.under_30000", kind, channel, low, days, amount_below_minor=BAND_MINOR))
            rules.append(Rule(f"{base}.30000_and_over", kind, channel, high, days, amount_min_minor=BAND_MINOR))
    return rules


STANDARD_TARIFF = Tariff("standard-2026", 880, tuple(_cash_rules() + _transfer_rules()))
