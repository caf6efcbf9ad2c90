"""The sweep of cash items nobody acknowledged in time: a withdrawal's hold is voided and a deposit's escrow is let go
(nothing was credited), and each becomes an in-doubt item that the ATM's own word settles — never a guess."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter, Gauge

from kanjo.channels.atm import loan_cash, store
from kanjo.channels.atm.limits import IN_DOUBT_SWEEP_BATCH_MAX
from kanjo.channels.atm.model import HoldState, MachineKind, Operation, request_id_of
from kanjo.channels.atm.service import AtmChannel
from kanjo.deposits import Refused as DepositRefused
from kanjo.deposits import void_hold
from kanjo.hub import HubError
from kanjo.loans import Refused as LoanRefused

log = structlog.get_logger("kanjo.atm")
SWEEP_INTERVAL_S = 1.0

IN_DOUBT_OPENED = Counter("kanjo_atm_in_doubt_opened_total", "cash items not acknowledged in time, by operation",
                          ["operation"])
WAITING = Gauge("kanjo_atm_authorisations_waiting",
                "withdrawals authorised and deposits accepted, waiting for the ATM's acknowledgement")


async def sweep_overdue(ch: AtmChannel) -> int:
    """Put the cash items past their deadline in doubt; returns how many. A withdrawal's hold found posted belongs to
    an acknowledgement being recorded right now: it is left to it."""
    in_doubt = 0
    async with ch.pool.acquire() as conn, conn.transaction():
        overdue = await store.overdue_cash_items(conn, ch.now(), IN_DOUBT_SWEEP_BATCH_MAX)
        for item in overdue:
            if item.operation in RELEASES:
                kind = ch.machines.get(item.atm_id, MachineKind.OWN)
                try:
                    await RELEASES[item.operation](ch, kind, request_id_of(item.atm_id, item.journal_no))
                except (DepositRefused, LoanRefused) as e:  # posted by a racing acknowledgement: it records it
                    log.info("atm_sweep_found_posted", atm=item.atm_id, journal_no=item.journal_no, reason=e.code)
                    continue
                except HubError as e:  # deposits unavailable now: the next sweep tries again
                    log.warning("atm_sweep_deferred", atm=item.atm_id, journal_no=item.journal_no, reason=e.code)
                    break
            await store.open_in_doubt(conn, item, "no_acknowledgement")
            await store.settle_cash_item(conn, item.atm_id, item.journal_no, HoldState.IN_DOUBT.value, None, None)
            IN_DOUBT_OPENED.labels(item.operation).inc()
            in_doubt += 1
            log.warning("atm_in_doubt", atm=item.atm_id, journal_no=item.journal_no, operation=item.operation,
                        amount_minor=item.amount_minor)
        WAITING.set(await store.waiting_count(conn))
    return in_doubt


async def run_sweeper(ch: AtmChannel) -> None:
    """The sweep, every second, for the life of the process (at once again after a full batch); a failed sweep is
    logged and retried."""
    while True:
        swept = 0
        try:
            swept = await sweep_overdue(ch)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("atm_sweep_failed", error=repr(e))
        if swept < IN_DOUBT_SWEEP_BATCH_MAX:
            await asyncio.sleep(SWEEP_INTERVAL_S)


async def _void(ch: AtmChannel, kind: MachineKind, request_id: int) -> None:
    await ch.call(kind, "deposits", "void", lambda: void_hold(ch.deposits, request_id))


# The cash items that hold money while they wait (a deposit's escrow holds nothing), and how each is let go.
RELEASES: dict[str, Callable[[AtmChannel, MachineKind, int], Awaitable[None]]] = {
    Operation.WITHDRAWAL.value: _void,
    Operation.LOAN_DRAW.value: loan_cash.release,
}
