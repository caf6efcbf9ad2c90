"""The batch's alert source for the ops layer (`Ops.register_source("batch", alert_source(engine))`): a job running
far past its expected duration, a mandatory job missing as the day's cut-off nears or after it, a job stopped at a
named limit.

Each condition names the batch as the component and `<business date>:<job>` (or the limit) as the subject, so one
job's trouble is one deduplicated alert. The rules are pure functions of the jobs' standing and the time (`conditions`);
the source only reads the open and cut-off dates from the batch's tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from kanjo.batch import store
from kanjo.batch.catalogue import CUT_OFF
from kanjo.batch.engine import CLOSING_JOB, Batch
from kanjo.batch.model import FINISHED, DayState, JobRun, JobState, gate, waits_for
from kanjo.kernel.limits import limits
from kanjo.ops import Condition, Severity

COMPONENT = "batch"
OVERRUN = "job_overrun"
MISSING = "mandatory_job_missing"
LIMIT = "job_limit_reached"
TRUNCATED = "batch_conditions_truncated"
SUBJECT = re.compile(r"[^A-Za-z0-9_.:/-]")
SUBJECT_CHARS_MAX = 128  # the ops layer's subject
MESSAGE_CHARS_MAX = 500  # the ops layer's message
ERROR_CHARS_MAX = 200  # of a failed job's error, quoted in a message (an ops message holds 500)
JOBS_NAMED_MAX = 5  # jobs named in one limit condition's message; the rest are counted
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.WARNING: 2}

DAYS_WATCHED_MAX = limits.declare(
    "batch_alert_days_max", 10, "business dates",
    "dates open or cut off that the batch's alert source reads each evaluation; normally two (online's date and the"
    " one closing), more means days are not closing",
).maximum


@dataclass(frozen=True, slots=True)
class BatchAlertPolicy:
    """When the batch's conditions hold. A job is overrunning once it has run `overrun_ratio` times its expected
    duration and at least `overrun_s_min` seconds over it (a five-second job taking eight is not news)."""

    overrun_ratio: float = 1.5  # warning
    overrun_ratio_major: float = 3.0  # the job is not merely slow: something holds it back
    overrun_s_min: float = 5.0
    cut_off_horizon_s: float = 3_600.0  # a mandatory job missing this close to the cut-off is worth a look now
    after_cut_off_grace_s: float = 300.0  # end-of-day jobs get this long after the cut-off to start by themselves

    def __post_init__(self) -> None:
        if not 1.0 < self.overrun_ratio <= self.overrun_ratio_major <= 1_000.0:
            raise ValueError("need 1 < overrun_ratio <= overrun_ratio_major <= 1,000")
        if not 0.0 <= self.overrun_s_min <= 86_400.0:
            raise ValueError("overrun_s_min must be in 0..86,400 s")
        if not 0.0 <= self.cut_off_horizon_s <= 86_400.0:
            raise ValueError("cut_off_horizon_s must be in 0..86,400 s")
        if not 0.0 <= self.after_cut_off_grace_s <= 86_400.0:
            raise ValueError("after_cut_off_grace_s must be in 0..86,400 s")


@dataclass(frozen=True, slots=True)
class DayJobs:
    """One business date as the source sees it: its state and its jobs' standing."""

    business_date: dt.date
    state: DayState
    runs: tuple[JobRun, ...]


def alert_source(engine: Batch, policy: BatchAlertPolicy | None = None) -> Callable[[], Awaitable[list[Condition]]]:
    """The source the composition root registers with the ops layer."""
    rules = policy or BatchAlertPolicy()

    async def batch_conditions() -> list[Condition]:
        async with engine.pool.acquire() as conn:
            rows = await store.days(conn, DAYS_WATCHED_MAX, [DayState.OPEN, DayState.CUT_OFF])
            days = [DayJobs(r["business_date"], DayState(r["state"]), tuple(await store.jobs(conn, r["business_date"])))
                    for r in rows]
        limits.observe("batch_alert_days_max", len(days))
        return conditions(days, engine.now(), rules)

    return batch_conditions


