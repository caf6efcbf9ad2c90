"""Alerts and their deduplication: a condition that holds is one open alert whose count grows, not a flood.

An alert's key is its rule, component and subject (the limit, product, partition or job). While a condition with
that key holds, the open alert's `count` and `last_seen` move on and its severity follows the condition; the first
evaluation without it resolves the alert (unless the source that reports it failed: then nothing is known and the
alert stays as it is); a later recurrence opens a new alert. Pure: time is given in milliseconds, ids by the caller.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kanjo.kernel.ids import new_id
from kanjo.ops.limits import OPEN_ALERTS_MAX

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a rule, a component, a source
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")  # a limit, a product, a partition, a job…
MESSAGE_CHARS_MAX = 500


class Severity(enum.StrEnum):
    WARNING = "warning"  # look at it today
    MAJOR = "major"  # look at it now
    CRITICAL = "critical"  # customers are or will shortly be affected


SEVERITY_RANK = {Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


class AlertState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Condition:
    """Something wrong now, as a rule or a source sees it. The message names the component and what is wrong."""

    rule: str  # snake_case: limit_usage, product_error_ratio, job_overrun…
    component: str  # the component at fault: hub, batch, ops, a context…
    subject: str  # the limit, product, partition or job
    severity: Severity
    message: str

    def __post_init__(self) -> None:
        for name in ("rule", "component"):
            if not isinstance(getattr(self, name), str) or not NAME.match(getattr(self, name)):
                raise ValueError(f"a condition's {name} is snake_case, 1 to 64 characters: {getattr(self, name)!r}")
        if not isinstance(self.subject, str) or not SUBJECT.match(self.subject):
            raise ValueError(f"a condition's subject is 1 to 128 letters, digits and _.:/-: {self.subject!r}")
        object.__setattr__(self, "severity", Severity(self.severity))  # "major" from a source becomes the enum
        if not isinstance(self.message, str) or not 1 <= len(self.message) <= MESSAGE_CHARS_MAX:
            raise ValueError(f"a condition's message is 1 to {MESSAGE_CHARS_MAX} characters")

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.component}/{self.subject}"


@dataclass(slots=True)
class Alert:
    id: int
    key: str
    rule: str
    component: str
    subject: str
    source: str  # who reports it: a built-in rule set (limits, hub, ops) or a registered source
    severity: Severity
    message: str
    state: AlertState
    first_seen_ms: int
    last_seen_ms: int
    resolved_at_ms: int | None
    count: int  # evaluations in which the condition held


@dataclass(slots=True)
class Changes:
    """What one evaluation did: alerts opened, continued (escalated ones among them), resolved, and the conditions
    that found no room (`ops_open_alerts_max`)."""

    opened: list[Alert] = field(default_factory=list)
    continued: list[Alert] = field(default_factory=list)
    escalated: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    not_opened: list[Condition] = field(default_factory=list)

    def changed(self) -> list[Alert]:
        return [*self.opened, *self.continued, *self.resolved]


def truncate(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS_MAX else text[: MESSAGE_CHARS_MAX - 1] + "…"


class AlertBook:
    """The open alerts, one per key, and the rule that moves them from one evaluation to the next."""

    def __init__(self, *, open_max: int = OPEN_ALERTS_MAX, make_id: Callable[[], int] = new_id) -> None:
        if not 1 <= open_max <= OPEN_ALERTS_MAX:
            raise ValueError(f"open_max must be in 1..{OPEN_ALERTS_MAX} (ops_open_alerts_max)")
        self.open: dict[str, Alert] = {}
        self._open_max = open_max
        self._make_id = make_id

    def load(self, alerts: Iterable[Alert]) -> None:
        """The open alerts saved before a restart: they continue, or resolve at the first evaluation."""
        for alert in alerts:
            if alert.state is AlertState.OPEN:
                self.open[alert.key] = alert

    def evaluate(self, found: Iterable[tuple[str, Condition]], failed_sources: Iterable[str], now_ms: int) -> Changes:
        """`found`: (source, condition) pairs of this evaluation; `failed_sources`: sources that could not say, whose
        open alerts are kept as they are."""
        current: dict[str, tuple[str, Condition]] = {}
        for source, condition in found:
            seen = current.get(condition.key)
            if seen is None or SEVERITY_RANK[condition.severity] > SEVERITY_RANK[seen[1].severity]:
                current[condition.key] = (source, condition)
        changes = Changes()
        for key, (source, condition) in current.items():
            alert = self.open.get(key)
            if alert is not None:
                self._continue(alert, condition, now_ms, changes)
            elif len(self.open) >= self._open_max:
                changes.not_opened.append(condition)
            else:
                alert = self._new(source, condition, now_ms)
                self.open[key] = alert
                changes.opened.append(alert)
        failed = set(failed_sources)
        for key in [k for k, a in self.open.items() if k not in current and a.source not in failed]:
            alert = self.open.pop(key)
            alert.state, alert.resolved_at_ms = AlertState.RESOLVED, now_ms
            changes.resolved.append(alert)
        return changes

    @staticmethod
    def _continue(alert: Alert, condition: Condition, now_ms: int, changes: Changes) -> None:
        if SEVERITY_RANK[condition.severity] > SEVERITY_RANK[alert.severity]:
            changes.escalated.append(alert)
        alert.severity, alert.message = condition.severity, condition.message
        alert.count += 1
        alert.last_seen_ms = max(alert.last_seen_ms, now_ms)
        changes.continued.append(alert)

    def _new(self, source: str, condition: Condition, now_ms: int) -> Alert:
        return Alert(id=self._make_id(), key=condition.key, rule=condition.rule, component=condition.component,
                     subject=condition.subject, source=source, severity=condition.severity,
                     message=condition.message, state=AlertState.OPEN, first_seen_ms=now_ms, last_seen_ms=now_ms,
                     resolved_at_ms=None, count=1)
