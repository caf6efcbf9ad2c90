"""`kanjo drill product-down`: while the ATM fleet runs, the time-deposit product fails — errors, then hangs — and is
restored (seed 001, 2/28 and 3/7: time-deposit errors must never close the ATM partition).

Phases, one fleet run each (journal numbers continue): baseline, td_error, td_hang, restored. Beside the fleet the
drill places its own time deposits from own ATMs at a fixed rate and polls the product's breaker, so each refusal is
judged by when it happened. Pass: the other operations keep their latency objective with zero system errors in every
phase; time deposits are refused fast and clearly once the breaker is open; no card is kept but by a business rule;
the breaker closes by itself after the restore and time deposits work again; the journals reconcile; the books verify.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kanjo.drills.fleet import FleetRuns, operations_of, prepare_bank
from kanjo.drills.model import (
    AT_LEAST,
    AT_MOST,
    EQUALS,
    BreakerTimeline,
    Criterion,
    ProductDownOptions,
    drill_report,
    percentile_ms,
    verification_summary,
)
from kanjo.drills.probe import BreakerWatcher, ProbeSample, TimeDepositProbe, watching
from kanjo.drills.server import Ops, Target, progress

PRODUCT = "time_deposits"
OPERATION = "time_deposit"
PROBE_ATMS = 4
DOWN_PHASES = ("td_error", "td_hang")
MUST_STILL_WORK = ("withdrawal", "inquiry", "deposit")


def phases(options: ProductDownOptions) -> list[tuple[str, str | None, float]]:
    """(phase, fault mode or None, seconds), in order."""
    return [("baseline", None, options.baseline_s), ("td_error", "error", options.error_s),
            ("td_hang", "hang", options.hang_s), ("restored", None, options.restored_s)]


async def run_product_down(options: ProductDownOptions, target: Target) -> dict[str, Any]:
    options.check()
    ops = Ops(target)
    bank = await prepare_bank(ops, options.fleet, drill_atms=PROBE_ATMS)
    runs = FleetRuns(options.fleet, bank)
    watcher = BreakerWatcher(target, PRODUCT)
    plan = phases(options)
    probe = TimeDepositProbe(target, bank.drill_atm_ids, bank.cards, options.probe_per_s, phase=plan[0][0])
    started: dict[str, float] = {}
    summaries: list[dict[str, Any]] = []
    try:
        async with watching(watcher, probe):
            for name, mode, seconds in plan:
                await (ops.inject_fault(PRODUCT, mode) if mode else ops.clear_fault(PRODUCT))
                started[name] = time.perf_counter()
                probe.phase = name
                progress(f"{name}: {PRODUCT} " + (f"failing on purpose ({mode})" if mode else "in service"))
                summaries.append(await runs.run(name, seconds, target.host, target.port))
    finally:
        await ops.clear_fault(PRODUCT)
    reconciliation = await runs.upload(target)
    verification = await ops.verify()
    return judge(options, summaries, probe.samples, watcher, started, reconciliation, verification)


def judge(options: ProductDownOptions, summaries: list[dict[str, Any]], samples: list[ProbeSample],
          watcher: BreakerWatcher, started: dict[str, float], reconciliation: dict[str, int],
          verification: dict[str, Any]) -> dict[str, Any]:
    timeline = watcher.timeline
    opened_at = timeline.first("open", started["td_error"])
    closed_at = timeline.first("closed", started["restored"])
    criteria = [
        *other_operations(summaries, options.latency_ms_p99_max),
        *refusals(samples, timeline, options.refusal_latency_ms_p99_max),
        *breaker(opened_at, closed_at, started, options),
        *time_deposits_back(samples, closed_at, timeline.interval_s),
        cards_kept(summaries, samples),
        Criterion("transactions_unfinished", sum(s["transactions"]["unfinished"] for s in summaries), 0, EQUALS),
        Criterion("journal_breaks", reconciliation.get("breaks"), 0, EQUALS, detail=reconciliation),
        Criterion("journal_upload_errors", reconciliation.get("errors"), 0, EQUALS),
        Criterion("books_verified", verification.get("ok") is True, True, EQUALS),
    ]
    measured = {"phases": summaries, "probe": probe_summary(samples), "breaker": breaker_summary(timeline, started),
                "reconciliation": reconciliation, "verification": verification_summary(verification)}
    return drill_report("product-down", options, criteria, measured)


def other_operations(summaries: Sequence[dict[str, Any]], latency_ms_p99_max: float) -> list[Criterion]:
    """Every operation but time deposits: p99 (withdrawals end to end) in its worst phase, and system errors."""
    criteria = []
    for op in operations_of(summaries, leaving_out=(OPERATION,)):
        by_phase = {s["phase"]: s["latency_ms"].get(op, {}).get("p99") for s in summaries}
        measured = [v for v in by_phase.values() if v is not None]
        criteria.append(Criterion(f"{op}_latency_ms_p99", max(measured) if measured else None, latency_ms_p99_max,
                                  AT_MOST, "ms", {"by_phase": by_phase}))
    errors = {s["phase"]: {op: n for op, n in s["system_errors_by_operation"].items() if op != OPERATION}
              for s in summaries}
    criteria.append(Criterion("other_operations_system_errors", sum(sum(e.values()) for e in errors.values()), 0,
                              EQUALS, detail={"by_phase": errors}))
    return criteria


def refusals(samples: Sequence[ProbeSample], timeline: BreakerTimeline, latency_ms_p99_max: float) -> list[Criterion]:
    """While the product is down: the probe's time deposits refused fast once the breaker is open, and every refusal
    clear (503 unavailable, card returned, a message, withdrawals named among what still works)."""
    down = [s for s in samples if s.phase in DOWN_PHASES]
    while_open = [s for s in down if timeline.held("open", s.sent_s, s.sent_s + s.waited_ms / 1000)]
    latencies = [s.waited_ms for s in while_open]  # no answer counts as the whole wait
    unclear = [s for s in down if not clear_refusal(s)]
    return [
        Criterion("time_deposit_refusal_latency_ms_p99_breaker_open", percentile_ms(latencies, 99),
                  latency_ms_p99_max, AT_MOST, "ms", {"refusals": len(while_open), "while_down": len(down)}),
        Criterion("time_deposit_refusals_unclear", len(unclear) if down else None, 0, EQUALS,
                  detail={"while_down": len(down), "results": _results(down),
                          "example": down[0].answer if down else None,
                          "unclear_example": unclear[0].answer if unclear else None}),
    ]


def clear_refusal(sample: ProbeSample) -> bool:
    answer = sample.answer or {}
    still_working = answer.get("still_working")
    return (sample.status == 503 and answer.get("result") == "unavailable" and answer.get("card_action") == "return"
            and bool(answer.get("message")) and isinstance(still_working, list)
            and all(op in still_working for op in MUST_STILL_WORK))


def breaker(opened_at: float | None, closed_at: float | None, started: dict[str, float],
            options: ProductDownOptions) -> list[Criterion]:
    opened_s = None if opened_at is None else round(opened_at - started["td_error"], 3)
    closed_s = None if closed_at is None else round(closed_at - started["restored"], 3)
    return [Criterion("time_deposit_breaker_opened_after_s", opened_s, options.error_s, AT_MOST, "s"),
            Criterion("time_deposit_breaker_closed_after_restore_s", closed_s, options.recovery_s_max, AT_MOST, "s")]


def time_deposits_back(samples: Sequence[ProbeSample], closed_at: float | None, interval_s: float) -> list[Criterion]:
    """Before the fault and once the breaker has closed again, the probe's time deposits are answered (approved or a
    business refusal) — no operator touched the breaker."""
    before = [s for s in samples if s.phase == "baseline"]
    after = [] if closed_at is None else [s for s in samples if s.phase == "restored"
                                          and s.sent_s >= closed_at + interval_s]
    failing = [s for s in after if s.result not in ("approved", "refused")]
    return [
        Criterion("time_deposits_approved_before_fault", sum(s.result == "approved" for s in before), 1, AT_LEAST),
        Criterion("time_deposits_approved_after_restore", sum(s.result == "approved" for s in after), 1, AT_LEAST),
        Criterion("time_deposits_failing_after_breaker_closed", len(failing), 0, EQUALS,
                  detail={"sent_after_close": len(after), "results": _results(after)}),
    ]


def cards_kept(summaries: Sequence[dict[str, Any]], samples: Sequence[ProbeSample]) -> Criterion:
    """Cards kept without a business refusal behind it (the fleet's and the probe's): must be none."""
    fleet = sum(s["cards_retained_by_system_error"] + s["retain_asked_on_system_error"] for s in summaries)
    probe = sum(1 for s in samples if (s.answer or {}).get("card_action") == "retain" and s.result != "refused")
    by_rule = sum(s["cards_retained"] for s in summaries) - sum(s["cards_retained_by_system_error"] for s in summaries)
    return Criterion("cards_retained_not_by_business_rule", fleet + probe, 0, EQUALS,
                     detail={"retained_by_business_rule": by_rule})


def _results(samples: Sequence[ProbeSample]) -> dict[str, int]:
    return dict(sorted(Counter(f"{s.result}/{(s.answer or {}).get('code', '-')}" for s in samples).items()))


def probe_summary(samples: Sequence[ProbeSample]) -> dict[str, Any]:
    by_phase: dict[str, Any] = {}
    for phase in dict.fromkeys(s.phase for s in samples):
        mine = [s for s in samples if s.phase == phase]
        answered = [s.latency_ms for s in mine if s.latency_ms is not None]
        by_phase[phase] = {"sent": len(mine), "results": _results(mine),
                           "latency_ms_p50": percentile_ms(answered, 50),
                           "latency_ms_p99": percentile_ms(answered, 99),
                           "latency_ms_max": percentile_ms(answered, 100)}
    return {"operation": OPERATION, "by_phase": by_phase}


def breaker_summary(timeline: BreakerTimeline, started: dict[str, float]) -> dict[str, Any]:
    """The states the watcher saw in each phase, and when the breaker first opened and closed again."""
    names = list(started)
    ends = [started[n] for n in names[1:]] + [float("inf")]
    states = {n: timeline.states_between(started[n], end) for n, end in zip(names, ends, strict=True)}
    return {"poll_interval_ms": round(timeline.interval_s * 1000), "states_by_phase": states}