def conditions(days: Iterable[DayJobs], now: dt.datetime, policy: BatchAlertPolicy,
               conditions_max: int | None = None) -> list[Condition]:
    """Every condition that holds now, most severe first; past `conditions_max` (the ops layer's
    `ops_source_conditions_max`), the rest are counted in one condition instead."""
    days = list(days)
    found = [c for day in days for c in (*overruns(day.runs, now, policy), *missing(day, now, policy))]
    found += stopped_at_limits(r for day in days for r in day.runs)
    found.sort(key=lambda c: (SEVERITY_ORDER[c.severity], c.rule, c.subject))
    cap = conditions_max if conditions_max is not None else limits.get("ops_source_conditions_max").maximum
    if len(found) <= cap:
        return found
    kept = found[: cap - 1]
    return [*kept, Condition(TRUNCATED, COMPONENT, "batch", Severity.MAJOR,
                             f"batch: {len(found) - len(kept):,} more job conditions than one evaluation reports"
                             f" ({cap:,}); see /v1/batch/days")]


# -- a job running long ----------------------------------------------------------------------------------------------

def overruns(runs: Iterable[JobRun], now: dt.datetime, policy: BatchAlertPolicy) -> list[Condition]:
    """Running jobs past `overrun_ratio` × their expected duration (major past `overrun_ratio_major`)."""
    out = []
    for r in runs:
        if r.state is not JobState.RUNNING or r.started_at is None:
            continue
        elapsed_s = (now - r.started_at).total_seconds()
        expected_s = r.spec.expected_s
        if elapsed_s - expected_s < policy.overrun_s_min or elapsed_s < expected_s * policy.overrun_ratio:
            continue
        severity = Severity.MAJOR if elapsed_s >= expected_s * policy.overrun_ratio_major else Severity.WARNING
        progress = f"; {r.done_items:,} of {r.total_items:,} items done" if r.total_items else ""
        eta = r.eta(now)
        finish = f", finishing about {eta.astimezone(now.tzinfo):%H:%M:%S}" if eta is not None else ""
        ratio = f"{elapsed_s / expected_s:.1f}×" if expected_s > 0 else "no expected duration"
        out.append(Condition(OVERRUN, COMPONENT, subject(r.business_date, r.name), severity,
                             f"batch: job {r.name} of {r.business_date} has run {_duration(elapsed_s)}, expected"
                             f" {_duration(expected_s)} ({ratio}){progress}{finish}"))
    return out


# -- a mandatory job missing near the day's close --------------------------------------------------------------------

def missing(day: DayJobs, now: dt.datetime, policy: BatchAlertPolicy) -> list[Condition]:
    """Mandatory jobs held, failed or not started while the day's cut-off is within the horizon or past. On an open
    date, the jobs the cut-off waits for; once cut off, every mandatory job the close waits for (those merely
    waiting their turn only after a grace)."""
    by_name = {r.name: r for r in day.runs}
    cut = by_name.get(CUT_OFF)
    if cut is None or day.state is DayState.CLOSED:
        return []
    watch = _before_cut_off(cut, by_name, now, policy) if day.state is DayState.OPEN else \
        _before_close(cut, by_name, now, policy)
    if watch is None:
        return []
    runs, when, past = watch
    out = []
    for b in gate(runs, closing_job=CLOSING_JOB):
        r = by_name[b["job"]]
        if r.state is JobState.RUNNING:
            continue  # running: the overrun rule watches it
        blocked = r.held or r.state is JobState.FAILED
        severity = (Severity.CRITICAL if blocked else Severity.MAJOR) if past else \
            (Severity.MAJOR if blocked else Severity.WARNING)
        out.append(Condition(MISSING, COMPONENT, subject(day.business_date, r.name), severity,
                             f"batch: mandatory job {r.name} of {day.business_date} is {_why(r, by_name)};"
                             f" {when} and the day cannot close without it"))
    return out


