"""What a fleet run counts while it runs (the tally) and the one JSON-able report made from it at the end."""

from __future__ import annotations

import array
import collections
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kanjo.sim.model import Atm, FleetConfig, Message, Operation

ERROR_SAMPLES_MAX = 20  # distinct system-error answers kept verbatim for the report: enough to name a fault
ERROR_SAMPLE_CHARS_MAX = 300
PER_ATM_COLUMNS = ("atm_id", "kind", "operations", "system_errors", "cards_retained", "abandoned", "journal_no_last")


def _latencies() -> array.array[int]:
    return array.array("q")  # microseconds: 8 bytes a sample, exact percentiles without a list of floats


@dataclass(slots=True)
class CashOutTally:
    """One kind of cash-out's counts (withdrawals, card-loan draws): the cash that came out, and the acks' codes."""

    dispensed: int = 0
    dispensed_minor: int = 0
    dispense_failures: int = 0
    ack_codes: collections.Counter[str] = field(default_factory=collections.Counter)

    def report(self) -> dict[str, Any]:
        return {"dispensed": self.dispensed, "dispensed_minor": self.dispensed_minor,
                "dispense_failures": self.dispense_failures, "ack_codes": dict(sorted(self.ack_codes.items()))}


@dataclass(slots=True)
class Tally:
    """Counts kept while the fleet runs; every latency in microseconds from the intended send."""

    scheduled: collections.Counter[str] = field(default_factory=collections.Counter)
    abandoned: collections.Counter[str] = field(default_factory=collections.Counter)
    results: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))  # operation → "result/code"
    system_errors: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))  # operation → kind
    resends: collections.Counter[str] = field(default_factory=collections.Counter)  # by message
    unanswered: collections.Counter[str] = field(default_factory=collections.Counter)  # by message, after resends
    retained_by_code: collections.Counter[str] = field(default_factory=collections.Counter)
    retained_by_system_error: int = 0  # a retain not backed by a business refusal: must stay 0
    retain_asked_on_system_error: int = 0  # a non-200 answer said retain: the device returned the card anyway
    latency_us: dict[str, array.array[int]] = field(default_factory=lambda: collections.defaultdict(_latencies))
    withdrawal_end_to_end_us: array.array[int] = field(default_factory=_latencies)  # loan draws not among them
    warmup_end_to_end_us: array.array[int] = field(default_factory=_latencies)  # withdrawals of the warm-up
    withdrawals: CashOutTally = field(default_factory=CashOutTally)
    loan_draws: CashOutTally = field(default_factory=CashOutTally)
    deposits_stored: int = 0
    deposits_stored_minor: int = 0
    deposits_returned: int = 0  # accepted, then given back (the customer cancelled, a jam)
    deposit_ack_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    answered_at: float = 0.0  # perf_counter of the last answer of the run
    error_samples: dict[str, str] = field(default_factory=dict)  # "operation status code" → the answer, shortened

    def cash_out(self, operation: Operation) -> CashOutTally:
        return self.loan_draws if operation is Operation.LOAN_DRAW else self.withdrawals

    def ack_codes_of(self, operation: Operation) -> collections.Counter[str]:
        """Where an operation's acknowledgement codes are counted: per kind of cash-out, and deposits."""
        return self.deposit_ack_codes if operation is Operation.DEPOSIT else self.cash_out(operation).ack_codes

    def latency(self, message: Message, seconds: float) -> None:
        self.latency_us[message].append(round(seconds * 1_000_000))

    def sample_error(self, message: str, kind: str, answer: dict[str, Any] | None) -> None:
        """Keep the first answer of each kind of system error, to tell the reader what the bank said."""
        key = f"{message} {kind} {(answer or {}).get('code', '-')}"
        if key not in self.error_samples and len(self.error_samples) < ERROR_SAMPLES_MAX:
            said = json.dumps(answer, ensure_ascii=False) if answer is not None else "(no answer)"
            self.error_samples[key] = said[:ERROR_SAMPLE_CHARS_MAX]

    def completed(self) -> int:
        return sum(sum(counts.values()) for counts in self.results.values())


