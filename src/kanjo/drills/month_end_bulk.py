"""`kanjo drill month-end-bulk`: the 2/28 month end (seed 001) — with the ATM fleet at load, a concentrated posting
of 700,000 items on a month-end business date, with the ledger's transfers space provisioned too small for it.

Steps, the fleet running throughout in phases: provision the space at usage + a share of the posting; send the file
in parts; the job's pre-flight must refuse it before it posts anything, naming the limit; an alert must name the
limit within a minute; the day's gate must name the job (the date cannot close without it); the operator raises the
space and reruns the job, which must complete with every item posted exactly once. Pass also: online latency within
objective with zero system errors, no card kept but by a business rule, the journals reconcile, the books verify.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kanjo.business_calendar import BankCalendar
from kanjo.drills.fleet import FleetRuns, prepare_bank
from kanjo.drills.limits import PHASE_SECONDS_MAX
from kanjo.drills.model import (
    AT_MOST,
    EQUALS,
    Criterion,
    FleetOptions,
    _within,
    drill_report,
    verification_summary,
)
from kanjo.drills.product_down import cards_kept, other_operations
from kanjo.drills.server import DrillError, Ops, Target, kanjo_target, progress

SPACE = "ledger_transfers_stored_max"
JOB = "month_end_switch_over"
PART_ITEMS = 10_000  # one request's worth (batch_bulk_items_per_request_max)
ACCOUNTS_PER_CALL = 8_000
POLL_S = 0.2
POSTING_ITEMS_MAX = 2_000_000  # batch_bulk_items_per_job_max
CREDIT_CODE = 9902  # the drill's own accounts, credited by the items (outside the products the books verify)
SUSPENSE_CODE = 9901  # the drill's suspense account, debited by every item
ITEM_CODE = 90  # concentrated posting


@dataclass(frozen=True, slots=True)
class MonthEndBulkOptions:
    """`kanjo drill month-end-bulk`: a 700,000-item concentrated posting meets a limit provisioned too small."""

    fleet: FleetOptions = field(default_factory=lambda: FleetOptions(atms=1_000, withdrawals_per_s=100.0))
    items: int = 700_000
    accounts: int = 10_000  # customer accounts the items credit, in turn
    short_share: float = 0.5  # the space left is this share of the posting: it cannot fit
    chunk_items: int = 2_000
    baseline_s: float = 10.0
    phase_s: float = 10.0  # the fleet runs in phases of this length until the posting is done
    alert_s_max: float = 60.0  # from the refusal to an open alert naming the limit
    posting_s_max: float = 900.0  # the drill stops waiting for the posting after this
    latency_ms_p99_max: float = 500.0  # withdrawals end to end, inquiries, deposits, in every phase

    def check(self) -> None:
        self.fleet.check()
        _within("items", self.items, 2, POSTING_ITEMS_MAX)
        _within("accounts", self.accounts, 1, 1_000_000)
        _within("short_share", self.short_share, 0.0, 0.99)
        _within("chunk_items", self.chunk_items, 1, 8_190)
        for name in ("baseline_s", "phase_s", "alert_s_max", "posting_s_max"):
            _within(name, getattr(self, name), 0.5, PHASE_SECONDS_MAX)

    def server_env(self) -> dict[str, str]:
        """What the kanjo the drill starts is asked: a month-end business date, the batch running, alerts often."""
        return {"KANJO_BATCH_FIRST_BUSINESS_DATE": month_end(dt.date.today()).isoformat(),
                "KANJO_BATCH_SCHEDULER": "true", "KANJO_BATCH_CUT_OFF_TIME": "23:59",
                "KANJO_OPS_EVALUATION_INTERVAL_S": "5"}


def month_end(today: dt.date, calendar: BankCalendar | None = None) -> dt.date:
    """The last business day of `today`'s month (月末営業日)."""
    calendar = calendar or BankCalendar()
    first_next = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return calendar.previous_business_day(first_next)


def amount_of(item_no: int) -> int:
    """Item n's amount in yen: varied, deterministic, so the totals check every item."""
    return 1_000 + (item_no * 7_919) % 9_000


