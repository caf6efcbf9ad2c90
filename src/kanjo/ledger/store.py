"""SQL of the ledger: loading state for the writer, writing a batch in one transaction, and reads."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from kanjo.ledger.model import Account, AccountBalance, PendingStatus, Transfer
from kanjo.ledger.rules import Batch, Hold

TRANSFER_COLUMNS = (
    "id", "debit_account_id", "credit_account_id", "amount", "pending_id", "user_data_128",
    "user_data_64", "user_data_32", "timeout", "ledger", "code", "flags", "business_date", "timestamp",
)
ACCOUNT_COLUMNS = (
    "id", "ledger", "code", "flags", "user_data_128", "user_data_64", "user_data_32",
    "debits_pending", "debits_posted", "credits_pending", "credits_posted", "timestamp",
)
_TRANSFER_SELECT = ", ".join(f"t.{c}" for c in TRANSFER_COLUMNS)
_ACCOUNT_SELECT = ", ".join(ACCOUNT_COLUMNS)


class Fenced(Exception):
    """Another writer took the lease: this writer's view of the balances is no longer authoritative."""


def account_from_row(r: asyncpg.Record) -> Account:
    return Account(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])


def transfer_from_row(r: asyncpg.Record) -> Transfer:
    return Transfer(
        id=r[0], debit_account_id=r[1], credit_account_id=r[2], amount=r[3], pending_id=r[4] or 0,
        user_data_128=r[5], user_data_64=r[6], user_data_32=r[7], timeout=r[8], ledger=r[9],
        code=r[10], flags=r[11], business_date=r[12], timestamp=r[13],
    )


def _transfer_row(t: Transfer, expires_at: int | None) -> tuple:
    return (t.id, t.debit_account_id, t.credit_account_id, t.amount, t.pending_id or None,
            t.user_data_128, t.user_data_64, t.user_data_32, t.timeout, t.ledger, t.code, t.flags,
            t.business_date, t.timestamp, expires_at)


_update_values = operator.attrgetter(
    "id", "debits_pending", "debits_posted", "credits_pending", "credits_posted", "flags")


# -- writer: lease ------------------------------------------------------------------------------

async def transfers_stored(conn: asyncpg.Connection) -> int:
    """The transfers table's row count (read once when the writer starts; a full count, exact)."""
    return int(await conn.fetchval("SELECT count(*) FROM ledger.transfers"))


async def acquire_lease(conn: asyncpg.Connection, holder: str, shard: int = 0) -> tuple[int, int]:
    """Take the writer lease of a shard: returns (epoch, last_timestamp). Any older writer is fenced."""
    row = await conn.fetchrow(
        "UPDATE ledger.writer SET epoch = epoch + 1, holder = $2, heartbeat_at = now()"
        " WHERE shard = $1 RETURNING epoch, last_timestamp",
        shard, holder,
    )
    if row is None:
        raise RuntimeError(f"ledger shard {shard} has no writer row; run the migrations")
    return row[0], row[1]


# -- writer: loading state ------------------------------------------------------------------------

async def load_accounts(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Account]:
    rows = await conn.fetch(f"SELECT {_ACCOUNT_SELECT} FROM ledger.accounts WHERE id = ANY($1::uuid[])", ids)
    return [account_from_row(r) for r in rows]


async def load_holds(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Hold]:
    rows = await conn.fetch(
        f"SELECT {_TRANSFER_SELECT}, t.expires_at, r.status FROM ledger.transfers t"
        " LEFT JOIN ledger.pending_resolutions r ON r.pending_id = t.id WHERE t.id = ANY($1::uuid[])",
        ids,
    )
    holds = []
    for r in rows:
        t = transfer_from_row(r)
        if not t.flags & 2:
            status = PendingStatus.NONE
        else:
            status = PendingStatus(r[15]) if r[15] is not None else PendingStatus.PENDING
        holds.append(Hold(t, status, r[14] or 0))
    return holds


async def load_transfers(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Transfer]:
    rows = await conn.fetch(f"SELECT {_TRANSFER_SELECT} FROM ledger.transfers t WHERE t.id = ANY($1::uuid[])", ids)
    return [transfer_from_row(r) for r in rows]


