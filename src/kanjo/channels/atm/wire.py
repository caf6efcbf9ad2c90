"""The device protocol's hot path: the transaction messages (POST /atm/v1/…, most of the bank's traffic) served by a
thin ASGI layer in front of the web framework — no route table scan, no middleware stack; the body is validated
straight from bytes by the same models and answered by the same functions (messages.py) as the documented routes,
with the same error shapes. Everything else, the OpenAPI description of these routes included, is the framework's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from kanjo.channels.atm.api import retry_after
from kanjo.channels.atm.messages import MESSAGES
from kanjo.channels.atm.service import AtmChannel, UnknownMachine
from kanjo.platform.http import (
    BODY_BYTES_MAX,
    RETRY_SOON,
    busy_body,
    invalid_body,
    too_large_body,
    unavailable_body,
    unexpected_body,
)


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
        if isinstance(raw, int):
            return 413, too_large_body(raw), None
        model, handler = route
        try:
            message = model.model_validate_json(raw)
        except ValidationError as e:
            status, body = invalid_body(list(e.errors()))
            return status, body, None
        try:
            reply = await handler(ch, message)
        except UnknownMachine as e:
            return 404, {"error": "not_found", "message": str(e)}, None
        except self.busy as e:
            return 503, busy_body(e), RETRY_SOON
        except self.unavailable as e:
            return 503, unavailable_body(e), RETRY_SOON
        except Exception as e:
            return 500, unexpected_body("/atm/v1", e), None
        return reply.status, reply.body, retry_after(reply)


async def _read_body(receive: Receive) -> bytes | int:
    """The whole body, or the size read when it passed the named body limit (nothing more is read)."""
    maximum = BODY_BYTES_MAX.maximum
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > maximum:
            return size
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: Any, headers: dict[str, str] | None) -> None:
    payload = orjson.dumps(body)
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers.extend((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
