"""Alert deduplication and the built-in rules without a database."""

from __future__ import annotations

import itertools

import pytest

from kanjo.kernel.limits import LimitRegistry
from kanjo.ops import AlertBook, AlertPolicy, AlertState, Condition, Severity
from kanjo.ops.forecast import Forecast
from kanjo.ops.rules import error_ratios, interval_counts, limit_forecasts, limit_usage


def book(open_max: int = 10) -> AlertBook:
    ids = itertools.count(1)
    return AlertBook(open_max=open_max, make_id=lambda: next(ids))


def cond(subject: str = "q_max", severity: Severity = Severity.WARNING, rule: str = "limit_usage") -> Condition:
    return Condition(rule, "test", subject, severity, f"test: {subject} is {severity}")


def test_a_condition_that_holds_is_one_alert_with_a_count() -> None:
    alerts = book()
    first = alerts.evaluate([("limits", cond())], [], 1_000)
    assert [a.key for a in first.opened] == ["limit_usage/test/q_max"]
    for now_ms in (2_000, 3_000):
        changes = alerts.evaluate([("limits", cond())], [], now_ms)
        assert changes.opened == [] and len(changes.continued) == 1
    alert = alerts.open["limit_usage/test/q_max"]
    assert (alert.count, alert.first_seen_ms, alert.last_seen_ms, alert.state) == (3, 1_000, 3_000, AlertState.OPEN)


def test_it_resolves_at_the_first_clear_evaluation_and_a_recurrence_is_a_new_alert() -> None:
    alerts = book()
    opened = alerts.evaluate([("limits", cond())], [], 1_000).opened[0]
    resolved = alerts.evaluate([], [], 2_000).resolved
    assert resolved == [opened] and opened.state is AlertState.RESOLVED and opened.resolved_at_ms == 2_000
    assert alerts.open == {}
    again = alerts.evaluate([("limits", cond())], [], 3_000).opened
    assert len(again) == 1 and again[0].id != opened.id and again[0].count == 1


def test_severity_follows_the_condition_and_a_rise_is_an_escalation() -> None:
    alerts = book()
    alerts.evaluate([("limits", cond(severity=Severity.WARNING))], [], 1_000)
    changes = alerts.evaluate([("limits", cond(severity=Severity.CRITICAL))], [], 2_000)
    assert [a.severity for a in changes.escalated] == [Severity.CRITICAL]
    changes = alerts.evaluate([("limits", cond(severity=Severity.MAJOR))], [], 3_000)
    assert changes.escalated == [] and alerts.open["limit_usage/test/q_max"].severity is Severity.MAJOR


def test_the_same_key_twice_in_one_evaluation_counts_once_at_the_worse_severity() -> None:
    alerts = book()
    changes = alerts.evaluate([("a", cond(severity=Severity.MAJOR)), ("a", cond(severity=Severity.CRITICAL))], [], 1)
    assert len(changes.opened) == 1 and changes.opened[0].severity is Severity.CRITICAL


def test_a_failed_source_keeps_its_alerts_as_they_are() -> None:
    alerts = book()
    alerts.evaluate([("batch", cond("job_1", rule="job_overrun"))], [], 1_000)
    changes = alerts.evaluate([], ["batch"], 2_000)
    assert changes.resolved == [] and alerts.open["job_overrun/test/job_1"].count == 1
    assert len(alerts.evaluate([], [], 3_000).resolved) == 1


def test_open_alerts_are_bounded_and_what_found_no_room_is_reported() -> None:
    alerts = book(open_max=2)
    changes = alerts.evaluate([("s", cond(f"q{i}")) for i in range(3)], [], 1)
    assert len(changes.opened) == 2 and [c.subject for c in changes.not_opened] == ["q2"]
    with pytest.raises(ValueError, match="ops_open_alerts_max"):
        AlertBook(open_max=1_000_000)


def test_alerts_loaded_after_a_restart_continue() -> None:
    before = book()
    alert = before.evaluate([("limits", cond())], [], 1_000).opened[0]
    after = book()
    after.load([alert])
    changes = after.evaluate([("limits", cond())], [], 2_000)
    assert changes.opened == [] and changes.continued[0].count == 2


