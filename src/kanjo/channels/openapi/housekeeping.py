"""Keeps the channel's tables bounded: deletes tokens a day after they expired, quota counters of past weeks, and
access-log rows past their retention — in bounded statements, looping, while the channel serves."""

from __future__ import annotations

import asyncio
import datetime as dt

import structlog

from kanjo.channels.openapi import store
from kanjo.channels.openapi.limits import ACCESS_LOG_RETENTION_DAYS, HOUSEKEEPING_ROWS_PER_PASS_MAX
from kanjo.channels.openapi.model import jst_day
from kanjo.channels.openapi.service import OpenApiChannel

log = structlog.get_logger("kanjo.openapi")
INTERVAL_S = 60.0
TOKEN_KEPT_AFTER_EXPIRY = dt.timedelta(days=1)  # introspection still explains a token that just expired
USAGE_KEPT_DAYS = 35  # a month of daily counts for the operators' usage questions
STATEMENTS_PER_PASS_MAX = 100  # a pass that would loop longer leaves the rest to the next one


async def purge(ch: OpenApiChannel) -> dict[str, int]:
    """One pass: how many rows of each kind were deleted."""
    now = ch.now()
    done = {"tokens": 0, "usage": 0, "access_log": 0}
    cutoffs = {
        "tokens": lambda conn: store.purge_tokens(conn, now - TOKEN_KEPT_AFTER_EXPIRY, HOUSEKEEPING_ROWS_PER_PASS_MAX),
        "usage": lambda conn: store.purge_usage(conn, jst_day(now) - dt.timedelta(days=USAGE_KEPT_DAYS),
                                                HOUSEKEEPING_ROWS_PER_PASS_MAX),
        "access_log": lambda conn: store.purge_access_log(conn, now - dt.timedelta(days=ACCESS_LOG_RETENTION_DAYS),
                                                          HOUSEKEEPING_ROWS_PER_PASS_MAX),
    }
    for kind, delete in cutoffs.items():
        for _ in range(STATEMENTS_PER_PASS_MAX):
            async with ch.pool.acquire() as conn:
                deleted = await delete(conn)
            done[kind] += deleted
            if deleted < HOUSEKEEPING_ROWS_PER_PASS_MAX:
                break
    return done


async def run_housekeeping(ch: OpenApiChannel) -> None:
    """Forever, every minute; an error is logged and the next pass tries again."""
    while True:
        try:
            done = await purge(ch)
            if any(done.values()):
                log.info("openapi_housekeeping", **done)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("openapi_housekeeping_failed", error=repr(e))
        await asyncio.sleep(INTERVAL_S)
