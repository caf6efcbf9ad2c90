"""Reconciliation of an ATM's journal with the channel's: each cash entry the machine recorded is matched with what
the bank posted; in-doubt withdrawals are settled by the machine's word; what cannot be matched is a break, named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter

from kanjo.channels.atm import cash_in, cash_out, loan_cash, store
from kanjo.channels.atm.model import HoldState, JournalOutcome, MachineKind
from kanjo.channels.atm.service import AtmChannel

log = structlog.get_logger("kanjo.atm")
BREAKS = Counter("kanjo_atm_reconciliation_breaks_total", "ATM journal entries that do not match the bank's records",
                 ["reason"])


@dataclass(frozen=True, slots=True)
class JournalEntry:
    journal_no: int
    operation: str  # withdrawal, deposit, or a non-cash operation (not reconciled)
    amount_minor: int
    outcome: str  # dispensed / not_dispensed / no_answer for withdrawals; deposited / returned / no_answer for deposits


@dataclass
class Reconciliation:
    matched: int = 0
    corrected: int = 0
    not_applicable: int = 0
    breaks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"matched": self.matched, "corrected": self.corrected, "not_applicable": self.not_applicable,
                "breaks": self.breaks}


async def reconcile_journal(ch: AtmChannel, atm_id: str, entries: list[JournalEntry]) -> Reconciliation:
    kind = ch.kind_of(atm_id)
    result = Reconciliation()
    for e in entries:
        rule = RULES.get(e.operation)
        if rule is None:
            result.not_applicable += 1
        else:
            await _cash(ch, kind, atm_id, e, result, rule)
    return result


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one kind of cash item is matched: which journal outcome means cash moved, how an acknowledgement settles
    it, how a doubt is resolved, and the names of its breaks."""

    moved: str
    settle: Callable[[AtmChannel, MachineKind, store.CashItem, int], Awaitable[Any]]
    state_after: Callable[[str, store.CashItem], str]
    resolve: Callable[[AtmChannel, asyncpg.Connection, MachineKind, store.CashItem, JournalOutcome, int],
                      Awaitable[str]]
    kept: JournalOutcome
    not_kept: JournalOutcome
    moved_without_authorisation: str
    posted_but_atm_disagrees: str
    voided_but_atm_moved: str
    cannot_be_posted: str


RULES: dict[str, _Rule] = {
    "withdrawal": _Rule(JournalOutcome.DISPENSED.value, cash_out.settle_authorised, cash_out.state_after,
                        cash_out.resolve, JournalOutcome.DISPENSED, JournalOutcome.NOT_DISPENSED,
                        "dispensed_without_authorisation", "posted_but_atm_disagrees", "voided_but_atm_dispensed",
                        "in_doubt_cannot_be_posted"),
    "loan_draw": _Rule(JournalOutcome.DISPENSED.value, loan_cash.settle_authorised, cash_out.state_after,
                       loan_cash.resolve, JournalOutcome.DISPENSED, JournalOutcome.NOT_DISPENSED,
                       "dispensed_without_authorisation", "posted_but_atm_disagrees", "voided_but_atm_dispensed",
                       "in_doubt_cannot_be_posted"),
    "deposit": _Rule(JournalOutcome.DEPOSITED.value, cash_in.settle_accepted, cash_in.state_after, cash_in.resolve,
                     JournalOutcome.DEPOSITED, JournalOutcome.RETURNED, "cash_kept_without_acceptance",
                     "credited_but_atm_disagrees", "returned_but_atm_kept_cash", "in_doubt_cannot_be_credited"),
}


def _break(result: Reconciliation, atm_id: str, e: JournalEntry, reason: str) -> None:
    BREAKS.labels(reason).inc()
    log.error("atm_reconciliation_break", atm=atm_id, journal_no=e.journal_no, reason=reason,
              amount_minor=e.amount_minor, atm_says=e.outcome)
    result.breaks.append({"journal_no": e.journal_no, "operation": e.operation, "amount_minor": e.amount_minor,
                          "atm_says": e.outcome, "reason": reason})


async def _cash(ch: AtmChannel, kind: MachineKind, atm_id: str, e: JournalEntry, result: Reconciliation,
                rule: _Rule) -> None:
    moved = e.outcome == rule.moved
    moved_minor = e.amount_minor if moved else 0
    async with ch.pool.acquire() as conn:
        waiting = await store.cash_item(conn, atm_id, e.journal_no, e.operation)
    if waiting is not None and waiting.hold_state == HoldState.AUTHORISED.value:
        # the acknowledgement was lost and the deadline has not passed: the journal entry acknowledges it
        answer = await rule.settle(ch, kind, waiting, moved_minor)
        if answer is not None:
            async with ch.pool.acquire() as conn:
                if await store.settle_authorised(conn, atm_id, e.journal_no, rule.state_after(answer.code, waiting),
                                                 moved_minor, answer.body(atm_id, e.journal_no)):
                    result.corrected += 1
                    return
    async with ch.pool.acquire() as conn, conn.transaction():
        item = await store.lock_cash_item(conn, atm_id, e.journal_no, e.operation)
        if item is None:  # never authorised (refused, or the message never arrived): no cash may have moved
            if moved:
                _break(result, atm_id, e, rule.moved_without_authorisation)
            else:
                result.matched += 1
            return
        state = item.hold_state
        if state == HoldState.POSTED.value:
            if moved and (item.dispensed_minor or 0) == moved_minor:
                result.matched += 1
            else:
                _break(result, atm_id, e, rule.posted_but_atm_disagrees)
        elif state == HoldState.VOIDED.value:
            if not moved:
                result.matched += 1
            else:
                _break(result, atm_id, e, rule.voided_but_atm_moved)
        else:  # in doubt (or not acknowledged and not yet swept): the journal settles it
            outcome = rule.kept if moved else rule.not_kept
            resolution = await rule.resolve(ch, conn, kind, item, outcome, moved_minor)
            if resolution == "break":
                _break(result, atm_id, e, rule.cannot_be_posted)
            else:
                result.corrected += 1