async def existing_transfer_ids(conn: asyncpg.Connection, ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch("SELECT id FROM ledger.transfers WHERE id = ANY($1::uuid[])", ids)
    return [r[0] for r in rows]


async def load_rejected(conn: asyncpg.Connection, ids: Sequence[int] | None, limit: int) -> list[tuple[Transfer, int]]:
    where = "WHERE id = ANY($1::uuid[])" if ids is not None else ""
    args: list[object] = [ids] if ids is not None else []
    rows = await conn.fetch(
        f"SELECT {', '.join(TRANSFER_COLUMNS)}, result FROM ledger.rejected_transfers {where}"
        f" LIMIT {int(limit)}",
        *args,
    )
    return [(transfer_from_row(r), r[14]) for r in rows]


async def due_holds(conn: asyncpg.Connection, until_ns: int, limit: int) -> list[tuple[int, int]]:
    """Live holds with a timeout, earliest first: (expires_at, id)."""
    rows = await conn.fetch(
        "SELECT t.expires_at, t.id FROM ledger.transfers t"
        " WHERE t.expires_at IS NOT NULL AND t.expires_at <= $1"
        " AND NOT EXISTS (SELECT 1 FROM ledger.pending_resolutions r WHERE r.pending_id = t.id)"
        " ORDER BY t.expires_at LIMIT $2",
        until_ns, limit,
    )
    return [(r[0], r[1]) for r in rows]


# -- writer: one batch, one transaction ----------------------------------------------------------

UPDATE_COLUMNS = ("id", "dpe", "dpo", "cpe", "cpo", "flags")


async def prepare_writer_connection(conn: asyncpg.Connection) -> None:
    """Session setup for the writer's connections."""
    # Every writer statement looks rows up by key: a nested loop over the primary key beats the hash
    # join the planner would pick for the batch UPDATE (a scan of every account, every batch).
    await conn.execute(
        "SET enable_hashjoin = off; SET enable_mergejoin = off;"
        " CREATE TEMP TABLE IF NOT EXISTS account_updates (id uuid, dpe bigint, dpo bigint, cpe bigint,"
        " cpo bigint, flags integer) ON COMMIT DELETE ROWS"
    )


@dataclass(frozen=True, slots=True)
class AccountRows:
    """The accounts a batch wrote, as values taken when the batch was applied.

    The writer applies the next batch while this one commits, mutating the same cached accounts, so
    a commit must never read the live objects.
    """

    new_accounts: list[tuple]
    updates: list[tuple[int, int, int, int, int, int]]


def account_rows(batch: Batch) -> AccountRows:
    accounts = batch.accounts
    new_accounts = batch.new_accounts
    new = [_account_tuple(a) for a in new_accounts.values()]
    # No lock ordering needed: the shard's single writer is the only one updating these rows.
    touched = batch.touched - new_accounts.keys() if new_accounts else batch.touched
    updates = list(map(_update_values, map(accounts.__getitem__, touched)))
    return AccountRows(new, updates)


SMALL_BATCH_ROWS_MAX = 512  # up to this many rows a batch commits in one statement; beyond, COPY is cheaper
FENCED_SQLSTATE = "KJ001"
REPLAYED_SQLSTATE = "KJ002"


def is_small(batch: Batch) -> bool:
    return not batch.new_accounts and (
        len(batch.new_transfers) + len(batch.new_rejected) + len(batch.touched) + len(batch.history)
        <= SMALL_BATCH_ROWS_MAX
    )


async def commit_small_batch(conn: asyncpg.Connection, batch: Batch, rows: AccountRows, epoch: int,
                             last_timestamp: int, check_ids: list[int]) -> None:
    """One statement, in its own transaction: raises Fenced, or ReplayedId when a checked id exists."""
    t = [_transfer_row(x, e) for x, e in zip(batch.new_transfers, batch.new_expires, strict=True)]
    x = [(*_transfer_row(r, None)[:-1], code) for r, code in batch.new_rejected.values()]
    x = [(r[0], r[14], *r[1:14]) for r in x]  # result second, as the function takes it
    try:
        await conn.execute(
            "SELECT ledger.commit_small_batch($1, $2, $3, " + ", ".join(f"${i}" for i in range(4, 50)) + ")",
            epoch, last_timestamp, check_ids,
            *_columns(t, 15), *_columns(x, 15), *_columns(batch.resolutions, 4), *_columns(rows.updates, 6),
            *_columns(batch.history, 6),
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == FENCED_SQLSTATE:
            raise Fenced(f"writer epoch {epoch} lost its lease") from exc
        if exc.sqlstate == REPLAYED_SQLSTATE:
            raise ReplayedId() from exc
        raise


class ReplayedId(Exception):
    """An id the fast path took as new already exists: the batch must be redone with lookups."""


def _columns(rows: Sequence[tuple], width: int) -> list[list]:
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


async def write_batch(conn: asyncpg.Connection, batch: Batch, rows: AccountRows, epoch: int,
                      last_timestamp: int) -> None:
    """Everything a batch produced, atomically. The caller owns the transaction."""
    fenced = await conn.execute(
        "UPDATE ledger.writer SET last_timestamp = $2, heartbeat_at = now() WHERE shard = 0 AND epoch = $1",
        epoch, last_timestamp,
    )
    if fenced != "UPDATE 1":
        raise Fenced(f"writer epoch {epoch} lost its lease")
    if rows.new_accounts:
        await conn.copy_records_to_table(
            "accounts", schema_name="ledger", columns=ACCOUNT_COLUMNS, records=rows.new_accounts,
        )
    if batch.new_transfers:
        await conn.copy_records_to_table(
            "transfers", schema_name="ledger", columns=(*TRANSFER_COLUMNS, "expires_at"),
            records=list(map(_transfer_row, batch.new_transfers, batch.new_expires)),
        )
    if batch.new_rejected:
        await conn.copy_records_to_table(
            "rejected_transfers", schema_name="ledger", columns=(*TRANSFER_COLUMNS, "result"),
            records=[(*_transfer_row(t, None)[:-1], code) for t, code in batch.new_rejected.values()],
        )
    if batch.resolutions:
        await conn.copy_records_to_table(
            "pending_resolutions", schema_name="ledger",
            columns=("pending_id", "status", "transfer_id", "timestamp"), records=batch.resolutions,
        )
    if rows.updates:
        # COPY into a per-connection scratch table, then one UPDATE joining on the primary key:
        # binary COPY of tuples is far cheaper to encode than six bound arrays of 15,000 values.
        await conn.copy_records_to_table("account_updates", columns=UPDATE_COLUMNS, records=rows.updates)
        await conn.execute(
            "UPDATE ledger.accounts a SET debits_pending = u.dpe, debits_posted = u.dpo,"
            " credits_pending = u.cpe, credits_posted = u.cpo, flags = u.flags"
            " FROM account_updates u WHERE a.id = u.id"
        )
    if batch.history:
        await conn.copy_records_to_table(
            "account_balances", schema_name="ledger",
            columns=("account_id", "timestamp", "debits_pending", "debits_posted", "credits_pending",
                     "credits_posted"),
            records=batch.history,
        )


def _account_tuple(a: Account) -> tuple:
    return (a.id, a.ledger, a.code, a.flags, a.user_data_128, a.user_data_64, a.user_data_32,
            a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.timestamp)


# -- reads -----------------------------------------------------------------------------------------

async def lookup_accounts(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Account]:
    found = {a.id: a for a in await load_accounts(conn, ids)}
    return [found[i] for i in ids if i in found]


async def lookup_transfers(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Transfer]:
    found = {t.id: t for t in await load_transfers(conn, ids)}
    return [found[i] for i in ids if i in found]


async def lookup_holds(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Hold]:
    found = {h.transfer.id: h for h in await load_holds(conn, ids)}
    return [found[i] for i in ids if i in found]


async def account_transfers(
    conn: asyncpg.Connection, account_id: int, *, timestamp_min: int, timestamp_max: int, limit: int,
    debits: bool, credits: bool, reverse: bool,
) -> list[Transfer]:
    order = "DESC" if reverse else "ASC"
    parts = []
    if debits:
        parts.append(f"(SELECT {_TRANSFER_SELECT} FROM ledger.transfers t WHERE t.debit_account_id = $1"
                     f" AND t.timestamp BETWEEN $2 AND $3 ORDER BY t.timestamp {order} LIMIT $4)")
    if credits:
        parts.append(f"(SELECT {_TRANSFER_SELECT} FROM ledger.transfers t WHERE t.credit_account_id = $1"
                     f" AND t.timestamp BETWEEN $2 AND $3 ORDER BY t.timestamp {order} LIMIT $4)")
    if not parts:
        return []
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) u ORDER BY u.timestamp {order} LIMIT $4"
    rows = await conn.fetch(sql, account_id, timestamp_min, timestamp_max, limit)
    return [transfer_from_row(r) for r in rows]


async def account_balances(
    conn: asyncpg.Connection, account_id: int, *, timestamp_min: int, timestamp_max: int, limit: int,
    reverse: bool,
) -> list[AccountBalance]:
    order = "DESC" if reverse else "ASC"
    rows = await conn.fetch(
        "SELECT account_id, timestamp, debits_pending, debits_posted, credits_pending, credits_posted"
        " FROM ledger.account_balances WHERE account_id = $1 AND timestamp BETWEEN $2 AND $3"
        f" ORDER BY timestamp {order} LIMIT $4",
        account_id, timestamp_min, timestamp_max, limit,
    )
    return [AccountBalance(*r) for r in rows]


def ids_of(items: Iterable[Account | Transfer]) -> list[int]:
    return [i.id for i in items]


def today(ns: int, tz: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(ns / 1e9, tz).date()


async def accounts_by_code(conn: asyncpg.Connection, ledger: int, code: int, after_id: int,
                           limit: int) -> list[Account]:
    """Accounts of one (ledger, code) in id order after `after_id`: a product's whole book, page by page."""
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_SELECT} FROM ledger.accounts WHERE ledger = $1 AND code = $2 AND id > $3::uuid"
        " ORDER BY id LIMIT $4", ledger, code, after_id, limit)
    return [account_from_row(r) for r in rows]


async def read_accounts(conn: asyncpg.Connection, ids: Sequence[int]) -> list[Account]:
    """Committed accounts by id, for readers that must not start a writer (verification, reports)."""
    return await lookup_accounts(conn, ids)
