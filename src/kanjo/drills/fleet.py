"""The bank a drill builds and the fleet it drives: ATMs registered under a prefix of this run, card holders seeded,
then consecutive fleet runs of the same ATMs (journal numbers continue) whose journals are uploaded at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kanjo.drills.model import FleetOptions
from kanjo.drills.server import Ops, Target, progress
from kanjo.sim import Card, Fleet, FleetConfig, Operation, Outcome, atm_roster, card_from_dict, parse_mix

PAGE_MAX = 1_000  # ATMs registered and card holders seeded per request (the server's limit)
BALANCE_MINOR = 10_000_000  # ¥10M a card holder: a drill never empties an account, refusals stay rare
BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PREFIX_CODES = 36 ** 5


def run_prefix(now_s: float | None = None) -> str:
    """"D" and five base-36 digits of the second the run started: this run's ATMs are new to any kanjo (a machine
    never reuses a journal number), and their ids fit the protocol's 4–12 characters."""
    code = int(time.time() if now_s is None else now_s) % PREFIX_CODES
    digits = ""
    for _ in range(5):
        code, digit = divmod(code, 36)
        digits = BASE36[digit] + digits
    return f"D{digits}"


@dataclass(frozen=True, slots=True)
class Bank:
    """What the drill seeded: the fleet's ATM prefix, its own ATMs (kind own) and the card holders."""

    prefix: str
    drill_atm_ids: tuple[str, ...]
    cards: tuple[Card, ...]


async def prepare_bank(ops: Ops, fleet: FleetOptions, *, drill_atms: int) -> Bank:
    """Register the fleet's ATMs (the simulator's roster: 7 in 10 the bank's own) and `drill_atms` own ATMs for the
    drill's probes, then seed the card holders (idempotent: numbered from 1)."""
    started = time.perf_counter()
    prefix = run_prefix()
    drill_ids = tuple(f"{prefix}T{n:05d}" for n in range(1, drill_atms + 1))
    machines = [{"atm_id": atm_id, "kind": kind.value, "location": f"drill {atm_id}"}
                for atm_id, kind in atm_roster(fleet.atms, prefix)]
    machines += [{"atm_id": atm_id, "kind": "own", "location": f"drill probe {atm_id}"} for atm_id in drill_ids]
    for first in range(0, len(machines), PAGE_MAX):
        await ops.expect("POST", "/v1/atms", {"machines": machines[first:first + PAGE_MAX]})
    cards: list[Card] = []
    for first in range(1, fleet.cards + 1, PAGE_MAX):
        count = min(PAGE_MAX, fleet.cards + 1 - first)
        answer = await ops.expect("POST", "/v1/ops/seed/atm-customers",
                                  {"count": count, "balance_minor": BALANCE_MINOR, "first": first})
        cards.extend(card_from_dict(raw) for raw in answer["cards"])
    progress(f"{len(machines):,} ATMs registered (prefix {prefix}) and {len(cards):,} card holders seeded"
             f" in {time.perf_counter() - started:.1f} s")
    return Bank(prefix, drill_ids, tuple(cards))


