"""SQL of the batch context (its own schema only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from kanjo.batch.model import DayState, JobRun, JobSpec, JobState, Rerun

_JOB_COLUMNS = ("business_date, spec, state, held, attempts, started_at, finished_at, done_items, total_items,"
                " checkpoint, result, error, not_before_waived")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _load(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def spec_of(raw: dict[str, Any]) -> JobSpec:
    not_before = raw.get("not_before")
    return JobSpec(name=raw["name"], kind=raw["kind"], after=tuple(raw.get("after", ())),
                   mandatory=bool(raw.get("mandatory", True)), reads=tuple(raw.get("reads", ())),
                   writes=tuple(raw.get("writes", ())), rerun=Rerun(raw.get("rerun", Rerun.ANY_TIME.value)),
                   expected_s=float(raw.get("expected_s", 60.0)),
                   not_before=dt.time.fromisoformat(not_before) if not_before else None,
                   barrier=bool(raw.get("barrier", False)), params=raw.get("params") or {})


def _run(r: asyncpg.Record) -> JobRun:
    return JobRun(r[0], spec_of(_load(r[1])), JobState(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], _load(r[9]),
                  _load(r[10]), r[11], r[12])


# -- days ------------------------------------------------------------------------------------------------------

async def open_day(conn: asyncpg.Connection) -> dt.date | None:
    return await conn.fetchval("SELECT business_date FROM batch.days WHERE state = 'open'")  # type: ignore[no-any-return]


async def insert_open_day(conn: asyncpg.Connection, day: dt.date) -> bool:
    """Open `day` for online (False when it exists already)."""
    return (await conn.execute("INSERT INTO batch.days (business_date, state) VALUES ($1, 'open')"
                               " ON CONFLICT DO NOTHING", day)).endswith("1")


async def cut_off_day(conn: asyncpg.Connection, day: dt.date) -> bool:
    return (await conn.execute("UPDATE batch.days SET state = 'cut_off', cut_off_at = now()"
                               " WHERE business_date = $1 AND state = 'open'", day)).endswith("1")


async def close_day(conn: asyncpg.Connection, day: dt.date) -> bool:
    return (await conn.execute("UPDATE batch.days SET state = 'closed', closed_at = now()"
                               " WHERE business_date = $1 AND state = 'cut_off'", day)).endswith("1")


async def days(conn: asyncpg.Connection, limit: int, states: Sequence[DayState] | None = None) -> list[asyncpg.Record]:
    wanted = [s.value for s in states] if states else [s.value for s in DayState]
    return list(await conn.fetch(
        "SELECT business_date, state, opened_at, cut_off_at, closed_at FROM batch.days WHERE state = ANY($1::text[])"
        " ORDER BY business_date DESC LIMIT $2", wanted, limit))


async def day_state(conn: asyncpg.Connection, day: dt.date) -> DayState | None:
    state = await conn.fetchval("SELECT state FROM batch.days WHERE business_date = $1", day)
    return None if state is None else DayState(state)


async def record_snapshot(conn: asyncpg.Connection, day: dt.date, totals: list[dict[str, Any]]) -> None:
    await conn.execute("INSERT INTO batch.snapshots (business_date, totals) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       day, _json(totals))


async def snapshot(conn: asyncpg.Connection, day: dt.date) -> Any:
    return _load(await conn.fetchval("SELECT totals FROM batch.snapshots WHERE business_date = $1", day))


# -- jobs --------------------------------------------------------------------------------------------------------

async def add_jobs(conn: asyncpg.Connection, day: dt.date, specs: Sequence[JobSpec]) -> int:
    """Plan jobs for the date (a job already planned keeps its standing); returns how many were new."""
    added = 0
    for s in specs:
        status = await conn.execute(
            "INSERT INTO batch.jobs (business_date, name, spec, state) VALUES ($1, $2, $3, 'waiting')"
            " ON CONFLICT DO NOTHING", day, s.name, _json(s.describe()))
        added += status.endswith("1")
    return added


async def jobs(conn: asyncpg.Connection, day: dt.date) -> list[JobRun]:
    rows = await conn.fetch(f"SELECT {_JOB_COLUMNS} FROM batch.jobs WHERE business_date = $1 ORDER BY name", day)
    return [_run(r) for r in rows]


async def jobs_of_days(conn: asyncpg.Connection, day_states: Sequence[DayState]) -> list[JobRun]:
    rows = await conn.fetch(
        f"SELECT {', '.join('j.' + c.strip() for c in _JOB_COLUMNS.split(','))} FROM batch.jobs j"
        " JOIN batch.days d USING (business_date) WHERE d.state = ANY($1::text[]) ORDER BY j.business_date, j.name",
        [s.value for s in day_states])
    return [_run(r) for r in rows]


async def job(conn: asyncpg.Connection, day: dt.date, name: str, *, for_update: bool = False) -> JobRun | None:
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM batch.jobs WHERE business_date = $1 AND name = $2{lock}",
                            day, name)
    return None if r is None else _run(r)


async def claim(conn: asyncpg.Connection, day: dt.date, name: str, owner: str) -> bool:
    """Start a waiting, unheld job as this process's (False when another process or a hold got there first)."""
    return (await conn.execute(
        "UPDATE batch.jobs SET state = 'running', owner = $3, attempts = attempts + 1, started_at = now(),"
        " heartbeat_at = now(), finished_at = NULL, error = NULL"
        " WHERE business_date = $1 AND name = $2 AND state = 'waiting' AND NOT held", day, name, owner)).endswith("1")


