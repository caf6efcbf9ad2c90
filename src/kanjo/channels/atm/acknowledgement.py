"""An ATM's acknowledgement of a cash item, whichever way the cash went (a withdrawal dispensed, a deposit stored):
settled at once while the item waits for it, else under the item's lock when the sweep or the journal got there
first. The rules of each kind of item (cash_out.py, cash_in.py) say what settling means."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import Counter

from kanjo.channels.atm import store
from kanjo.channels.atm.grouped import CashItemIn, SettleIn
from kanjo.channels.atm.model import HoldState, JournalOutcome, MachineKind, unavailable
from kanjo.channels.atm.service import SYSTEM_ERRORS, AtmChannel, Reply
from kanjo.hub import HubError

IN_DOUBT_RESOLVED = Counter("kanjo_atm_in_doubt_resolved_total", "in-doubt cash items settled, by resolution",
                            ["resolution"])


@dataclass(frozen=True, slots=True)
class AckRules:
    operation: str  # withdrawal or deposit
    label: str  # the acknowledgement's name in the system-error metric
    early: Callable[[store.CashItem | None, str, int, int], Reply | None]  # unknown, answered, impossible amount
    settle: Callable[[AtmChannel, MachineKind, store.CashItem, int], Awaitable[Any]]  # None: take the slow path
    otherwise: Callable[[AtmChannel, asyncpg.Connection, MachineKind, store.CashItem, int], Awaitable[Any]]
    state_after: Callable[[str, store.CashItem], str]


async def acknowledge_item(ch: AtmChannel, rules: AckRules, atm_id: str, journal_no: int, moved_minor: int) -> Reply:
    """A system error records nothing: the ATM sends the acknowledgement again, and every step is idempotent.
    Raises UnknownMachine for an ATM not registered."""
    try:
        return await _acknowledge(ch, rules, atm_id, journal_no, moved_minor)
    except HubError as e:
        SYSTEM_ERRORS.labels(rules.label, e.code).inc()
        return Reply(503, unavailable("busy", e.message, [], e.retry_after_s or 1.0).body(atm_id, journal_no))


async def _acknowledge(ch: AtmChannel, rules: AckRules, atm_id: str, journal_no: int, moved_minor: int) -> Reply:
    kind = ch.kind_of(atm_id)
    item = ch.awaiting.take(atm_id, journal_no, rules.operation) \
        or await ch.grouped.cash_item(CashItemIn(atm_id, journal_no, rules.operation))
    early = rules.early(item, atm_id, journal_no, moved_minor)
    if early is not None:
        return early
    assert item is not None
    if item.hold_state == HoldState.AUTHORISED.value:  # the usual case: no connection is held across the ledger
        answer = await rules.settle(ch, kind, item, moved_minor)
        if answer is not None:
            body = answer.body(atm_id, journal_no)
            if await ch.grouped.settle_authorised(SettleIn(atm_id, journal_no, rules.state_after(answer.code, item),
                                                           moved_minor, body)):
                return Reply(200, body)
    async with ch.pool.acquire() as conn, conn.transaction():  # the sweep or the journal got there first
        item = await store.lock_cash_item(conn, atm_id, journal_no, rules.operation)
        early = rules.early(item, atm_id, journal_no, moved_minor)
        if early is not None:
            return early
        assert item is not None
        answer = await rules.otherwise(ch, conn, kind, item, moved_minor)
        body = answer.body(atm_id, journal_no)
        await store.settle_cash_item(conn, atm_id, journal_no, rules.state_after(answer.code, item), moved_minor,
                                      body)
    return Reply(200, body)


async def settle_doubt(conn: asyncpg.Connection, item: store.CashItem, outcome: JournalOutcome, moved_minor: int,
                       decide: Callable[[], Awaitable[tuple[str, int | None]]], settled: Mapping[str, str]) -> str:
    """Settle a cash item in doubt by what the ATM says, once: a settled item answers its first resolution. `decide`
    moves the money and names the resolution (with the correcting transfer, if any); `settled` gives the item's
    state after each resolution (any other, a break, leaves it in doubt for people)."""
    await store.open_in_doubt(conn, item, "no_acknowledgement")  # no-op when the sweep opened it
    found = await store.in_doubt(conn, item.atm_id, item.journal_no)
    if found is not None and found["resolved_at"] is not None:
        return str(found["resolution"])
    resolution, correction = await decide()
    await store.resolve_in_doubt(conn, item.atm_id, item.journal_no, outcome.value, resolution, correction)
    await store.settle_cash_item(conn, item.atm_id, item.journal_no,
                                  settled.get(resolution, HoldState.IN_DOUBT.value), moved_minor, None)
    IN_DOUBT_RESOLVED.labels(resolution).inc()
    return resolution
