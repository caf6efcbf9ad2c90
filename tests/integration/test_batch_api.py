"""The batch over HTTP (the app kanjo serves, on a real PostgreSQL): what an operator's console and `kanjo batch`
see and do — the dates, a date's jobs and gate, hold/release/run/rerun, a concentrated posting sent in, and clear
refusals for bad requests that change nothing."""

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
from kanjo.ledger import Account, Ledger

DAY = dt.date(2026, 7, 1)
A, B = 8_000_001, 8_000_002


@pytest.fixture
async def api(ledger_dsn: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("KANJO_BATCH_SCHEDULER", "false")  # nothing starts unless the test runs it
    day = BusinessDay(DAY)
    ledger = await Ledger.start(ledger_dsn, business_date=day, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    day.moved_to((await BusinessDay.load(ledger.pool, DAY))())
    await ledger.create_accounts([Account(id=A, ledger=JPY, code=1001), Account(id=B, ledger=JPY, code=2001)])
    app = create_app(ledger, pin_key_bytes=bytes(range(32)), business_day=day)
    app.state.batch.tick_s = 0.05
    await start_background(app)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
            yield client
    finally:
        await stop_background(app)
        await ledger.stop()


async def _job(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await api.get(f"/v1/batch/days/{DAY}/jobs/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _until_finished(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    for _ in range(1_000):
        job = await _job(api, name)
        if job["state"] not in ("waiting", "running"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never finished")


async def test_an_operator_reads_the_day_and_runs_a_job(api: httpx.AsyncClient) -> None:
    days = (await api.get("/v1/batch/days")).json()
    assert days["online_date"] == DAY.isoformat() and days["days"][0]["state"] == "open"
    report = (await api.get(f"/v1/batch/days/{DAY}")).json()
    assert {j["name"] for j in report["jobs"]} >= {"time_deposit_maturity", "cut_off", "day_close"}
    assert {j["state"] for j in report["jobs"]} == {"waiting"}  # the scheduler is off: nothing by itself
    r = await api.post(f"/v1/batch/days/{DAY}/jobs/card_loan_collection/run", json={"by": "ops-1"})
    assert r.status_code == 200
    done = await _until_finished(api, "card_loan_collection")
    assert done["state"] == "succeeded" and done["history"][-1]["event"] == "planned"
    again = await api.post(f"/v1/batch/days/{DAY}/jobs/card_loan_collection/run", json={"by": "ops-1"})
    assert again.status_code == 409 and again.json()["error"] == "not_waiting"
    rerun = await api.post(f"/v1/batch/days/{DAY}/jobs/card_loan_collection/rerun", json={"by": "ops-1"})
    assert rerun.status_code == 200 and rerun.json()["state"] == "waiting"


async def test_a_concentrated_posting_sent_over_http_posts_once(api: httpx.AsyncClient) -> None:
    items = [{"debit_account_id": str(uuid.UUID(int=A)), "credit_account_id": str(uuid.UUID(int=B)),
              "amount_minor": 500, "code": 90} for _ in range(1_200)]
    r = await api.post("/v1/batch/bulk-postings", json={"name": "salary", "items": items, "chunk_items": 500})
    assert r.status_code == 200, r.text
    assert r.json() == {"business_date": DAY.isoformat(), "job": "salary", "items": 1_200, "loaded": 1_200,
                        "complete": True}
    dup = await api.post("/v1/batch/bulk-postings", json={"name": "salary", "items": items[:1]})
    assert dup.status_code == 409 and dup.json()["error"] == "job_exists"
    await api.post(f"/v1/batch/days/{DAY}/jobs/salary/run", json={"by": "ops-1"})
    job = await _until_finished(api, "salary")
    assert (job["state"], job["done_items"], job["result"]["rejected"]) == ("succeeded", 1_200, 0)
    b = (await api.get(f"/v1/ledger/accounts/{uuid.UUID(int=B)}")).json()
    assert b["credits_posted"] == 600_000


async def test_bad_requests_are_clear_and_change_nothing(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/batch/days/2026-13-01")).status_code == 422
    assert (await api.get("/v1/batch/days/2030-01-01")).json()["error"] == "unknown_day"
    assert (await api.get(f"/v1/batch/days/{DAY}/jobs/nope")).status_code == 404
    assert (await api.get(f"/v1/batch/days/{DAY}/jobs/BAD NAME")).status_code == 422
    assert (await api.post(f"/v1/batch/days/{DAY}/jobs/cut_off/hold", json={})).status_code == 422
    assert (await api.post(f"/v1/batch/days/{DAY}/jobs/cut_off/rerun", json={"by": "x"})).status_code == 409
    bad_item = {"debit_account_id": str(uuid.UUID(int=A)), "credit_account_id": str(uuid.UUID(int=A)),
                "amount_minor": 1, "code": 90}
    r = await api.post("/v1/batch/bulk-postings", json={"name": "self", "items": [bad_item]})
    assert r.status_code == 422 and r.json()["error"] == "invalid_item"
    r = await api.post("/v1/batch/bulk-postings", json={"name": "big", "items": [bad_item] * 10_001})
    assert r.status_code in (413, 422)
    report = (await api.get(f"/v1/batch/days/{DAY}")).json()
    assert {j["name"] for j in report["jobs"]}.isdisjoint({"self", "big"})