async def progress(conn: asyncpg.Connection, day: dt.date, name: str, owner: str, checkpoint: dict[str, Any] | None,
                   done_items: int, total_items: int | None) -> bool | None:
    """Save a checkpoint and the progress, beat the heart; returns whether the job is held now (None when this
    process no longer owns it)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "UPDATE batch.jobs SET checkpoint = $4, done_items = $5, total_items = $6, heartbeat_at = now()"
        " WHERE business_date = $1 AND name = $2 AND owner = $3 RETURNING held",
        day, name, owner, _json(checkpoint), done_items, total_items)


async def beat(conn: asyncpg.Connection, owner: str) -> None:
    await conn.execute("UPDATE batch.jobs SET heartbeat_at = now() WHERE owner = $1", owner)


async def finish(conn: asyncpg.Connection, day: dt.date, name: str, owner: str, state: JobState,
                 result: dict[str, Any] | None, error: str | None) -> bool:
    return (await conn.execute(
        "UPDATE batch.jobs SET state = $4, owner = NULL, heartbeat_at = NULL, finished_at = now(), result = $5,"
        " error = $6 WHERE business_date = $1 AND name = $2 AND owner = $3",
        day, name, owner, state.value, _json(result), error)).endswith("1")


async def stop(conn: asyncpg.Connection, day: dt.date, name: str, owner: str) -> bool:
    """A running job stopped at a chunk boundary (held, or the process stopping): waiting again, checkpoint kept."""
    return (await conn.execute(
        "UPDATE batch.jobs SET state = 'waiting', owner = NULL, heartbeat_at = NULL"
        " WHERE business_date = $1 AND name = $2 AND owner = $3", day, name, owner)).endswith("1")


async def skip(conn: asyncpg.Connection, day: dt.date, name: str, owner: str, why: str) -> bool:
    return await finish(conn, day, name, owner, JobState.SKIPPED, {"skipped": why}, None)


async def reclaim_stale(conn: asyncpg.Connection, stale_after_s: float) -> list[tuple[dt.date, str]]:
    """Running jobs of a process that stopped beating: waiting again, to resume from their checkpoint."""
    rows = await conn.fetch(
        "UPDATE batch.jobs SET state = 'waiting', owner = NULL, heartbeat_at = NULL"
        " WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1)"
        " RETURNING business_date, name", stale_after_s)
    return [(r[0], r[1]) for r in rows]


async def set_held(conn: asyncpg.Connection, day: dt.date, name: str, held: bool) -> bool:
    return (await conn.execute("UPDATE batch.jobs SET held = $3 WHERE business_date = $1 AND name = $2",
                               day, name, held)).endswith("1")


async def waive_not_before(conn: asyncpg.Connection, day: dt.date, name: str) -> None:
    await conn.execute("UPDATE batch.jobs SET not_before_waived = true WHERE business_date = $1 AND name = $2",
                       day, name)


async def rerun(conn: asyncpg.Connection, day: dt.date, name: str, *, resume: bool) -> None:
    """Waiting again: from its checkpoint (`resume`: a failed job) or from the start."""
    if resume:
        await conn.execute("UPDATE batch.jobs SET state = 'waiting', result = NULL, error = NULL, finished_at = NULL"
                           " WHERE business_date = $1 AND name = $2", day, name)
        return
    await conn.execute(
        "UPDATE batch.jobs SET state = 'waiting', checkpoint = NULL, done_items = 0, total_items = NULL,"
        " result = NULL, error = NULL, finished_at = NULL WHERE business_date = $1 AND name = $2", day, name)


# -- history -------------------------------------------------------------------------------------------------------

async def record(conn: asyncpg.Connection, day: dt.date, name: str, event: str, detail: dict[str, Any] | None,
                 keep: int) -> None:
    await conn.execute("INSERT INTO batch.history (business_date, name, event, detail) VALUES ($1, $2, $3, $4)",
                       day, name, event, _json(detail))
    await conn.execute(
        "DELETE FROM batch.history WHERE business_date = $1 AND name = $2 AND id <= ("
        " SELECT id FROM batch.history WHERE business_date = $1 AND name = $2 ORDER BY id DESC OFFSET $3 LIMIT 1)",
        day, name, keep)


async def history(conn: asyncpg.Connection, day: dt.date, name: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT event, detail, at FROM batch.history WHERE business_date = $1 AND name = $2"
                            " ORDER BY id DESC LIMIT $3", day, name, limit)
    return [{"event": r[0], "detail": _load(r[1]), "at": r[2].isoformat()} for r in rows]


# -- bulk work areas -------------------------------------------------------------------------------------------------

async def load_bulk_items(conn: asyncpg.Connection, day: dt.date, job_name: str,
                          items: Sequence[tuple[int, int, int, int, int]]) -> None:
    """(item_no, debit, credit, amount, code) rows into the job's work area, by COPY."""
    await conn.copy_records_to_table(
        "bulk_items", schema_name="batch",
        columns=["business_date", "job", "item_no", "debit_account_id", "credit_account_id", "amount_minor", "code"],
        records=[(day, job_name, n, d, c, a, code) for n, d, c, a, code in items])