def percentiles_ms(samples_us: Sequence[int]) -> dict[str, Any]:
    """Nearest-rank p50, p99 and max in ms (None when nothing was measured), and the sample count."""
    ordered = sorted(samples_us)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] / 1000, 3)

    return {"p50": rank(50), "p99": rank(99), "max": rank(100), "count": len(ordered)}


def build_report(config: FleetConfig, tally: Tally, atms: Sequence[Atm], *, elapsed_s: float,
                 faults: dict[str, int], unfinished: int) -> dict[str, Any]:
    """The run as one JSON-able dict: offered and achieved rates, results, errors, cards, latencies, per ATM."""
    business = {op: sum(n for key, n in counts.items() if key.startswith(("approved/", "refused/")))
                for op, counts in tally.results.items()}
    system_errors = {str(op): sum(kinds.values()) for op, kinds in tally.system_errors.items()}

    def per_s(count: int) -> float:
        return round(count / elapsed_s, 1) if elapsed_s > 0 else 0.0

    return {
        "atms": config.atms, "cards": len(config.cards), "seconds": float(config.seconds),
        "warmup_s": float(config.warmup_s), "seed": config.seed,
        "connections": config.connections, "request_timeout_ms": config.request_timeout_ms,
        "mix": {op.value: weight for op, weight in config.weights.items()},
        "elapsed_s": round(elapsed_s, 3),
        "offered": {"withdrawals_per_s": float(config.withdrawals_per_s),
                    "operations_per_s": round(config.operations_per_s, 1)},
        "achieved": {"withdrawals_per_s": per_s(business.get(Operation.WITHDRAWAL, 0)),
                     "operations_per_s": per_s(sum(business.values()))},
        "transactions": {"scheduled": sum(tally.scheduled.values()), "completed": tally.completed(),
                         "abandoned": sum(tally.abandoned.values()), "unfinished": unfinished},
        "operations": _operations(tally),
        "system_errors": sum(system_errors.values()),
        "system_errors_by_operation": dict(sorted(system_errors.items())),
        "system_error_samples": dict(sorted(tally.error_samples.items())),
        "cards_retained": sum(tally.retained_by_code.values()),
        "cards_retained_by_code": dict(sorted(tally.retained_by_code.items())),
        "cards_retained_by_system_error": tally.retained_by_system_error,
        "retain_asked_on_system_error": tally.retain_asked_on_system_error,
        "withdrawals": tally.withdrawals.report(),
        "loan_draws": tally.loan_draws.report(),
        "deposits": {"stored": tally.deposits_stored, "stored_minor": tally.deposits_stored_minor,
                     "returned_after_acceptance": tally.deposits_returned,
                     "ack_codes": dict(sorted(tally.deposit_ack_codes.items()))},
        "latency_ms": _latency_report(tally),
        "warmup_latency_ms": {"withdrawal_end_to_end": percentiles_ms(tally.warmup_end_to_end_us)},
        "faults": faults,
        "per_atm": {"columns": list(PER_ATM_COLUMNS), "rows": [_atm_row(atm) for atm in atms]},
    }


def _operations(tally: Tally) -> dict[str, Any]:
    operations = {}
    for op in Operation:
        if not tally.scheduled[op]:
            continue
        operations[op.value] = {
            "scheduled": tally.scheduled[op], "abandoned": tally.abandoned[op],
            "results": dict(sorted(tally.results[op].items())),
            "system_errors": dict(sorted(tally.system_errors[op].items())),
        }
    return {"by_operation": operations, "resends_by_message": _plain(tally.resends),
            "unanswered_by_message": _plain(tally.unanswered)}


def _plain(counts: collections.Counter[str]) -> dict[str, int]:
    """Enum keys as their text: JSON encoders want plain strings."""
    return {str(key): n for key, n in sorted(counts.items())}


def _latency_report(tally: Tally) -> dict[str, Any]:
    report = {"withdrawal_end_to_end": percentiles_ms(tally.withdrawal_end_to_end_us)}
    for message in Message:
        if message in tally.latency_us:
            report[message.value] = percentiles_ms(tally.latency_us[message])
    return report


def _atm_row(atm: Atm) -> list[Any]:
    return [atm.atm_id, atm.kind.value, atm.operations, atm.system_errors, atm.cards_retained, atm.abandoned,
            atm.journal[-1].journal_no if atm.journal else None]
