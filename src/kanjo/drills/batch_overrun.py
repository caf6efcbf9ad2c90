"""`kanjo drill batch-overrun`: a night batch runs slow and a mandatory job is left undone, under ATM load (seeds
002–004: a slow batch locked out online, a mandatory job was missed).

Two concentrated postings are planned on the open business date: one is made `slowdown` times slower than its
expected duration (the hub's `bulk_posting` product delayed per chunk), the other — mandatory — is held by an operator,
and the cut-off is asked to run now. Pass: online keeps its latency objective with zero system errors and no card kept;
the overrun alert names the slow job within the objective, while it runs and before the day closes; the day stays open
while the held job is missing, its gate and an alert naming it; a rerun of every finished job changes nothing in the
books; releasing the held job lets the day cut off and close, each posting made exactly once; the books verify.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kanjo.accounting import JPY, SUSPENSE_CREDIT, SUSPENSE_DEBIT
from kanjo.batch import CLOSING_JOB, CUT_OFF, BatchAlertPolicy
from kanjo.drills.fleet import FleetRuns, operations_of, prepare_bank
from kanjo.drills.limits import PHASE_SECONDS_MAX
from kanjo.drills.model import AT_MOST, EQUALS, Criterion, FleetOptions, drill_report, verification_summary
from kanjo.drills.server import DrillError, Ops, Target, progress
from kanjo.kernel.limits import limits

PRODUCT = "bulk_posting"  # the hub product every concentrated posting's chunks go through
PAYEES = 10  # the file's credits go round these accounts
ITEM_AMOUNT_MINOR = 1_000
ITEM_CODE = 13  # 振替 transfer
POLL_S = 0.25
FINISHED = ("succeeded", "skipped")
OPERATOR = "drill-batch-overrun"
CUT_OFF_TIME = "23:59"  # asked of the kanjo the drill starts: the cut-off never runs by the clock mid-drill
CHUNK_LATENCY_MS_MAX = limits.declare(
    "drill_chunk_latency_ms_max", 20_000, "ms",
    "the delay a drill injects into one bulk-posting chunk: under the hub's 30 s timeout of the product, so the chunk"
    " is slow, never failed",
).maximum


@dataclass(frozen=True, slots=True)
class BatchOverrunOptions:
    """`kanjo drill batch-overrun`: one concentrated posting runs `slowdown` times its expected duration, another
    (mandatory) is held until the drill has seen the day refuse to close; ATM load throughout."""

    fleet: FleetOptions = field(default_factory=FleetOptions)
    items: int = 2_000  # items of each posting
    chunk_items: int = 100  # at most the engine's smallest chunk, so online's pace never changes the chunk count
    expected_s: float = 6.0  # what the postings declare they take
    slowdown: float = 5.0  # the slow posting takes this many times its expected duration
    held_s: float = 5.0  # after the slow posting ends, how long the held one keeps the day open
    close_load_s: float = 10.0  # ATM load while the released job, the cut-off and the close run
    close_timeout_s: float = 60.0  # release → day closed
    alert_interval_s: float = 1.0  # asked of the kanjo the drill starts (KANJO_OPS_EVALUATION_INTERVAL_S)
    alert_within_s: float = 60.0  # the overrun threshold passed → its alert open
    latency_ms_p99_max: float = 500.0  # every ATM operation, both phases

    @property
    def chunks(self) -> int:
        return math.ceil(self.items / self.chunk_items)

    @property
    def slow_s(self) -> float:
        return self.expected_s * self.slowdown

    @property
    def chunk_latency_ms(self) -> int:
        return math.ceil(self.slow_s * 1000 / self.chunks)

    def overrun_after_s(self, policy: BatchAlertPolicy | None = None) -> float:
        """When a posting of `expected_s` counts as overrunning (the batch's alert policy)."""
        p = policy or BatchAlertPolicy()
        return max(self.expected_s * p.overrun_ratio, self.expected_s + p.overrun_s_min)

    def server_env(self) -> dict[str, str]:
        return {"KANJO_BATCH_SCHEDULER": "true", "KANJO_OPS_EVALUATION_INTERVAL_S": f"{self.alert_interval_s:g}",
                "KANJO_BATCH_CUT_OFF_TIME": CUT_OFF_TIME}

    def check(self) -> None:
        self.fleet.check()
        _within("items", self.items, 1, limits.get("batch_bulk_items_per_request_max").maximum)
        _within("chunk_items", self.chunk_items, 1, min(self.items, limits.get("batch_bulk_chunk_items_max").maximum))
        _within("expected_s", self.expected_s, 0.5, PHASE_SECONDS_MAX)
        _within("slowdown", self.slowdown, 1.5, 100)
        for name in ("held_s", "close_load_s", "close_timeout_s", "alert_within_s"):
            _within(name, getattr(self, name), 0.5, PHASE_SECONDS_MAX)
        _within("alert_interval_s", self.alert_interval_s, 0.5, 60)
        _within("chunk latency (ms): expected_s × slowdown / chunks", self.chunk_latency_ms, 1, CHUNK_LATENCY_MS_MAX)
        seen_by_s = self.overrun_after_s() + 3 * self.alert_interval_s
        if self.slow_s < seen_by_s:
            raise ValueError(f"the slow posting ({self.slow_s:g} s) must outlast its overrun threshold"
                             f" ({self.overrun_after_s():g} s) by three alert intervals: raise slowdown or expected_s")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low:g}..{high:,g}, not {value}")


