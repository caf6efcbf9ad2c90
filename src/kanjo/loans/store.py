"""SQL of the loans context (its own schema only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from kanjo.loans.model import Accrual, Collection, Contract, Movement, Outstanding, Status

_COLUMNS = ("id, customer_id, account_id, credit_line_minor, rate_percent, collection_day, status, opened_on,"
            " closed_on, accrued_through, balance_days_current, balance_days_next, due_on, collect_on,"
            " arrears_minor, arrears_since, collected_through")


def _contract(r: asyncpg.Record) -> Contract:
    return Contract(r[0], r[1], r[2], r[3], r[4], r[5], Status(r[6]), r[7], r[8], r[9], r[10], r[11], r[12], r[13],
                    r[14], r[15], r[16])


# -- contracts -----------------------------------------------------------------------------------------

async def contract(conn: asyncpg.Connection, contract_id: int, *, for_update: bool = False) -> Contract | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM loans.contracts WHERE id = $1{lock}", contract_id)
    return _contract(row) if row else None


async def contract_by_open_request(conn: asyncpg.Connection, request_id: int) -> Contract | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM loans.contracts WHERE open_request_id = $1", request_id)
    return _contract(row) if row else None


async def open_contract_of_customer(conn: asyncpg.Connection, customer_id: int) -> Contract | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM loans.contracts WHERE customer_id = $1"
                              " AND status <> 'closed'", customer_id)
    return _contract(row) if row else None


async def contracts_of_customer(conn: asyncpg.Connection, customer_id: int) -> list[Contract]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM loans.contracts WHERE customer_id = $1"
                            " ORDER BY opened_on, id", customer_id)
    return [_contract(r) for r in rows]


async def insert_contract(conn: asyncpg.Connection, c: Contract, request_id: int) -> None:
    await conn.execute(
        f"INSERT INTO loans.contracts ({_COLUMNS}, open_request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        c.id, c.customer_id, c.account_id, c.credit_line_minor, c.rate_percent, c.collection_day, c.status.value,
        c.opened_on, c.closed_on, c.accrued_through, c.balance_days_current, c.balance_days_next, c.due_on,
        c.collect_on, c.arrears_minor, c.arrears_since, c.collected_through, request_id)


async def update_standing(conn: asyncpg.Connection, c: Contract) -> None:
    """Write what a repayment or a status change alters: status, arrears, closing."""
    await conn.execute(
        "UPDATE loans.contracts SET status = $2, arrears_minor = $3, arrears_since = $4, closed_on = $5,"
        " balance_days_current = $6, balance_days_next = $7 WHERE id = $1",
        c.id, c.status.value, c.arrears_minor, c.arrears_since, c.closed_on, c.balance_days_current,
        c.balance_days_next)


# -- movements -----------------------------------------------------------------------------------------

async def movement(conn: asyncpg.Connection, request_id: int) -> Movement | None:
    r = await conn.fetchrow(
        "SELECT request_id, contract_id, kind, amount_minor, interest_minor, principal_minor, business_date"
        " FROM loans.movements WHERE request_id = $1", request_id)
    return Movement(r[0], r[1], r[2], r[3], r[4], r[5], r[6], replayed=True) if r else None


async def insert_movement(conn: asyncpg.Connection, m: Movement) -> None:
    await conn.execute(
        "INSERT INTO loans.movements (request_id, contract_id, kind, amount_minor, interest_minor, principal_minor,"
        " business_date) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        m.request_id, m.contract_id, m.kind, m.amount_minor, m.interest_minor, m.principal_minor, m.business_date)


async def drawn_change_after(conn: asyncpg.Connection, contract_ids: Sequence[int],
                             business_date: dt.date) -> dict[int, int]:
    """Per contract, what draws less repaid principal of business dates after `business_date` added to the
    drawn balance (so that a late day-end run still sees that day's end-of-day balance)."""
    rows = await conn.fetch(
        "SELECT contract_id, sum(CASE WHEN kind LIKE 'draw%' THEN principal_minor ELSE -principal_minor END)"
        " FROM loans.movements WHERE business_date > $2 AND contract_id = ANY($1::uuid[]) GROUP BY contract_id",
        list(contract_ids), business_date)
    return {r[0]: int(r[1]) for r in rows}


# -- collections and arrears ---------------------------------------------------------------------------

async def unpaid(conn: asyncpg.Connection, contract_ids: Sequence[int]) -> dict[int, list[Outstanding]]:
    """Unpaid collections per contract, oldest first."""
    rows = await conn.fetch(
        "SELECT contract_id, due_on, kind, collect_on, outstanding_minor FROM loans.collections"
        " WHERE outstanding_minor > 0 AND contract_id = ANY($1::uuid[]) ORDER BY contract_id, collect_on, due_on",
        list(contract_ids))
    found: dict[int, list[Outstanding]] = {}
    for r in rows:
        found.setdefault(r[0], []).append(Outstanding(r[1], r[2], r[3], r[4]))
    return found


async def set_outstanding(conn: asyncpg.Connection, rows: Sequence[tuple[int, Outstanding]]) -> None:
    if not rows:
        return
    await conn.execute(
        "UPDATE loans.collections AS c SET outstanding_minor = u.o FROM unnest($1::uuid[], $2::date[], $3::text[],"
        " $4::bigint[]) AS u (id, due_on, kind, o) WHERE c.contract_id = u.id AND c.due_on = u.due_on"
        " AND c.kind = u.kind",
        [i for i, _ in rows], [r.due_on for _, r in rows], [r.kind for _, r in rows],
        [r.outstanding_minor for _, r in rows])


async def insert_collections(conn: asyncpg.Connection, rows: Sequence[Collection]) -> None:
    if not rows:
        return
    await conn.execute(
        "INSERT INTO loans.collections (contract_id, due_on, kind, collect_on, balance_days, rate_percent,"
        " interest_minor, outstanding_minor) SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::date[],"
        " $5::bigint[], $6::numeric[], $7::bigint[], $8::bigint[])",
        [r.contract_id for r in rows], [r.due_on for r in rows], [r.kind for r in rows],
        [r.collect_on for r in rows], [r.balance_days for r in rows], [r.rate_percent for r in rows],
        [r.interest_minor for r in rows], [r.outstanding_minor for r in rows])


async def collections_of(conn: asyncpg.Connection, contract_id: int) -> list[Collection]:
    rows = await conn.fetch(
        "SELECT contract_id, due_on, kind, collect_on, balance_days, rate_percent, interest_minor, outstanding_minor"
        " FROM loans.collections WHERE contract_id = $1 ORDER BY collect_on, due_on", contract_id)
    return [Collection(*r) for r in rows]


# -- status changes ------------------------------------------------------------------------------------

async def status_change(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT contract_id, action FROM loans.status_changes WHERE request_id = $1",
                               request_id)


async def record_status_change(conn: asyncpg.Connection, request_id: int, contract_id: int, action: str,
                               from_status: Status, to_status: Status, reason: str) -> None:
    await conn.execute(
        "INSERT INTO loans.status_changes (request_id, contract_id, action, from_status, to_status, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)", request_id, contract_id, action, from_status.value, to_status.value,
        reason)


# -- day-end -------------------------------------------------------------------------------------------

async def to_accrue_for_update(conn: asyncpg.Connection, through: dt.date, after_id: int,
                               limit: int) -> list[Contract]:
    """Open contracts whose interest is not accrued through `through`, in id order, locked."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM loans.contracts WHERE status <> 'closed' AND accrued_through < $1 AND id > $2"
        " ORDER BY id LIMIT $3 FOR UPDATE", through, after_id, limit)
    return [_contract(r) for r in rows]


async def record_accruals(conn: asyncpg.Connection, business_date: dt.date,
                          done: Sequence[tuple[Contract, Accrual]]) -> None:
    """Each contract's accrual row and its new 積数, set-based; the guard on accrued_through makes a replay a no-op."""
    if not done:
        return
    ids = [c.id for c, _ in done]
    await conn.execute(
        "INSERT INTO loans.accruals (contract_id, business_date, from_date, through, balance_minor)"
        " SELECT u.id, $1, u.f, u.t, u.b FROM unnest($2::uuid[], $3::date[], $4::date[], $5::bigint[])"
        " AS u (id, f, t, b) ON CONFLICT DO NOTHING",
        business_date, ids, [a.from_date for _, a in done], [a.through for _, a in done],
        [a.balance_minor for _, a in done])
    await conn.execute(
        "UPDATE loans.contracts AS c SET accrued_through = u.t,"
        " balance_days_current = c.balance_days_current + u.cur, balance_days_next = c.balance_days_next + u.nxt"
        " FROM unnest($1::uuid[], $2::date[], $3::date[], $4::bigint[], $5::bigint[]) AS u (id, f, t, cur, nxt)"
        " WHERE c.id = u.id AND c.accrued_through = u.f - 1",
        ids, [a.from_date for _, a in done], [a.through for _, a in done],
        [a.balance_days_current for _, a in done], [a.balance_days_next for _, a in done])


_TO_COLLECT = ("status <> 'closed' AND (collect_on <= $1 OR arrears_minor > 0)"
               " AND (collected_through IS NULL OR collected_through < $1)")


async def count_to_collect(conn: asyncpg.Connection, day: dt.date) -> int:
    """Contracts a collection on `day` still has to look at (the predicate its pages walk)."""
    return int(await conn.fetchval(f"SELECT count(*) FROM loans.contracts WHERE {_TO_COLLECT}", day))


async def to_collect(conn: asyncpg.Connection, on: dt.date, after_id: int, limit: int) -> list[int]:
    """Ids of open contracts with a collection due (catch-up included) or arrears, not yet processed on `on`."""
    rows = await conn.fetch(f"SELECT id FROM loans.contracts WHERE {_TO_COLLECT} AND id > $2 ORDER BY id LIMIT $3",
                            on, after_id, limit)
    return [r[0] for r in rows]


async def to_collect_for_update(conn: asyncpg.Connection, on: dt.date, ids: Sequence[int]) -> list[Contract]:
    """Those of `ids` still to collect on `on`, in id order, locked."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM loans.contracts WHERE {_TO_COLLECT} AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE",
        on, list(ids))
    return [_contract(r) for r in rows]


async def record_collection_run(conn: asyncpg.Connection, on: dt.date, contracts: Sequence[Contract],
                                attempts: Sequence[tuple[int, int, int, int, str]]) -> None:
    """The contracts after the day's collection, and each transfer (contract, asked, took, transfer id, result)."""
    if attempts:
        await conn.execute(
            "INSERT INTO loans.collection_attempts (contract_id, business_date, requested_minor, collected_minor,"
            " transfer_id, result) SELECT u.id, $1, u.r, u.c, u.t, u.res FROM unnest($2::uuid[], $3::bigint[],"
            " $4::bigint[], $5::uuid[], $6::text[]) AS u (id, r, c, t, res) ON CONFLICT DO NOTHING",
            on, [a[0] for a in attempts], [a[1] for a in attempts], [a[2] for a in attempts],
            [a[3] for a in attempts], [a[4] for a in attempts])
    if not contracts:
        return
    await conn.execute(
        "UPDATE loans.contracts AS c SET status = u.status, arrears_minor = u.arrears, arrears_since = u.since,"
        " balance_days_current = u.cur, balance_days_next = u.nxt, due_on = u.due, collect_on = u.coll,"
        " collected_through = $1 FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::date[], $6::bigint[],"
        " $7::bigint[], $8::date[], $9::date[]) AS u (id, status, arrears, since, cur, nxt, due, coll)"
        " WHERE c.id = u.id AND (c.collected_through IS NULL OR c.collected_through < $1)",
        on, [c.id for c in contracts], [c.status.value for c in contracts], [c.arrears_minor for c in contracts],
        [c.arrears_since for c in contracts], [c.balance_days_current for c in contracts],
        [c.balance_days_next for c in contracts], [c.due_on for c in contracts], [c.collect_on for c in contracts])


# -- verification --------------------------------------------------------------------------------------

async def all_contracts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, status, credit_line_minor, accrued_through, collect_on FROM loans.contracts"
                            " ORDER BY id")


async def arrears_mismatches(conn: asyncpg.Connection) -> int:
    """Contracts whose arrears differ from the sum of their unpaid collections."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM loans.contracts c LEFT JOIN (SELECT contract_id, sum(outstanding_minor) AS o"
        " FROM loans.collections GROUP BY contract_id) s ON s.contract_id = c.id"
        " WHERE c.arrears_minor <> coalesce(s.o, 0)"))