async def bulk_items_after(conn: asyncpg.Connection, day: dt.date, job_name: str, after_item: int,
                           limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT item_no, debit_account_id, credit_account_id, amount_minor, code FROM batch.bulk_items"
        " WHERE business_date = $1 AND job = $2 AND item_no > $3 ORDER BY item_no LIMIT $4",
        day, job_name, after_item, limit))


async def work_area_items(conn: asyncpg.Connection) -> int:
    """Items in every work area (the usage of `batch_work_area_items_max`)."""
    return int(await conn.fetchval("SELECT count(*) FROM batch.bulk_items"))


async def purge_work_areas(conn: asyncpg.Connection, day: dt.date) -> int:
    """A closed date's work areas are emptied (its rejects stay, as the record of what did not post)."""
    return int((await conn.execute("DELETE FROM batch.bulk_items WHERE business_date = $1", day)).split()[-1])


async def bulk_item_count(conn: asyncpg.Connection, day: dt.date, job_name: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM batch.bulk_items WHERE business_date = $1 AND job = $2",
                                   day, job_name))


async def record_rejects(conn: asyncpg.Connection, day: dt.date, job_name: str,
                         rejects: Sequence[tuple[int, str]]) -> None:
    await conn.executemany(
        "INSERT INTO batch.bulk_rejects (business_date, job, item_no, result) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING", [(day, job_name, n, r) for n, r in rejects])


async def reject_count(conn: asyncpg.Connection, day: dt.date, job_name: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM batch.bulk_rejects WHERE business_date = $1 AND job = $2",
                                   day, job_name))
