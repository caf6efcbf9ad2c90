"""The device protocol's hot path: the transaction messages (POST /atm/v1/…, most of the bank's traffic) served by a
thin ASGI layer in front of the web framework — no route table scan, no middleware stack; the body is validated
straight from bytes by the same models and answered by the same functions (messages.py) as the documented routes,
with the same error shapes. Everything else, the OpenAPI description of these routes included, is the framework's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from kanjo.channels.atm.api import retry_after
from kanjo.channels.atm.messages import MESSAGES
from kanjo.channels.atm.service import AtmChannel, UnknownMachine
from kanjo.kernel.limits import LimitReached, limits

log = structlog.get_logger("kanjo.atm")
FIELD_ERRORS_MAX = 50


class AtmWire:
    """ASGI middleware: a POST to a protocol message's path is answered here when the ATM channel is up."""

    def __init__(self, app: ASGIApp, channel: Callable[[], AtmChannel | None],
                 busy: tuple[type[Exception], ...] = (), unavailable: tuple[type[Exception], ...] = ()) -> None:
        self.app = app
        self.channel = channel
        self.busy = busy
        self.unavailable = unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = MESSAGES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        ch = self.channel() if route is not None else None
        if route is None or ch is None:
            await self.app(scope, receive, send)
            return
        status, body, headers = await self._answer(ch, route, receive)
        await _respond(send, status, body, headers)

    async def _answer(self, ch: AtmChannel, route: Any, receive: Receive) -> tuple[int, Any, dict[str, str] | None]:
        raw = await _read_body(receive)
        if raw is None:
            limit = limits.get("http_request_body_bytes_max")
            return 413, {"error": "limit_reached", "message": str(LimitReached(limit, limit.maximum + 1)),
                         "limit": limit.name, "maximum": limit.maximum}, None
        model, handler = route
        try:
            message = model.model_validate_json(raw)
        except ValidationError as e:
            return _invalid(e)
        try:
            reply = await handler(ch, message)
        except UnknownMachine as e:
            return 404, {"error": "not_found", "message": str(e)}, None
        except self.busy as e:
            return 503, {"error": "busy", "message": f"{e}; retry with the same ids"}, {"Retry-After": "1"}
        except self.unavailable as e:
            return 503, {"error": "unavailable", "message": f"{e}; the outcome is unknown: retry with the same ids"}, \
                {"Retry-After": "1"}
        except Exception as e:
            log.error("http.unexpected_error", path="/atm/v1", error=repr(e), exc_info=e)
            return 500, {"error": "internal_error", "message": "kanjo could not complete the request; it has been"
                                                                 " logged"}, None
        return reply.status, reply.body, retry_after(reply)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None past the named body limit (nothing more is read)."""
    maximum = limits.get("http_request_body_bytes_max").maximum
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > maximum:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _invalid(e: ValidationError) -> tuple[int, Any, None]:
    errors = e.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return 400, {"error": "malformed_json", "message": "the request body is not valid JSON"}, None
    fields = [{"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
              for err in errors[:FIELD_ERRORS_MAX]]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    return 422, {"error": "invalid_field", "message": f"{first['field']}: {first['message']}", "fields": fields}, None


async def _respond(send: Send, status: int, body: Any, headers: dict[str, str] | None) -> None:
    payload = orjson.dumps(body)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers.extend((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
