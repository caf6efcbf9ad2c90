"""The operations layer (統合運用基盤): capacity forecasts of every named limit and deduplicated alerts.

Another context reports its own conditions by registering an `AlertSource` with the `Ops` of the process
(`ops.register_source("batch", source)`): an async callable answering the `Condition`s that hold now.
"""

from kanjo.ops.console import ConsoleError, alerts_table, capacity_table, fetch
from kanjo.ops.forecast import Capacity, Forecast, Snapshot
from kanjo.ops.model import Alert, AlertBook, AlertState, Changes, Condition, Severity
from kanjo.ops.rules import AlertPolicy
from kanjo.ops.service import EVALUATION_INTERVAL_S, AlertSource, Ops, run_evaluations

__all__ = [
    "EVALUATION_INTERVAL_S",
    "Alert",
    "AlertBook",
    "AlertPolicy",
    "AlertSource",
    "AlertState",
    "Capacity",
    "Changes",
    "Condition",
    "ConsoleError",
    "Forecast",
    "Ops",
    "Severity",
    "Snapshot",
    "alerts_table",
    "capacity_table",
    "fetch",
    "run_evaluations",
]