@dataclass(frozen=True, slots=True)
class Postings:
    """The drill's two postings and the ledger accounts they move money between."""

    slow: str
    held: str
    payer: str
    payees: tuple[str, ...]

    def items(self, count: int) -> list[dict[str, Any]]:
        return [{"debit_account_id": self.payer, "credit_account_id": self.payees[n % len(self.payees)],
                 "amount_minor": ITEM_AMOUNT_MINOR, "code": ITEM_CODE} for n in range(count)]

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.payer, *self.payees)


async def run_batch_overrun(options: BatchOverrunOptions, target: Target) -> dict[str, Any]:
    options.check()
    ops = Ops(target)
    bank = await prepare_bank(ops, options.fleet, drill_atms=0)
    postings = await open_accounts(ops, bank.prefix.lower())
    runs = FleetRuns(options.fleet, bank)
    await ops.expect("POST", "/v1/ops/faults", {"product": PRODUCT, "mode": "slow",
                                               "latency_ms": options.chunk_latency_ms})
    progress(f"{PRODUCT} slowed by {options.chunk_latency_ms:,} ms a chunk: {options.chunks} chunks,"
             f" about {options.slow_s:g} s for a posting that expects {options.expected_s:g} s")
    try:
        load = asyncio.create_task(runs.run("overrun", options.slow_s + options.held_s, target.host, target.port))
        try:
            overrun = await overrun_phase(ops, options, postings)
        finally:
            overrun_load = await load
    finally:
        await ops.clear_fault(PRODUCT)
    day = dt.date.fromisoformat(overrun["business_date"])
    rerun = await rerun_phase(ops, day, postings)
    load = asyncio.create_task(runs.run("close", options.close_load_s, target.host, target.port))
    try:
        close = await close_phase(ops, options, day, postings)
    finally:
        close_load = await load
    balances = await account_balances(ops, postings.accounts)
    reconciliation = await runs.upload(target)
    verification = await ops.verify()
    measured = {"business_date": day.isoformat(), "jobs": {"slow": postings.slow, "held": postings.held},
                "chunk_latency_ms": options.chunk_latency_ms, "overrun_after_s": options.overrun_after_s(),
                "overrun": overrun, "rerun": rerun, "close": close, "phases": [overrun_load, close_load],
                "payer": balances[postings.payer], "reconciliation": reconciliation,
                "verification": verification_summary(verification)}
    return drill_report("batch-overrun", options, judge(options, measured, verification), measured)


