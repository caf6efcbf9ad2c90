"""SQL of the time-deposits context (its own schema only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg

from kanjo.kernel.invariants import invariant
from kanjo.time_deposits.model import Instruction, RateTable, Settlement, Status, Tax, TaxClass, TimeDeposit

_COLUMNS = ("id, customer_id, ordinary_account_id, principal_minor, rate_percent, term_months, tax_class,"
            " placed_on, matures_on, pays_on, instruction, status, generation, closed_on, payout_account_id")


def _deposit(r: asyncpg.Record) -> TimeDeposit:
    return TimeDeposit(r[0], r[1], r[2], r[3], r[4], r[5], TaxClass(r[6]), r[7], r[8], r[9], Instruction(r[10]),
                       Status(r[11]), r[12], r[13], r[14])


async def rate_table(conn: asyncpg.Connection, on: dt.date) -> RateTable:
    """The rates in force on `on`: per (term, band), the row with the latest effective date not after it."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (term_months, band_min_minor) term_months, band_min_minor, rate_percent"
        " FROM time_deposits.rates WHERE effective_from <= $1"
        " ORDER BY term_months, band_min_minor, effective_from DESC", on)
    rates: dict[tuple[int, int], Decimal] = {(r[0], r[1]): r[2] for r in rows}
    return RateTable(rates)


async def deposit(conn: asyncpg.Connection, deposit_id: int, *, for_update: bool = False) -> TimeDeposit | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM time_deposits.deposits WHERE id = $1{lock}", deposit_id)
    return _deposit(row) if row else None


async def deposits_of_customer(conn: asyncpg.Connection, customer_id: int) -> list[TimeDeposit]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM time_deposits.deposits WHERE customer_id = $1 ORDER BY placed_on, id", customer_id)
    return [_deposit(r) for r in rows]


async def due_for_update(conn: asyncpg.Connection, on: dt.date, after: tuple[dt.date, int],
                         limit: int) -> list[TimeDeposit]:
    """Placed deposits payable on or before `on` (catch-up included), locked, busy ones skipped: the page
    after `after` = (payment day, id) in that order, which the index deposits_due walks without sorting."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM time_deposits.deposits WHERE status = 'placed' AND pays_on <= $1"
        " AND (pays_on, id) > ($2, $3) ORDER BY pays_on, id LIMIT $4 FOR UPDATE SKIP LOCKED",
        on, after[0], after[1], limit)
    return [_deposit(r) for r in rows]


async def count_overdue(conn: asyncpg.Connection, on: dt.date) -> int:
    """Placed deposits whose payment day is before `on`: should be zero after each day's maturity run."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM time_deposits.deposits WHERE status = 'placed' AND pays_on < $1", on))


async def insert_deposit(conn: asyncpg.Connection, d: TimeDeposit) -> None:
    await conn.execute(
        f"INSERT INTO time_deposits.deposits ({_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING",
        d.id, d.customer_id, d.ordinary_account_id, d.principal_minor, d.rate_percent, d.term_months,
        d.tax_class.value, d.placed_on, d.matures_on, d.pays_on, d.instruction.value, d.status.value,
        d.generation, d.closed_on, d.payout_account_id)


async def change_instruction(conn: asyncpg.Connection, d: TimeDeposit) -> None:
    """Store a placed deposit's instruction and payout account (the caller holds its row lock)."""
    changed = await conn.execute(
        "UPDATE time_deposits.deposits SET instruction = $2, payout_account_id = $3"
        " WHERE id = $1 AND status = 'placed' AND generation = $4",
        d.id, d.instruction.value, d.payout_account_id, d.generation)
    invariant(changed == "UPDATE 1", "an instruction is changed on the placed generation read under its lock")


async def request(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    """What a request id already did: kind, deposit_id, and for a placement or a change what it asked for
    (instruction, payout_account_id; NULL on requests recorded before those were kept)."""
    return await conn.fetchrow(
        "SELECT kind, deposit_id, instruction, payout_account_id FROM time_deposits.requests WHERE request_id = $1",
        request_id)


async def record_request(conn: asyncpg.Connection, request_id: int, kind: str, deposit_id: int,
                         instruction: Instruction | None = None, payout_account_id: int | None = None) -> bool:
    """Record a request as carried out; False when its id was already recorded (by a concurrent retry)."""
    recorded = await conn.fetchval(
        "INSERT INTO time_deposits.requests (request_id, kind, deposit_id, instruction, payout_account_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING RETURNING true",
        request_id, kind, deposit_id, instruction.value if instruction else None, payout_account_id)
    return bool(recorded)


async def settlement(conn: asyncpg.Connection, deposit_id: int, generation: int) -> Settlement | None:
    r = await conn.fetchrow(
        "SELECT principal_minor, interest_minor, national_tax_minor, local_tax_minor, paid_out_minor,"
        " renewed_principal_minor FROM time_deposits.settlements WHERE deposit_id = $1 AND generation = $2",
        deposit_id, generation)
    return Settlement(r[0], r[1], Tax(r[2], r[3]), r[4], r[5]) if r else None


async def record_settlements(conn: asyncpg.Connection, kind: str, on: dt.date,
                             settled: list[tuple[TimeDeposit, Settlement, TimeDeposit]]) -> None:
    """Write settled generations and each deposit's next state (renewed, matured or withdrawn), set-based."""
    if not settled:
        return
    await conn.execute(
        "INSERT INTO time_deposits.settlements (deposit_id, generation, kind, business_date, principal_minor,"
        " interest_minor, national_tax_minor, local_tax_minor, paid_out_minor, renewed_principal_minor)"
        " SELECT u.id, u.generation, $1, $2, u.p, u.i, u.n, u.l, u.o, u.r FROM unnest($3::uuid[], $4::int[],"
        " $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])"
        " AS u (id, generation, p, i, n, l, o, r) ON CONFLICT DO NOTHING",
        kind, on, [d.id for d, _, _ in settled], [d.generation for d, _, _ in settled],
        [s.principal_minor for _, s, _ in settled], [s.interest_minor for _, s, _ in settled],
        [s.tax.national_minor for _, s, _ in settled], [s.tax.local_minor for _, s, _ in settled],
        [s.paid_out_minor for _, s, _ in settled], [s.renewed_principal_minor for _, s, _ in settled])
    # The generation guard makes a replayed batch a no-op. A batch is a few thousand of the deposits: look
    # each up by key (the planner would hash every deposit of the table for each batch otherwise).
    await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
    await conn.execute(
        "UPDATE time_deposits.deposits AS d SET principal_minor = u.p, rate_percent = u.rate, placed_on = u.placed,"
        " matures_on = u.matures, pays_on = u.pays, status = u.status, generation = u.next_gen, closed_on = u.closed"
        " FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::numeric[], $5::date[], $6::date[], $7::date[],"
        " $8::text[], $9::int[], $10::date[]) AS u (id, gen, p, rate, placed, matures, pays, status, next_gen, closed)"
        " WHERE d.id = u.id AND d.generation = u.gen AND d.status = 'placed'",
        [d.id for d, _, _ in settled], [d.generation for d, _, _ in settled],
        [n.principal_minor for _, _, n in settled], [n.rate_percent for _, _, n in settled],
        [n.placed_on for _, _, n in settled], [n.matures_on for _, _, n in settled],
        [n.pays_on for _, _, n in settled], [n.status.value for _, _, n in settled],
        [n.generation for _, _, n in settled], [n.closed_on for _, _, n in settled])
