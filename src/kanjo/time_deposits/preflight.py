"""The maturity job's pre-flight: how many ledger transfers a run of it on a date may post, counted in SQL."""

from __future__ import annotations

import datetime as dt

from kanjo.time_deposits.service import TimeDeposits

# Legs of one generation's settlement chain (service._settlement_chain leaves zero legs out): the interest, the
# national tax (not for exempt deposits), the local tax (individuals only) and the payout (none when principal and
# interest are both renewed). A renewed generation already payable on the date is settled again in the same run
# (catch-up): generation k matures k terms after the current one, in calendar month m0 + k·term, so at most
# 1 + (months from its maturity to the date) // term generations are payable by then.
_NEED = (
    "SELECT coalesce(sum("
    " (1 + (tax_class <> 'exempt')::int + (tax_class = 'individual')::int"
    "  + (instruction <> 'renew_principal_and_interest')::int)"
    " * CASE WHEN instruction = 'pay_out' THEN 1 ELSE 1 + ((date_part('year', $1::date) * 12"
    "   + date_part('month', $1::date)) - (date_part('year', matures_on) * 12 + date_part('month', matures_on)))::int"
    "   / term_months END), 0)"
    " FROM time_deposits.deposits WHERE status = 'placed' AND pays_on <= $1"
)


async def transfers_needed_for_maturity(t: TimeDeposits, day: dt.date) -> int:
    """An upper bound of the transfers `mature_due(t, day)` will post: for every placed deposit payable on or before
    `day` (the rows it settles), the legs of its chain times the generations it can settle in the run.

    Only what is left is counted: a settled generation is recorded as matured or renewed (next payable later), so a
    rerun or a resumed run counts the deposits still placed and due. A chain the ledger already has but this context
    has not recorded (a crash between the two) is counted again, which only overstates the need."""
    async with t.pool.acquire() as conn:
        return int(await conn.fetchval(_NEED, day))