def _before_cut_off(cut: JobRun, by_name: dict[str, JobRun], now: dt.datetime,
                    policy: BatchAlertPolicy) -> tuple[list[JobRun], str, bool] | None:
    """An open date: the jobs its cut-off waits for (and the cut-off itself when held or failed), when the cut-off
    is within the horizon; what to say of the time, and whether it has come."""
    deadline = cut_off_at(cut, now)
    left_s = (deadline - now).total_seconds()
    if left_s > policy.cut_off_horizon_s:
        return None
    at = f"the cut-off ({deadline.astimezone(now.tzinfo):%H:%M})"
    if cut.not_before_waived:
        when = "the cut-off was asked to run now"
    elif left_s > 0:
        when = f"{at} is in {_duration(left_s)}"
    else:
        when = f"{at} was {_duration(-left_s)} ago"
    watched = waits_for(cut.spec, [r.spec for r in by_name.values()])
    if cut.held or cut.state is JobState.FAILED:
        watched.add(cut.name)
    return [by_name[n] for n in sorted(watched) if n in by_name], when, left_s <= 0


def _before_close(cut: JobRun, by_name: dict[str, JobRun], now: dt.datetime,
                  policy: BatchAlertPolicy) -> tuple[list[JobRun], str, bool]:
    """A cut-off date: every job its close waits for; one merely waiting its turn only after the grace."""
    since_s = (now - (cut.finished_at or now)).total_seconds()
    runs = [r for r in by_name.values() if r.name != cut.name
            and (r.held or r.state is not JobState.WAITING or since_s >= policy.after_cut_off_grace_s)]
    return runs, f"the day was cut off {_duration(since_s)} ago", True


def cut_off_at(cut: JobRun, now: dt.datetime) -> dt.datetime:
    """When the cut-off may run: its not-before time on its date (in the engine's time zone), or now when an
    operator waived it or it has none."""
    if cut.not_before_waived or cut.spec.not_before is None:
        return now
    return dt.datetime.combine(cut.business_date, cut.spec.not_before, now.tzinfo)


def _why(r: JobRun, by_name: dict[str, JobRun]) -> str:
    if r.held:
        return "held"
    if r.state is JobState.FAILED:
        return f"failed ({(r.error or 'no reason recorded')[:ERROR_CHARS_MAX]})"
    pending = sorted(p for p in waits_for(r.spec, [x.spec for x in by_name.values()])
                     if p in by_name and by_name[p].state not in FINISHED)
    if not pending:
        return "not started"
    more = f" and {len(pending) - JOBS_NAMED_MAX} more" if len(pending) > JOBS_NAMED_MAX else ""
    return f"not started (waits for {', '.join(pending[:JOBS_NAMED_MAX])}{more})"


# -- a job stopped at a limit ----------------------------------------------------------------------------------------

def stopped_at_limits(runs: Iterable[JobRun]) -> list[Condition]:
    """One condition per limit that stopped (or refused in its pre-flight) a job that is still failed, naming the
    limit and its jobs."""
    by_limit: dict[str, list[JobRun]] = {}
    for r in runs:
        name = (r.result or {}).get("limit") if r.state is JobState.FAILED else None
        if isinstance(name, str) and name:
            by_limit.setdefault(name, []).append(r)
    out = []
    for name, stopped in sorted(by_limit.items()):
        stopped.sort(key=lambda r: (r.business_date, r.name))
        jobs = ", ".join(f"{r.name} of {r.business_date} ({_stop(r)})" for r in stopped[:JOBS_NAMED_MAX])
        more = f" and {len(stopped) - JOBS_NAMED_MAX} more" if len(stopped) > JOBS_NAMED_MAX else ""
        out.append(Condition(LIMIT, COMPONENT, _clip(name), Severity.MAJOR,
                             f"batch: limit {name} stopped {jobs}{more}; nothing else stopped — raise the limit or"
                             f" split the work, then rerun"[:MESSAGE_CHARS_MAX]))
    return out


def _stop(r: JobRun) -> str:
    if (r.result or {}).get("preflight"):
        return "refused before starting"
    return f"stopped after {r.done_items:,} items"


# -- names -----------------------------------------------------------------------------------------------------------

def subject(day: dt.date, job: str) -> str:
    """`<business date>:<job>`, within what the ops layer accepts as a subject."""
    return _clip(f"{day.isoformat()}:{job}")


def _clip(text: str) -> str:
    return SUBJECT.sub("_", text)[:SUBJECT_CHARS_MAX] or "unnamed"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3_600:.1f} h"
