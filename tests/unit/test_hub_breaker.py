"""A product's breaker on a hand-moved clock: the error ratio of the window opens it, probes close or re-open it."""

from __future__ import annotations

import pytest

from kanjo.hub import BreakerState, ProductPolicy
from kanjo.hub.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def make(**policy: object) -> tuple[Breaker, Clock, list[tuple[str, str]]]:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    fields: dict = {"window_requests_min": 10, "failure_ratio_to_open": 0.5, "open_ms": 1_000,
                    "half_open_probes": 2, "window_ms": 10_000, **policy}
    breaker = Breaker(ProductPolicy("deposits", **fields), clock,
                      lambda b, old, new, reason: changes.append((old.value, new.value)))
    return breaker, clock, changes


def answer(breaker: Breaker, n: int, *, failed: bool) -> None:
    for _ in range(n):
        permit = breaker.permit()
        assert permit is not None
        breaker.record(permit, failed=failed)


def test_answers_never_open_it() -> None:
    breaker, _, changes = make()
    answer(breaker, 1_000, failed=False)
    assert breaker.state is BreakerState.CLOSED and changes == []


def test_it_opens_at_the_ratio_once_the_window_has_enough_calls() -> None:
    breaker, _, changes = make()
    answer(breaker, 5, failed=False)
    answer(breaker, 4, failed=True)
    assert breaker.state is BreakerState.CLOSED  # 4 of 9: too few calls to judge, and below the ratio
    answer(breaker, 1, failed=True)
    assert breaker.state is BreakerState.OPEN  # 5 of 10 = 0.5
    assert changes == [("closed", "open")]
    assert breaker.permit() is None and breaker.refuses_now()


def test_many_failures_below_the_minimum_do_not_open_it() -> None:
    breaker, _, _ = make(window_requests_min=20)
    answer(breaker, 19, failed=True)
    assert breaker.state is BreakerState.CLOSED


def test_below_the_ratio_it_stays_closed() -> None:
    breaker, _, _ = make()
    for _ in range(50):
        answer(breaker, 3, failed=False)
        answer(breaker, 2, failed=True)  # 40 %
    assert breaker.state is BreakerState.CLOSED
    assert breaker.error_ratio() == pytest.approx(0.4)


def test_the_window_forgets_old_errors() -> None:
    breaker, clock, _ = make()
    answer(breaker, 9, failed=True)
    clock.now_s += 11  # older than the 10 s window
    answer(breaker, 9, failed=False)
    answer(breaker, 1, failed=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.window_calls() == 10 and breaker.error_ratio() == pytest.approx(0.1)


def open_breaker(breaker: Breaker) -> None:
    answer(breaker, 10, failed=True)
    assert breaker.state is BreakerState.OPEN


def test_after_open_ms_it_lets_exactly_the_probes_through_and_their_answers_close_it() -> None:
    breaker, clock, changes = make()
    open_breaker(breaker)
    clock.now_s += 0.999
    assert breaker.permit() is None and breaker.retry_after_s() == pytest.approx(0.001)
    clock.now_s += 0.001
    first, second = breaker.permit(), breaker.permit()
    assert first is not None and second is not None and first.probe and second.probe
    assert breaker.permit() is None and breaker.state is BreakerState.HALF_OPEN
    breaker.record(first, failed=False)
    assert breaker.state is BreakerState.HALF_OPEN  # every probe must answer
    breaker.record(second, failed=False)
    assert breaker.state is BreakerState.CLOSED and breaker.window_calls() == 0
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_reopens_it_for_another_open_ms() -> None:
    breaker, clock, changes = make()
    open_breaker(breaker)
    clock.now_s += 1
    probe = breaker.permit()
    assert probe is not None
    breaker.record(probe, failed=True)
    assert breaker.state is BreakerState.OPEN and breaker.retry_after_s() == pytest.approx(1.0)
    assert changes[-1] == ("half_open", "open")


def test_an_abandoned_probe_frees_its_place() -> None:
    breaker, clock, _ = make(half_open_probes=1)
    open_breaker(breaker)
    clock.now_s += 1
    probe = breaker.permit()
    assert probe is not None and breaker.permit() is None
    breaker.abandon(probe)
    assert breaker.permit() is not None


def test_a_late_answer_from_before_the_opening_changes_nothing() -> None:
    breaker, clock, _ = make(half_open_probes=1)
    slow = breaker.permit()
    assert slow is not None
    open_breaker(breaker)
    breaker.record(slow, failed=False)  # admitted while closed, answered after the opening
    assert breaker.state is BreakerState.OPEN
    clock.now_s += 1
    probe = breaker.permit()
    assert probe is not None
    breaker.record(slow, failed=True)  # neither does a late failure re-open a probing breaker
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(probe, failed=False)
    assert breaker.state is BreakerState.CLOSED


def test_forced_open_holds_until_reset() -> None:
    breaker, clock, changes = make()
    breaker.force_open("incident 42: time-deposit posting broken")
    clock.now_s += 3_600
    assert breaker.permit() is None and breaker.state is BreakerState.OPEN
    assert breaker.retry_after_s() is None and breaker.forced_reason == "incident 42: time-deposit posting broken"
    breaker.reset("fixed")
    assert breaker.state is BreakerState.CLOSED and breaker.forced_reason is None and breaker.permit() is not None
    assert changes == [("closed", "open"), ("open", "closed")]


@pytest.mark.parametrize("bad", [
    {"timeout_ms": 0}, {"timeout_ms": 1.5}, {"failure_ratio_to_open": 0.0}, {"failure_ratio_to_open": 1.5},
    {"window_requests_min": 0}, {"half_open_probes": 0}, {"open_ms": -1}, {"window_ms": 10**9},
])
def test_a_bad_policy_is_refused_naming_the_field(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ProductPolicy("deposits", **bad)


def test_a_product_name_is_snake_case() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        ProductPolicy("Time Deposits")
