"""SQL of the deposits context (its own schema only)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from kanjo.deposits.model import DepositAccount, Status, Subject

_COLUMNS = "id, branch_code, account_number, subject, customer_id, status, opened_on, closed_on, last_activity_on"


def _account(r: asyncpg.Record) -> DepositAccount:
    return DepositAccount(r[0], r[1], r[2], Subject(r[3]), r[4], Status(r[5]), r[6], r[7], r[8])


async def account(conn: asyncpg.Connection, account_id: int, *, for_update: bool = False) -> DepositAccount | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM deposits.accounts WHERE id = $1{lock}", account_id)
    return _account(row) if row else None


async def accounts_by_id(conn: asyncpg.Connection, account_ids: list[int]) -> list[DepositAccount]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM deposits.accounts WHERE id = ANY($1::uuid[])", account_ids)
    return [_account(r) for r in rows]


async def account_by_number(conn: asyncpg.Connection, branch_code: str, number: int) -> DepositAccount | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM deposits.accounts WHERE branch_code = $1 AND account_number = $2",
        branch_code, number)
    return _account(row) if row else None


async def account_by_open_request(conn: asyncpg.Connection, request_id: int) -> DepositAccount | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM deposits.accounts WHERE open_request_id = $1", request_id)
    return _account(row) if row else None


async def accounts_of_customer(conn: asyncpg.Connection, customer_id: int) -> list[DepositAccount]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM deposits.accounts WHERE customer_id = $1 ORDER BY opened_on, account_number",
        customer_id)
    return [_account(r) for r in rows]


async def take_account_number(conn: asyncpg.Connection, branch_code: str) -> int | None:
    """The branch's next number, never reused (None: unknown branch). The caller holds the transaction."""
    return await conn.fetchval(
        "UPDATE deposits.branches SET next_account_number = next_account_number + 1"
        " WHERE branch_code = $1 RETURNING next_account_number - 1", branch_code)


async def insert_account(conn: asyncpg.Connection, a: DepositAccount, request_id: int) -> None:
    await conn.execute(
        f"INSERT INTO deposits.accounts ({_COLUMNS}, open_request_id, opened_as)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $4)",
        a.id, a.branch_code, a.account_number, a.subject.value, a.customer_id, a.status.value, a.opened_on,
        a.closed_on, a.last_activity_on, request_id)


async def opened_as(conn: asyncpg.Connection, account_id: int) -> str:
    """The subject the account was opened as (it may since have been converted to a 総合口座)."""
    return str(await conn.fetchval("SELECT opened_as FROM deposits.accounts WHERE id = $1", account_id))


async def status_change(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT account_id, action, from_status, to_status, reason FROM deposits.status_changes"
        " WHERE request_id = $1", request_id)


async def record_status_change(conn: asyncpg.Connection, request_id: int, account_id: int, action: str,
                               from_status: Status, to_status: Status, reason: str,
                               closed_on: dt.date | None) -> None:
    await conn.execute(
        "INSERT INTO deposits.status_changes (request_id, account_id, action, from_status, to_status, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        request_id, account_id, action, from_status.value, to_status.value, reason)
    await conn.execute("UPDATE deposits.accounts SET status = $2, closed_on = $3 WHERE id = $1",
                       account_id, to_status.value, closed_on)


async def touch(conn: asyncpg.Connection, account_ids: list[int], on: dt.date) -> None:
    await conn.execute(
        # only a new day writes: most movements find the account already active today (no row version, no lock)
        "UPDATE deposits.accounts SET last_activity_on = $2 WHERE id = ANY($1::uuid[]) AND last_activity_on < $2",
        account_ids, on)


async def branch_exists(conn: asyncpg.Connection, branch_code: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM deposits.branches WHERE branch_code = $1", branch_code))
