"""The fleet: N ATMs driven open loop from a seeded plan over one bounded link, then their journals uploaded.

Each transaction is released at its scheduled time whatever the bank answers, and its latency runs from that
time, so waiting (at the machine, for a connection, for resends) is counted — no coordinated omission. A machine
serves one customer at a time; customers queue at it up to a bound, the next one walks away.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from kanjo.sim.device import RECONCILIATION_COUNTS, RETRY_AFTER_S_MAX, Device
from kanjo.sim.link import Link
from kanjo.sim.model import Atm, FleetConfig, Planned, atm_roster, plan
from kanjo.sim.report import Tally, build_report

START_DELAY_S = 0.05  # the first transaction a little after the run starts
SCHEDULER_TICK_S = 0.001  # shortest sleep: uvloop rounds shorter timers to 0, which would spin the scheduler
DRAIN_S_MIN = 5.0
DRAIN_S_MAX = 600.0  # after the last scheduled transaction, how long the ones in flight are awaited at most


class Fleet:
    """N ATMs, their journals and the run's tally. `run` once, then `journal_upload` as often as wanted."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.atms = [Atm(atm_id, kind) for atm_id, kind in atm_roster(config.atms, config.atm_id_prefix)]
        self.tally = Tally()
        self._ran = False

    @property
    def journal_no_next(self) -> int:
        """Where the next run with these ATMs starts its journal numbers (they are never reused)."""
        issued = max(atm.journal_no_issued for atm in self.atms)
        return issued + 1 if issued else self.config.journal_no_first

    @property
    def drain_s(self) -> float:
        """Long enough for a transaction that exhausts every resend of both its messages, twice over."""
        config = self.config
        resends_max = max(config.retries_max, config.ack_retries_max)
        per_attempt_s = config.request_timeout_s + config.retry_backoff_ms / 1000 * resends_max + RETRY_AFTER_S_MAX
        worst_s = (config.retries_max + config.ack_retries_max + 2) * per_attempt_s + config.dispense_delay_ms / 1000
        return min(DRAIN_S_MAX, max(DRAIN_S_MIN, 2 * worst_s))

    async def run(self, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
        """Offer the planned load to the bank at host:port; the report of the run."""
        if self._ran:
            raise RuntimeError("a fleet runs once: its journal numbers are spent; make a new one that continues them")
        self._ran = True
        config = self.config
        start = time.perf_counter() + START_DELAY_S
        link = Link(host, port, connections=config.connections, timeout_s=config.request_timeout_s,
                    faults=config.faults, started_at=start)
        device = Device(config, link, self.tally, started_at=start)
        try:
            async with asyncio.timeout(START_DELAY_S + config.warmup_s + config.seconds + self.drain_s):
                async with asyncio.TaskGroup() as group:
                    await self._schedule(group, device, start)
        except TimeoutError:
            pass  # what did not finish is counted as unfinished
        finally:
            await link.close()
        # the offered window, or up to the last answer when that came later: achieved ≤ offered when all is answered
        elapsed_s = max(config.warmup_s + config.seconds, self.tally.answered_at - start)
        unfinished = config.transactions - self.tally.completed() - sum(self.tally.abandoned.values())
        return build_report(config, self.tally, self.atms, elapsed_s=elapsed_s, faults=link.counters.as_dict(),
                            unfinished=unfinished)

    async def _schedule(self, group: asyncio.TaskGroup, device: Device, start: float) -> None:
        """Release each planned transaction at its time; after a late wake-up, the overdue ones go at once."""
        for planned in plan(self.config):
            delay_s = start + planned.scheduled_s - time.perf_counter()
            if delay_s > 0:
                await asyncio.sleep(max(SCHEDULER_TICK_S, delay_s))
            self._dispatch(group, device, planned)

    def _dispatch(self, group: asyncio.TaskGroup, device: Device, planned: Planned) -> None:
        atm = self.atms[planned.atm_index]
        atm.issue(planned.journal_no)
        self.tally.scheduled[planned.operation] += 1
        if atm.busy and len(atm.waiting) >= self.config.customers_waiting_per_atm_max:
            atm.abandoned += 1
            self.tally.abandoned[planned.operation] += 1
            return
        atm.waiting.append(planned)
        if not atm.busy:
            atm.busy = True
            group.create_task(self._serve(atm, device))

    async def _serve(self, atm: Atm, device: Device) -> None:
        """One machine, one customer at a time, until nobody is waiting."""
        try:
            while atm.waiting:
                await device.perform(atm, atm.waiting.popleft())
        finally:
            atm.busy = False

    async def journal_upload(self, host: str = "127.0.0.1", port: int = 8000) -> dict[str, int]:
        """Every ATM's cash entries to POST /atm/v1/journal (pages of ≤ 1,000) over a quiet link; the answers summed."""
        config = self.config
        link = Link(host, port, connections=config.connections, timeout_s=config.request_timeout_s)
        device = Device(config, link, self.tally, started_at=time.perf_counter())
        totals: collections.Counter[str] = collections.Counter()
        slots = asyncio.Semaphore(config.connections)  # one task per ATM, no more uploads at once than connections

        async def upload(atm: Atm) -> None:
            async with slots:
                totals.update(await device.upload_journal(atm))

        try:
            async with asyncio.TaskGroup() as group:
                for atm in self.atms:
                    group.create_task(upload(atm))
        finally:
            await link.close()
        return {name: totals[name] for name in ("uploads", "entries", *RECONCILIATION_COUNTS, "errors")}
