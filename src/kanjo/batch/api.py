"""HTTP routes of the batch under /v1/batch: business dates, each date's jobs with progress, estimated finish and the
day's gate, a job's history, and the operators' hold, release, run-now and rerun. The engine is
`request.app.state.batch`."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kanjo.batch import bulk
from kanjo.batch.engine import Batch
from kanjo.batch.limits import BULK_CHUNK_ITEMS_MAX, BULK_ITEMS_PER_JOB_MAX, BULK_ITEMS_PER_REQUEST_MAX
from kanjo.batch.model import BatchError
from kanjo.platform.http import ERROR_RESPONSES

router = APIRouter(tags=["batch"], responses=ERROR_RESPONSES)
JOB_NAME = re.compile(r"^[a-z0-9_.:-]{1,64}$")
JobName = Annotated[str, Path(pattern=JOB_NAME.pattern, description="a job of the date")]
NOT_FOUND = {"unknown_job", "unknown_day"}
UNPROCESSABLE = {"invalid_item", "no_items", "unknown_kind", "duplicate_job", "unknown_predecessor", "cycle",
                 "too_many_items"}


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
                             description="the operator, for the job's history")]


class BulkItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount_minor: Annotated[int, Field(strict=True, ge=1, le=10**15)]
    code: Annotated[int, Field(strict=True, ge=1, le=65_535)]


class BulkPostingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=JOB_NAME.pattern)]
    items: Annotated[list[BulkItemIn], Field(min_length=1, max_length=BULK_ITEMS_PER_REQUEST_MAX)]
    mandatory: bool = True
    expected_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    chunk_items: Annotated[int, Field(strict=True, ge=1, le=BULK_CHUNK_ITEMS_MAX)] = bulk.CHUNK_ITEMS_DEFAULT
    items_total: Annotated[int | None, Field(strict=True, ge=1, le=BULK_ITEMS_PER_JOB_MAX,
                                             description="the file's item count when it is sent in parts: the job"
                                             " waits, held, until the last part arrives")] = None


class BulkPartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_item_no: Annotated[int, Field(strict=True, ge=2, le=BULK_ITEMS_PER_JOB_MAX,
                                        description="the number of this part's first item: one after those loaded")]
    items: Annotated[list[BulkItemIn], Field(min_length=1, max_length=BULK_ITEMS_PER_REQUEST_MAX)]


def _batch(request: Request) -> Batch:
    engine: Batch | None = getattr(request.app.state, "batch", None)
    if engine is None:
        raise HTTPException(503, {"error": "batch_not_configured", "message": "this process runs no batch"})
    return engine


def _refused(e: BatchError) -> HTTPException:
    status = 404 if e.code in NOT_FOUND else 422 if e.code in UNPROCESSABLE else 409
    return HTTPException(status, {"error": e.code, "message": str(e)})


@router.get("/v1/batch/days", summary="Business dates, newest first: open (online posts on it), cut off, closed")
async def days(request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
    engine = _batch(request)
    return {"online_date": engine.business_day().isoformat(), "days": await engine.days(limit)}


@router.get("/v1/batch/days/{day}", summary="A date's jobs (state, progress, estimated finish, overrun) and its gate")
async def day_report(day: dt.date, request: Request) -> dict[str, Any]:
    try:
        return await _batch(request).day_report(day)
    except BatchError as e:
        raise _refused(e) from None


@router.get("/v1/batch/days/{day}/jobs/{name}", summary="One job with its history (newest first)")
async def job(day: dt.date, name: JobName, request: Request) -> dict[str, Any]:
    try:
        return await _batch(request).job_report(day, name)
    except BatchError as e:
        raise _refused(e) from None


async def _act(request: Request, action: str, day: dt.date, name: str, body: OperatorIn) -> dict[str, Any]:
    engine = _batch(request)
    try:
        await getattr(engine, action)(day, name, body.by)
        return await engine.job_report(day, name, history_limit=10)
    except BatchError as e:
        raise _refused(e) from None


@router.post("/v1/batch/days/{day}/jobs/{name}/hold", summary="Keep a job from starting (a running one stops at its"
             " next chunk boundary, checkpoint kept)")
async def hold(day: dt.date, name: JobName, body: OperatorIn, request: Request) -> dict[str, Any]:
    return await _act(request, "hold", day, name, body)


@router.post("/v1/batch/days/{day}/jobs/{name}/release", summary="Let a held job start (or resume) again")
async def release(day: dt.date, name: JobName, body: OperatorIn, request: Request) -> dict[str, Any]:
    return await _act(request, "release", day, name, body)


@router.post("/v1/batch/days/{day}/jobs/{name}/run", summary="Start a waiting job now, before its not-before time")
async def run_now(day: dt.date, name: JobName, body: OperatorIn, request: Request) -> dict[str, Any]:
    return await _act(request, "run_now", day, name, body)


@router.post("/v1/batch/days/{day}/jobs/{name}/rerun", summary="Run a finished or failed job again (idempotent:"
             " what was done stays done once)")
async def rerun(day: dt.date, name: JobName, body: OperatorIn, request: Request) -> dict[str, Any]:
    return await _act(request, "rerun", day, name, body)


@router.post("/v1/batch/bulk-postings", summary="Plan a concentrated posting (センター集中記帳) on the open date with"
             " its items")
async def bulk_posting(body: BulkPostingIn, request: Request) -> dict[str, Any]:
    engine = _batch(request)
    try:
        return await bulk.submit(engine, engine.business_day(), body.name, _items(body.items),
                                 mandatory=body.mandatory, expected_s=body.expected_s, chunk_items=body.chunk_items,
                                 items_total=body.items_total)
    except BatchError as e:
        raise _refused(e) from None


@router.post("/v1/batch/days/{day}/bulk-postings/{name}/items", summary="The next part of a concentrated posting"
             " sent in parts (a part sent again changes nothing; the last one lets the job start)")
async def bulk_part(day: dt.date, name: JobName, body: BulkPartIn, request: Request) -> dict[str, Any]:
    try:
        return await bulk.append(_batch(request), day, name, body.first_item_no, _items(body.items))
    except BatchError as e:
        raise _refused(e) from None


def _items(items: list[BulkItemIn]) -> list[bulk.Item]:
    return [bulk.Item(i.debit_account_id.int, i.credit_account_id.int, i.amount_minor, i.code) for i in items]


