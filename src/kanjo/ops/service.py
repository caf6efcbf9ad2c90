"""The alert evaluation: sample capacity, run the built-in rules and every registered source, deduplicate into
alerts, log what opened, save — every minute for the life of the process (`run_evaluations`).

Other contexts report their conditions through an `AlertSource` registered by name (`Ops.register_source`): an
async callable answering the conditions that hold now. A source that fails, times out or answers too much is itself
an alert (`source_failed`), and its own open alerts are left as they are until it answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from kanjo.kernel.clock import Clock, SystemClock
from kanjo.kernel.ids import format_id
from kanjo.kernel.limits import LimitReached, LimitRegistry, limits
from kanjo.ops import rules, store, telemetry
from kanjo.ops.forecast import Capacity, Forecast, Snapshot
from kanjo.ops.limits import ALERT_HISTORY_MAX, SOURCE_CONDITIONS
from kanjo.ops.model import NAME, Alert, AlertBook, AlertState, Changes, Condition, Severity, truncate
from kanjo.ops.rules import AlertPolicy, CallCounts

AlertSource = Callable[[], Awaitable[list[Condition]]]
EVALUATION_INTERVAL_S = 60  # alerts a minute late at worst; the forecasts' samples are a minute apart
SOURCE_TIMEOUT_S = 5.0  # a source that cannot say within this is reported as failed, and the evaluation goes on
BUILT_IN_SOURCES = frozenset({"limits", "hub", "ops"})  # the rules of this module; no registered source takes these

log = structlog.get_logger("kanjo.ops")


class Ops:
    """Alerts and capacity forecasts of one process. `pool`: the database of the `ops` schema; `call_counts`: the
    hub's (`Hub.call_counts`), for the error-ratio rules; `registry`: the limits watched."""

    def __init__(self, pool: asyncpg.Pool, *, call_counts: Callable[[], CallCounts] | None = None,
                 registry: LimitRegistry = limits, clock: Clock | None = None, policy: AlertPolicy | None = None,
                 capacity: Capacity | None = None, book: AlertBook | None = None,
                 interval_s: float = EVALUATION_INTERVAL_S) -> None:
        if not 0 < interval_s <= 3600:
            raise ValueError("interval_s must be in (0, 3600]")
        self.pool = pool
        self.registry = registry
        self.clock = clock or SystemClock()
        self.policy = policy or AlertPolicy()
        self.capacity = capacity or Capacity(registry)
        self.book = book or AlertBook()
        self.interval_s = interval_s
        self._call_counts = call_counts
        self._calls_before: CallCounts = {}
        self._calls_at_ms = self._now_ms()
        self._sources: dict[str, AlertSource] = {}  # bounded by ops_alert_sources_max
        self._unsaved: dict[int, Alert] = {}  # changed since the last write that succeeded
        self._loaded = False

    def register_source(self, name: str, source: AlertSource) -> None:
        """Another context's conditions, asked at every evaluation (wired by the composition root)."""
        if not isinstance(name, str) or not NAME.match(name) or name in BUILT_IN_SOURCES:
            raise ValueError(f"a source name is snake_case, 1 to 64 characters, not one of "
                             f"{', '.join(sorted(BUILT_IN_SOURCES))}: {name!r}")
        if name in self._sources:
            raise ValueError(f"alert source {name!r} is already registered")
        limits.check("ops_alert_sources_max", len(self._sources) + 1)
        self._sources[name] = source
        limits.observe("ops_alert_sources_max", len(self._sources))

    # -- one evaluation ------------------------------------------------------------------------------------------

    async def evaluate(self) -> Changes:
        """Sample, find the conditions, move the alerts on, log and save them; returns what changed."""
        if not self._loaded:
            async with self.pool.acquire() as conn:
                self.book.load(await store.load_open(conn))
            self._loaded = True
        now_ms = self._now_ms()
        await self.registry.measure()  # the probed limits (tables, work areas, disk, pool) measured fresh
        self.capacity.sample(now_ms)
        found = [("limits", c) for c in rules.limit_usage(self.registry)]
        found += [("limits", c) for c in rules.limit_forecasts(self.capacity.snapshot().forecasts, self.policy, now_ms)]
        found += [("hub", c) for c in self._error_ratios(now_ms)]
        failed: list[str] = []
        for name, source in list(self._sources.items()):
            try:
                found += [(name, c) for c in await self._ask(source)]
            except Exception as exc:
                failed.append(name)
                found.append(("ops", Condition("source_failed", "ops", name, Severity.MAJOR,
                                               truncate(f"ops: alert source {name} failed: {_reason(exc)}"))))
        changes = self.book.evaluate(found, failed, now_ms)
        _log(changes)
        await self._save(changes)
        return changes

    def _error_ratios(self, now_ms: int) -> list[Condition]:
        if self._call_counts is None:
            return []
        counts = self._call_counts()
        interval = rules.interval_counts(self._calls_before, counts)
        interval_s = max(1, (now_ms - self._calls_at_ms) // 1000)
        self._calls_before, self._calls_at_ms = counts, now_ms
        return rules.error_ratios(interval, self.policy, interval_s)

    @staticmethod
    async def _ask(source: AlertSource) -> list[Condition]:
        async with asyncio.timeout(SOURCE_TIMEOUT_S):
            conditions = await source()
        if not isinstance(conditions, list) or not all(isinstance(c, Condition) for c in conditions):
            raise TypeError("an alert source answers a list of Condition")
        if len(conditions) > SOURCE_CONDITIONS.maximum:
            raise LimitReached(SOURCE_CONDITIONS, len(conditions))
        return conditions

    async def _save(self, changes: Changes) -> None:
        """Write what changed (and what an earlier failed write left); prune the history. A failed write keeps the
        alerts for the next evaluation: alerting goes on while the database is away."""
        for alert in changes.changed():
            self._unsaved[alert.id] = alert
        try:
            async with self.pool.acquire() as conn:
                await store.save(conn, list(self._unsaved.values()))
                kept = await store.prune_history(conn, ALERT_HISTORY_MAX)
        except Exception as exc:
            self._forget_oldest_unsaved()
            telemetry.EVALUATIONS.labels(outcome="unsaved").inc()
            log.error("alerts_not_saved", unsaved=len(self._unsaved), error=_reason(exc))
            return
        self._unsaved.clear()
        telemetry.EVALUATIONS.labels(outcome="ok").inc()
        limits.observe("ops_alert_history_max", kept)
        limits.observe("ops_open_alerts_max", len(self.book.open))
        for severity in Severity:
            telemetry.OPEN_ALERTS.labels(severity=severity.value).set(
                sum(a.severity is severity for a in self.book.open.values()))

    def _forget_oldest_unsaved(self) -> None:
        """Resolved alerts waiting for the database beyond the history it keeps would be pruned at once anyway."""
        resolved = sorted((a for a in self._unsaved.values() if a.state is AlertState.RESOLVED),
                          key=lambda a: a.resolved_at_ms or 0)
        for alert in resolved[: max(0, len(resolved) - ALERT_HISTORY_MAX)]:
            del self._unsaved[alert.id]

    # -- reads -----------------------------------------------------------------------------------------------------

    async def list_alerts(self, state: AlertState | None, limit: int, offset: int) -> list[Alert]:
        async with self.pool.acquire() as conn:
            return await store.list_alerts(conn, state, limit, offset)

    def forecast(self, name: str) -> Forecast:
        """When the limit `name` fills at its current trend (KeyError when no such limit is declared)."""
        return self.capacity.forecast(name)

    def capacity_snapshot(self) -> Snapshot:
        """Every limit's usage, ratio, slope per hour and time to full, as of the latest sample."""
        return self.capacity.snapshot()

    def _now_ms(self) -> int:
        return self.clock.now_ns() // 1_000_000


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {SOURCE_TIMEOUT_S:g} s"
    return repr(exc)


def _fields(alert: Alert) -> dict[str, Any]:
    return {"alert_id": format_id(alert.id), "key": alert.key, "rule": alert.rule, "component": alert.component,
            "subject": alert.subject, "severity": alert.severity.value, "message": alert.message,
            "source": alert.source, "count": alert.count}


def _log(changes: Changes) -> None:
    for alert in changes.opened:
        log.warning("alert_opened", **_fields(alert))
    for alert in changes.escalated:
        log.warning("alert_escalated", **_fields(alert))
    for alert in changes.resolved:
        log.info("alert_resolved", **_fields(alert))
    if changes.not_opened:
        log.error("alerts_not_opened", limit="ops_open_alerts_max", maximum=limits.get("ops_open_alerts_max").maximum,
                  conditions=len(changes.not_opened), keys=[c.key for c in changes.not_opened[:10]])


async def run_evaluations(ops: Ops) -> None:
    """Evaluate every `interval_s` for the life of the process; a failed evaluation is logged, the next one tries
    again. Cancel the task to stop it."""
    while True:
        try:
            await ops.evaluate()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            telemetry.EVALUATIONS.labels(outcome="failed").inc()
            log.error("alert_evaluation_failed", error=repr(exc))
        await asyncio.sleep(ops.interval_s)