async def open_accounts(ops: Ops, prefix: str) -> Postings:
    """The file's payer (仮払金) and payees (仮受金): ledger accounts of this run only, so the drill can read to
    the yen what the postings moved."""
    payer = str(uuid.uuid4())
    payees = tuple(str(uuid.uuid4()) for _ in range(PAYEES))
    accounts = [{"id": payer, "ledger": JPY, "code": SUSPENSE_DEBIT.code}]
    accounts += [{"id": p, "ledger": JPY, "code": SUSPENSE_CREDIT.code} for p in payees]
    answer = await ops.expect("POST", "/v1/ledger/accounts", {"accounts": accounts})
    refused = [r for r in answer.get("results", []) if r.get("result") != "ok"]
    if refused:
        raise DrillError(f"the drill's ledger accounts were refused: {refused[:3]}")
    return Postings(f"{prefix}_slow_posting", f"{prefix}_held_posting", payer, payees)


# -- the slow posting runs, the held one keeps the day open ----------------------------------------------------------

async def overrun_phase(ops: Ops, options: BatchOverrunOptions, postings: Postings) -> dict[str, Any]:
    """Plan both postings (hold the second at once), ask the cut-off to run now, watch the alerts until the slow
    posting ends, then watch the day stay open for `held_s`."""
    posting = {"items": postings.items(options.items), "mandatory": True, "expected_s": options.expected_s,
               "chunk_items": options.chunk_items}
    planned = await ops.expect("POST", "/v1/batch/bulk-postings", {"name": postings.slow, **posting})
    day = str(planned["business_date"])
    await ops.expect("POST", "/v1/batch/bulk-postings", {"name": postings.held, **posting})
    await _act(ops, day, postings.held, "hold")
    await _act(ops, day, CUT_OFF, "run")
    progress(f"{day}: {postings.slow} planned, {postings.held} held, the cut-off asked to run now")
    watch = await watch_until_finished(ops, day, postings, 4 * options.slow_s + 60)
    progress(f"{postings.slow} {watch['slow_state']}; the held posting keeps the day open for {options.held_s:g} s")
    await asyncio.sleep(options.held_s)
    report = await _day(ops, day)
    jobs = {j["name"]: j for j in report["jobs"]}
    open_alerts = await batch_alerts(ops)
    held_key = f"mandatory_job_missing/batch/{day}:{postings.held}"
    return {"business_date": day, **watch, "while_held": {
        "day_state": report["state"], "cut_off_state": jobs[CUT_OFF]["state"],
        "held_job": {k: jobs[postings.held][k] for k in ("state", "held", "done_items", "total_items")},
        "gate": report["gate"], "held_alert": open_alerts.get(held_key)}}


async def watch_until_finished(ops: Ops, day: str, postings: Postings, timeout_s: float) -> dict[str, Any]:
    """Poll the slow posting and the batch's open alerts until it has finished: when it started, when its overrun
    alert was first seen (and whether it was still running), the held posting's alert."""
    overrun_key = f"job_overrun/batch/{day}:{postings.slow}"
    held_key = f"mandatory_job_missing/batch/{day}:{postings.held}"
    seen: dict[str, Any] = {"overrun_alert": None, "overrun_alert_while_running": False, "held_alert_seen": None}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = await ops.expect("GET", f"/v1/batch/days/{day}/jobs/{postings.slow}")
        alerts = await batch_alerts(ops)
        if seen["overrun_alert"] is None and overrun_key in alerts:
            seen["overrun_alert"] = alerts[overrun_key]
            seen["overrun_alert_while_running"] = job["state"] == "running"
            progress(f"alert: {alerts[overrun_key]['message']}")
        if seen["held_alert_seen"] is None and held_key in alerts:
            seen["held_alert_seen"] = alerts[held_key]
            progress(f"alert: {alerts[held_key]['message']}")
        if job["state"] in (*FINISHED, "failed"):
            return {**seen, "slow_state": job["state"], "slow_started_at": job["started_at"],
                    "slow_finished_at": job["finished_at"], "slow_attempts": job["attempts"]}
        await asyncio.sleep(POLL_S)
    raise DrillError(f"{postings.slow} did not finish within {timeout_s:g} s")


# -- a rerun changes nothing -----------------------------------------------------------------------------------------

