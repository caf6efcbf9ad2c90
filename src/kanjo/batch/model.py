"""The batch's vocabulary, pure: a business date's jobs as a DAG, their states, what may start, and the day's gate.

Rules a banker should find here:
- A job starts when every predecessor has finished (succeeded, or was skipped as not due that day); a clock time is
  only a "not before", never the trigger of a chain.
- A held job does not start; a running job that is held stops at its next chunk boundary and waits.
- The day closes only when every mandatory job has succeeded (or was not due); the gate names each one that has not.
- A rerun is allowed for a job that finished (or failed) and whose policy allows it; every job kanjo runs is
  idempotent per (account, business date, job), so a rerun changes nothing that was done.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    WAITING = "waiting"  # predecessors not finished, held, or before its time
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # stopped with an error; rerun (or fix and rerun) to go on
    SKIPPED = "skipped"  # not due on this date (an interest payout day, a month end…)


FINISHED = frozenset({JobState.SUCCEEDED, JobState.SKIPPED})


class Rerun(enum.StrEnum):
    ANY_TIME = "any_time"  # idempotent: a rerun finds everything done and changes nothing
    NEVER = "never"  # moves the day itself (the cut-off, the close): done once


class DayState(enum.StrEnum):
    OPEN = "open"  # online posts on this business date
    CUT_OFF = "cut_off"  # online moved on to the next business date; this date's night jobs run
    CLOSED = "closed"  # every mandatory job done: the date is final


class BatchError(Exception):
    """A batch request that cannot be done as asked; `code` is machine-readable. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job of a business date: what it is, when it may start, and how it may be run again."""

    name: str
    kind: str  # which runner carries it out (the catalogue's key)
    after: tuple[str, ...] = ()
    mandatory: bool = True
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    rerun: Rerun = Rerun.ANY_TIME
    expected_s: float = 60.0
    not_before: dt.time | None = None  # wall-clock time in Japan on the business date
    barrier: bool = False  # also waits for every mandatory job of its date that does not come after it
    params: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "after": list(self.after), "mandatory": self.mandatory,
                "reads": list(self.reads), "writes": list(self.writes), "rerun": self.rerun.value,
                "expected_s": self.expected_s,
                "not_before": self.not_before.isoformat() if self.not_before else None, "barrier": self.barrier,
                "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class JobRun:
    """A job's standing on its business date, as stored."""

    business_date: dt.date
    spec: JobSpec
    state: JobState
    held: bool
    attempts: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    done_items: int
    total_items: int | None
    checkpoint: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    not_before_waived: bool = False  # an operator started it before its time

    @property
    def name(self) -> str:
        return self.spec.name

    def eta(self, now: dt.datetime) -> dt.datetime | None:
        """When it should finish at the pace so far (a running job with a known size); else None."""
        if self.state is not JobState.RUNNING or self.started_at is None or not self.total_items \
                or not self.done_items:
            return None
        spent = (now - self.started_at).total_seconds()
        return now + dt.timedelta(seconds=spent * (self.total_items - self.done_items) / self.done_items)

    def overrun_s(self, now: dt.datetime) -> float:
        """Seconds past its expected duration while it runs (0 when within it or not running)."""
        if self.state is not JobState.RUNNING or self.started_at is None:
            return 0.0
        return max(0.0, (now - self.started_at).total_seconds() - self.spec.expected_s)


def check_dag(specs: Sequence[JobSpec]) -> None:
    """Refuse a day's plan with unknown predecessors, duplicate names or a cycle (naming them)."""
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BatchError("duplicate_job", f"jobs named twice: {', '.join(duplicates)}")
    known = set(names)
    for s in specs:
        unknown = [p for p in s.after if p not in known]
        if unknown:
            raise BatchError("unknown_predecessor", f"job {s.name} runs after unknown jobs: {', '.join(unknown)}")
    order = topological(specs)
    if len(order) != len(specs):
        stuck = sorted(known - set(order))
        raise BatchError("cycle", f"the jobs {', '.join(stuck)} wait for each other")


def topological(specs: Sequence[JobSpec]) -> list[str]:
    """Names in an order where every job comes after its predecessors (jobs in a cycle are left out)."""
    waiting = {s.name: set(s.after) for s in specs}
    order: list[str] = []
    ready = sorted(n for n, deps in waiting.items() if not deps)
    while ready:
        name = ready.pop(0)
        order.append(name)
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
        ready.sort()
    return order


def descendants(specs: Iterable[JobSpec], name: str) -> set[str]:
    """The jobs that come after `name`, directly or through others."""
    after = {s.name: set(s.after) for s in specs}
    found: set[str] = set()
    frontier = {name}
    while frontier:
        frontier = {n for n, deps in after.items() if deps & frontier and n not in found}
        found |= frontier
    return found


def waits_for(spec: JobSpec, specs: Sequence[JobSpec]) -> set[str]:
    """The jobs `spec` waits for: its predecessors and, for a barrier, every mandatory job not after it."""
    deps = set(spec.after)
    if spec.barrier:
        later = descendants(specs, spec.name)
        deps |= {s.name for s in specs if s.mandatory and s.name != spec.name and s.name not in later}
    return deps


def startable(runs: Iterable[JobRun], now_local: dt.datetime, *, scheduled: bool = True) -> list[JobRun]:
    """Jobs that may start now: waiting, not held, every job they wait for finished, past their not-before time (on
    their business date; a job of an earlier date is never held back by the clock). Unscheduled (the scheduler is
    off), only the jobs an operator asked to run."""
    by_name = {r.name: r for r in runs}
    specs = [r.spec for r in by_name.values()]
    out = []
    for r in by_name.values():
        if r.state is not JobState.WAITING or r.held or (not scheduled and not r.not_before_waived):
            continue
        if any(by_name[p].state not in FINISHED for p in waits_for(r.spec, specs) if p in by_name):
            continue
        if r.spec.not_before is not None and not r.not_before_waived and now_local.date() <= r.business_date \
                and now_local < dt.datetime.combine(r.business_date, r.spec.not_before, now_local.tzinfo):
            continue
        out.append(r)
    return sorted(out, key=lambda r: r.name)


def gate(runs: Iterable[JobRun], *, closing_job: str) -> list[dict[str, Any]]:
    """What keeps the day from closing: each mandatory job (other than the close itself) not finished, and why."""
    blocking = []
    for r in runs:
        if r.name == closing_job or not r.spec.mandatory or r.state in FINISHED:
            continue
        why = "held" if r.held else {JobState.WAITING: "not started", JobState.RUNNING: "still running",
                                     JobState.FAILED: f"failed: {r.error or 'no reason recorded'}"}[r.state]
        blocking.append({"job": r.name, "state": r.state.value, "held": r.held, "why": why})
    return sorted(blocking, key=lambda b: b["job"])


def check_rerun(r: JobRun) -> None:
    if r.state not in (JobState.SUCCEEDED, JobState.FAILED, JobState.SKIPPED):
        raise BatchError("not_finished", f"job {r.name} is {r.state.value}: only a finished or failed job is rerun")
    if r.spec.rerun is Rerun.NEVER and r.state is JobState.SUCCEEDED:
        raise BatchError("not_rerunnable", f"job {r.name} moves the day itself and was done: it is never rerun")
