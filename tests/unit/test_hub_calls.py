"""Calls through the hub on a real event loop: answers, failures, breakers, bulkheads, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest

from kanjo.hub import (
    DEFAULT_PARTITIONS,
    BreakerState,
    DeadlineExceeded,
    FaultMode,
    Hub,
    InjectedFault,
    NotRouted,
    Partition,
    PartitionBusy,
    PartitionPolicy,
    ProductFailed,
    ProductPolicy,
    ProductUnavailable,
    UnknownProduct,
)

ATM, TELLER = Partition.OWN_ATM, Partition.TELLER


class InsufficientFunds(Exception):
    """A business refusal of the test products."""


def partitions(concurrency_max: int = 4, queue_max: int = 16, deadline_ms: int = 1_000) -> dict:
    """Every partition alike (within its declared limits), with its default priority."""
    return {p: PartitionPolicy(p, min(concurrency_max, d.concurrency_max), min(queue_max, d.queue_max), deadline_ms,
                               d.priority)
            for p, d in DEFAULT_PARTITIONS.items()}


def make_hub(*products: ProductPolicy, **sizes: int) -> Hub:
    hub = Hub(partitions(**sizes))
    for policy in products:
        hub.register_product(policy.product, policy, business_errors=(InsufficientFunds,))
    for partition in Partition:
        hub.route(partition, [p.product for p in products])
    return hub


def policy(product: str, **fields: object) -> ProductPolicy:
    defaults: dict = {"timeout_ms": 200, "failure_ratio_to_open": 0.5, "window_requests_min": 4, "open_ms": 60_000,
                      "half_open_probes": 1}
    return ProductPolicy(product, **{**defaults, **fields})


def answering(value: object = "ok") -> Callable[[], Awaitable[object]]:
    async def fn() -> object:
        return value
    return fn


def raising(exc: Exception) -> Callable[[], Awaitable[object]]:
    async def fn() -> object:
        raise exc
    return fn


async def hanging() -> object:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_an_answer_comes_back_unchanged() -> None:
    hub = make_hub(policy("deposits"))
    assert await hub.call(ATM, "deposits", "inquiry", answering({"balance": 1_000})) == {"balance": 1_000}


async def test_business_refusals_are_answers_and_never_open_the_breaker() -> None:
    hub = make_hub(policy("deposits"))
    for _ in range(50):
        with pytest.raises(InsufficientFunds):
            await hub.call(ATM, "deposits", "withdrawal", raising(InsufficientFunds("balance ¥1,000")))
    assert hub.health()["products"]["deposits"]["breaker"] == "closed"
    assert await hub.call(ATM, "deposits", "inquiry", answering()) == "ok"


async def test_system_errors_open_the_breaker_at_the_ratio() -> None:
    hub = make_hub(policy("deposits", window_requests_min=6))
    await hub.call(ATM, "deposits", "inquiry", answering())
    await hub.call(ATM, "deposits", "inquiry", answering())
    await hub.call(ATM, "deposits", "inquiry", answering())
    for _ in range(2):
        with pytest.raises(ProductFailed) as failed:
            await hub.call(ATM, "deposits", "withdrawal", raising(ConnectionResetError("db gone")))
        assert isinstance(failed.value.cause, ConnectionResetError) and not failed.value.timed_out
        assert failed.value.code == "product_failed"
    assert hub.health()["products"]["deposits"]["breaker"] == "closed"  # 2 of 5: too few calls
    with pytest.raises(ProductFailed):
        await hub.call(ATM, "deposits", "withdrawal", raising(ConnectionResetError("db gone")))
    health = hub.health()["products"]["deposits"]
    assert health["breaker"] == "open" and health["status"] == "down" and health["error_ratio"] == 0.5


async def open_by_errors(hub: Hub, product: str, partition: Partition = ATM) -> None:
    for _ in range(4):
        with pytest.raises(ProductFailed):
            await hub.call(partition, product, "withdrawal", raising(RuntimeError("bug")))


async def test_an_open_breaker_refuses_fast_without_calling_and_names_what_still_works() -> None:
    hub = make_hub(policy("deposits"), policy("time_deposits"), policy("fees"), policy("loans"))
    hub.route(ATM, ["deposits", "time_deposits", "fees"])  # the ATM partition is not routed to loans
    await open_by_errors(hub, "time_deposits")
    await open_by_errors(hub, "fees")
    calls = 0

    async def counted() -> object:
        nonlocal calls
        calls += 1
        return "ok"

    started = time.perf_counter()
    for _ in range(100):
        with pytest.raises(ProductUnavailable) as refused:
            await hub.call(ATM, "time_deposits", "maturity", counted)
    assert calls == 0 and (time.perf_counter() - started) / 100 < 0.001  # microseconds each, not a timeout
    assert refused.value.still_working == ["deposits"]
    assert refused.value.message == "this service is temporarily unavailable; these still work: deposits"
    assert refused.value.code == "product_unavailable"
    assert refused.value.retry_after_s is not None and 59 < refused.value.retry_after_s <= 60
    assert await hub.call(ATM, "deposits", "withdrawal", counted) == "ok"  # every other product keeps serving
    assert await hub.call(TELLER, "loans", "draw", counted) == "ok"


async def test_half_open_probes_close_the_breaker_when_they_answer() -> None:
    hub = make_hub(policy("deposits", open_ms=50, half_open_probes=2))
    await open_by_errors(hub, "deposits")
    with pytest.raises(ProductUnavailable):
        await hub.call(ATM, "deposits", "inquiry", answering())
    await asyncio.sleep(0.06)
    assert hub.health()["products"]["deposits"]["status"] == "degraded"
    release = asyncio.Event()

    async def slow_answer() -> object:
        await release.wait()
        return "ok"

    probes = [asyncio.create_task(hub.call(ATM, "deposits", "inquiry", slow_answer)) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(ProductUnavailable):  # two probes out: a third call is refused
        await hub.call(ATM, "deposits", "inquiry", answering())
    release.set()
    assert await asyncio.gather(*probes) == ["ok", "ok"]
    assert hub.health()["products"]["deposits"]["breaker"] == "closed"


async def test_a_failed_probe_reopens_the_breaker() -> None:
    hub = make_hub(policy("deposits", open_ms=50))
    await open_by_errors(hub, "deposits")
    await asyncio.sleep(0.06)
    with pytest.raises(ProductFailed):
        await hub.call(ATM, "deposits", "inquiry", raising(OSError("still broken")))
    assert hub.health()["products"]["deposits"]["breaker"] == "open"
    with pytest.raises(ProductUnavailable):
        await hub.call(ATM, "deposits", "inquiry", answering())


async def test_a_timeout_is_a_system_error_and_frees_the_slot() -> None:
    hub = make_hub(policy("time_deposits", timeout_ms=30))
    started = time.perf_counter()
    with pytest.raises(ProductFailed) as failed:
        await hub.call(ATM, "time_deposits", "maturity", hanging)
    assert failed.value.timed_out and isinstance(failed.value.cause, TimeoutError)
    assert 0.025 < time.perf_counter() - started < 0.5
    assert hub.health()["partitions"]["own_atm"]["in_flight"] == 0


async def test_a_hanging_product_costs_a_partition_at_most_its_concurrency_and_nothing_once_open() -> None:
    concurrency_max = 8
    hub = make_hub(policy("time_deposits", timeout_ms=100, window_requests_min=5),
                   policy("deposits"), concurrency_max=concurrency_max, queue_max=512, deadline_ms=2_000)
    hanging_now = hanging_max = hanging_started = 0

    async def hangs() -> object:
        nonlocal hanging_now, hanging_max, hanging_started
        hanging_now += 1
        hanging_started += 1
        hanging_max = max(hanging_max, hanging_now)
        try:
            return await hanging()
        finally:
            hanging_now -= 1

    async def healthy() -> tuple[str, float]:
        await asyncio.sleep(0.001)
        return "ok", time.perf_counter()

    started = time.perf_counter()
    calls = [hub.call(ATM, "time_deposits", "maturity", hangs) if i % 2 == 0 else
             hub.call(ATM, "deposits", "withdrawal", healthy) for i in range(200)]
    results = await asyncio.gather(*calls, return_exceptions=True)

    healthy_results = results[1::2]
    assert all(isinstance(r, tuple) and r[0] == "ok" for r in healthy_results), healthy_results[:3]
    assert max(r[1] - started for r in healthy_results if isinstance(r, tuple)) < 2.0  # within the deadline
    hanging_results = results[0::2]
    assert all(isinstance(r, ProductFailed | ProductUnavailable) for r in hanging_results)
    unavailable = [r for r in hanging_results if isinstance(r, ProductUnavailable)]
    assert unavailable and all(r.still_working == ["deposits"] for r in unavailable)
    assert hanging_max <= concurrency_max
    assert hanging_started <= 2 * concurrency_max  # once the breaker opened, the hanging product cost nothing
    assert hub.health()["products"]["time_deposits"]["breaker"] == "open"
    assert hub.health()["partitions"]["own_atm"] == {"status": "up", "in_flight": 0, "queued": 0, "shed": False}


async def test_a_hanging_product_in_one_partition_leaves_the_others_their_slots() -> None:
    hub = make_hub(policy("time_deposits", timeout_ms=500, window_requests_min=1_000), policy("deposits"),
                   concurrency_max=2, queue_max=4)
    blocked = [asyncio.create_task(hub.call(ATM, "time_deposits", "maturity", hanging)) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert hub.health()["partitions"]["own_atm"]["queued"] == 4
    with pytest.raises(PartitionBusy):
        await hub.call(ATM, "deposits", "withdrawal", answering())
    started = time.perf_counter()
    assert await hub.call(TELLER, "deposits", "withdrawal", answering()) == "ok"
    assert time.perf_counter() - started < 0.05
    for task in blocked:
        task.cancel()
    await asyncio.gather(*blocked, return_exceptions=True)
    assert hub.health()["partitions"]["own_atm"]["in_flight"] == 0


async def test_a_full_queue_refuses_at_once_and_runs_nothing() -> None:
    hub = make_hub(policy("deposits", timeout_ms=5_000), concurrency_max=1, queue_max=2)
    release = asyncio.Event()

    async def holds() -> object:
        await release.wait()
        return "ok"

    holders = [asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", holds)) for _ in range(3)]
    await asyncio.sleep(0.01)
    ran = False

    async def must_not_run() -> object:
        nonlocal ran
        ran = True
        return "ran"

    started = time.perf_counter()
    with pytest.raises(PartitionBusy) as busy:
        await hub.call(ATM, "deposits", "withdrawal", must_not_run)
    assert time.perf_counter() - started < 0.05 and not ran  # at once, not after a deadline
    assert busy.value.code == "partition_busy" and busy.value.retry_after_s == 1.0
    assert busy.value.partition is ATM
    release.set()
    assert await asyncio.gather(*holders) == ["ok", "ok", "ok"]


async def test_a_call_that_cannot_start_before_its_deadline_never_runs() -> None:
    hub = make_hub(policy("deposits", timeout_ms=5_000), concurrency_max=1, queue_max=8)
    release = asyncio.Event()

    async def holds() -> object:
        await release.wait()
        return "ok"

    holder = asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", holds))
    await asyncio.sleep(0.01)
    ran = False

    async def must_not_run() -> object:
        nonlocal ran
        ran = True
        return "ran"

    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded) as late:
        await hub.call(ATM, "deposits", "withdrawal", must_not_run, deadline_ms=50)
    assert 0.045 < time.perf_counter() - started < 0.5 and not ran
    assert late.value.code == "deadline_exceeded" and late.value.deadline_ms == 50
    assert hub.health()["partitions"]["own_atm"]["queued"] == 0
    release.set()
    assert await holder == "ok"
    assert await hub.call(ATM, "deposits", "withdrawal", answering()) == "ok"  # the slot was not leaked
    assert hub.health()["partitions"]["own_atm"]["in_flight"] == 0


async def test_a_deadline_shorter_than_the_product_timeout_bounds_the_call() -> None:
    hub = make_hub(policy("deposits", timeout_ms=5_000, window_requests_min=1))
    started = time.perf_counter()
    with pytest.raises(ProductFailed) as failed:
        await hub.call(ATM, "deposits", "withdrawal", hanging, deadline_ms=40)
    assert failed.value.timed_out and time.perf_counter() - started < 0.5
    # the product had 40 ms of its 5 s: that says nothing about the product, so its breaker does not count it
    assert hub.health()["products"]["deposits"]["breaker"] == "closed"


async def test_a_cancelled_caller_gives_back_its_slot_and_its_place_in_the_queue() -> None:
    hub = make_hub(policy("deposits", timeout_ms=5_000, half_open_probes=1), concurrency_max=1, queue_max=4)
    running = asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", hanging))
    queued = [asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", hanging)) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert hub.health()["partitions"]["own_atm"] | {"status": "?"} == {
        "status": "?", "in_flight": 1, "queued": 2, "shed": False}
    queued[0].cancel()
    running.cancel()
    await asyncio.sleep(0.01)
    assert hub.health()["partitions"]["own_atm"]["in_flight"] == 1  # the slot passed to the last waiter
    queued[1].cancel()
    await asyncio.gather(running, *queued, return_exceptions=True)
    assert hub.health()["partitions"]["own_atm"] | {"status": "?"} == {
        "status": "?", "in_flight": 0, "queued": 0, "shed": False}
    assert await hub.call(ATM, "deposits", "withdrawal", answering()) == "ok"


async def test_many_waiters_each_get_a_slot_in_order_and_none_leaks() -> None:
    hub = make_hub(policy("deposits"), concurrency_max=3, queue_max=64)
    order = itertools.count()

    async def numbered() -> int:
        await asyncio.sleep(0.001)
        return next(order)

    results = await asyncio.gather(*(hub.call(ATM, "deposits", "inquiry", numbered) for _ in range(60)))
    assert sorted(results) == list(range(60))
    assert hub.health()["partitions"]["own_atm"]["in_flight"] == 0


async def test_a_partition_calls_only_the_products_routed_to_it() -> None:
    hub = make_hub(policy("deposits"), policy("loans"))
    hub.route(Partition.OTHER_ATM, ["deposits"])
    with pytest.raises(NotRouted) as refused:
        await hub.call(Partition.OTHER_ATM, "loans", "draw", answering())
    assert refused.value.code == "not_routed"
    with pytest.raises(NotRouted):
        await hub.call(ATM, "fx", "remit", answering())
    with pytest.raises(UnknownProduct):
        hub.route(ATM, ["deposits", "fx"])


def test_wiring_mistakes_are_refused_clearly() -> None:
    hub = make_hub(policy("deposits"))
    with pytest.raises(ValueError, match="already registered"):
        hub.register_product("deposits", policy("deposits"))
    with pytest.raises(ValueError, match="names 'fees'"):
        hub.register_product("loans", policy("fees"))
    with pytest.raises(ValueError, match="business exception"):
        hub.register_product("loans", policy("loans"), business_errors=(ProductFailed,))
    with pytest.raises(ValueError, match="missing: batch"):
        Hub({p: v for p, v in DEFAULT_PARTITIONS.items() if p is not Partition.BATCH})
    with pytest.raises(ValueError, match="hub_own_atm_concurrency_max"):
        PartitionPolicy(ATM, 65, 16, 2_000, DEFAULT_PARTITIONS[ATM].priority)


async def test_a_bad_deadline_is_refused_before_anything_runs() -> None:
    hub = make_hub(policy("deposits"))
    for bad in (0, -5, 10**9, 1.5):
        with pytest.raises(ValueError, match="deadline_ms"):
            await hub.call(ATM, "deposits", "inquiry", answering(), deadline_ms=bad)  # type: ignore[arg-type]


async def test_operators_force_a_product_open_and_reset_it() -> None:
    hub = make_hub(policy("deposits"), policy("time_deposits"))
    hub.force_open("time_deposits", "incident 7: posting broken")
    with pytest.raises(ProductUnavailable) as refused:
        await hub.call(ATM, "time_deposits", "maturity", answering())
    assert refused.value.retry_after_s is None and refused.value.still_working == ["deposits"]
    assert hub.health()["products"]["time_deposits"]["forced_reason"] == "incident 7: posting broken"
    hub.reset("time_deposits", "fix released")
    assert await hub.call(ATM, "time_deposits", "maturity", answering()) == "ok"
    with pytest.raises(UnknownProduct):
        hub.force_open("fx", "why not")
    with pytest.raises(ValueError, match="reason"):
        hub.force_open("deposits", "  ")
    assert hub.health()["products"]["deposits"]["breaker"] == BreakerState.CLOSED


async def test_a_drill_injects_errors_hangs_and_slowness_then_clears_them() -> None:
    hub = make_hub(policy("deposits", timeout_ms=100, window_requests_min=1_000), policy("fees"))
    calls = 0

    async def counted() -> object:
        nonlocal calls
        calls += 1
        return "ok"

    hub.inject_fault("deposits", FaultMode.ERROR)
    with pytest.raises(ProductFailed) as failed:
        await hub.call(ATM, "deposits", "withdrawal", counted)
    assert isinstance(failed.value.cause, InjectedFault) and calls == 0
    assert await hub.call(ATM, "fees", "quote", counted) == "ok"  # only the named product

    hub.inject_fault("deposits", FaultMode.HANG)
    with pytest.raises(ProductFailed) as hung:
        await hub.call(ATM, "deposits", "withdrawal", counted)
    assert hung.value.timed_out and calls == 1

    hub.inject_fault("deposits", FaultMode.SLOW, latency_ms=30)
    assert list(hub.faults()) == ["deposits"] and hub.faults()["deposits"]["mode"] == "slow"
    started = time.perf_counter()
    assert await hub.call(ATM, "deposits", "withdrawal", counted) == "ok"
    assert time.perf_counter() - started >= 0.03 and calls == 2

    hub.clear_fault("deposits")
    assert hub.faults() == {}
    assert await hub.call(ATM, "deposits", "withdrawal", counted) == "ok"
    with pytest.raises(UnknownProduct):
        hub.inject_fault("fx", FaultMode.ERROR)
    with pytest.raises(ValueError, match="latency_ms"):
        hub.inject_fault("deposits", FaultMode.SLOW, latency_ms=-1)
