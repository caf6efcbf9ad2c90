"""Reconciliation of an ATM's journal with the channel's: each cash entry the machine recorded is matched with what
the bank posted; in-doubt withdrawals are settled by the machine's word; what cannot be matched is a break, named."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter

from kanjo.channels.atm import store
from kanjo.channels.atm.cash_out import resolve, settle_authorised, state_after
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
    outcome: str  # dispensed / not_dispensed / no_answer for withdrawals; deposited / returned / no_answer …


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
        if e.operation == "withdrawal":
            await _withdrawal(ch, kind, atm_id, e, result)
        elif e.operation == "deposit":
            await _deposit(ch, atm_id, e, result)
        else:
            result.not_applicable += 1
    return result


def _break(result: Reconciliation, atm_id: str, e: JournalEntry, reason: str) -> None:
    BREAKS.labels(reason).inc()
    log.error("atm_reconciliation_break", atm=atm_id, journal_no=e.journal_no, reason=reason,
              amount_minor=e.amount_minor, atm_says=e.outcome)
    result.breaks.append({"journal_no": e.journal_no, "operation": e.operation, "amount_minor": e.amount_minor,
                          "atm_says": e.outcome, "reason": reason})


async def _withdrawal(ch: AtmChannel, kind: MachineKind, atm_id: str, e: JournalEntry, result: Reconciliation) -> None:
    dispensed = e.outcome == JournalOutcome.DISPENSED.value
    out_minor = e.amount_minor if dispensed else 0
    async with ch.pool.acquire() as conn:
        waiting = await store.withdrawal(conn, atm_id, e.journal_no)
    if waiting is not None and waiting.hold_state == HoldState.AUTHORISED.value:
        # the acknowledgement was lost and the deadline has not passed: the journal entry acknowledges it
        answer = await settle_authorised(ch, kind, waiting, out_minor)
        if answer is not None:
            async with ch.pool.acquire() as conn:
                if await store.settle_authorised(conn, atm_id, e.journal_no, state_after(answer.code, waiting),
                                                 out_minor, answer.body(atm_id, e.journal_no)):
                    result.corrected += 1
                    return
    async with ch.pool.acquire() as conn, conn.transaction():
        w = await store.lock_withdrawal(conn, atm_id, e.journal_no)
        if w is None:  # never authorised (refused, or the message never arrived): no cash may have left
            if dispensed:
                _break(result, atm_id, e, "dispensed_without_authorisation")
            else:
                result.matched += 1
            return
        state = w.hold_state
        if state == HoldState.POSTED.value:
            if dispensed and (w.dispensed_minor or 0) == out_minor:
                result.matched += 1
            else:
                _break(result, atm_id, e, "posted_but_atm_disagrees")
        elif state == HoldState.VOIDED.value:
            if not dispensed:
                result.matched += 1
            else:
                _break(result, atm_id, e, "voided_but_atm_dispensed")
        else:  # in doubt (or its hold lapsed before anyone acknowledged it): the journal settles it
            outcome = JournalOutcome.DISPENSED if dispensed else JournalOutcome.NOT_DISPENSED
            resolution = await resolve(ch, conn, kind, w, outcome, out_minor)
            if resolution == "break":
                _break(result, atm_id, e, "in_doubt_cannot_be_posted")
            else:
                result.corrected += 1


async def _deposit(ch: AtmChannel, atm_id: str, e: JournalEntry, result: Reconciliation) -> None:
    async with ch.pool.acquire() as conn:
        row = await store.deposit_record(conn, atm_id, e.journal_no)
    credited = row is not None and row["result"] == "approved"
    kept_cash = e.outcome == "deposited"
    if credited == kept_cash and (not credited or row is None or row["amount_minor"] == e.amount_minor):
        result.matched += 1
    else:
        _break(result, atm_id, e, "deposit_credited_but_cash_returned" if credited else "cash_kept_but_not_credited")
