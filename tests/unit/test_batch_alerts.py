"""The batch's alert conditions without a database: overrun by ratio and floor, mandatory jobs missing near and after
the cut-off (held, failed, not started; what the cut-off waits for only), jobs stopped at a limit, the cap."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from kanjo.batch import CLOSING_JOB, CUT_OFF, BatchAlertPolicy, DayState, JobRun, JobSpec, JobState, day_plan
from kanjo.batch.alerts import DayJobs, conditions, missing, overruns, stopped_at_limits, subject
from kanjo.ops import Severity

JST = dt.timezone(dt.timedelta(hours=9))
DAY = dt.date(2026, 7, 1)
POLICY = BatchAlertPolicy()


def at(hh: int, mm: int, ss: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=JST)


def run(spec: JobSpec, state: JobState = JobState.WAITING, **fields: Any) -> JobRun:
    base: dict[str, Any] = {"business_date": DAY, "spec": spec, "state": state, "held": False, "attempts": 0,
                            "started_at": None, "finished_at": None, "done_items": 0, "total_items": None,
                            "checkpoint": None, "result": None, "error": None}
    return JobRun(**{**base, **fields})


def bank_day(**changes: dict[str, Any]) -> list[JobRun]:
    """The bank's catalogue for DAY (cut-off at 21:00) plus a mandatory concentrated posting, every job waiting
    unless `changes` says otherwise (by job name: JobRun fields)."""
    specs = [*day_plan(dt.time(21, 0))(DAY), JobSpec("salary", "bulk_posting", expected_s=60)]
    return [run(s, **changes.get(s.name, {})) for s in specs]


def succeeded(*names: str) -> dict[str, dict[str, Any]]:
    return {n: {"state": JobState.SUCCEEDED} for n in names}


START_OF_DAY = succeeded("time_deposit_maturity", "deposit_interest_payout", "card_loan_collection")


# -- overrun ---------------------------------------------------------------------------------------------------------

def test_a_job_at_several_times_its_expected_duration_is_an_overrun_naming_job_date_and_times() -> None:
    spec = JobSpec("salary", "bulk_posting", expected_s=60)
    r = run(spec, JobState.RUNNING, started_at=at(12, 0), done_items=2_000, total_items=10_000)
    assert overruns([r], at(12, 1, 29), POLICY) == []  # 89 s: under 1.5 × 60
    (warning,) = overruns([r], at(12, 1, 30), POLICY)
    assert (warning.rule, warning.component, warning.subject, warning.severity) == (
        "job_overrun", "batch", "2026-07-01:salary", Severity.WARNING)
    assert warning.message.startswith("batch: job salary of 2026-07-01 has run 90 s, expected 60 s (1.5×);"
                                      " 2,000 of 10,000 items done, finishing about 12:07:30")
    (major,) = overruns([r], at(12, 3), POLICY)
    assert major.severity is Severity.MAJOR and "has run 3 min, expected 60 s (3.0×)" in major.message


def test_a_short_job_needs_the_floor_too_and_only_running_jobs_overrun() -> None:
    short = JobSpec("day_close", "day_close", expected_s=4)
    assert overruns([run(short, JobState.RUNNING, started_at=at(12, 0))], at(12, 0, 8), POLICY) == []  # 2× but 4 s
    assert len(overruns([run(short, JobState.RUNNING, started_at=at(12, 0))], at(12, 0, 9), POLICY)) == 1
    finished = run(short, JobState.SUCCEEDED, started_at=at(12, 0), finished_at=at(12, 5))
    assert overruns([finished, run(short)], at(13, 0), POLICY) == []


def test_the_policy_refuses_thresholds_that_make_no_sense() -> None:
    with pytest.raises(ValueError, match="overrun_ratio"):
        BatchAlertPolicy(overrun_ratio=1.0)
    with pytest.raises(ValueError, match="overrun_ratio"):
        BatchAlertPolicy(overrun_ratio=4, overrun_ratio_major=3)
    with pytest.raises(ValueError, match="cut_off_horizon_s"):
        BatchAlertPolicy(cut_off_horizon_s=-1)


# -- mandatory jobs missing near the cut-off -------------------------------------------------------------------------

def test_nothing_is_missing_while_the_cut_off_is_beyond_the_horizon() -> None:
    runs = bank_day(salary={"held": True})
    assert missing(DayJobs(DAY, DayState.OPEN, tuple(runs)), at(19, 59), POLICY) == []


def test_a_held_mandatory_job_within_the_horizon_is_major_then_critical_past_the_cut_off() -> None:
    runs = bank_day(**START_OF_DAY, salary={"held": True})
    (held,) = missing(DayJobs(DAY, DayState.OPEN, tuple(runs)), at(20, 30), POLICY)
    assert (held.rule, held.component, held.subject, held.severity) == (
        "mandatory_job_missing", "batch", "2026-07-01:salary", Severity.MAJOR)
    assert held.message == ("batch: mandatory job salary of 2026-07-01 is held; the cut-off (21:00) is in 30 min and"
                            " the day cannot close without it")
    (late,) = missing(DayJobs(DAY, DayState.OPEN, tuple(runs)), at(21, 5), POLICY)
    assert late.severity is Severity.CRITICAL and "the cut-off (21:00) was 5 min ago" in late.message


def test_only_what_the_cut_off_waits_for_counts_on_an_open_date_and_running_jobs_are_left_to_the_overrun() -> None:
    runs = bank_day(time_deposit_maturity={"state": JobState.FAILED, "error": "RuntimeError: disk"},
                    deposit_interest_payout={"state": JobState.SKIPPED},
                    card_loan_collection={"state": JobState.RUNNING, "started_at": at(20, 0)})
    found = {c.subject: c for c in missing(DayJobs(DAY, DayState.OPEN, tuple(runs)), at(20, 50), POLICY)}
    # end-of-day jobs (after the cut-off) and the non-mandatory dormancy are not missing yet; the close is not either
    assert set(found) == {"2026-07-01:time_deposit_maturity", "2026-07-01:salary"}
    failed, salary = found["2026-07-01:time_deposit_maturity"], found["2026-07-01:salary"]
    assert failed.severity is Severity.MAJOR and "is failed (RuntimeError: disk)" in failed.message
    assert salary.severity is Severity.WARNING and "is not started;" in salary.message


def test_an_operator_running_the_cut_off_now_makes_every_missing_job_count_at_once() -> None:
    runs = bank_day(**START_OF_DAY, cut_off={"not_before_waived": True}, salary={"held": True})
    (held,) = missing(DayJobs(DAY, DayState.OPEN, tuple(runs)), at(9, 0), POLICY)
    assert held.severity is Severity.CRITICAL and "the cut-off was asked to run now" in held.message


def test_after_the_cut_off_the_close_waits_for_the_end_of_day_jobs_after_a_grace() -> None:
    cut = {"state": JobState.SUCCEEDED, "finished_at": at(21, 0)}
    runs = bank_day(**START_OF_DAY, **succeeded("salary"), cut_off=cut,
                    overdraft_interest_accrual={"held": True})
    day = DayJobs(DAY, DayState.CUT_OFF, tuple(runs))
    (held,) = missing(day, at(21, 1), POLICY)  # only the held one within the grace
    assert held.subject == "2026-07-01:overdraft_interest_accrual" and held.severity is Severity.CRITICAL
    assert "the day was cut off 60 s ago" in held.message
    later = {c.subject: c for c in missing(day, at(21, 10), POLICY)}
    assert set(later) == {f"2026-07-01:{n}" for n in ("overdraft_interest_accrual", "overdraft_interest_charge",
                                                      "deposit_interest_accrual", "card_loan_accrual",
                                                      "statements")}
    waiting = later["2026-07-01:overdraft_interest_charge"]
    assert waiting.severity is Severity.MAJOR
    assert "not started (waits for overdraft_interest_accrual)" in waiting.message
    assert f"2026-07-01:{CLOSING_JOB}" not in later and f"2026-07-01:{CUT_OFF}" not in later


def test_a_closed_or_cut_off_less_date_has_nothing_missing() -> None:
    runs = bank_day(salary={"held": True})
    assert missing(DayJobs(DAY, DayState.CLOSED, tuple(runs)), at(23, 0), POLICY) == []
    no_cut = [r for r in runs if r.name != CUT_OFF]
    assert missing(DayJobs(DAY, DayState.OPEN, tuple(no_cut)), at(23, 0), POLICY) == []


# -- limits ----------------------------------------------------------------------------------------------------------

def test_jobs_stopped_at_a_limit_are_one_condition_per_limit_naming_it() -> None:
    spec = JobSpec("month_end", "bulk_posting")
    stopped = run(spec, JobState.FAILED, done_items=40_000, result={"limit": "ledger_transfers_stored_max"})
    refused = run(dataclasses.replace(spec, name="switch_over"), JobState.FAILED,
                  result={"limit": "ledger_transfers_stored_max", "preflight": [{"limit": "x"}]})
    other = run(dataclasses.replace(spec, name="broken"), JobState.FAILED, error="RuntimeError")
    rerun = run(dataclasses.replace(spec, name="again"), JobState.WAITING, result={"limit": "y_max"})
    (c,) = stopped_at_limits([stopped, refused, other, rerun])
    assert (c.rule, c.component, c.subject, c.severity) == (
        "job_limit_reached", "batch", "ledger_transfers_stored_max", Severity.MAJOR)
    assert c.message.startswith("batch: limit ledger_transfers_stored_max stopped month_end of 2026-07-01 (stopped"
                                " after 40,000 items), switch_over of 2026-07-01 (refused before starting)")


# -- all of them -----------------------------------------------------------------------------------------------------

def test_conditions_come_most_severe_first_and_are_capped_with_a_count() -> None:
    overrun = {"state": JobState.RUNNING, "started_at": at(12, 0)}
    runs = bank_day(**START_OF_DAY, cut_off={"not_before_waived": True}, salary={"held": True},
                    dormancy=overrun)
    found = conditions([DayJobs(DAY, DayState.OPEN, tuple(runs))], at(13, 0), POLICY)
    assert [(c.rule, c.severity) for c in found] == [("mandatory_job_missing", Severity.CRITICAL),
                                                    ("job_overrun", Severity.MAJOR)]
    capped = conditions([DayJobs(DAY, DayState.OPEN, tuple(runs))], at(13, 0), POLICY, conditions_max=1)
    assert [c.rule for c in capped] == ["batch_conditions_truncated"] and "2 more" in capped[0].message


def test_a_subject_stays_within_what_the_ops_layer_accepts() -> None:
    assert subject(DAY, "salary") == "2026-07-01:salary"
    assert subject(DAY, "odd name!" + "x" * 200) == ("2026-07-01:odd_name_" + "x" * 200)[:128]
