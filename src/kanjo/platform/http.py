"""HTTP plumbing shared by every context: error shapes, body-size limit, metrics and health routes."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kanjo.kernel.limits import LimitReached, limits

T = TypeVar("T")
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class DomainAnswers:
    """A context's domain outcomes as HTTP: unknown → 404; a business refusal (its `code`) or an illegal state
    transition ("illegal_transition") → 409 naming it. Limits (413) and an unavailable ledger (503) are left to the
    app's error handlers."""

    def __init__(self, *, not_found: tuple[type[Exception], ...], refused: tuple[type[Exception], ...]) -> None:
        self.not_found = not_found
        self.refused = refused

    async def __call__(self, coro: Awaitable[T]) -> T:
        try:
            return await coro
        except self.not_found as exc:
            raise HTTPException(404, str(exc)) from None
        except self.refused as exc:
            code = getattr(exc, "code", "illegal_transition")
            raise HTTPException(409, {"error": code, "message": str(exc)}) from None

log = structlog.get_logger("kanjo.http")

BODY_BYTES_MAX = limits.declare(
    "http_request_body_bytes_max", 8 * 1024 * 1024, "bytes",
    "a full batch of 8,190 transfers is about 3.5 MB of JSON; anything larger is refused before parsing",
)


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """Every error kanjo answers: a stable machine name, a sentence for people, and details."""

    error: str = Field(description="machine-readable: invalid_field, malformed_json, limit_reached, busy, …")
    message: str
    fields: list[FieldError] | None = None
    limit: str | None = Field(default=None, description="the named limit reached (413)")
    maximum: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "malformed JSON"},
    404: {"model": Problem, "description": "not found"},
    409: {"model": Problem, "description": "conflicts with the state of the resource"},
    413: {"model": Problem, "description": "over a named limit (the limit is named)"},
    422: {"model": Problem, "description": "an invalid field (the field is named); nothing changed"},
    503: {"model": Problem, "description": "busy or unavailable: retry after Retry-After with the same ids"},
}


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson (fast, strict: no NaN, no silent float conversion of big ints)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# Request lists whose length is a named limit: over it is 413 naming the limit, not 422.
BATCH_LIST_LIMITS = {
    ("body", "transfers"): "ledger_events_per_batch_max",
    ("body", "accounts"): "ledger_events_per_batch_max",
    ("body", "ids"): "ledger_lookup_ids_max",
}


def problem(status: int, error: str, message: str, **extra: Any) -> FastJSONResponse:
    headers = extra.pop("headers", None)
    return FastJSONResponse({"error": error, "message": message, **extra}, status_code=status, headers=headers)


class BodySizeLimit:
    """Refuses request bodies over `http_request_body_bytes_max` with 413, without reading them whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        maximum = BODY_BYTES_MAX.maximum
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                if int(value) > maximum:
                    await _too_large(scope, receive, send, int(value))
                    return
                limits.observe(BODY_BYTES_MAX.name, int(value))
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > maximum:
                    raise _BodyTooLarge(seen)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge as exc:
            await _too_large(scope, receive, send, exc.size)


class _BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _too_large(scope: Scope, receive: Receive, send: Send, size: int) -> None:
    await _too_large_problem(size)(scope, receive, send)


def _too_large_problem(size: int) -> FastJSONResponse:
    return FastJSONResponse(too_large_body(size), status_code=413)


# -- the bodies of the errors, for the framework's handlers and for paths served in front of it ------------------

RETRY_SOON = {"Retry-After": "1"}
FIELD_ERRORS_MAX = 50


def too_large_body(size: int) -> dict[str, Any]:
    exc = LimitReached(BODY_BYTES_MAX, size)
    return {"error": "limit_reached", "message": str(exc), "limit": BODY_BYTES_MAX.name,
            "maximum": BODY_BYTES_MAX.maximum}


def invalid_body(errors: list[Any]) -> tuple[int, dict[str, Any]]:
    """A body that failed validation: 400 when it is not JSON, 413 when a batch list passes its named limit, else
    422 naming the fields (the framework's "body" prefix left out)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, {"error": "malformed_json", "message": "the request body is not valid JSON"}
    for e in errors:
        limit_name = BATCH_LIST_LIMITS.get(tuple(e.get("loc", ())))
        if e.get("type") == "too_long" and limit_name:
            limit = limits.get(limit_name)
            size = (e.get("ctx") or {}).get("actual_length") or limit.maximum + 1
            return 413, {"error": "limit_reached", "message": str(LimitReached(limit, size)), "limit": limit.name,
                         "maximum": limit.maximum}
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
              for e in errors[:FIELD_ERRORS_MAX]]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    return 422, {"error": "invalid_field", "message": f"{first['field']}: {first['message']}", "fields": fields}


