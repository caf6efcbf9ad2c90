"""The kanjo a drill works on: a separate `kanjo up` process on a fresh database (faults enabled), or an already
running one named by URL on 127.0.0.1; and the operations calls a drill makes to it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from kanjo.platform import processes
from kanjo.platform.http_client import HttpConnection, ProtocolError

LOOPBACK = ("127.0.0.1", "localhost")
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CALL_TIMEOUT_S = 120.0  # the longest operations call: seeding a page of customers, or verifying the whole bank


class DrillError(RuntimeError):
    """The drill could not build its situation (no server, no route, a call refused): not a failed criterion."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the kanjo under drill listens (always the loopback interface)."""

    host: str
    port: int
    log_path: Path | None = None  # the log of a kanjo started here (kept for the drill to keep or remove)


def progress(message: str) -> None:
    """Progress goes to stderr: stdout carries only the drill's JSON object."""
    print(f"[drill] {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def kanjo_target(*, url: str | None, server_dsn: str | None, database: str,
                       env: Mapping[str, str]) -> AsyncIterator[Target]:
    """The running kanjo named by `url`, or one started here on a fresh `database` of the PostgreSQL at
    `server_dsn` with `env` added to its environment (stopped on exit)."""
    if url is not None:
        target = _parse_url(url)
        await Ops(target).require_faults_enabled()
        yield target
        return
    if server_dsn is None:
        raise DrillError("give the PostgreSQL server to create the drill's database on, or --url of a running kanjo")
    if not DATABASE_NAME.match(database):
        raise DrillError("the drill's database must be a lower-case SQL identifier")
    dsn = await processes.fresh_database(server_dsn, database, migrated=False)  # `kanjo up` migrates it
    progress(f"fresh database {database}")
    server = processes.KanjoServer(dsn, processes.free_port(), env={**env, "KANJO_FAULTS_ENABLED": "1"},
                                   label="drill", progress=progress, keep_log=True)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(server)
        except RuntimeError as e:  # `kanjo up` did not come up: the drill cannot run
            raise DrillError(str(e)) from None
        progress(f"kanjo (pid {server.process.pid if server.process else '?'}) listening on 127.0.0.1:{server.port}")
        yield Target("127.0.0.1", server.port, server.log_path)


def _parse_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or parts.port is None:
        raise DrillError(f"--url must be http://127.0.0.1:PORT (a drill floods and breaks what it targets): {url}")
    return Target("127.0.0.1", parts.port)


class Ops:
    """The drill's operations calls: each on a fresh connection (the server drops keep-alives idle through a run),
    each with a timeout; a transport failure is a `DrillError`."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def call(self, method: str, path: str, body: object = None, *,
                   timeout_s: float = CALL_TIMEOUT_S) -> tuple[int, Any]:
        conn = HttpConnection(self.target.host, self.target.port)
        raw = conn.request_bytes(method, path, None if body is None else orjson.dumps(body))
        try:
            async with asyncio.timeout(timeout_s):
                response = await conn.send(raw)
        except (OSError, EOFError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as exc:
            raise DrillError(f"{method} {path}: no answer ({exc!r})") from exc
        finally:
            await conn.close()
        try:
            return response.status, orjson.loads(response.body) if response.body else None
        except orjson.JSONDecodeError:
            return response.status, response.body[:300].decode("utf-8", "replace")

    async def expect(self, method: str, path: str, body: object = None) -> Any:
        status, answer = await self.call(method, path, body)
        if not 200 <= status < 300:
            raise DrillError(f"{method} {path}: {status} {str(answer)[:300]}")
        return answer

    async def require_faults_enabled(self) -> None:
        """A running kanjo must accept fault injection and seeding (KANJO_FAULTS_ENABLED=1): clearing a fault that
        is not there is the harmless way to ask."""
        status, answer = await self.call("DELETE", "/v1/ops/faults/time_deposits")
        if status != 200:
            raise DrillError(f"the kanjo at {self.target.host}:{self.target.port} does not take faults ({status}:"
                             f" {str(answer)[:200]}); start it with KANJO_FAULTS_ENABLED=1")

    async def verify(self) -> dict[str, Any]:
        status, answer = await self.call("GET", "/v1/ops/verify")
        if status != 200 or not isinstance(answer, dict):
            return {"ok": False, "status": status, "answer": str(answer)[:300]}
        return answer

    async def health(self) -> dict[str, Any]:
        """GET /health: 200 up or degraded, 503 down — both with the body."""
        _, answer = await self.call("GET", "/health", timeout_s=5.0)
        return answer if isinstance(answer, dict) else {"status": "unknown"}

    async def inject_fault(self, product: str, mode: str) -> None:
        await self.expect("POST", "/v1/ops/faults", {"product": product, "mode": mode})

    async def clear_fault(self, product: str) -> None:
        await self.expect("DELETE", f"/v1/ops/faults/{product}")

    async def in_doubt(self) -> dict[str, Any]:
        answer = await self.expect("GET", "/v1/atm-in-doubt")
        return answer if isinstance(answer, dict) else {}

    async def ledger_account(self, account_id: str) -> dict[str, Any]:
        answer = await self.expect("GET", f"/v1/ledger/accounts/{account_id}")
        return answer if isinstance(answer, dict) else {}
