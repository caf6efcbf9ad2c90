"""What operators see of the hub: metrics that move, the shape of health(), and the HTTP routes."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from kanjo.hub import PartitionBusy, ProductFailed, ProductUnavailable
from kanjo.hub.api import router
from kanjo.kernel.limits import limits
from kanjo.platform.http import install_error_handlers
from tests.unit.test_hub_calls import ATM, InsufficientFunds, answering, hanging, make_hub, policy, raising


def requests(product: str, outcome: str, partition: str = "own_atm") -> float:
    value = REGISTRY.get_sample_value("kanjo_hub_requests_total",
                                      {"partition": partition, "product": product, "outcome": outcome})
    return value or 0.0


async def test_metrics_count_every_outcome_and_the_breaker_state() -> None:
    hub = make_hub(policy("metrics_probe"), concurrency_max=1, queue_max=0)
    await hub.call(ATM, "metrics_probe", "inquiry", answering())
    with pytest.raises(InsufficientFunds):
        await hub.call(ATM, "metrics_probe", "withdrawal", raising(InsufficientFunds()))
    holder = asyncio.create_task(hub.call(ATM, "metrics_probe", "withdrawal", hanging))
    await asyncio.sleep(0.01)
    assert REGISTRY.get_sample_value("kanjo_hub_in_flight", {"partition": "own_atm"}) == 1
    with pytest.raises(PartitionBusy):
        await hub.call(ATM, "metrics_probe", "inquiry", answering())
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    for _ in range(2):  # 2 system errors of 4 answered calls (the cancelled one says nothing): 50 %, open
        with pytest.raises(ProductFailed):
            await hub.call(ATM, "metrics_probe", "withdrawal", raising(RuntimeError()))
    with pytest.raises(ProductUnavailable):
        await hub.call(ATM, "metrics_probe", "inquiry", answering())

    counts = {o: requests("metrics_probe", o) for o in ("ok", "refused", "busy", "cancelled", "failed", "unavailable")}
    assert counts == {"ok": 1, "refused": 1, "busy": 1, "cancelled": 1, "failed": 2, "unavailable": 1}
    latency = {"partition": "own_atm", "product": "metrics_probe"}
    assert REGISTRY.get_sample_value("kanjo_hub_latency_seconds_count", latency) == 5  # the calls that ran
    assert REGISTRY.get_sample_value("kanjo_hub_breaker_state", {"product": "metrics_probe"}) == 2
    assert REGISTRY.get_sample_value("kanjo_hub_breaker_transitions_total",
                                     {"product": "metrics_probe", "state": "open"}) == 1
    assert REGISTRY.get_sample_value("kanjo_hub_in_flight", {"partition": "own_atm"}) == 0
    assert REGISTRY.get_sample_value("kanjo_hub_queue_depth", {"partition": "own_atm"}) == 0


async def test_queue_usage_is_observed_in_the_limits_registry() -> None:
    hub = make_hub(policy("deposits", timeout_ms=5_000), concurrency_max=1, queue_max=5)
    tasks = [asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", hanging)) for _ in range(4)]
    await asyncio.sleep(0.01)
    assert limits.usage("hub_own_atm_queue_max") == 3 and limits.peak("hub_own_atm_queue_max") >= 3
    assert hub.health()["partitions"]["own_atm"]["status"] == "up"  # 3 of 5 queued: under 80 %
    tasks.append(asyncio.create_task(hub.call(ATM, "deposits", "withdrawal", hanging)))
    await asyncio.sleep(0.01)
    assert hub.health()["partitions"]["own_atm"] == {"status": "degraded", "in_flight": 1, "queued": 4,
                                                     "shed": False}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert limits.usage("hub_own_atm_queue_max") == 0


async def test_health_tells_which_products_are_up_degraded_or_down() -> None:
    hub = make_hub(policy("deposits"), policy("time_deposits", open_ms=50))
    health = hub.health()
    assert health["status"] == "up"
    assert set(health["partitions"]) == {"own_atm", "other_atm", "internet", "teller", "open_api", "batch"}
    assert health["partitions"]["teller"] == {"status": "up", "in_flight": 0, "queued": 0, "shed": False}
    product = health["products"]["deposits"]
    assert product == {"status": "up", "breaker": "closed", "error_ratio": 0.0, "since": product["since"],
                       "forced_reason": None}
    assert dt.datetime.fromisoformat(product["since"]).tzinfo is not None
    assert set(health["admission"]) == {"loop_lag_ms", "shed_level", "online_in_flight", "batch_pace"}

    for _ in range(4):
        with pytest.raises(ProductFailed):
            await hub.call(ATM, "time_deposits", "maturity", raising(RuntimeError()))
    health = hub.health()
    assert health["status"] == "degraded"
    assert health["products"]["time_deposits"] | {"since": "?"} == {
        "status": "down", "breaker": "open", "error_ratio": 1.0, "since": "?", "forced_reason": None}
    await asyncio.sleep(0.06)
    assert hub.health()["products"]["time_deposits"]["status"] == "degraded"
    assert hub.health()["products"]["time_deposits"]["breaker"] == "half_open"

    hub.force_open("deposits", "drill")
    hub.force_open("time_deposits", "drill")
    assert hub.health()["status"] == "down"  # down only when every product is down


async def test_http_health_view_and_operator_controls() -> None:
    hub = make_hub(policy("deposits"), policy("time_deposits"))
    app = FastAPI()
    install_error_handlers(app, busy=(), unavailable=())
    app.include_router(router)
    app.state.hub = hub
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        health = await api.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "up"
        view = (await api.get("/v1/hub")).json()
        assert view["policies"]["partitions"]["own_atm"]["priority"] == "high"
        assert view["policies"]["routes"]["own_atm"] == ["deposits", "time_deposits"]
        assert view["policies"]["products"]["deposits"]["business_errors"] == ["InsufficientFunds"]

        opened = await api.post("/v1/hub/products/time_deposits/open", json={"reason": "incident 9"})
        assert opened.status_code == 200
        assert opened.json() | {"since": "?"} == {"product": "time_deposits", "status": "down", "breaker": "open",
                                                  "error_ratio": 0.0, "since": "?", "forced_reason": "incident 9"}
        assert (await api.get("/health")).json()["status"] == "degraded"
        await api.post("/v1/hub/products/deposits/open", json={"reason": "drill"})
        down = await api.get("/health")
        assert down.status_code == 503 and down.json()["status"] == "down"

        reset = await api.post("/v1/hub/products/deposits/reset", json={"reason": "drill over"})
        assert reset.status_code == 200 and reset.json()["breaker"] == "closed"
        assert (await api.get("/health")).status_code == 200

        unknown = await api.post("/v1/hub/products/fx/open", json={"reason": "x"})
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_product"
        for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201}, {"reason": "x", "extra": 1}):
            bad = await api.post("/v1/hub/products/deposits/open", json=body)
            assert bad.status_code == 422 and bad.json()["error"] == "invalid_field", body
        bad_name = await api.post("/v1/hub/products/Not%20A%20Product/reset", json={"reason": "x"})
        assert bad_name.status_code == 422
    assert hub.health()["products"]["deposits"]["breaker"] == "closed"  # the refused requests changed nothing


async def test_an_app_without_a_hub_answers_503_not_500() -> None:
    app = FastAPI()
    install_error_handlers(app, busy=(), unavailable=())
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
        answer = await api.get("/health")
    assert answer.status_code == 503 and answer.json()["error"] == "hub_not_configured"
