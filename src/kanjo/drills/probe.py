"""What a drill watches beside the fleet: a product's breaker polled on /health, and its own requests (time-deposit
placements from own ATMs at a fixed rate), each answer kept with its send time, latency and phase."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kanjo.drills.limits import BREAKER_SAMPLES_MAX, PROBE_SAMPLES_MAX
from kanjo.drills.model import BreakerSample, BreakerTimeline
from kanjo.drills.server import DrillError, Ops, Target
from kanjo.platform.http_client import HttpConnection, ProtocolError
from kanjo.sim import Card

TRANSPORT_ERRORS = (OSError, EOFError, ProtocolError, ValueError, asyncio.IncompleteReadError)
PROBE_AMOUNT_MINOR = 100_000  # the smallest time deposit the simulator places
PROBE_TERM_MONTHS = 12
PROBE_TIMEOUT_S = 5.0  # as long as an ATM waits for an answer
PROBE_CONNECTIONS = 8


class BreakerWatcher:
    """Polls GET /health every `interval_s` and keeps the product's breaker state with the time it was seen."""

    def __init__(self, target: Target, product: str, interval_s: float = 0.1) -> None:
        self.ops = Ops(target)
        self.product = product
        self.timeline = BreakerTimeline(interval_s)

    async def run(self) -> None:
        while len(self.timeline.samples) < BREAKER_SAMPLES_MAX:
            asked_at = time.perf_counter()
            try:
                health = await self.ops.health()
                state = str(health.get("products", {}).get(self.product, {}).get("breaker", "unknown"))
            except DrillError:
                state = "unknown"
            self.timeline.samples.append(BreakerSample(asked_at, state))
            await asyncio.sleep(max(0.0, asked_at + self.timeline.interval_s - time.perf_counter()))


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One probe request: the phase it was sent in, when (perf_counter s), and what came back (status None: none)."""

    phase: str
    sent_s: float
    latency_ms: float | None
    status: int | None
    answer: dict[str, Any] | None

    @property
    def waited_ms(self) -> float:
        """How long the device waited: the latency, or its whole timeout when nothing came back."""
        return PROBE_TIMEOUT_S * 1000 if self.latency_ms is None else self.latency_ms

    @property
    def result(self) -> str:
        if self.status is None:
            return "no_answer"
        return str((self.answer or {}).get("result", f"status_{self.status}"))


class TimeDepositProbe:
    """Places time deposits open loop at `per_s` from the drill's own ATMs (one journal number each, cards in turn);
    each answer is a `ProbeSample` of the phase current when it was sent."""

    def __init__(self, target: Target, atm_ids: Sequence[str], cards: Sequence[Card], per_s: float,
                 phase: str) -> None:
        self.target = target
        self.per_s = per_s
        self.phase = phase
        self.samples: list[ProbeSample] = []
        self._atms = itertools.cycle(list(atm_ids))
        self._journal_no = dict.fromkeys(atm_ids, 0)
        self._cards = itertools.cycle(list(cards))
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(PROBE_CONNECTIONS):
            self._idle.put_nowait(HttpConnection(target.host, target.port))

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set (or the samples' limit): one request every 1/per_s s, each waited for at most
        PROBE_TIMEOUT_S; latency runs from the scheduled time, a wait for a connection included."""
        start = time.perf_counter()
        try:
            async with asyncio.TaskGroup() as group:
                for k in itertools.count():
                    if stop.is_set() or k >= PROBE_SAMPLES_MAX:
                        break
                    scheduled = start + k / self.per_s
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(0.0, scheduled - time.perf_counter()))
                    if not stop.is_set():
                        group.create_task(self._one(scheduled, self.phase))
        finally:
            while not self._idle.empty():
                await self._idle.get_nowait().close()

    async def _one(self, scheduled: float, phase: str) -> None:
        atm_id = next(self._atms)
        self._journal_no[atm_id] += 1
        card = next(self._cards)
        body = {"atm_id": atm_id, "journal_no": self._journal_no[atm_id],
                "card": {"number": card.number, "pin": card.pin}, "amount_minor": PROBE_AMOUNT_MINOR,
                "term_months": PROBE_TERM_MONTHS}
        status, answer = await self._send(orjson.dumps(body), scheduled)
        latency_ms = None if status is None else round((time.perf_counter() - scheduled) * 1000, 3)
        self.samples.append(ProbeSample(phase, scheduled, latency_ms, status, answer))

    async def _send(self, body: bytes, scheduled: float) -> tuple[int | None, dict[str, Any] | None]:
        conn = await self._idle.get()
        try:
            async with asyncio.timeout(max(0.001, scheduled + PROBE_TIMEOUT_S - time.perf_counter())):
                response = await conn.send(conn.request_bytes("POST", "/atm/v1/time-deposit", body))
        except (TimeoutError, *TRANSPORT_ERRORS):
            await conn.close()
            return None, None
        finally:
            self._idle.put_nowait(conn)
        try:
            parsed = orjson.loads(response.body) if response.body else None
        except orjson.JSONDecodeError:
            parsed = None
        return response.status, parsed if isinstance(parsed, dict) else None


@contextlib.asynccontextmanager
async def watching(watcher: BreakerWatcher, probe: TimeDepositProbe | None = None) -> AsyncIterator[None]:
    """The watcher (and the probe) run for the body's duration; both stopped and awaited on the way out."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(watcher.run(), name="drill-breaker-watcher")]
    if probe is not None:
        tasks.append(asyncio.create_task(probe.run(stop), name="drill-probe"))
    try:
        yield
    finally:
        stop.set()
        tasks[0].cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
