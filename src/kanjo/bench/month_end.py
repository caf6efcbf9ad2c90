"""`kanjo bench month-end`: the month end of issue 5, as JSON lines (one per scenario).

- `month-end-posting`: `kanjo up` on a fresh database, on a month-end business date, the batch running; the ATM
  fleet (the drills' fleet, in this process) offers its withdrawals with the realistic mix around them, in phases,
  for the whole run; a concentrated posting of 700,000 items (as on 2/28) is sent in parts and starts when its last
  part arrives. Timed by the engine: the job's start to its finish. The fleet's phases that overlap the posting give
  the online latency during it. Checked afterwards: every item posted once (the suspense and the customers' totals
  against the file), the journals reconcile, the books verify.
- `day-change`: a bank of 1,000,000 ordinary accounts with balances (the products bench's setup, not timed), then the
  whole day of the batch's catalogue on one date in process — start-of-day jobs, the cut-off (snapshot, date rolled),
  the end-of-day accruals, the close — timed from the first job's start to the day's close; `verify_ledger` after.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from kanjo.accounting import ensure_chart
from kanjo.bank import build_bank
from kanjo.batch import Batch, BusinessDay, bank_kinds, day_plan
from kanjo.bench.ledger import _durability, _fresh_database, _progress
from kanjo.bench.products import LAST_DAY, SEED, _anyone, _setup, _verify_ledger
from kanjo.business_calendar import BankCalendar
from kanjo.drills import FleetOptions, MonthEndBulkOptions, measure_posting
from kanjo.ledger import Ledger

SCENARIOS = ("month-end-posting", "day-change")
POSTING_TARGET_S = 60.0
ATM_LATENCY_MS_P99_TARGET = 50.0
DAY_CHANGE_TARGET_S = 300.0
PHASE_S = 5.0  # the fleet's phases: short, so those overlapping the posting measure it closely
POSTING_WAIT_S_MAX = 1_800.0

Emit = Callable[[dict[str, Any]], None]


async def run_month_end_bench(*, server_dsn: str, items: int, atms: int, rate: float, cards: int,
                              accounts: int, day_change_accounts: int, scenarios: Sequence[str],
                              emit: Emit) -> list[dict[str, Any]]:
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    results = []
    for scenario in (s for s in SCENARIOS if s in scenarios):
        if scenario == "month-end-posting":
            result = await _posting(server_dsn, items, atms, rate, cards, accounts)
        else:
            result = await _day_change(server_dsn, day_change_accounts)
        result.update(scenario=scenario, cpus=os.cpu_count(), load_average_1m=round(os.getloadavg()[0], 2))
        results.append(result)
        emit(result)
    return results


# -- the month-end concentrated posting under ATM load ----------------------------------------------------------------

async def _posting(server_dsn: str, items: int, atms: int, rate: float, cards: int, accounts: int) -> dict[str, Any]:
    options = MonthEndBulkOptions(FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate,
                                               mix="withdrawal=1", connections=256),
                                  items=items, accounts=accounts)
    result = await measure_posting(options, server_dsn=server_dsn, database="kanjo_bench_month_end",
                                   phase_s=PHASE_S, wait_s_max=POSTING_WAIT_S_MAX)
    p99 = result["withdrawal_latency_ms_p99_during_posting"]
    result["targets"] = {"posting_s": POSTING_TARGET_S, "withdrawals_per_s": 500,
                         "withdrawal_latency_ms_p99": ATM_LATENCY_MS_P99_TARGET}
    result["met"] = bool(result["posting_s"] is not None and result["posting_s"] < POSTING_TARGET_S and rate >= 500
                         and p99 is not None and p99 <= ATM_LATENCY_MS_P99_TARGET and result["system_errors"] == 0
                         and result["items_posted_once"])
    return result


# -- the day change of a million accounts -------------------------------------------------------------------------

async def _day_change(server_dsn: str, accounts: int) -> dict[str, Any]:
    bench_dsn = await _fresh_database(server_dsn, "kanjo_bench_day_change")
    durability = await _durability(bench_dsn)
    calendar = BankCalendar()
    day = BusinessDay(LAST_DAY)
    ledger = await Ledger.start(bench_dsn, business_date=day)
    assert ledger.pool is not None
    try:
        await ensure_chart(ledger)
        await _setup(ledger, bench_dsn, accounts, 0, random.Random(SEED))
        day.moved_to((await BusinessDay.load(ledger.pool, LAST_DAY))())
        bank = build_bank(ledger, calendar, business_date=day, customer_check=_anyone, pin_key=bytes(32))
        whole_day = day_plan(None)
        engine = Batch(ledger.pool, bank_kinds(bank), day, calendar,
                       lambda d: whole_day(d) if d == LAST_DAY else [], tick_s=0.2)
        await engine.plan(LAST_DAY, whole_day(LAST_DAY))
        _progress(f"day change of {LAST_DAY} for {accounts:,} accounts: running the whole catalogue")
        started = time.perf_counter()
        await engine.run_until_idle(timeout_s=3_600)
        elapsed = time.perf_counter() - started
        report = await engine.day_report(LAST_DAY)
        ok, verify_s = await _verify_ledger(bench_dsn)
    finally:
        await ledger.stop()
    jobs = {j["name"]: {"state": j["state"], "seconds": _elapsed(j["started_at"], j["finished_at"])}
            for j in report["jobs"]}
    return {"accounts": accounts, "business_date": LAST_DAY.isoformat(), "day_state": report["state"],
            "online_date_after": day().isoformat(), "day_change_s": round(elapsed, 1), "jobs": jobs,
            "verified": ok, "verify_s": round(verify_s, 1), "durability": durability,
            "target_s": DAY_CHANGE_TARGET_S,
            "met": report["state"] == "closed" and elapsed < DAY_CHANGE_TARGET_S and ok}


def _elapsed(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 2)