async def run_month_end_bulk(options: MonthEndBulkOptions, target: Target) -> dict[str, Any]:
    options.check()
    ops = Ops(target)
    bank = await prepare_bank(ops, options.fleet, drill_atms=0)
    runs = FleetRuns(options.fleet, bank)
    suspense, customers = await create_accounts(ops, options.accounts)
    summaries = [await runs.run("baseline", options.baseline_s, target.host, target.port)]
    posting = asyncio.create_task(_month_end(ops, options, suspense, customers))
    phase = 0
    while not posting.done():
        phase += 1
        summaries.append(await runs.run(f"posting_{phase}", options.phase_s, target.host, target.port))
    seen = await posting
    reconciliation = await runs.upload(target)
    verification = await ops.verify()
    return judge(options, summaries, seen, reconciliation, verification)


async def create_accounts(ops: Ops, count: int) -> tuple[str, list[str]]:
    """The suspense account every item debits and the customer accounts they credit, new to this kanjo."""
    run = uuid.uuid4().int >> 64 << 64
    suspense = str(uuid.UUID(int=run))
    customers = [str(uuid.UUID(int=run + n)) for n in range(1, count + 1)]
    wanted = [{"id": suspense, "ledger": 392, "code": SUSPENSE_CODE}]
    wanted += [{"id": c, "ledger": 392, "code": CREDIT_CODE} for c in customers]
    for first in range(0, len(wanted), ACCOUNTS_PER_CALL):
        answer = await ops.expect("POST", "/v1/ledger/accounts", {"accounts": wanted[first:first + ACCOUNTS_PER_CALL]})
        failed = [r for r in answer["results"] if r.get("result") not in ("ok", "exists")]
        if failed:
            raise DrillError(f"accounts not created: {failed[:3]}")
    return suspense, customers


async def _month_end(ops: Ops, options: MonthEndBulkOptions, suspense: str,
                     customers: Sequence[str]) -> dict[str, Any]:
    """The operator's night: provision too little, send the file, see it refused and alerted, raise, rerun."""
    seen: dict[str, Any] = {}
    days = await ops.expect("GET", "/v1/batch/days")
    day = dt.date.fromisoformat(days["online_date"])
    seen["business_date"] = day.isoformat()
    seen["month_end"] = day == month_end(day)
    usage = await _space_usage(ops)
    short = usage + int(options.items * options.short_share)
    await ops.expect("PUT", f"/v1/capacity/{SPACE}", {"maximum": short, "by": "drill"})
    seen["provisioned_short"] = {"usage": usage, "maximum": short, "need": options.items}
    progress(f"{SPACE} provisioned at {short:,} (usage {usage:,}): {options.items:,} items cannot fit")

    started = time.perf_counter()
    await send_file(ops, options, day, suspense, customers)
    seen["upload_s"] = round(time.perf_counter() - started, 1)
    progress(f"file of {options.items:,} items sent in {seen['upload_s']} s")

    job = await wait_for_job(ops, day, lambda j: j["state"] in ("failed", "succeeded"), options.posting_s_max)
    refused_at = time.perf_counter()
    seen["refusal"] = {"state": job["state"], "done_items": job["done_items"], "error": job["error"],
                       "preflight": (job.get("result") or {}).get("preflight")}
    seen["suspense_debits_after_refusal"] = (await ops.ledger_account(suspense))["debits_posted"]
    progress(f"job {job['state']}: {job['error']}")

    seen["alert"] = await _limit_alert(ops, options.alert_s_max, refused_at)
    gate = (await ops.expect("GET", f"/v1/batch/days/{day}"))["gate"]
    seen["gate_names_job"] = any(g.get("job") == JOB for g in gate)

    raised = await _space_usage(ops) + options.items + 100_000
    await ops.expect("PUT", f"/v1/capacity/{SPACE}", {"maximum": raised, "by": "drill"})
    await ops.expect("POST", f"/v1/batch/days/{day}/jobs/{JOB}/rerun", {"by": "drill"})
    progress(f"{SPACE} raised to {raised:,}; job rerun")
    job = await wait_for_job(ops, day, lambda j: j["state"] in ("failed", "succeeded") and j["attempts"] >= 2,
                       options.posting_s_max)
    seen["completion"] = {"state": job["state"], "done_items": job["done_items"], "attempts": job["attempts"],
                          "result": job.get("result"), "error": job["error"],
                          "posting_s": _elapsed_s(job["started_at"], job["finished_at"])}
    if job["state"] == "succeeded" and seen["completion"]["posting_s"]:
        seen["completion"]["items_per_s"] = round(options.items / seen["completion"]["posting_s"])
    progress(f"job {job['state']} in {seen['completion']['posting_s']} s")
    seen["totals"] = await posted_totals(ops, options, suspense, customers)
    return seen