@dataclass
class FleetRuns:
    """Runs of one fleet, one after another (a phase each); every run's journals kept for one upload at the end."""

    options: FleetOptions
    bank: Bank
    fleets: list[Fleet] = field(default_factory=list)
    journal_no_next: int = 1

    def config(self, seconds: float, seed_offset: int) -> FleetConfig:
        o = self.options
        return FleetConfig(
            atms=o.atms, withdrawals_per_s=o.withdrawals_per_s, seconds=seconds, cards=self.bank.cards,
            seed=o.seed + seed_offset, mix=parse_mix(o.mix), request_timeout_ms=o.device_timeout_ms,
            retries_max=o.retries, ack_retries_max=o.ack_retries, connections=o.connections,
            journal_no_first=self.journal_no_next, atm_id_prefix=self.bank.prefix)

    async def run(self, phase: str, seconds: float, host: str, port: int) -> dict[str, Any]:
        """One phase of load against host:port; its summary."""
        fleet = Fleet(self.config(seconds, len(self.fleets)))
        self.fleets.append(fleet)
        o = self.options
        progress(f"{phase}: {o.atms:,} ATMs offering {o.withdrawals_per_s:g} withdrawals/s for {seconds:g} s")
        report = await fleet.run(host, port)
        self.journal_no_next = fleet.journal_no_next
        summary = phase_summary(phase, report)
        progress(f"{phase}: withdrawal p99 {summary['latency_ms'].get('withdrawal', {}).get('p99')} ms end to end,"
                 f" system errors {summary['system_errors_by_operation']}")
        return summary

    async def upload(self, target: Target) -> dict[str, int]:
        """Every run's journals to POST /atm/v1/journal straight to kanjo; the answers summed."""
        totals: dict[str, int] = {}
        for fleet in self.fleets:
            for name, n in (await fleet.journal_upload(target.host, target.port)).items():
                totals[name] = totals.get(name, 0) + n
        progress(f"journals uploaded: {totals}")
        return totals

    def cash(self) -> dict[str, int]:
        """The cash the ATMs' journals say moved: dispensed by withdrawals and card-loan draws, taken in by
        deposits."""
        totals = {"withdrawals": 0, "loan_draws": 0, "dispensed": 0, "dispensed_minor": 0, "not_dispensed": 0,
                  "no_answer": 0, "deposits": 0, "deposited": 0, "deposited_minor": 0, "deposits_no_answer": 0}
        for fleet in self.fleets:
            for atm in fleet.atms:
                for entry in atm.journal:
                    _count_cash(totals, entry.operation, entry.outcome, entry.dispensed_minor, entry.amount_minor)
        return totals


def _count_cash(totals: dict[str, int], operation: str, outcome: Outcome, dispensed_minor: int,
                amount_minor: int) -> None:
    if operation in (Operation.WITHDRAWAL, Operation.LOAN_DRAW):  # both pay out of the machine's cash
        totals["withdrawals" if operation == Operation.WITHDRAWAL else "loan_draws"] += 1
        if dispensed_minor:
            totals["dispensed"] += 1
            totals["dispensed_minor"] += dispensed_minor
        elif outcome is Outcome.NO_ANSWER:
            totals["no_answer"] += 1
        else:
            totals["not_dispensed"] += 1
    elif operation == Operation.DEPOSIT:
        totals["deposits"] += 1
        if outcome is Outcome.DEPOSITED:
            totals["deposited"] += 1
            totals["deposited_minor"] += amount_minor
        elif outcome is Outcome.NO_ANSWER:
            totals["deposits_no_answer"] += 1


def phase_summary(phase: str, report: dict[str, Any]) -> dict[str, Any]:
    """What a drill keeps of one fleet run: rates, latency by operation (withdrawals end to end), results, errors."""
    latency = report["latency_ms"]
    by_operation = {"withdrawal": latency["withdrawal_end_to_end"],
                    **{op: latency[op] for op in ("inquiry", "deposit", "transfer", "time_deposit", "loan_draw")
                       if op in latency}}
    return {
        "phase": phase, "seconds": report["seconds"], "elapsed_s": report["elapsed_s"],
        "withdrawals_per_s_offered": report["offered"]["withdrawals_per_s"],
        "withdrawals_per_s_achieved": report["achieved"]["withdrawals_per_s"],
        "operations_per_s_achieved": report["achieved"]["operations_per_s"],
        "latency_ms": by_operation,
        "system_errors_by_operation": report["system_errors_by_operation"],
        "results_by_operation": {op: d["results"] for op, d in report["operations"]["by_operation"].items()},
        "system_error_samples": report.get("system_error_samples", {}),
        "resends_by_message": report["operations"]["resends_by_message"],
        "unanswered_by_message": report["operations"]["unanswered_by_message"],
        "cards_retained": report["cards_retained"], "cards_retained_by_code": report["cards_retained_by_code"],
        "cards_retained_by_system_error": report["cards_retained_by_system_error"],
        "retain_asked_on_system_error": report["retain_asked_on_system_error"],
        "transactions": report["transactions"], "withdrawal_ack_codes": report["withdrawals"]["ack_codes"],
    }


def operations_of(phases: Sequence[dict[str, Any]], *, leaving_out: Sequence[str] = ()) -> list[str]:
    """The operations the phases' fleets offered, in a stable order, without `leaving_out`."""
    seen = {op for phase in phases for op in phase["results_by_operation"]}
    return [op.value for op in Operation if op.value in seen and op.value not in leaving_out]