def busy_body(exc: Exception) -> dict[str, Any]:
    return {"error": "busy", "message": f"{exc}; retry with the same ids"}


def unavailable_body(exc: Exception) -> dict[str, Any]:
    return {"error": "unavailable", "message": f"{exc}; the outcome is unknown: retry with the same ids"}


def unexpected_body(path: str, exc: Exception) -> dict[str, Any]:
    """Logged in full; the caller learns only that it failed."""
    log.error("http.unexpected_error", path=path, error=repr(exc), exc_info=exc)
    return {"error": "internal_error", "message": "kanjo could not complete the request; it has been logged"}


def install_error_handlers(app: FastAPI, busy: tuple[type[Exception], ...],
                           unavailable: tuple[type[Exception], ...]) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> FastJSONResponse:
        status, body = invalid_body(list(exc.errors()))
        return FastJSONResponse(body, status_code=status)

    @app.exception_handler(LimitReached)
    async def _limit(request: Request, exc: LimitReached) -> FastJSONResponse:
        return problem(413, "limit_reached", str(exc), limit=exc.limit.name, maximum=exc.limit.maximum)

    for kind in busy:
        @app.exception_handler(kind)
        async def _busy(request: Request, exc: Exception) -> FastJSONResponse:
            return FastJSONResponse(busy_body(exc), status_code=503, headers=RETRY_SOON)

    for kind in unavailable:
        @app.exception_handler(kind)
        async def _unavailable(request: Request, exc: Exception) -> FastJSONResponse:
            return FastJSONResponse(unavailable_body(exc), status_code=503, headers=RETRY_SOON)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        if isinstance(exc.__cause__, _BodyTooLarge):  # FastAPI turns an error while reading the body into a 400
            return _too_large_problem(exc.__cause__.size)
        if isinstance(exc.detail, dict) and "error" in exc.detail:  # a context's own refusal code
            return problem(exc.status_code, str(exc.detail["error"]), str(exc.detail.get("message", "")),
                           headers=getattr(exc, "headers", None))
        names = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
                 422: "invalid_field"}
        return problem(exc.status_code, names.get(exc.status_code, "error"), str(exc.detail),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> FastJSONResponse:
        return FastJSONResponse(unexpected_body(request.url.path, exc), status_code=500)


class LimitsCollector:
    """Exports every declared limit's usage ratio and maximum (DESIGN §1.5)."""

    def collect(self):  # type: ignore[no-untyped-def]
        ratio = GaugeMetricFamily("kanjo_limit_usage_ratio", "usage / maximum of a named limit", labels=["limit"])
        maximum = GaugeMetricFamily("kanjo_limit_maximum", "the declared maximum of a named limit",
                                    labels=["limit", "unit"])
        for row in limits.snapshot():
            ratio.add_metric([str(row["name"])], float(row["usage_ratio"]))  # type: ignore[arg-type]
            maximum.add_metric([str(row["name"]), str(row["unit"])], float(row["maximum"]))  # type: ignore[arg-type]
        yield ratio
        yield maximum


_collector_registered = False


def install_operational_routes(app: FastAPI) -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(LimitsCollector())
        _collector_registered = True

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/limits", tags=["operations"], summary="Every named limit with its maximum, reason and usage")
    async def limits_view() -> dict[str, Any]:
        return {"limits": limits.snapshot()}