def test_conditions_are_checked_where_they_are_made() -> None:
    with pytest.raises(ValueError, match="rule"):
        Condition("Job Overrun", "batch", "x", Severity.MAJOR, "m")
    with pytest.raises(ValueError, match="subject"):
        Condition("job_overrun", "batch", "", Severity.MAJOR, "m")
    with pytest.raises(ValueError, match="message"):
        Condition("job_overrun", "batch", "x", Severity.MAJOR, "m" * 501)
    with pytest.raises(ValueError):
        Condition("job_overrun", "batch", "x", "fatal", "m")  # type: ignore[arg-type]
    assert Condition("job_overrun", "batch", "x", "major", "m").severity is Severity.MAJOR  # type: ignore[arg-type]


# -- the rules ---------------------------------------------------------------------------------------------------


def test_limit_usage_at_70_85_95_percent() -> None:
    registry = LimitRegistry()
    registry.declare("hub_test_queue_max", 100, "calls", "test")
    severities = []
    for usage in (69, 70, 84, 85, 94, 95, 100):
        registry.observe("hub_test_queue_max", usage)
        found = limit_usage(registry)
        severities.append(found[0].severity if found else None)
    assert severities == [None, Severity.WARNING, Severity.WARNING, Severity.MAJOR, Severity.MAJOR,
                          Severity.CRITICAL, Severity.CRITICAL]
    registry.observe("hub_test_queue_max", 72)
    (found,) = limit_usage(registry)
    assert (found.rule, found.component, found.subject) == ("limit_usage", "hub", "hub_test_queue_max")
    assert found.message == "hub: limit hub_test_queue_max at 72 % (72 of 100 calls)"


def test_a_forecast_within_the_horizon_is_an_alert_naming_the_time() -> None:
    soon = Forecast("ops_x_max", "rows", 1000, 500, 60, 100.0, 5 * 3600)
    later = Forecast("ops_y_max", "rows", 1000, 500, 60, 1.0, 30 * 86_400)
    full = Forecast("ops_z_max", "rows", 1000, 1000, 60, 0.0, 0)
    (found,) = limit_forecasts([soon, later, full], AlertPolicy(), now_ms=0)
    assert found.subject == "ops_x_max" and found.rule == "limit_forecast" and found.severity is Severity.WARNING
    assert "fill in 5 h 0 min (about 1970-01-01T05:00+00:00)" in found.message


def test_error_ratios_name_the_failing_product_not_the_partitions_it_is_called_from() -> None:
    before = {("own_atm", "time_deposits", "ok"): 100}
    now = {("own_atm", "time_deposits", "ok"): 110, ("own_atm", "time_deposits", "failed"): 30,
           ("own_atm", "deposits", "ok"): 500, ("teller", "time_deposits", "unavailable"): 10}
    counts = interval_counts(before, now)
    (found,) = error_ratios(counts, AlertPolicy(), interval_s=60)
    assert (found.rule, found.component, found.subject) == ("product_error_ratio", "hub", "time_deposits")
    assert found.severity is Severity.CRITICAL  # 40 of 50
    assert "product time_deposits: 40 of 50 calls (80 %)" in found.message and "last 60 s" in found.message


def test_a_partition_is_named_for_its_own_refusals_and_few_calls_are_no_alert() -> None:
    counts = {("internet", "deposits", "ok"): 90, ("internet", "deposits", "shed"): 10}
    (found,) = error_ratios(counts, AlertPolicy(), interval_s=60)
    assert (found.rule, found.subject, found.severity) == ("partition_error_ratio", "internet", Severity.MAJOR)
    assert error_ratios({("teller", "fees", "ok"): 1, ("teller", "fees", "failed"): 1}, AlertPolicy(), 60) == []
    assert error_ratios({("teller", "fees", "refused"): 50, ("teller", "fees", "cancelled"): 50}, AlertPolicy(),
                        60) == []


def test_a_counter_that_went_back_counts_from_zero() -> None:
    assert interval_counts({("a", "b", "ok"): 50}, {("a", "b", "ok"): 7}) == {("a", "b", "ok"): 7}
