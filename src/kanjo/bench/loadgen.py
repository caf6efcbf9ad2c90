"""Open-loop HTTP/1.1 load generator: a fixed offered rate over keep-alive connections, latency from the scheduled send.

Sends are scheduled at exact intervals of 1/rate whatever the server answers; a send waits for a free
connection if all are busy, and its latency runs from its scheduled time, so queueing is counted (no
coordinated omission). The connection is the raw keep-alive client of `kanjo.platform.http_client`
(re-exported here: `loadgen.HttpConnection`, `loadgen.Response`, `loadgen.ProtocolError`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kanjo.platform.http_client import HttpConnection, ProtocolError, Response

CONNECTIONS_MAX = 256  # each is a socket and a task on the server too
BACKLOG_S_MAX = 10  # scheduled sends waiting for a connection, in seconds of offered load; beyond: dropped
REQUEST_TIMEOUT_S = 30.0  # a request without an answer by then counts as an error
DRAIN_TIMEOUT_S = 60.0  # after the last scheduled send, how long answers are awaited
START_DELAY_S = 0.05  # first send a little after the connections are open
SCHEDULER_TICK_S = 0.001  # shortest sleep: uvloop rounds shorter timers to 0, which would spin the scheduler


@dataclass(slots=True)
class OpenLoopResult:
    requests_sent: int = 0
    requests_accepted: int = 0  # answered and accepted by the caller's check
    requests_unanswered: int = 0  # transport failures, timeouts, dropped from the backlog, never sent
    errors: int = 0  # unanswered, plus answers the check refused
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)  # of answered requests
    latencies_s: list[float] = field(default_factory=list)  # of every answered request
    elapsed_s: float = 0.0  # first scheduled send to last answer


async def run_open_loop(host: str, port: int, path: str, bodies: Sequence[bytes], *, rate_per_s: float,
                        connections: int, accept: Callable[[Response], bool]) -> OpenLoopResult:
    """POST every body once, body i at start + i / rate_per_s; `accept` says whether an answer is a success."""
    if not 0 < connections <= CONNECTIONS_MAX:
        raise ValueError(f"connections must be 1..{CONNECTIONS_MAX}")
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    pool = [HttpConnection(host, port) for _ in range(connections)]
    raw = [pool[0].request_bytes("POST", path, body) for body in bodies]
    result = OpenLoopResult()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue(
        maxsize=max(connections, int(rate_per_s * BACKLOG_S_MAX))
    )
    try:
        for conn in pool:
            await conn.open()
        start = time.perf_counter() + START_DELAY_S
        last_answer = [start]
        workers = [asyncio.create_task(_worker(conn, raw, queue, result, accept, last_answer)) for conn in pool]
        await _schedule(queue, len(raw), rate_per_s, start, result)
        await _drain(queue, workers)
        lost = result.requests_sent - len(result.latencies_s) - result.requests_unanswered
        result.requests_unanswered += lost
        result.errors += lost
        result.elapsed_s = last_answer[0] - start
    finally:
        for conn in pool:
            await conn.close()
    return result


async def _drain(queue: asyncio.Queue[tuple[int, float] | None], workers: list[asyncio.Task[None]]) -> None:
    """Let the workers finish what is queued; whatever is left after DRAIN_TIMEOUT_S stays unanswered."""
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)  # a bug in a worker surfaces here
    except TimeoutError:
        return  # the run's time is up: unanswered requests are counted by the caller
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def _schedule(queue: asyncio.Queue[tuple[int, float] | None], total: int, rate_per_s: float,
                    start: float, result: OpenLoopResult) -> None:
    """Release send i at start + i / rate, catching up in one go after a late wake-up.

    A send released late still has its latency counted from its scheduled time. perf_counter, not
    loop.time(): uvloop's clock has millisecond resolution.
    """
    i = 0
    while i < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate_per_s) + 1) if now >= start else 0
        while i < due:
            result.requests_sent += 1
            try:
                queue.put_nowait((i, start + i / rate_per_s))
            except asyncio.QueueFull:
                result.errors += 1
                result.requests_unanswered += 1
            i += 1
        if i < total:
            await asyncio.sleep(max(SCHEDULER_TICK_S, start + i / rate_per_s - time.perf_counter()))


async def _worker(conn: HttpConnection, raw: Sequence[bytes], queue: asyncio.Queue[tuple[int, float] | None],
                  result: OpenLoopResult, accept: Callable[[Response], bool], last_answer: list[float]) -> None:
    while True:
        item = await queue.get()
        if item is None:
            return
        i, scheduled = item
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                response = await conn.send(raw[i])
        except (OSError, EOFError, TimeoutError, ProtocolError, ValueError, asyncio.LimitOverrunError):
            # IncompleteReadError is an EOFError; the connection is reopened for the next send
            result.errors += 1
            result.requests_unanswered += 1
            await conn.close()
            continue
        answered = time.perf_counter()
        last_answer[0] = max(last_answer[0], answered)
        result.latencies_s.append(answered - scheduled)
        result.statuses[response.status] += 1
        if accept(response):
            result.requests_accepted += 1
        else:
            result.errors += 1
