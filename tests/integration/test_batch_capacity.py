"""Capacity guards of the batch (the 2/28 month end): a concentrated posting that would pass a provisioned limit is
refused before it posts anything, or stops alone at a chunk boundary when online filled the space meanwhile; online
is never refused; once the operator raises the limit the job completes with every item posted exactly once. Files
sent in parts, and the work areas' own space. On the app kanjo serves, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from kanjo.accounting import JPY, ensure_chart
from kanjo.app import create_app, start_background, stop_background
from kanjo.batch import BusinessDay
from kanjo.kernel.limits import limits
from kanjo.ledger import Account, Ledger, Transfer

DAY = dt.date(2026, 2, 26)
A, B, C = 8_100_001, 8_100_002, 8_100_003
SPACE, WORK_AREA = "ledger_transfers_stored_max", "batch_work_area_items_max"


@pytest.fixture(autouse=True)
def restore_capacity() -> Iterator[None]:
    """The registry is the process's: each test leaves the provisioned maxima as it found them."""
    before = {n: limits.get(n).maximum for n in (SPACE, WORK_AREA)}
    yield
    for name, maximum in before.items():
        limits.set_maximum(name, maximum)


@pytest.fixture
async def world(ledger_dsn: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[httpx.AsyncClient, Ledger]]:
    monkeypatch.setenv("KANJO_BATCH_SCHEDULER", "false")
    monkeypatch.setenv("KANJO_FAULTS_ENABLED", "true")
    day = BusinessDay(DAY)
    ledger = await Ledger.start(ledger_dsn, business_date=day, sweep_interval_s=0.05)
    await ensure_chart(ledger)
    assert ledger.pool is not None
    day.moved_to((await BusinessDay.load(ledger.pool, DAY))())
    await ledger.create_accounts([Account(id=i, ledger=JPY, code=1001) for i in (A, B, C)])
    app = create_app(ledger, pin_key_bytes=bytes(range(32)), business_day=day)
    app.state.batch.tick_s = 0.05
    await start_background(app)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as client:
            yield client, ledger
    finally:
        await stop_background(app)
        await ledger.stop()


def _items(n: int, amount: int = 100) -> list[dict[str, Any]]:
    return [{"debit_account_id": str(uuid.UUID(int=A)), "credit_account_id": str(uuid.UUID(int=B)),
             "amount_minor": amount, "code": 90} for _ in range(n)]


