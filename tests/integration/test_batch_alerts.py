"""The batch's alert source in the app kanjo serves, on a real PostgreSQL: a mandatory concentrated posting held half
an hour before the cut-off and a job running ten times its expected duration both become open alerts at /v1/alerts,
named by date and job, reported by the `batch` source; once both jobs are done, both alerts resolve."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kanjo.accounting import JPY, ensure_chart
from kanjo.app import create_app, start_background, stop_background
from kanjo.batch import BusinessDay
from kanjo.hub import FaultMode
from kanjo.ledger import Account, Ledger

JST = dt.timezone(dt.timedelta(hours=9))
A, B = 8_100_001, 8_100_002
SHIFT = dt.timedelta(minutes=10)  # the engine's clock runs ahead: a job started now has "run" ten minutes
CUT_OFF_IN = dt.timedelta(minutes=30)
CUT_OFF_AT = dt.datetime.now(JST) + CUT_OFF_IN  # the cut-off's date is the business date (across midnight too)
DAY = CUT_OFF_AT.date()


@pytest.fixture
async def kanjo(ledger_dsn: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    monkeypatch.setenv("KANJO_BATCH_SCHEDULER", "false")  # nothing starts unless the test runs it
    monkeypatch.setenv("KANJO_BATCH_CUT_OFF_TIME", CUT_OFF_AT.strftime("%H:%M"))
    monkeypatch.setenv("KANJO_OPS_EVALUATION_INTERVAL_S", "3600")  # the test evaluates when it wants
    day = BusinessDay(DAY)
    ledger = await Ledger.start(ledger_dsn, business_date=day, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    day.moved_to((await BusinessDay.load(ledger.pool, DAY))())
    await ledger.create_accounts([Account(id=A, ledger=JPY, code=1001), Account(id=B, ledger=JPY, code=2001)])
    app = create_app(ledger, pin_key_bytes=bytes(range(32)), business_day=day)
    app.state.batch.tick_s = 0.05
    app.state.batch.now = lambda: dt.datetime.now(JST) + SHIFT
    await start_background(app)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
            yield app, client
    finally:
        app.state.hub.clear_fault("bulk_posting")
        await stop_background(app)
        await ledger.stop()


def _items(n: int) -> list[dict[str, Any]]:
    return [{"debit_account_id": str(uuid.UUID(int=A)), "credit_account_id": str(uuid.UUID(int=B)),
             "amount_minor": 100, "code": 90} for _ in range(n)]


async def _post(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post(path, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _until(api: httpx.AsyncClient, name: str, states: set[str]) -> dict[str, Any]:
    for _ in range(1_000):
        job = (await api.get(f"/v1/batch/days/{DAY}/jobs/{name}")).json()
        if job["state"] in states:
            return dict(job)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never reached {states}")


async def _batch_alerts(api: httpx.AsyncClient, state: str) -> dict[str, dict[str, Any]]:
    r = await api.get("/v1/alerts", params={"state": state})
    assert r.status_code == 200, r.text
    return {a["key"]: a for a in r.json()["alerts"] if a["source"] == "batch"}


async def test_a_held_mandatory_job_near_cut_off_and_an_overrunning_job_are_open_alerts(
        kanjo: tuple[Any, httpx.AsyncClient]) -> None:
    app, api = kanjo
    await _post(api, "/v1/batch/bulk-postings", {"name": "salary", "items": _items(3), "expected_s": 60})
    await _post(api, f"/v1/batch/days/{DAY}/jobs/salary/hold", {"by": "ops-1"})
    await _post(api, "/v1/batch/bulk-postings", {"name": "slow_file", "items": _items(4), "chunk_items": 1,
                                                 "mandatory": False, "expected_s": 60})
    app.state.hub.inject_fault("bulk_posting", FaultMode.SLOW, latency_ms=1_000)
    await _post(api, f"/v1/batch/days/{DAY}/jobs/slow_file/run", {"by": "ops-1"})
    await _until(api, "slow_file", {"running"})

    await app.state.ops.evaluate()
    alerts = await _batch_alerts(api, "open")
    held = alerts[f"mandatory_job_missing/batch/{DAY}:salary"]
    assert (held["component"], held["subject"], held["severity"]) == ("batch", f"{DAY}:salary", "major")
    assert held["message"].startswith(f"batch: mandatory job salary of {DAY} is held; the cut-off"
                                      f" ({CUT_OFF_AT:%H:%M}) is in ")
    assert held["message"].endswith("and the day cannot close without it")
    overrun = alerts[f"job_overrun/batch/{DAY}:slow_file"]
    assert overrun["severity"] == "major"  # ten minutes of an expected minute
    assert overrun["message"].startswith(f"batch: job slow_file of {DAY} has run 10 min, expected 60 s (10.0×)")
    gate = (await api.get(f"/v1/batch/days/{DAY}")).json()["gate"]
    assert {"job": "salary", "state": "waiting", "held": True, "why": "held"} in gate

    app.state.hub.clear_fault("bulk_posting")
    await _until(api, "slow_file", {"succeeded"})
    await _post(api, f"/v1/batch/days/{DAY}/jobs/salary/release", {"by": "ops-1"})
    await _post(api, f"/v1/batch/days/{DAY}/jobs/salary/run", {"by": "ops-1"})
    assert (await _until(api, "salary", {"succeeded", "failed"}))["state"] == "succeeded"
    await app.state.ops.evaluate()
    still_open = await _batch_alerts(api, "open")
    assert set(still_open).isdisjoint({held["key"], overrun["key"]})
    resolved = await _batch_alerts(api, "resolved")
    assert {held["key"], overrun["key"]} <= set(resolved)