async def _space_usage(ops: Ops) -> int:
    rows = (await ops.expect("GET", "/v1/limits"))["limits"]
    return int(next(r["usage"] for r in rows if r["name"] == SPACE))


async def send_file(ops: Ops, options: MonthEndBulkOptions, day: dt.date, suspense: str,
                     customers: Sequence[str]) -> None:
    def part(first: int) -> list[dict[str, Any]]:
        last = min(options.items, first + PART_ITEMS - 1)
        return [{"debit_account_id": suspense, "credit_account_id": customers[(n - 1) % len(customers)],
                 "amount_minor": amount_of(n), "code": ITEM_CODE} for n in range(first, last + 1)]

    await ops.expect("POST", "/v1/batch/bulk-postings", {
        "name": JOB, "items": part(1), "items_total": options.items, "chunk_items": options.chunk_items,
        "expected_s": 120.0})
    for first in range(1 + PART_ITEMS, options.items + 1, PART_ITEMS):
        await ops.expect("POST", f"/v1/batch/days/{day}/bulk-postings/{JOB}/items",
                         {"first_item_no": first, "items": part(first)})


async def wait_for_job(ops: Ops, day: dt.date, done: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout_s
    while True:
        job = await ops.expect("GET", f"/v1/batch/days/{day}/jobs/{JOB}")
        if done(job):
            return dict(job)
        if time.perf_counter() > deadline:
            raise DrillError(f"job {JOB} still {job['state']} ({job['done_items']:,} items) after {timeout_s:g} s")
        await asyncio.sleep(POLL_S)


async def _limit_alert(ops: Ops, within_s: float, since: float) -> dict[str, Any]:
    """The first open alert naming the limit, and how long after the refusal it was seen."""
    deadline = since + within_s + 30  # look a little past the objective, to measure a miss
    while time.perf_counter() < deadline:
        alerts = (await ops.expect("GET", "/v1/alerts"))["alerts"]
        named = [a for a in alerts if a["subject"] == SPACE or SPACE in a["message"]]
        if named:
            return {"after_s": round(time.perf_counter() - since, 1), "rule": named[0]["rule"],
                    "message": named[0]["message"]}
        await asyncio.sleep(1.0)
    return {"after_s": None}


async def posted_totals(ops: Ops, options: MonthEndBulkOptions, suspense: str,
                        customers: Sequence[str]) -> dict[str, int]:
    """What the ledger says moved, against the file: the suspense debited once per item, the customers credited."""
    expected = sum(amount_of(n) for n in range(1, options.items + 1))
    credited = 0
    for first in range(0, len(customers), ACCOUNTS_PER_CALL):
        page = customers[first:first + ACCOUNTS_PER_CALL]
        found = await ops.expect("POST", "/v1/ledger/accounts/lookup", {"ids": page})
        credited += sum(int(a["credits_posted"]) for a in found["accounts"])
    debited = int((await ops.ledger_account(suspense))["debits_posted"])
    return {"expected_minor": expected, "suspense_debited_minor": debited, "customers_credited_minor": credited}


def _elapsed_s(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 1)


def judge(options: MonthEndBulkOptions, summaries: list[dict[str, Any]], seen: dict[str, Any],
          reconciliation: dict[str, int], verification: dict[str, Any]) -> dict[str, Any]:
    refusal, completion, totals = seen["refusal"], seen["completion"], seen["totals"]
    preflight = refusal.get("preflight") or []
    criteria = [
        Criterion("business_date_is_month_end", seen["month_end"], True, EQUALS, detail=seen["business_date"]),
        Criterion("refused_before_posting", refusal["state"] == "failed" and refusal["done_items"] == 0
                  and seen["suspense_debits_after_refusal"] == 0, True, EQUALS, detail=refusal),
        Criterion("refusal_names_the_limit", any(p.get("limit") == SPACE for p in preflight), True, EQUALS),
        Criterion("limit_alert_after_s", seen["alert"].get("after_s"), options.alert_s_max, AT_MOST, "s",
                  seen["alert"]),
        Criterion("day_gate_names_the_job", seen["gate_names_job"], True, EQUALS),
        Criterion("posting_completed_after_raise", completion["state"], "succeeded", EQUALS, detail=completion),
        Criterion("items_posted", completion["done_items"], options.items, EQUALS),
        Criterion("suspense_debited_exactly_once_per_item", totals["suspense_debited_minor"],
                  totals["expected_minor"], EQUALS, "yen"),
        Criterion("customers_credited_exactly_once_per_item", totals["customers_credited_minor"],
                  totals["expected_minor"], EQUALS, "yen"),
        *other_operations(summaries, options.latency_ms_p99_max),
        cards_kept(summaries, []),
        Criterion("journal_breaks", reconciliation.get("breaks"), 0, EQUALS, detail=reconciliation),
        Criterion("books_verified", verification.get("ok") is True, True, EQUALS),
    ]
    measured = {"phases": summaries, "month_end": seen, "reconciliation": reconciliation,
                "verification": verification_summary(verification)}
    return drill_report("month-end-bulk", options, criteria, measured)


# -- the bench's measurement (`kanjo bench month-end`) -----------------------------------------------------------------

async def measure_posting(options: MonthEndBulkOptions, *, server_dsn: str, database: str, phase_s: float,
                          wait_s_max: float) -> dict[str, Any]:
    """The posting with room to spare, timed by the engine (the job's start to its finish) while the fleet runs in
    phases of `phase_s`; the phases overlapping the posting give the online latency during it."""
    options.check()
    async with kanjo_target(url=None, server_dsn=server_dsn, database=database, env=options.server_env()) as target:
        ops = Ops(target)
        bank = await prepare_bank(ops, options.fleet, drill_atms=0)
        suspense, customers = await create_accounts(ops, options.accounts)
        day = dt.date.fromisoformat((await ops.expect("GET", "/v1/batch/days"))["online_date"])
        runs = FleetRuns(options.fleet, bank)
        baseline = await runs.run("baseline", options.baseline_s, target.host, target.port)
        windows: list[tuple[float, float, dict[str, Any]]] = []

        async def night() -> dict[str, Any]:
            await send_file(ops, options, day, suspense, customers)
            progress(f"file of {options.items:,} items loaded; the posting starts")
            return await wait_for_job(ops, day, lambda j: j["state"] in ("failed", "succeeded"), wait_s_max)

        job_task = asyncio.create_task(night())
        while not job_task.done():
            started = time.time()
            summary = await runs.run(f"phase_{len(windows) + 1}", phase_s, target.host, target.port)
            windows.append((started, time.time(), summary))
        job = await job_task
        totals = await posted_totals(ops, options, suspense, customers)
        reconciliation = await runs.upload(target)
        verification = await ops.verify()
    begun, ended = _instant(job["started_at"]), _instant(job["finished_at"])
    during = [s for a, b, s in windows if begun is not None and ended is not None and a < ended and b > begun]
    posting_s = round(ended - begun, 2) if begun is not None and ended is not None else None
    p99 = [s["latency_ms"]["withdrawal"]["p99"] for s in during if s["latency_ms"]["withdrawal"].get("p99")]
    achieved = [s["withdrawals_per_s_achieved"] for s in during]
    return {
        "items": options.items, "job_state": job["state"], "posting_s": posting_s,
        "items_per_s": round(options.items / posting_s) if posting_s else None,
        "atms": options.fleet.atms, "withdrawals_per_s_offered": options.fleet.withdrawals_per_s,
        "withdrawals_per_s_achieved_during_posting": round(min(achieved), 1) if achieved else None,
        "withdrawal_latency_ms_p99_during_posting": max(p99) if p99 else None,
        "withdrawal_latency_ms_p99_baseline": baseline["latency_ms"]["withdrawal"].get("p99"),
        "fleet_phases_during_posting": len(during),
        "system_errors": sum(sum(s["system_errors_by_operation"].values()) for _, _, s in windows),
        "cards_retained_by_system_error": sum(s["cards_retained_by_system_error"] + s["retain_asked_on_system_error"]
                                              for _, _, s in windows),
        "items_posted_once": totals["suspense_debited_minor"] == totals["customers_credited_minor"]
        == totals["expected_minor"],
        "journal_breaks": reconciliation.get("breaks"), "verified": verification.get("ok") is True,
    }


def _instant(iso: str | None) -> float | None:
    return dt.datetime.fromisoformat(iso).timestamp() if iso else None
