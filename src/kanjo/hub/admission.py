"""Admission control: how saturated the process is (event-loop lag, online calls in flight), which priorities are
shed, and how fast batch work may go without hurting the ATMs' latency objective.

The lag is the worst sample of the last `lag_window_ms` (a sampler task sleeps `sample_interval_ms` and measures
how late it wakes). The shed level rises at once and falls after one calm window, so shedding does not flap.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from kanjo.hub.limits import LATENCY_SAMPLES_MAX, LOOP_LAG_SAMPLES_MAX
from kanjo.hub.model import AdmissionPolicy, Priority, ShedLevel


class Admission:
    def __init__(self, policy: AdmissionPolicy, online_in_flight: Callable[[], int] = lambda: 0,
                 now_s: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.online_in_flight = online_in_flight  # calls of every partition but batch, counted by the hub
        self._now_s = now_s
        self._lag_samples: deque[tuple[float, float]] = deque(maxlen=LOOP_LAG_SAMPLES_MAX)
        self._atm_latencies: deque[tuple[float, float]] = deque(maxlen=LATENCY_SAMPLES_MAX)

    # -- measurements ------------------------------------------------------------------------------------------

    def record_lag_ms(self, lag_ms: float) -> None:
        """One sample of event-loop lag (the sampler's; tests may inject one)."""
        now = self._now_s()
        since = now - self.policy.lag_window_ms / 1000
        while self._lag_samples and self._lag_samples[0][0] < since:  # out of the window for good: every call of
            self._lag_samples.popleft()  # the hub reads the window, so it holds only what counts
        self._lag_samples.append((now, max(lag_ms, 0.0)))

    def record_atm_latency_ms(self, latency_ms: float) -> None:
        self._atm_latencies.append((self._now_s(), latency_ms))

    def lag_ms(self) -> float:
        """The worst lag of the window (0 when no recent sample)."""
        since = self._now_s() - self.policy.lag_window_ms / 1000
        return max((lag for at, lag in self._lag_samples if at >= since), default=0.0)

    def atm_latency_ms_p99(self) -> float | None:
        since = self._now_s() - self.policy.pace_window_ms / 1000
        recent = sorted(latency for at, latency in self._atm_latencies if at >= since)
        if not recent:
            return None
        return recent[min(len(recent) - 1, math.ceil(0.99 * len(recent)) - 1)]

    # -- decisions -----------------------------------------------------------------------------------------------

    def level(self) -> ShedLevel:
        lag_ms = self.lag_ms()
        if lag_ms > self.policy.lag_shed_medium_ms:
            return ShedLevel.ONLINE_MEDIUM
        if lag_ms > self.policy.lag_shed_batch_ms or self.online_in_flight() >= self.policy.in_flight_shed_batch_min:
            return ShedLevel.BATCH
        return ShedLevel.NONE

    def sheds(self, priority: Priority) -> bool:
        return self.level() > priority

    def retry_after_s(self) -> float:
        """A shed caller may come back after one calm window."""
        return self.policy.lag_window_ms / 1000

    def batch_pace(self) -> float:
        """How fast batch may go, 0 (stop) … 1 (full speed): the lower of what the lag and the ATM p99 allow.

        Lag: full speed at none, linearly down to 0 at the batch-shedding threshold. ATM p99: full speed up to half
        the objective, linearly down to 0 at the objective."""
        if self.level() >= ShedLevel.BATCH:
            return 0.0
        by_lag = 1.0 - self.lag_ms() / self.policy.lag_shed_batch_ms
        p99 = self.atm_latency_ms_p99()
        objective = self.policy.atm_latency_p99_objective_ms
        by_latency = 1.0 if p99 is None else 2.0 * (objective - p99) / objective
        return round(min(max(min(by_lag, by_latency), 0.0), 1.0), 3)


class LagSampler:
    """The one task that measures event-loop lag; started and stopped by the hub, nothing runs at import."""

    def __init__(self, admission: Admission, on_sample: Callable[[float], None]) -> None:
        self._admission = admission
        self._on_sample = on_sample
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kanjo.hub.lag_sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])  # not `await task`: that would swallow a cancellation of stop()'s own caller

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval_s = self._admission.policy.sample_interval_ms / 1000
        while True:
            before = loop.time()
            await asyncio.sleep(interval_s)
            lag_ms = (loop.time() - before - interval_s) * 1000
            self._admission.record_lag_ms(lag_ms)
            self._on_sample(lag_ms)
