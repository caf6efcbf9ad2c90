"""Shared kernel: small, dependency-free pieces every bounded context may use."""

from kanjo.kernel.clock import Clock, FixedClock, SystemClock
from kanjo.kernel.ids import ID_MAX, format_id, new_id, parse_id
from kanjo.kernel.invariants import InvariantViolation, invariant
from kanjo.kernel.limits import Limit, LimitReached, LimitRegistry, limits
from kanjo.kernel.money import CURRENCIES, Currency, currency_for_ledger

__all__ = [
    "CURRENCIES",
    "ID_MAX",
    "Clock",
    "Currency",
    "FixedClock",
    "InvariantViolation",
    "Limit",
    "LimitReached",
    "LimitRegistry",
    "SystemClock",
    "currency_for_ledger",
    "format_id",
    "invariant",
    "limits",
    "new_id",
    "parse_id",
]
