"""The per-client token bucket without I/O, on a clock the test moves: the burst, the sustained rate, the wait a
refused request is told, settings changed by operations, and clients that never share a bucket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kanjo.channels.openapi.ratelimit import RateLimiter, TokenBucket


def test_a_full_bucket_lets_a_burst_through_then_refuses_with_the_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, tokens=3.0, updated_s=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token every half second
    assert bucket.take(0.25) == pytest.approx(0.25)  # refused requests take nothing
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0


def test_it_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=2, tokens=0.0, updated_s=0.0)
    assert bucket.take(100.0) == 0.0 and bucket.take(100.0) == 0.0  # a long pause gives the burst, no more
    assert bucket.take(100.0) == pytest.approx(1.0)


def test_a_clock_stepping_back_never_mints_tokens() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1, tokens=1.0, updated_s=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0
    assert bucket.take(10.5) == pytest.approx(0.5)


def test_new_settings_apply_at_once_and_never_raise_the_tokens() -> None:
    limiter = RateLimiter(clients_max=10)
    assert all(limiter.take("a", 1.0, 10, 0.0) == 0.0 for _ in range(5))  # 5 of 10 left
    assert limiter.take("a", 1.0, 2, 0.0) == 0.0  # the burst lowered to 2: at most 2 left, one taken
    assert limiter.take("a", 1.0, 2, 0.0) == 0.0
    assert limiter.take("a", 1.0, 2, 0.0) > 0


def test_one_client_over_its_rate_does_not_slow_another() -> None:
    limiter = RateLimiter(clients_max=10)
    assert [limiter.take("busy", 1.0, 2, 0.0) for _ in range(3)][-1] > 0
    assert all(limiter.take("calm", 1.0, 2, 0.0) == 0.0 for _ in range(2))
    assert len(limiter) == 2
    limiter.forget("busy")
    assert limiter.take("busy", 1.0, 2, 0.0) == 0.0  # a forgotten (revoked) client starts afresh


def test_buckets_are_bounded() -> None:
    limiter = RateLimiter(clients_max=3)
    for i in range(10):
        limiter.take(f"c{i}", 1.0, 1, 0.0)
    assert len(limiter) == 3


def test_a_bucket_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0.0, burst=1, tokens=0.0, updated_s=0.0)
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=1.0, burst=0, tokens=0.0, updated_s=0.0)


@given(st.floats(0.5, 50.0), st.integers(1, 50), st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200))
def test_never_more_than_the_burst_plus_the_rate_over_time(rate: float, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate_per_s=rate, burst=burst, tokens=float(burst), updated_s=0.0)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        assert wait >= 0.0
        admitted += wait == 0.0
    assert admitted <= burst + rate * now + 1e-6
