"""Structured logs: one JSON object per line (or a plain console line in development), never a rich dump.

Log volume is a limit like any other (`log_bytes_per_day_max`): the bytes written in the UTC day are measured, so
ops forecasts and alerts on them; past the maximum, debug and info lines are left out (counted in
`kanjo_log_lines_dropped_total`, announced by one warning) while warnings and errors are still written — a flood of
routine lines cannot fill the volume the journal keeps, and nothing else in the process notices.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

import structlog
from prometheus_client import Counter

from kanjo.kernel.limits import limits

LOG_BYTES_PER_DAY = limits.declare(
    "log_bytes_per_day_max", 4 * 1024**3, "bytes",
    "log lines one process writes in a UTC day, its share of the journal's volume; past it only warnings and"
    " errors are written (set to the volume the log shipper and retention allow)",
    adjustable=True,
)
LINES_DROPPED = Counter("kanjo_log_lines_dropped", "debug and info lines left out: the day's log volume was reached")
SECONDS_PER_DAY = 86_400


class LogVolume:
    """The bytes written today; whether a line of a droppable level still fits."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.day = -1
        self.bytes = 0
        self.dropped = 0

    def admit(self, size: int, droppable: bool) -> tuple[bool, bool]:
        """(write it, announce the limit now): counts what is written; the first line left out of a day is
        announced once."""
        day = int(self._clock() // SECONDS_PER_DAY)
        if day != self.day:
            self.day, self.bytes, self.dropped = day, 0, 0
        if droppable and self.bytes + size > limits.get(LOG_BYTES_PER_DAY.name).maximum:
            self.dropped += 1
            LINES_DROPPED.inc()
            return False, self.dropped == 1
        self.bytes += size
        limits.observe(LOG_BYTES_PER_DAY.name, self.bytes)
        return True, False


VOLUME = LogVolume()


def _write(message: str, droppable: bool) -> None:
    written, announce = VOLUME.admit(len(message.encode("utf-8", "replace")) + 1, droppable)
    if announce:
        _print(json.dumps({"event": "log_volume_limit_reached", "level": "warning", "limit": LOG_BYTES_PER_DAY.name,
                           "maximum": limits.get(LOG_BYTES_PER_DAY.name).maximum, "usage": VOLUME.bytes,
                           "then": "debug and info lines are left out until the next UTC day"}))
    if written:
        _print(message)


def _print(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except (ValueError, OSError):
        pass  # stderr closed: a log line is never worth failing the caller


class _StderrLogger:
    """Writes each line to whatever sys.stderr is at that moment (test runners swap it), within the day's volume."""

    def msg(self, message: str) -> None:
        _write(message, True)

    def warning(self, message: str) -> None:
        _write(message, False)

    debug = info = log = msg
    warn = error = critical = exception = fatal = failure = err = warning


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def ensure_logging() -> None:
    """Library entry points call this: configure once, to stderr, unless the process already did."""
    if not structlog.is_configured():
        configure_logging(json_lines=False)


def configure_logging(level: str = "info", *, json_lines: bool = True) -> None:
    """Cheap, bounded log records: tracebacks as text, no local variables, no colour codes in files."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_lines
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            (structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
             if json_lines else structlog.processors.format_exc_info),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
