"""Runs one drill by name: on the kanjo named by URL, or on one started here on a fresh database; its JSON object."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kanjo.drills.batch_overrun import BatchOverrunOptions, run_batch_overrun
from kanjo.drills.hot_account import HotAccountOptions, run_hot_account
from kanjo.drills.model import NetworkFlapOptions, ProductDownOptions
from kanjo.drills.month_end_bulk import MonthEndBulkOptions, run_month_end_bulk
from kanjo.drills.network_flap import run_network_flap
from kanjo.drills.product_down import run_product_down
from kanjo.drills.server import DrillError, Target, kanjo_target
from kanjo.platform.logging import ensure_logging

Options = ProductDownOptions | NetworkFlapOptions | MonthEndBulkOptions | HotAccountOptions | BatchOverrunOptions
DRILLS: dict[str, tuple[type[Any], Callable[[Any, Target], Awaitable[dict[str, Any]]]]] = {
    "product-down": (ProductDownOptions, run_product_down),
    "network-flap": (NetworkFlapOptions, run_network_flap),
    "month-end-bulk": (MonthEndBulkOptions, run_month_end_bulk),
    "hot-account": (HotAccountOptions, run_hot_account),
    "batch-overrun": (BatchOverrunOptions, run_batch_overrun),
}


async def run_drill(name: str, options: Options, *, url: str | None = None, server_dsn: str | None = None,
                    database: str | None = None) -> dict[str, Any]:
    """The drill's report. A drill that cannot build its situation answers {"drill", "passed": false, "error"}."""
    options_type, drill = DRILLS[name]
    if not isinstance(options, options_type):
        raise TypeError(f"drill {name} takes {options_type.__name__}")
    options.check()
    ensure_logging()  # structlog's default prints to stdout, which carries only the drill's JSON object
    env = {"KANJO_ATM_ACK_TIMEOUT_S": str(options.ack_timeout_s)} if isinstance(options, NetworkFlapOptions) else {}
    env.update(getattr(options, "server_env", dict)())  # what a drill asks of the kanjo it starts
    load_before = os.getloadavg()[0]
    try:
        async with kanjo_target(url=url, server_dsn=server_dsn, env=env,
                                database=database or f"kanjo_drill_{name.replace('-', '_')}") as target:
            report = await drill(options, target)
    except DrillError as e:
        return {"drill": name, "passed": False, "error": str(e)}
    _keep_log_if_failed(report, target.log_path)
    report["machine"] = {"cpus": os.cpu_count(), "load_average_1m_before": round(load_before, 2),
                         "load_average_1m_after": round(os.getloadavg()[0], 2)}
    return report


def _keep_log_if_failed(report: dict[str, Any], log_path: Path | None) -> None:
    """The server's log is evidence when a criterion failed: its path goes into the report; otherwise it goes."""
    if log_path is None:
        return
    if report.get("passed"):
        log_path.unlink(missing_ok=True)
    else:
        report["server_log"] = str(log_path)
