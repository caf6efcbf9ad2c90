"""Admission control: batch is shed first, then internet and open API, never ATMs or tellers; batch pace."""

from __future__ import annotations

import asyncio
import time

import pytest

from kanjo.hub import AdmissionPolicy, Hub, Partition, ProductPolicy, Shed, ShedLevel
from kanjo.hub.admission import Admission
from tests.unit.test_hub_calls import answering, hanging, partitions

ONLINE_HIGH = (Partition.OWN_ATM, Partition.OTHER_ATM, Partition.TELLER)
ONLINE_MEDIUM = (Partition.INTERNET, Partition.OPEN_API)


def make_hub(admission: AdmissionPolicy | None = None) -> Hub:
    hub = Hub(partitions(), admission)
    hub.register_product("deposits", ProductPolicy("deposits", timeout_ms=5_000))
    for partition in Partition:
        hub.route(partition, ["deposits"])
    return hub


async def served(hub: Hub, partition: Partition) -> bool:
    try:
        await hub.call(partition, "deposits", "inquiry", answering())
    except Shed as shed:
        assert shed.code == "shed" and shed.partition is partition
        assert shed.retry_after_s == hub.admission.policy.lag_window_ms / 1000
        return False
    return True


async def test_no_lag_serves_everyone() -> None:
    hub = make_hub()
    assert [await served(hub, p) for p in Partition] == [True] * len(Partition)


async def test_a_first_threshold_of_lag_sheds_batch_only() -> None:
    hub = make_hub()
    hub.admission.record_lag_ms(50)  # between 20 and 100 ms
    assert hub.admission.level() is ShedLevel.BATCH
    assert not await served(hub, Partition.BATCH)
    for partition in (*ONLINE_HIGH, *ONLINE_MEDIUM):
        assert await served(hub, partition), partition


async def test_a_second_threshold_sheds_internet_and_open_api_too_but_never_atms_or_tellers() -> None:
    hub = make_hub()
    hub.admission.record_lag_ms(5_000)
    assert hub.admission.level() is ShedLevel.ONLINE_MEDIUM
    for partition in (Partition.BATCH, *ONLINE_MEDIUM):
        assert not await served(hub, partition), partition
    for partition in ONLINE_HIGH:
        assert await served(hub, partition), partition
    health = hub.health()
    assert [p for p, h in health["partitions"].items() if h["shed"]] == ["internet", "open_api", "batch"]
    assert health["partitions"]["internet"]["status"] == "degraded" and health["status"] == "degraded"
    assert health["partitions"]["own_atm"]["status"] == "up"


async def test_a_really_blocked_event_loop_is_measured_and_sheds() -> None:
    hub = make_hub(AdmissionPolicy(sample_interval_ms=10, lag_window_ms=500))
    hub.start()
    try:
        await asyncio.sleep(0.03)
        assert hub.admission.level() is ShedLevel.NONE
        time.sleep(0.15)  # noqa: ASYNC251 — the point: stall the loop, as a CPU-bound batch chunk would
        await asyncio.sleep(0.02)
        assert hub.admission.lag_ms() > 100
        assert not await served(hub, Partition.BATCH)
        assert not await served(hub, Partition.INTERNET)
        assert await served(hub, Partition.OWN_ATM)
        assert hub.health()["admission"]["loop_lag_ms"] > 100
    finally:
        await hub.stop()
    await hub.stop()  # stopping twice is harmless


async def test_online_work_in_flight_sheds_batch() -> None:
    hub = make_hub(AdmissionPolicy(in_flight_shed_batch_min=3))
    atm_calls = [asyncio.create_task(hub.call(Partition.OWN_ATM, "deposits", "withdrawal", hanging))
                 for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not await served(hub, Partition.BATCH)
    assert await served(hub, Partition.INTERNET)
    for task in atm_calls:
        task.cancel()
    await asyncio.gather(*atm_calls, return_exceptions=True)
    assert await served(hub, Partition.BATCH)


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_shedding_ends_after_one_calm_window() -> None:
    clock = Clock()
    admission = Admission(AdmissionPolicy(lag_window_ms=1_000), now_s=clock)
    admission.record_lag_ms(150)
    clock.now_s += 0.5
    admission.record_lag_ms(0.2)
    assert admission.level() is ShedLevel.ONLINE_MEDIUM
    clock.now_s += 0.6
    admission.record_lag_ms(0.1)
    assert admission.level() is ShedLevel.NONE and admission.lag_ms() == pytest.approx(0.2)


def test_batch_pace_follows_the_loop_lag_and_the_atm_latency_objective() -> None:
    clock = Clock()
    admission = Admission(AdmissionPolicy(lag_shed_batch_ms=20, atm_latency_p99_objective_ms=500,
                                          pace_window_ms=10_000), now_s=clock)
    assert admission.batch_pace() == 1.0  # nothing measured: full speed
    admission.record_lag_ms(10)
    assert admission.batch_pace() == 0.5
    clock.now_s += 2  # the lag sample is older than the lag window
    for _ in range(99):
        admission.record_atm_latency_ms(20)
    admission.record_atm_latency_ms(200)  # p99 of 100 samples is the 99th: 20 ms
    assert admission.atm_latency_ms_p99() == 20 and admission.batch_pace() == 1.0
    for _ in range(5):
        admission.record_atm_latency_ms(400)  # p99 now 400 ms of a 500 ms objective
    assert admission.batch_pace() == pytest.approx(0.4)
    admission.record_lag_ms(25)
    assert admission.batch_pace() == 0.0  # batch is shed: stop
    clock.now_s += 11  # the slow ATM calls are history
    assert admission.batch_pace() == 1.0


async def test_the_hub_exposes_batch_pace() -> None:
    hub = make_hub()
    assert hub.batch_pace() == 1.0
    hub.admission.record_lag_ms(15)
    assert hub.batch_pace() == pytest.approx(0.25)


def test_bad_admission_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="lag_shed_batch_ms < lag_shed_medium_ms"):
        AdmissionPolicy(lag_shed_batch_ms=100, lag_shed_medium_ms=20)
    with pytest.raises(ValueError, match="sample_interval_ms"):
        AdmissionPolicy(sample_interval_ms=2_000, lag_window_ms=1_000)
