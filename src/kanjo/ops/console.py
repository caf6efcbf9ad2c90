"""What `kanjo alerts` and `kanjo capacity` print: a running kanjo's alerts and capacity forecasts, read over HTTP
and laid out as tables."""

from __future__ import annotations

from typing import Any

import httpx
from rich.table import Table

HTTP_TIMEOUT_S = 10.0  # two reads of a running kanjo: a slower answer is a kanjo in trouble, said as such


class ConsoleError(RuntimeError):
    """The running kanjo could not be read: not reachable, or it refused the request (the reason is given)."""


def fetch(url: str, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
    """GET `path` of the kanjo at `url`; its JSON answer, or `ConsoleError` saying why not."""
    target = url.rstrip("/") + path
    try:
        response = httpx.get(target, params=params, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ConsoleError(f"cannot read {target}: {exc!r} (is kanjo running there?)") from None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else response.text[:200]
        raise ConsoleError(f"{target} answered {response.status_code}: {message}")
    return body


def alerts_table(body: dict[str, Any]) -> Table:
    table = Table(title=f"alerts ({body['state']}){' — more: use --offset' if body.get('more') else ''}")
    for column in ("severity", "state", "component", "subject", "count", "first seen", "last seen", "message"):
        table.add_column(column, justify="right" if column == "count" else "left", overflow="fold")
    for a in body["alerts"]:
        table.add_row(a["severity"], a["state"], a["component"], a["subject"], f"{a['count']:,}", a["first_seen"],
                      a["last_seen"], a["message"])
    return table


def capacity_table(body: dict[str, Any]) -> Table:
    """Fullest first."""
    table = Table(title=f"capacity (sampled {body['sampled_at'] or 'not yet'})")
    for column in ("limit", "usage", "maximum", "unit", "used", "per hour", "full in"):
        table.add_column(column, justify="left" if column in ("limit", "unit") else "right")
    for f in sorted(body["limits"], key=lambda f: (-f["usage_ratio"], f["name"])):
        slope = "" if f["slope_per_hour"] is None else f"{f['slope_per_hour']:+,.1f}"
        full_in = "" if f["time_to_full_s"] is None else _duration(f["time_to_full_s"])
        table.add_row(f["name"], f"{f['usage']:,}", f"{f['maximum']:,}", f["unit"], f"{f['usage_ratio']:.1%}", slope,
                      full_in)
    return table


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    return f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min"