async def rerun_phase(ops: Ops, day: dt.date, postings: Postings) -> dict[str, Any]:
    """Rerun every finished job of the date (the slow posting among them) with the ATMs quiet, and compare the
    books and the postings' accounts before and after."""
    before = await books_snapshot(ops, postings.accounts)
    report = await _day(ops, day.isoformat())
    names = [j["name"] for j in report["jobs"] if j["state"] in FINISHED and j["name"] not in (CUT_OFF, CLOSING_JOB)]
    for name in names:
        await _act(ops, day.isoformat(), name, "rerun")
    progress(f"rerunning {', '.join(names)}")
    states = await _until_finished(ops, day.isoformat(), names, timeout_s=120)
    after = await books_snapshot(ops, postings.accounts)
    changed = sorted(k for k in before if before[k] != after[k])
    return {"jobs": states, "changed": changed, "before": before if changed else None,
            "after": after if changed else None}


async def books_snapshot(ops: Ops, accounts: Sequence[str]) -> dict[str, Any]:
    verified = await ops.verify()
    return {"transfers": verified.get("transfers"), "rejected_transfers": verified.get("rejected_transfers"),
            "ledgers": verified.get("ledgers"), "trial_balance": verified.get("trial_balance"),
            "accounts": await account_balances(ops, accounts)}


async def account_balances(ops: Ops, accounts: Sequence[str]) -> dict[str, dict[str, int]]:
    out = {}
    for account_id in accounts:
        a = await ops.ledger_account(account_id)
        out[account_id] = {k: int(a.get(k, 0)) for k in ("debits_pending", "debits_posted", "credits_pending",
                                                         "credits_posted")}
    return out


# -- the release lets the day close ----------------------------------------------------------------------------------

async def close_phase(ops: Ops, options: BatchOverrunOptions, day: dt.date, postings: Postings) -> dict[str, Any]:
    await _act(ops, day.isoformat(), postings.held, "release")
    released = time.monotonic()
    progress(f"{postings.held} released: waiting for {day} to cut off and close")
    state = ""
    while time.monotonic() - released < options.close_timeout_s:
        state = (await _day(ops, day.isoformat()))["state"]
        if state == "closed":
            break
        await asyncio.sleep(POLL_S)
    close_s = round(time.monotonic() - released, 3) if state == "closed" else None
    report = await _day(ops, day.isoformat())
    jobs = {j["name"]: j for j in report["jobs"]}
    days = {d["business_date"]: d for d in (await ops.expect("GET", "/v1/batch/days"))["days"]}
    progress(f"{day} {state}" + (f" {close_s:g} s after the release" if close_s is not None else ""))
    return {"day_state": state, "closed_after_release_s": close_s, "closed_at": days[day.isoformat()]["closed_at"],
            "held_job_state": jobs[postings.held]["state"], "cut_off_state": jobs[CUT_OFF]["state"],
            "day_close_state": jobs[CLOSING_JOB]["state"], "gate": report["gate"]}


# -- HTTP ------------------------------------------------------------------------------------------------------------

async def _act(ops: Ops, day: str, job: str, action: str) -> dict[str, Any]:
    answer = await ops.expect("POST", f"/v1/batch/days/{day}/jobs/{job}/{action}", {"by": OPERATOR})
    return dict(answer)


async def _day(ops: Ops, day: str) -> dict[str, Any]:
    return dict(await ops.expect("GET", f"/v1/batch/days/{day}"))


