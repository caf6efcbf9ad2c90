"""The network between the fleet and the bank: a bounded pool of keep-alive connections shared by every ATM, the
device's timeout per message, and the fault plan (requests dropped, answers lost, delays, link down)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from kanjo.platform.http_client import HttpConnection, ProtocolError, Response
from kanjo.sim.model import QUIET, FaultDraw, FaultPlan

TRANSPORT_ERRORS = (OSError, EOFError, ProtocolError, ValueError, asyncio.LimitOverrunError)


@dataclass(frozen=True, slots=True)
class Reply:
    """One attempt's result as the device sees it: an HTTP answer (status, parsed body) or a failure."""

    status: int | None  # None: no answer at all
    answer: dict[str, Any] | None  # the JSON object, when the body was one
    failure: str | None  # "timeout" or "connection" when there was no answer

    @property
    def business(self) -> bool:
        """A well-formed 200: approved or refused, with the card's fate."""
        return (self.status == 200 and self.answer is not None
                and self.answer.get("result") in ("approved", "refused")
                and self.answer.get("card_action") in ("return", "retain"))

    @property
    def unavailable(self) -> bool:
        """The protocol's 503: the product is down or the partition busy — an answer, and the card comes back."""
        return self.status == 503 and self.answer is not None and self.answer.get("result") == "unavailable"

    def resend(self, *, when_unavailable: bool) -> bool:
        """The protocol's rule: no answer (timeout, connection error) or a 5xx → the same message again.

        A clean "unavailable" is resent only when asked (an acknowledgement: the cash is out, it must land); for
        a first message it is the answer the customer sees, with the operations that still work.
        """
        if self.status is None:
            return True
        return self.status >= 500 and (when_unavailable or not self.unavailable)

    @property
    def error_kind(self) -> str:
        """Why this is not a business answer (only meaningful when it is not)."""
        if self.status is None:
            return self.failure or "timeout"
        return "malformed" if self.status == 200 else f"status_{self.status}"


@dataclass(slots=True)
class FaultCounters:
    requests_dropped: int = 0
    answers_lost: int = 0
    requests_delayed: int = 0
    link_down: int = 0  # attempts lost (either way) in a link-down window

    def as_dict(self) -> dict[str, int]:
        return {"requests_dropped": self.requests_dropped, "answers_lost": self.answers_lost,
                "requests_delayed": self.requests_delayed, "link_down": self.link_down}


class Link:
    """Sends one attempt of one message and waits at most the device's timeout for the answer."""

    def __init__(self, host: str, port: int, *, connections: int, timeout_s: float,
                 faults: FaultPlan | None = None, started_at: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.faults = faults or FaultPlan()
        self.started_at = time.perf_counter() if started_at is None else started_at  # origin of link-down windows
        self.counters = FaultCounters()
        self._pool = [HttpConnection(host, port) for _ in range(connections)]
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for conn in self._pool:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._pool:
            await conn.close()

    def request(self, path: str, body: dict[str, Any]) -> bytes:
        """The raw request, made once per message so that every resend is byte for byte the same."""
        return self._pool[0].request_bytes("POST", path, orjson.dumps(body))

    async def attempt(self, raw_request: bytes, rng: random.Random | None) -> Reply:
        """One try: the faults drawn from `rng` (None: a quiet network) decide what the network does to it."""
        draw = QUIET if rng is None or self.faults.quiet else self.faults.draw(rng)
        deadline = time.perf_counter() + self.timeout_s
        if draw.delay_s:
            self.counters.requests_delayed += 1
            if draw.delay_s >= self.timeout_s:  # too late for this device: whatever it brings back, nobody waits
                return await _silence_until(deadline)
            await asyncio.sleep(draw.delay_s)
        if self._lost_on_the_way(draw):
            return await _silence_until(deadline)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.perf_counter())):
                response = await self._send(raw_request)
        except TimeoutError:
            return Reply(None, None, "timeout")
        except TRANSPORT_ERRORS:
            return Reply(None, None, "connection")
        if self._lost_on_the_way_back(draw):
            return await _silence_until(deadline)
        return _reply(response)

    def _lost_on_the_way(self, draw: FaultDraw) -> bool:
        if self.faults.link_down_at(time.perf_counter() - self.started_at):
            self.counters.link_down += 1
            return True
        if draw.drop_request:
            self.counters.requests_dropped += 1
            return True
        return False

    def _lost_on_the_way_back(self, draw: FaultDraw) -> bool:
        if self.faults.link_down_at(time.perf_counter() - self.started_at):
            self.counters.link_down += 1
            return True
        if draw.lose_answer:
            self.counters.answers_lost += 1
            return True
        return False

    async def _send(self, raw_request: bytes) -> Response:
        """On a connection from the pool; one that failed or timed out is closed (a late answer would follow)."""
        conn = await self._idle.get()
        try:
            return await conn.send(raw_request)
        except BaseException:
            await conn.close()  # reopened by its next send
            raise
        finally:
            self._idle.put_nowait(conn)


async def _silence_until(deadline: float) -> Reply:
    """The device hears nothing: it waits out its timeout."""
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    return Reply(None, None, "timeout")


def _reply(response: Response) -> Reply:
    try:
        answer = orjson.loads(response.body) if response.body else None
    except orjson.JSONDecodeError:
        answer = None
    return Reply(response.status, answer if isinstance(answer, dict) else None, None)
