"""Alerts on real PostgreSQL: limit usage opening, counting, escalating and resolving one alert; a registered
source's conditions; a failing product named by its error ratio through the hub; the HTTP routes; a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from rich.console import Console

from kanjo.app import create_app, start_background, stop_background
from kanjo.hub import Partition, ProductFailed, ProductUnavailable
from kanjo.kernel import FixedClock, LimitRegistry
from kanjo.ledger import Ledger
from kanjo.ops import AlertState, Condition, Ops, Severity, alerts_table, capacity_table
from kanjo.ops import service as ops_service
from kanjo.platform import db

KEY = bytes(range(7, 39))
START_NS = 1_780_000_000 * 1_000_000_000


class Recorder:
    """Stands in for the ops logger: the structured lines, as (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((level, event, fields))


@pytest.fixture
async def pool(ledger_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(ledger_dsn, size_max=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(ops_service, "log", recorder)
    return recorder


async def open_alerts(ops: Ops) -> list[Any]:
    return await ops.list_alerts(AlertState.OPEN, 100, 0)


async def test_a_limit_at_72_percent_is_one_warning_that_counts_escalates_and_resolves(
        pool: asyncpg.Pool, logged: Recorder) -> None:
    registry = LimitRegistry()
    registry.declare("test_queue_max", 1000, "calls", "a test queue")
    clock = FixedClock(START_NS)
    ops = Ops(pool, registry=registry, clock=clock)
    registry.observe("test_queue_max", 720)
    for _ in range(3):
        await ops.evaluate()
        clock.advance(60)
    (alert,) = await open_alerts(ops)
    assert (alert.rule, alert.component, alert.subject, alert.severity) == (
        "limit_usage", "test", "test_queue_max", Severity.WARNING)
    assert alert.count == 3 and alert.last_seen_ms - alert.first_seen_ms == 120_000
    assert alert.message == "test: limit test_queue_max at 72 % (720 of 1,000 calls)"
    opened = [fields for _, event, fields in logged.lines if event == "alert_opened"]
    assert len(opened) == 1 and opened[0]["subject"] == "test_queue_max" and opened[0]["severity"] == "warning"

    registry.observe("test_queue_max", 960)
    await ops.evaluate()
    (alert,) = await open_alerts(ops)
    assert alert.severity is Severity.CRITICAL and alert.count == 4 and "96 %" in alert.message
    assert [e for _, e, _ in logged.lines].count("alert_escalated") == 1

    registry.observe("test_queue_max", 100)
    clock.advance(60)
    await ops.evaluate()
    assert await open_alerts(ops) == []
    (resolved,) = await ops.list_alerts(AlertState.RESOLVED, 100, 0)
    assert resolved.id == alert.id and resolved.resolved_at_ms == START_NS // 1_000_000 + 240_000

    registry.observe("test_queue_max", 750)  # a recurrence is a new alert
    await ops.evaluate()
    (again,) = await open_alerts(ops)
    assert again.id != alert.id and again.count == 1
    assert len(await ops.list_alerts(None, 100, 0)) == 2


async def test_a_registered_source_opens_and_resolves_its_alerts(pool: asyncpg.Pool, logged: Recorder) -> None:
    overrun = {"holds": True}

    async def batch_source() -> list[Condition]:
        if not overrun["holds"]:
            return []
        return [Condition("job_overrun", "batch", "interest_accrual", Severity.MAJOR,
                          "batch: job interest_accrual has run 45 min, 15 min over its 30 min")]

    ops = Ops(pool, registry=LimitRegistry(), clock=FixedClock(START_NS))
    ops.register_source("batch", batch_source)
    with pytest.raises(ValueError, match="already registered"):
        ops.register_source("batch", batch_source)
    with pytest.raises(ValueError, match="snake_case"):
        ops.register_source("hub", batch_source)
    await ops.evaluate()
    await ops.evaluate()
    (alert,) = await open_alerts(ops)
    assert (alert.key, alert.source, alert.count) == ("job_overrun/batch/interest_accrual", "batch", 2)
    overrun["holds"] = False
    await ops.evaluate()
    assert await open_alerts(ops) == []
    assert [e for _, e, _ in logged.lines] == ["alert_opened", "alert_resolved"]


async def test_a_failing_source_is_an_alert_and_its_own_alerts_stay(pool: asyncpg.Pool, logged: Recorder) -> None:
    mode = {"now": "condition"}

    async def source() -> list[Condition]:
        if mode["now"] == "raise":
            raise RuntimeError("batch store unreachable")
        return [Condition("mandatory_job_missing", "batch", "day_change", Severity.CRITICAL, "batch: no day change")]

    ops = Ops(pool, registry=LimitRegistry(), clock=FixedClock(START_NS))
    ops.register_source("batch", source)
    await ops.evaluate()
    mode["now"] = "raise"
    await ops.evaluate()
    keys = {a.key: a for a in await open_alerts(ops)}
    assert set(keys) == {"mandatory_job_missing/batch/day_change", "source_failed/ops/batch"}
    assert keys["mandatory_job_missing/batch/day_change"].count == 1  # unknown, not resolved
    assert "batch store unreachable" in keys["source_failed/ops/batch"].message
    mode["now"] = "condition"
    await ops.evaluate()
    assert {a.key for a in await open_alerts(ops)} == {"mandatory_job_missing/batch/day_change"}


async def app_on(dsn: str) -> tuple[Ledger, Any]:
    ledger = await Ledger.start(dsn)
    return ledger, create_app(ledger, pin_key_bytes=KEY)


async def test_a_failing_product_is_named_by_its_error_ratio_and_served_over_http(ledger_dsn: str) -> None:
    ledger, app = await app_on(ledger_dsn)
    try:
        hub, ops = app.state.hub, app.state.ops
        await ops.evaluate()  # the baseline of the interval

        async def failing() -> None:
            raise RuntimeError("time deposit store down")

        async def answering() -> str:
            return "ok"

        for _ in range(30):
            with pytest.raises((ProductFailed, ProductUnavailable)):
                await hub.call(Partition.OWN_ATM, "time_deposits", "open", failing)
            await hub.call(Partition.OWN_ATM, "deposits", "balance", answering)
        await ops.evaluate()
        ratio_alerts = [a for a in await open_alerts(ops) if a.rule.endswith("_error_ratio")]
        assert [(a.rule, a.subject, a.severity) for a in ratio_alerts] == [
            ("product_error_ratio", "time_deposits", Severity.CRITICAL)]
        assert "product time_deposits: 30 of 30 calls (100 %)" in ratio_alerts[0].message

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
            r = await api.get("/v1/alerts")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["state"] == "open" and body["more"] is False
            listed = [a for a in body["alerts"] if a["subject"] == "time_deposits"]
            assert listed[0]["state"] == "open" and listed[0]["count"] == 1 and listed[0]["resolved_at"] is None
            assert (await api.get("/v1/alerts", params={"state": "all", "limit": 1})).status_code == 200
            for params, field in (({"state": "closed"}, "query.state"), ({"limit": 0}, "query.limit"),
                                  ({"limit": 100_000}, "query.limit"), ({"offset": -1}, "query.offset"),
                                  ({"limit": "many"}, "query.limit")):
                r = await api.get("/v1/alerts", params=params)
                assert r.status_code == 422, (params, r.text)
                assert r.json()["error"] == "invalid_field" and r.json()["fields"][0]["field"] == field

            r = await api.get("/v1/capacity")
            assert r.status_code == 200, r.text
            capacity = {f["name"]: f for f in r.json()["limits"]}
            assert r.json()["sampled_at"] is not None
            assert capacity["ops_open_alerts_max"]["maximum"] == 1_000
            assert capacity["hub_products_max"]["usage"] >= 6 and capacity["hub_products_max"]["samples"] == 2
            assert set(capacity["hub_products_max"]) >= {"usage_ratio", "slope_per_hour", "time_to_full_s", "full_at"}

            # what `kanjo alerts` and `kanjo capacity` print from these answers
            screen = Console(record=True, width=200)
            screen.print(alerts_table(body), capacity_table(r.json()))
            text = screen.export_text()
            assert "time_deposits" in text and "critical" in text and "ops_open_alerts_max" in text
    finally:
        await ledger.stop()


async def test_alerts_survive_a_restart_and_the_background_evaluation_stops_cleanly(ledger_dsn: str) -> None:
    async def overrun() -> list[Condition]:
        return [Condition("job_overrun", "batch", "statements", Severity.MAJOR, "batch: statements overran")]

    ledger, app = await app_on(ledger_dsn)
    try:
        app.state.ops.register_source("batch", overrun)
        await app.state.ops.evaluate()
    finally:
        await ledger.stop()

    ledger, app = await app_on(ledger_dsn)  # the restart: a new process state on the same database
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as api:
            before = [a for a in (await api.get("/v1/alerts")).json()["alerts"] if a["rule"] == "job_overrun"]
            assert [(a["subject"], a["count"]) for a in before] == [("statements", 1)]
            app.state.ops.register_source("batch", overrun)
            await start_background(app)  # the first evaluation runs at once
            try:
                for _ in range(200):
                    after = [a for a in (await api.get("/v1/alerts")).json()["alerts"] if a["rule"] == "job_overrun"]
                    if after[0]["count"] == 2:
                        break
                    await asyncio.sleep(0.05)
                assert [(a["id"], a["count"]) for a in after] == [(before[0]["id"], 2)]  # the same alert, continued
            finally:
                await stop_background(app)
            assert all(t.done() for t in app.state.background)
    finally:
        await ledger.stop()