async def _until_finished(ops: Ops, day: str, names: Sequence[str], timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = {j["name"]: j["state"] for j in (await _day(ops, day))["jobs"] if j["name"] in names}
        if all(s in (*FINISHED, "failed") for s in jobs.values()) or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(POLL_S)


async def batch_alerts(ops: Ops) -> dict[str, dict[str, Any]]:
    """The open alerts the batch's source reports, by key."""
    answer = await ops.expect("GET", "/v1/alerts?state=open&limit=500")
    return {a["key"]: a for a in answer.get("alerts", []) if a.get("source") == "batch"}


# -- judging ---------------------------------------------------------------------------------------------------------

def judge(options: BatchOverrunOptions, m: dict[str, Any], verification: dict[str, Any]) -> list[Criterion]:
    overrun, close, rerun = m["overrun"], m["close"], m["rerun"]
    held = overrun["while_held"]
    alert = overrun["overrun_alert"] or {}
    expected_minor = 2 * options.items * ITEM_AMOUNT_MINOR
    return [
        Criterion("overrun_alert_after_threshold_s", _alert_delay_s(overrun, options), options.alert_within_s,
                  AT_MOST, "s", {"message": alert.get("message"), "severity": alert.get("severity")}),
        Criterion("overrun_alert_names_job", alert.get("subject"), f"{m['business_date']}:{m['jobs']['slow']}",
                  EQUALS),
        Criterion("overrun_alert_while_job_running", overrun["overrun_alert_while_running"], True, EQUALS),
        Criterion("overrun_alert_before_day_close", _before(alert.get("first_seen"), close["closed_at"]), True,
                  EQUALS),
        Criterion("day_open_while_held_job_missing", held["day_state"], "open", EQUALS,
                  detail={"cut_off": held["cut_off_state"], "held_job": held["held_job"]}),
        Criterion("gate_names_held_job", any(g["job"] == m["jobs"]["held"] and g["why"] == "held"
                                             for g in held["gate"]), True, EQUALS, detail=held["gate"]),
        Criterion("held_job_alert_open", (held["held_alert"] or {}).get("subject"),
                  f"{m['business_date']}:{m['jobs']['held']}", EQUALS,
                  detail=(held["held_alert"] or {}).get("message")),
        Criterion("rerun_changed_books", len(rerun["changed"]), 0, EQUALS, detail=rerun["changed"] or None),
        Criterion("reruns_not_finished", sum(s not in FINISHED for s in rerun["jobs"].values()), 0, EQUALS,
                  detail=rerun["jobs"]),
        Criterion("day_closed_after_release_s", close["closed_after_release_s"], options.close_timeout_s, AT_MOST,
                  "s", {"held_job": close["held_job_state"], "gate": close["gate"]}),
        Criterion("postings_made_exactly_once_minor", m["payer"]["debits_posted"], expected_minor, EQUALS, "yen"),
        *online(m["phases"], options.latency_ms_p99_max),
        Criterion("journal_breaks", m["reconciliation"].get("breaks"), 0, EQUALS),
        Criterion("journal_upload_errors", m["reconciliation"].get("errors"), 0, EQUALS),
        Criterion("books_verified", verification.get("ok") is True, True, EQUALS),
    ]


def online(phases: Sequence[dict[str, Any]], latency_ms_p99_max: float) -> list[Criterion]:
    """Every ATM operation within its objective in both phases; no system error; no card kept but by a rule."""
    criteria = []
    for op in operations_of(phases):
        by_phase = {p["phase"]: p["latency_ms"].get(op, {}).get("p99") for p in phases}
        measured = [v for v in by_phase.values() if v is not None]
        if measured:
            criteria.append(Criterion(f"{op}_latency_ms_p99", max(measured), latency_ms_p99_max, AT_MOST, "ms",
                                      {"by_phase": by_phase}))
    return [
        *criteria,
        Criterion("online_system_errors", sum(sum(p["system_errors_by_operation"].values()) for p in phases), 0,
                  EQUALS, detail={p["phase"]: p["system_errors_by_operation"] for p in phases}),
        Criterion("cards_retained_by_system_error",
                  sum(p["cards_retained_by_system_error"] + p["retain_asked_on_system_error"] for p in phases), 0,
                  EQUALS, detail={"retained_by_business_rule": sum(p["cards_retained"] for p in phases)}),
        Criterion("transactions_unfinished", sum(p["transactions"]["unfinished"] for p in phases), 0, EQUALS),
    ]


def _alert_delay_s(overrun: dict[str, Any], options: BatchOverrunOptions) -> float | None:
    """From the moment the slow posting passed its overrun threshold to its alert's first evaluation (server times)."""
    alert, started = overrun["overrun_alert"], overrun["slow_started_at"]
    if not alert or not started:
        return None
    threshold = dt.datetime.fromisoformat(started) + dt.timedelta(seconds=options.overrun_after_s())
    return round((dt.datetime.fromisoformat(alert["first_seen"]) - threshold).total_seconds(), 3)


def _before(first: str | None, last: str | None) -> bool | None:
    if first is None or last is None:
        return None
    return dt.datetime.fromisoformat(first) < dt.datetime.fromisoformat(last)

