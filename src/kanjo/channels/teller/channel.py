"""The teller channel's handle: its pool (schema `teller`), the hub, the product handles it reaches through the hub's
TELLER partition, the maker-checker policy, the password hasher and the injected clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from argon2 import PasswordHasher

from kanjo.business_calendar import BankCalendar
from kanjo.cards import Cards
from kanjo.channels.teller.model import Policy
from kanjo.channels.teller.settings import TellerSettings
from kanjo.deposits import Deposits
from kanjo.fees import Fees
from kanjo.hub import Hub, Partition
from kanjo.time_deposits import TimeDeposits

T = TypeVar("T")
STALE_EXECUTION_S = 30.0  # an execution running longer than this belongs to a process that died: it is taken over


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class TellerChannel:
    pool: asyncpg.Pool
    hub: Hub
    deposits: Deposits
    cards: Cards
    fees: Fees
    time_deposits: TimeDeposits
    calendar: BankCalendar
    business_date: Callable[[], dt.date]
    policy: Policy = field(default_factory=Policy)
    now: Callable[[], dt.datetime] = utc_now
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    session_ttl_s: int = 28_800
    session_idle_s: int = 1_800

    @classmethod
    def from_settings(cls, settings: TellerSettings | None = None, **parts: Any) -> TellerChannel:
        """The handle with the maker-checker policy and session times of KANJO_TELLER_* (or `settings`)."""
        s = settings or TellerSettings()
        return cls(**parts, policy=s.policy(), session_ttl_s=s.session_ttl_s, session_idle_s=s.session_idle_s)

    async def call(self, product: str, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A product call through the hub, in the teller partition."""
        return await self.hub.call(Partition.TELLER, product, operation, fn)
