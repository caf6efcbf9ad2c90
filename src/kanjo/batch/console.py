"""The `kanjo batch` commands' side of the wire: read and act on a running kanjo's batch over HTTP, show a date's
jobs as a table, and follow a running job with a progress bar and its estimated finish."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

TIMEOUT_S = 10.0
FOLLOW_POLL_S = 0.5


class ConsoleError(Exception):
    """The running kanjo could not be reached, or refused the request (its message is kept)."""


def call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        r = httpx.request(method, url.rstrip("/") + path, json=body, timeout=TIMEOUT_S)
    except httpx.HTTPError as e:
        raise ConsoleError(f"cannot reach kanjo at {url}: {e}") from None
    try:
        answer = r.json()
    except ValueError:
        raise ConsoleError(f"kanjo answered {r.status_code} without JSON") from None
    if r.status_code >= 400:
        detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
        message = detail.get("message", detail) if isinstance(detail, dict) else detail
        raise ConsoleError(f"{r.status_code}: {message}")
    return dict(answer)


def day_path(day: str | None, url: str) -> str:
    """The date asked for, or the one whose night is current (the oldest date not closed, else the online one)."""
    if day:
        return f"/v1/batch/days/{day}"
    days = call(url, "GET", "/v1/batch/days")
    open_days = [d["business_date"] for d in days["days"] if d["state"] != "closed"]
    return f"/v1/batch/days/{min(open_days) if open_days else days['online_date']}"


def jobs_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"{report['business_date']} — {report['state']} (online on {report['online_date']})")
    for column in ("job", "state", "held", "mandatory", "progress", "started", "eta", "overrun s", "error"):
        table.add_column(column)
    for j in report["jobs"]:
        progress = f"{j['done_items']:,}/{j['total_items']:,}" if j["total_items"] else ""
        table.add_row(j["name"], j["state"], "held" if j["held"] else "", "yes" if j["mandatory"] else "no",
                      progress, (j["started_at"] or "")[11:19], (j["eta"] or "")[11:19],
                      str(j["overrun_s"] or ""), (j["error"] or "")[:60])
    if report["gate"]:
        table.caption = "day cannot close: " + "; ".join(f"{b['job']} ({b['why']})" for b in report["gate"])
    return table


def follow(url: str, path: str) -> dict[str, Any]:
    """Poll a job until it is no longer waiting or running, with a progress bar; returns its last report."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(path.rsplit("/", 1)[-1], total=None)
        while True:
            job = call(url, "GET", path)
            progress.update(task, completed=job["done_items"], total=job["total_items"],
                            description=f"{job['name']} {job['state']}")
            if job["state"] not in ("waiting", "running") or job["held"]:
                return job
            time.sleep(FOLLOW_POLL_S)
