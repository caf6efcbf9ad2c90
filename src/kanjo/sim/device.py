"""An ATM's behaviour, message by message: the protocol's device rules (resend with the same journal number, the card
back on every system error, retained only when a business answer says so), the two-phase cash-out, the journal."""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass
from typing import Any

from kanjo.sim.limits import JOURNAL_ENTRIES_PER_UPLOAD_MAX
from kanjo.sim.link import Link, Reply
from kanjo.sim.model import (
    CASH_OUT,
    PATHS,
    Atm,
    Card,
    FleetConfig,
    JournalEntry,
    Message,
    Operation,
    Outcome,
    Planned,
)
from kanjo.sim.report import Tally

RETRY_AFTER_S_MAX = 1.0  # a customer at the machine: a server's longer retry_after_s is not honoured in full
RETURN, RETAIN = "return", "retain"
RECONCILIATION_COUNTS = ("matched", "corrected", "not_applicable", "breaks")  # breaks: a list of them, counted
MESSAGE_OF: dict[Operation, Message] = {
    Operation.INQUIRY: Message.INQUIRY, Operation.WITHDRAWAL: Message.WITHDRAWAL, Operation.DEPOSIT: Message.DEPOSIT,
    Operation.TRANSFER: Message.TRANSFER, Operation.TIME_DEPOSIT: Message.TIME_DEPOSIT,
    Operation.LOAN_DRAW: Message.LOAN_DRAW,
}
ACK_OF: dict[Operation, Message] = {
    Operation.WITHDRAWAL: Message.WITHDRAWAL_ACK, Operation.LOAN_DRAW: Message.LOAN_DRAW_ACK,
    Operation.DEPOSIT: Message.DEPOSIT_ACK,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the device made of the first message's last reply."""

    outcome: Outcome
    code: str
    card_action: str
    system_error: bool


class Device:
    """Runs planned transactions for any ATM of the fleet over the shared link, counting into the tally."""

    def __init__(self, config: FleetConfig, link: Link, tally: Tally, *, started_at: float) -> None:
        self.config = config
        self.link = link
        self.tally = tally
        self.started_at = started_at  # perf_counter of the run's scheduled start

    async def perform(self, atm: Atm, planned: Planned) -> None:
        """One customer's transaction, from its scheduled time; its journal entry is written at the end."""
        scheduled_at = self.started_at + planned.scheduled_s
        rng = None if self.config.faults.quiet else random.Random(planned.fault_seed)
        if planned.operation in CASH_OUT:
            entry, system_error = await self._cash_out(atm, planned, scheduled_at, rng)
        elif planned.operation is Operation.DEPOSIT:
            entry, system_error = await self._deposit(atm, planned, scheduled_at, rng)
        else:
            entry, system_error = await self._single(atm, planned, scheduled_at, rng)
        atm.record(entry)
        atm.operations += 1
        atm.system_errors += system_error
        atm.cards_retained += entry.card_action == RETAIN

    # -- operations --------------------------------------------------------------------------------

    async def _single(self, atm: Atm, planned: Planned, scheduled_at: float,
                      rng: random.Random | None) -> tuple[JournalEntry, bool]:
        card = self.config.cards[planned.card_index]
        message = MESSAGE_OF[planned.operation]
        reply = await self._deliver(message, self._body(atm, planned, card), scheduled_at,
                                    self.config.retries_max, rng, warmup=self._warming(planned))
        verdict = self._judge(planned.operation, reply)
        return self._entry(planned, card, verdict.outcome, verdict, scheduled_at), verdict.system_error

    async def _deposit(self, atm: Atm, planned: Planned, scheduled_at: float,
                       rng: random.Random | None) -> tuple[JournalEntry, bool]:
        """The counted notes wait in escrow for the bank's acceptance, then are stored (or given back: a planned
        failure) and acknowledged. Without an acceptance the notes go back to the customer."""
        card = self.config.cards[planned.card_index]
        reply = await self._deliver(Message.DEPOSIT, self._body(atm, planned, card), scheduled_at,
                                    self.config.retries_max, rng, warmup=self._warming(planned))
        verdict = self._judge(Operation.DEPOSIT, reply)
        if verdict.outcome is not Outcome.APPROVED:  # the notes are given back
            return await self._not_approved(atm, planned, card, reply, verdict, scheduled_at, rng)
        stored_minor = 0 if planned.dispense_fails else planned.amount_minor  # a jam gives the notes back
        if stored_minor:
            self.tally.deposits_stored += 1
            self.tally.deposits_stored_minor += stored_minor
        else:
            self.tally.deposits_returned += 1
        ack_code, ack_answered = await self._acknowledge(atm, planned, stored_minor, rng)
        outcome = Outcome.DEPOSITED if stored_minor else Outcome.RETURNED
        entry = self._entry(planned, card, outcome, verdict, scheduled_at)
        entry.ack_code = ack_code
        return entry, not ack_answered

    async def _cash_out(self, atm: Atm, planned: Planned, scheduled_at: float,
                        rng: random.Random | None) -> tuple[JournalEntry, bool]:
        """A withdrawal from the account or card-loan cash from the line: authorise, dispense, acknowledge. A
        withdrawal's latency end to end is scheduled start → the ack's answer − dispensing."""
        card = self.config.cards[planned.card_index]
        reply = await self._deliver(MESSAGE_OF[planned.operation], self._body(atm, planned, card), scheduled_at,
                                    self.config.retries_max, rng, warmup=self._warming(planned))
        verdict = self._judge(planned.operation, reply)
        if verdict.outcome is not Outcome.APPROVED:
            return await self._not_approved(atm, planned, card, reply, verdict, scheduled_at, rng)
        assert reply.answer is not None  # an approved verdict is a business answer
        dispensed_minor = await self._dispense(planned, reply.answer)
        ack_code, ack_answered = await self._acknowledge(atm, planned, dispensed_minor, rng)
        if ack_answered and planned.operation is Operation.WITHDRAWAL:
            dispensing_s = self.config.dispense_delay_ms / 1000
            latencies = self.tally.warmup_end_to_end_us if self._warming(planned) \
                else self.tally.withdrawal_end_to_end_us
            latencies.append(round((time.perf_counter() - scheduled_at - dispensing_s) * 1_000_000))
        outcome = Outcome.DISPENSED if dispensed_minor else Outcome.NOT_DISPENSED
        entry = self._entry(planned, card, outcome, verdict, scheduled_at)
        entry.dispensed_minor, entry.ack_code = dispensed_minor, ack_code
        return entry, not ack_answered

    async def _not_approved(self, atm: Atm, planned: Planned, card: Card, reply: Reply, verdict: Verdict,
                            scheduled_at: float, rng: random.Random | None) -> tuple[JournalEntry, bool]:
        """No cash moves. When the bank may have authorised without the device knowing, an acknowledgement of
        nothing releases the hold it never heard of."""
        ack_code = None
        if _outcome_unknown(reply) and self.config.ack_after_no_answer:
            ack_code, _ = await self._acknowledge(atm, planned, 0, rng)
        entry = self._entry(planned, card, verdict.outcome, verdict, scheduled_at)
        entry.ack_code = ack_code
        return entry, verdict.system_error

    async def _dispense(self, planned: Planned, answer: dict[str, Any]) -> int:
        """The cash comes out (after the configured delay), or not: the planned failures give nothing."""
        if self.config.dispense_delay_ms:
            await asyncio.sleep(self.config.dispense_delay_ms / 1000)
        counts = self.tally.cash_out(planned.operation)
        if planned.dispense_fails:
            counts.dispense_failures += 1
            return 0
        dispensed_minor = _int(answer.get("dispense_minor"), planned.amount_minor)
        counts.dispensed += 1
        counts.dispensed_minor += dispensed_minor
        return dispensed_minor

    async def _acknowledge(self, atm: Atm, planned: Planned, moved_minor: int,
                           rng: random.Random | None) -> tuple[str, bool]:
        """(the ack's code or what went wrong, whether a business answer came); resent up to its own bound.
        `moved_minor`: the cash dispensed by a cash-out, or stored by a deposit."""
        operation = planned.operation
        message = ACK_OF[operation]
        field_name = "stored_minor" if operation is Operation.DEPOSIT else "dispensed_minor"
        body = {"atm_id": atm.atm_id, "journal_no": planned.journal_no, field_name: moved_minor}
        reply = await self._deliver(message, body, time.perf_counter(), self.config.ack_retries_max, rng,
                                    warmup=self._warming(planned))
        codes = self.tally.ack_codes_of(operation)
        if reply.business:
            assert reply.answer is not None
            code = str(reply.answer.get("code", ""))
            codes[code] += 1
            return code, True
        kind = reply.error_kind
        self.tally.sample_error(message, kind, reply.answer)
        codes["no_answer" if reply.status is None else kind] += 1
        self.tally.system_errors[operation][f"ack_{kind}"] += 1
        return ("no_answer" if reply.status is None else kind), False

    # -- messages ----------------------------------------------------------------------------------

    def _body(self, atm: Atm, planned: Planned, card: Card) -> dict[str, Any]:
        """The first message of an operation: every resend sends these very bytes."""
        body: dict[str, Any] = {"atm_id": atm.atm_id, "journal_no": planned.journal_no}
        pin = card.wrong_pin if planned.wrong_pin else card.pin
        operation = planned.operation
        body["card"] = {"number": card.number} if operation is Operation.DEPOSIT else {"number": card.number,
                                                                                      "pin": pin}
        if operation is not Operation.INQUIRY:
            body["amount_minor"] = planned.amount_minor
        if operation is Operation.TRANSFER:
            assert planned.payee_index is not None
            payee = self.config.cards[planned.payee_index]
            body["to"] = {"branch_code": payee.branch_code, "account_number": payee.account_number}
        if operation is Operation.TIME_DEPOSIT:
            body["term_months"] = planned.term_months
        return body

    def _warming(self, planned: Planned) -> bool:
        """Scheduled in the warm-up: counted in everything but the latencies (which are reported apart)."""
        return planned.scheduled_s < self.config.warmup_s

    async def _deliver(self, message: Message, body: dict[str, Any], intended_at: float, resends_max: int,
                       rng: random.Random | None, *, warmup: bool = False) -> Reply:
        """Send until a reply that is not to be resent, or the bound; latency runs from `intended_at` (kept apart
        for a transaction of the warm-up)."""
        raw = self.link.request(PATHS[message], body)
        when_unavailable = message in ACK_OF.values()
        for attempt in range(resends_max + 1):
            reply = await self.link.attempt(raw, rng)
            if not reply.resend(when_unavailable=when_unavailable) or attempt == resends_max:
                break
            self.tally.resends[message] += 1
            await asyncio.sleep(self._backoff_s(reply, attempt + 1))
        answered_at = time.perf_counter()
        if reply.status is None:
            self.tally.unanswered[message] += 1
        elif not warmup:
            self.tally.latency(message, answered_at - intended_at)
            self.tally.answered_at = max(self.tally.answered_at, answered_at)
        return reply

    def _backoff_s(self, reply: Reply, attempt: int) -> float:
        backoff_s = self.config.retry_backoff_ms / 1000 * attempt
        retry_after_s = _float((reply.answer or {}).get("retry_after_s"), 0.0)
        return max(backoff_s, min(retry_after_s, RETRY_AFTER_S_MAX))

    def _judge(self, operation: Operation, reply: Reply) -> Verdict:
        """The device rule: a business answer decides the card; anything else returns it and is a system error."""
        answer = reply.answer or {}
        if reply.business:
            result, code = str(answer["result"]), str(answer.get("code", ""))
            self.tally.results[operation][f"{result}/{code}"] += 1
            retained = answer["card_action"] == RETAIN
            if retained:
                self.tally.retained_by_code[code] += 1
                self.tally.retained_by_system_error += result != "refused"
            outcome = Outcome.APPROVED if result == "approved" else Outcome.REFUSED
            return Verdict(outcome, code, RETAIN if retained else RETURN, False)
        kind = reply.error_kind
        self.tally.system_errors[operation][kind] += 1
        self.tally.sample_error(operation, kind, reply.answer)
        if reply.status is None:
            key = f"no_answer/{kind}"
        elif answer.get("result") == "unavailable":
            key = f"unavailable/{answer.get('code', kind)}"
        else:
            key = f"system_error/{kind}"
        self.tally.results[operation][key] += 1
        self.tally.retain_asked_on_system_error += answer.get("card_action") == RETAIN
        outcome = Outcome.NO_ANSWER if reply.status is None else Outcome.SYSTEM_ERROR
        return Verdict(outcome, kind, RETURN, True)

    def _entry(self, planned: Planned, card: Card, outcome: Outcome, verdict: Verdict,
               scheduled_at: float) -> JournalEntry:
        return JournalEntry(planned.journal_no, planned.operation.value, planned.amount_minor, card.masked, outcome,
                            verdict.code, verdict.card_action, round((time.perf_counter() - scheduled_at) * 1000, 3))

    # -- reconciliation ----------------------------------------------------------------------------

    async def upload_journal(self, atm: Atm) -> collections.Counter[str]:
        """POST the ATM's cash entries (withdrawals, loan draws, deposits) to /atm/v1/journal in pages; sum the
        answers."""
        entries = [{"journal_no": e.journal_no, "operation": e.operation, "amount_minor": e.upload_amount_minor(),
                    "outcome": outcome}
                   for e in list(atm.journal) if (outcome := e.upload_outcome()) is not None]
        totals: collections.Counter[str] = collections.Counter()
        for first in range(0, len(entries), JOURNAL_ENTRIES_PER_UPLOAD_MAX):
            page = entries[first:first + JOURNAL_ENTRIES_PER_UPLOAD_MAX]
            reply = await self._deliver(Message.JOURNAL, {"atm_id": atm.atm_id, "entries": page}, time.perf_counter(),
                                        self.config.retries_max, None)
            totals["uploads"] += 1
            totals["entries"] += len(page)
            answer = reply.answer or {}
            if reply.status != 200 or not isinstance(answer.get("matched"), int):
                totals["errors"] += 1
                continue
            for name in RECONCILIATION_COUNTS:
                value = answer.get(name, 0)
                totals[name] += len(value) if isinstance(value, list) else _int(value, 0)
        return totals


def _outcome_unknown(reply: Reply) -> bool:
    """Whether the server may have authorised without the device knowing: no answer, or an answer it cannot read.
    A clean 503 "unavailable" and a 4xx say nothing happened."""
    if reply.status is None:
        return True
    if reply.unavailable:
        return False
    return reply.status >= 500 or (reply.status == 200 and not reply.business)


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
