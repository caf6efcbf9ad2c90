"""A raw keep-alive HTTP/1.1 client connection for load generators and device simulators (not for the app).

Raw asyncio streams rather than httpx: a generator shares the cores with the server and PostgreSQL, and
a hand-written keep-alive client costs a fraction of httpx's CPU per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

RESPONSE_HEADER_BYTES_MAX = 64 * 1024  # asyncio's stream limit; longer headers are a protocol error
RESPONSE_BODY_BYTES_MAX = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client understands."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=RESPONSE_HEADER_BYTES_MAX
        )

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer may already have gone
                await writer.wait_closed()

    def request_bytes(self, method: str, path: str, body: bytes | None = None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode("ascii") + b"\r\n" + (body or b"")

    async def send(self, raw_request: bytes) -> Response:
        """Send a request made by `request_bytes` and read the whole answer."""
        if not self.is_open:
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw_request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.") or len(lines[0]) < 12:
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(lines[0][9:12])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        body = await self._read_body(headers)
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Response(status, headers, body)

    async def _read_body(self, headers: dict[bytes, bytes]) -> bytes:
        assert self._reader is not None
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks: list[bytes] = []
            size_total = 0
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                size_total += size
                if size_total > RESPONSE_BODY_BYTES_MAX:
                    raise ProtocolError("response body too long")
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk[:-2])
        length = int(headers.get(b"content-length", b"0"))
        if length > RESPONSE_BODY_BYTES_MAX:
            raise ProtocolError("response body too long")
        return await self._reader.readexactly(length) if length else b""
