"""Structured logs: one JSON object per line (or a plain console line in development), never a rich dump."""

from __future__ import annotations

import logging
import sys

import structlog


class _StderrLogger:
    """Writes each line to whatever sys.stderr is at that moment (test runners swap it)."""

    def msg(self, message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (ValueError, OSError):
            pass  # stderr closed: a log line is never worth failing the caller

    debug = info = warning = warn = error = critical = exception = fatal = failure = err = log = msg


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