async def _provision(api: httpx.AsyncClient, name: str, maximum: int) -> dict[str, Any]:
    r = await api.put(f"/v1/capacity/{name}", json={"maximum": maximum, "by": "ops-1"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _until_finished(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    for _ in range(1_500):
        job = (await api.get(f"/v1/batch/days/{DAY}/jobs/{name}")).json()
        if job["state"] not in ("waiting", "running") or job["held"]:
            return dict(job)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never finished")


async def _credits(api: httpx.AsyncClient, account: int) -> int:
    return int((await api.get(f"/v1/ledger/accounts/{uuid.UUID(int=account)}")).json()["credits_posted"])


async def test_a_posting_that_would_pass_the_space_is_refused_before_posting_then_completes_once(
        world: tuple[httpx.AsyncClient, Ledger]) -> None:
    api, ledger = world
    usage = ledger.transfers_stored()
    provisioned = await _provision(api, SPACE, usage + 300)
    assert provisioned["usage"] == usage and provisioned["maximum"] == usage + 300
    assert (await api.post("/v1/batch/bulk-postings", json={"name": "month_end", "items": _items(500),
                                                             "chunk_items": 100})).status_code == 200
    await api.post(f"/v1/batch/days/{DAY}/jobs/month_end/run", json={"by": "ops-1"})
    job = await _until_finished(api, "month_end")
    assert job["state"] == "failed" and job["done_items"] == 0
    assert job["result"]["limit"] == SPACE
    assert job["result"]["preflight"] == [{"limit": SPACE, "usage": usage, "need": 500, "maximum": usage + 300,
                                           "unit": "transfers"}]
    assert SPACE in job["error"] and "500" in job["error"]
    assert await _credits(api, B) == 0  # nothing posted
    gate = (await api.get(f"/v1/batch/days/{DAY}")).json()["gate"]
    assert any(g["job"] == "month_end" for g in gate)  # the day cannot close without it

    await _provision(api, SPACE, usage + 10_000)
    assert (await api.post(f"/v1/batch/days/{DAY}/jobs/month_end/rerun", json={"by": "ops-1"})).status_code == 200
    await api.post(f"/v1/batch/days/{DAY}/jobs/month_end/run", json={"by": "ops-1"})
    job = await _until_finished(api, "month_end")
    assert (job["state"], job["done_items"], job["result"]["rejected"]) == ("succeeded", 500, 0)
    assert await _credits(api, B) == 500 * 100
    assert ledger.transfers_stored() == usage + 500


async def test_a_posting_stops_alone_at_the_limit_online_goes_on_and_it_resumes_once_raised(
        world: tuple[httpx.AsyncClient, Ledger]) -> None:
    api, ledger = world
    usage = ledger.transfers_stored()
    await _provision(api, SPACE, usage + 1_000 + 50)  # the job fits when it starts; online then takes the headroom
    inject = await api.post("/v1/ops/faults", json={"product": "bulk_posting", "mode": "slow", "latency_ms": 150})
    assert inject.status_code == 200, inject.text
    assert (await api.post("/v1/batch/bulk-postings", json={"name": "switch_over", "items": _items(1_000),
                                                             "chunk_items": 100})).status_code == 200
    await api.post(f"/v1/batch/days/{DAY}/jobs/switch_over/run", json={"by": "ops-1"})
    for _ in range(500):
        if (await api.get(f"/v1/batch/days/{DAY}/jobs/switch_over")).json()["done_items"] >= 200:
            break
        await asyncio.sleep(0.02)
    online = await ledger.create_transfers([Transfer(id=uuid.uuid4().int, debit_account_id=A, credit_account_id=C,
                                                     amount=7, ledger=JPY, code=1) for _ in range(200)])
    assert {o.result.name for o in online} == {"OK"}  # online is never refused by the batch's space
    job = await _until_finished(api, "switch_over")
    assert job["state"] == "failed" and job["result"]["limit"] == SPACE
    assert 200 <= job["done_items"] < 1_000 and job["done_items"] % 100 == 0  # at a chunk boundary
    assert await _credits(api, B) == job["done_items"] * 100
    assert await _credits(api, C) == 200 * 7

    await api.delete("/v1/ops/faults/bulk_posting")
    await _provision(api, SPACE, usage + 5_000)
    rerun = await api.post(f"/v1/batch/days/{DAY}/jobs/switch_over/rerun", json={"by": "ops-1"})
    assert rerun.status_code == 200 and rerun.json()["done_items"] == job["done_items"]  # resumes, not restarts
    await api.post(f"/v1/batch/days/{DAY}/jobs/switch_over/run", json={"by": "ops-1"})
    done = await _until_finished(api, "switch_over")
    assert (done["state"], done["done_items"]) == ("succeeded", 1_000)
    assert await _credits(api, B) == 1_000 * 100  # every item exactly once
    assert ledger.transfers_stored() == usage + 1_200


async def test_a_file_in_parts_waits_for_its_last_part_and_a_part_sent_twice_changes_nothing(
        world: tuple[httpx.AsyncClient, Ledger]) -> None:
    api, _ = world
    first = await api.post("/v1/batch/bulk-postings", json={"name": "salary", "items": _items(10), "items_total": 25})
    assert first.status_code == 200
    assert first.json() | {} == {"business_date": DAY.isoformat(), "job": "salary", "items": 25, "loaded": 10,
                                 "complete": False}
    job = (await api.get(f"/v1/batch/days/{DAY}/jobs/salary")).json()
    assert job["held"] and job["history"][0]["event"] == "loading"
    part = f"/v1/batch/days/{DAY}/bulk-postings/salary/items"
    second = await api.post(part, json={"first_item_no": 11, "items": _items(10)})
    assert second.json()["loaded"] == 20 and not second.json()["replayed"]
    again = await api.post(part, json={"first_item_no": 11, "items": _items(10)})
    assert again.json()["loaded"] == 20 and again.json()["replayed"]
    gap = await api.post(part, json={"first_item_no": 25, "items": _items(1)})
    assert gap.status_code == 409 and gap.json()["error"] == "out_of_order" and "item 21" in gap.json()["message"]
    over = await api.post(part, json={"first_item_no": 21, "items": _items(6)})
    assert over.status_code == 422 and over.json()["error"] == "too_many_items"
    last = await api.post(part, json={"first_item_no": 21, "items": _items(5)})
    assert last.json()["complete"] and not (await api.get(f"/v1/batch/days/{DAY}/jobs/salary")).json()["held"]
    await api.post(f"/v1/batch/days/{DAY}/jobs/salary/run", json={"by": "ops-1"})
    job = await _until_finished(api, "salary")
    assert (job["state"], job["done_items"]) == ("succeeded", 25)
    assert await _credits(api, B) == 25 * 100
    late = await api.post(part, json={"first_item_no": 26, "items": _items(1)})
    assert late.status_code == 422 and late.json()["error"] == "too_many_items"


async def test_the_work_areas_space_refuses_a_file_whole_naming_the_limit(
        world: tuple[httpx.AsyncClient, Ledger]) -> None:
    api, _ = world
    await _provision(api, WORK_AREA, 100)
    r = await api.post("/v1/batch/bulk-postings", json={"name": "too_big", "items": _items(101)})
    assert r.status_code == 413 and r.json()["limit"] == WORK_AREA
    assert WORK_AREA in r.json()["message"]
    assert (await api.get(f"/v1/batch/days/{DAY}/jobs/too_big")).status_code == 404  # nothing planned
    capacity = {row["name"]: row for row in (await api.get("/v1/limits")).json()["limits"]}
    assert capacity[WORK_AREA]["maximum"] == 100 and capacity[WORK_AREA]["adjustable"]


async def test_provisioning_is_for_capacity_limits_only_and_bad_requests_change_nothing(
        world: tuple[httpx.AsyncClient, Ledger]) -> None:
    api, _ = world
    before = limits.get("ledger_events_per_batch_max").maximum
    fixed = await api.put("/v1/capacity/ledger_events_per_batch_max", json={"maximum": 10, "by": "ops-1"})
    assert fixed.status_code == 409 and fixed.json()["error"] == "not_adjustable"
    assert limits.get("ledger_events_per_batch_max").maximum == before
    assert (await api.put("/v1/capacity/no_such_limit", json={"maximum": 10, "by": "x"})).status_code == 404
    for body in ({"maximum": 0, "by": "x"}, {"maximum": "10", "by": "x"}, {"maximum": 10}, {"maximum": 10, "by": ""}):
        assert (await api.put(f"/v1/capacity/{SPACE}", json=body)).status_code == 422
    assert (await api.put("/v1/capacity/BAD-NAME", json={"maximum": 1, "by": "x"})).status_code == 422
