"""The link between the ATMs and kanjo as a real TCP proxy on 127.0.0.1 that a drill takes down and brings back.

Going down resets every open connection on both sides (RST: requests and answers in flight are lost, the server may
have done the work). While down, new connections are refused (the listening socket is closed: ECONNREFUSED) or
blackholed (accepted, everything sent on them is swallowed and nothing ever comes back, even after the link returns:
the device waits out its own timeout). Coming back up, new connections go through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from kanjo.drills.limits import PROXY_CONNECTIONS_MAX

LOOPBACK = "127.0.0.1"
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, not FIN


@dataclass(slots=True)
class LinkCounters:
    flaps: int = 0
    connections_accepted: int = 0
    connections_reset: int = 0  # open connections reset when the link went down (each a client and its upstream)
    connections_blackholed: int = 0  # accepted while down: never answered, closed when the device gives up
    connections_over_limit: int = 0
    upstream_failures: int = 0
    bytes_to_server: int = 0
    bytes_to_client: int = 0
    down_s: list[tuple[float, float]] = field(default_factory=list)  # [went down, came up) in perf_counter s

    def as_dict(self) -> dict[str, object]:
        return {"flaps": self.flaps, "connections_accepted": self.connections_accepted,
                "connections_reset": self.connections_reset, "connections_blackholed": self.connections_blackholed,
                "connections_over_limit": self.connections_over_limit, "upstream_failures": self.upstream_failures,
                "bytes_to_server": self.bytes_to_server, "bytes_to_client": self.bytes_to_client,
                "down_ms_total": round(sum(end - start for start, end in self.down_s) * 1000, 1)}


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close with RST: the peer reads ECONNRESET, whatever it had in flight is lost."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()  # type: ignore[attr-defined]


class _Pair(asyncio.Protocol):
    """One ATM-side connection and its connection to kanjo; bytes copied both ways while the link is up."""

    def __init__(self, link: FlappingLink) -> None:
        self.link = link
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.pending: list[bytes] = []  # from the client before the upstream connection is made
        self.blackholed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        self.link.accepted(self)

    def data_received(self, data: bytes) -> None:
        if self.blackholed:
            return  # swallowed: the network lost it
        self.link.counters.bytes_to_server += len(data)
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.forget(self)
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.close()

    def to_client(self, data: bytes) -> None:
        self.link.counters.bytes_to_client += len(data)
        if self.client is not None and not self.client.is_closing():
            self.client.write(data)

    def upstream_made(self, transport: asyncio.Transport) -> None:
        self.upstream = transport
        for data in self.pending:
            transport.write(data)
        self.pending.clear()

    def reset(self) -> None:
        _reset(self.upstream)
        _reset(self.client)


class _Upstream(asyncio.Protocol):
    def __init__(self, pair: _Pair) -> None:
        self.pair = pair

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pair.upstream_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.pair.to_client(data)

    def connection_lost(self, exc: Exception | None) -> None:
        client = self.pair.client
        if client is not None and not client.is_closing():
            client.close()


class FlappingLink:
    """127.0.0.1:`port` → 127.0.0.1:`upstream_port`; `down()` and `up()` flap it (mode "refuse" or "blackhole")."""

    def __init__(self, upstream_port: int, mode: str) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.port = 0
        self.is_up = True
        self.closed = False
        self.counters = LinkCounters()
        self._server: asyncio.AbstractServer | None = None
        self._pairs: set[_Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        await self._listen()
        return self.port

    async def close(self) -> None:
        """For good: the listener closed, every connection reset."""
        self.closed = True
        self.is_up = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._pairs):
            pair.reset()
        for task in list(self._tasks):
            task.cancel()

    async def down(self) -> None:
        """Reset every connection; refuse or blackhole new ones until `up()`."""
        if not self.is_up:
            return
        self.is_up = False
        self.counters.flaps += 1
        self.counters.down_s.append((time.perf_counter(), float("nan")))
        if self.mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._pairs):
            pair.reset()
            self.counters.connections_reset += 1

    async def up(self) -> None:
        if self.is_up or self.closed:
            return
        if self._server is None:
            await self._listen()
        self.is_up = True
        went_down, _ = self.counters.down_s[-1]
        self.counters.down_s[-1] = (went_down, time.perf_counter())

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Pair(self), LOOPBACK, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    # -- called by the connections ---------------------------------------------------------------------------

    def accepted(self, pair: _Pair) -> None:
        self.counters.connections_accepted += 1
        if len(self._pairs) >= PROXY_CONNECTIONS_MAX:
            self.counters.connections_over_limit += 1
            _reset(pair.client)
            return
        self._pairs.add(pair)
        if not self.is_up:  # only in blackhole mode: a refusing link does not listen
            pair.blackholed = True
            self.counters.connections_blackholed += 1
            return
        task = asyncio.create_task(self._connect(pair))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, pair: _Pair) -> None:
        self._pairs.discard(pair)

    async def _connect(self, pair: _Pair) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Upstream(pair), LOOPBACK, self.upstream_port)
        except OSError:
            self.counters.upstream_failures += 1
            _reset(pair.client)
            return
        if not self.is_up or pair.client is None or pair.client.is_closing():
            pair.reset()  # the link went down (or the client left) while the upstream connection was being made


async def flap(link: FlappingLink, windows: Iterable[tuple[float, float]], started_at: float) -> None:
    """Take the link down and up on the schedule ([start, end) seconds from `started_at`, a perf_counter); it is
    always up when this returns, even when cancelled."""
    try:
        for start_s, end_s in windows:
            await asyncio.sleep(max(0.0, started_at + start_s - time.perf_counter()))
            await link.down()
            await asyncio.sleep(max(0.0, started_at + end_s - time.perf_counter()))
            await link.up()
    finally:
        await link.up()
