"""The ATM registry (which machines exist, and of what kind: it decides their hub partition and fee tariff) and
the screen notices operations push to all or some machines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kanjo.channels.atm import store
from kanjo.channels.atm.limits import MACHINES_MAX, NOTICES_ACTIVE_MAX
from kanjo.channels.atm.model import MachineKind
from kanjo.channels.atm.service import AtmChannel
from kanjo.kernel.limits import LimitReached, limits


class NotFound(Exception):
    """No ATM with that id."""


async def register_machines(ch: AtmChannel, machines: list[tuple[str, MachineKind, str]]) -> list[dict[str, str]]:
    """Register ATMs (idempotent by id: a known id keeps its first registration)."""
    async with ch.pool.acquire() as conn, conn.transaction():
        count = await store.machine_count(conn)
        new = [m for m in machines if m[0] not in ch.machines]
        if count + len(new) > MACHINES_MAX:
            raise LimitReached(limits.get("atm_machines_max"), count + len(new))
        stored = await store.register_machines(conn, [(i, k.value, loc) for i, k, loc in machines])
    ch.machines.update({atm_id: MachineKind(kind) for atm_id, kind in stored})
    return [{"atm_id": atm_id, "kind": kind} for atm_id, kind in stored]


async def machine_view(ch: AtmChannel, atm_id: str) -> dict[str, Any]:
    async with ch.pool.acquire() as conn:
        row = await store.machine(conn, atm_id)
        if row is None:
            raise NotFound(f"no ATM {atm_id}")
        counts = await store.machine_counts(conn, atm_id)
    return {"atm_id": row["atm_id"], "kind": row["kind"], "location": row["location"],
            "registered_at": row["registered_at"].isoformat(), "transactions": counts}


async def push_notice(ch: AtmChannel, text: str, atm_ids: list[str] | None, starts_at: dt.datetime | None,
                      ends_at: dt.datetime, created_by: str) -> int:
    now = ch.now()
    async with ch.pool.acquire() as conn, conn.transaction():
        active = await store.active_notice_count(conn, now)
        if active + 1 > NOTICES_ACTIVE_MAX:
            raise LimitReached(limits.get("atm_notices_active_max"), active + 1)
        return await store.add_notice(conn, text, atm_ids, starts_at or now, ends_at, created_by)


async def notices(ch: AtmChannel, atm_id: str) -> list[dict[str, Any]]:
    async with ch.pool.acquire() as conn:
        return await store.notices_for(conn, atm_id, ch.now(), NOTICES_ACTIVE_MAX)


async def in_doubt_report(ch: AtmChannel, limit: int = 100) -> dict[str, Any]:
    async with ch.pool.acquire() as conn:
        return {"summary": await store.in_doubt_summary(conn),
                "items": await store.open_in_doubt_items(conn, limit)}
