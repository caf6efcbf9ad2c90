"""The kanjo a drill works on: a separate `kanjo up` process on a fresh database (faults enabled), or an already
running one named by URL on 127.0.0.1; and the operations calls a drill makes to it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from kanjo.platform import db
from kanjo.platform.http_client import HttpConnection, ProtocolError

LOOPBACK = ("127.0.0.1", "localhost")
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
START_TIMEOUT_S = 90.0  # migrations of a fresh database included
STOP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 120.0  # the longest operations call: seeding a page of customers, or verifying the whole bank
LOG_TAIL_BYTES = 4_000


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
    dsn = await fresh_database(server_dsn, database)
    async with KanjoProcess(dsn, _free_port(), env) as process:
        yield Target("127.0.0.1", process.port, process.log_path)


def _parse_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK or parts.port is None:
        raise DrillError(f"--url must be http://127.0.0.1:PORT (a drill floods and breaks what it targets): {url}")
    return Target("127.0.0.1", parts.port)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fresh_database(server_dsn: str, database: str) -> str:
    """Drop and create `database` on the server; its DSN (`kanjo up` migrates it)."""
    if not DATABASE_NAME.match(database):
        raise DrillError("the drill's database must be a lower-case SQL identifier")
    conn = await asyncpg.connect(server_dsn, timeout=db.CONNECT_TIMEOUT_S)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    parts = urlsplit(server_dsn)
    progress(f"fresh database {database}")
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


class KanjoProcess:
    """`python -m kanjo up --no-demo` on a port with faults enabled, from healthy to stopped (SIGTERM, then SIGKILL)."""

    def __init__(self, dsn: str, port: int, env: Mapping[str, str]) -> None:
        self.dsn = dsn
        self.port = port
        self.env = {**os.environ, **env, "KANJO_DATABASE_URL": dsn, "KANJO_FAULTS_ENABLED": "1"}
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"kanjo-drill-server-{os.getpid()}-{port}.log"

    async def __aenter__(self) -> KanjoProcess:
        with self.log_path.open("wb") as log_file:  # the child keeps its own descriptor
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kanjo", "up", "--no-demo", "--port", str(self.port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=self.env)
        try:
            await self._wait_healthy()
        except BaseException:
            await self._stop()
            raise
        progress(f"kanjo (pid {self.process.pid}) listening on 127.0.0.1:{self.port}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()
        if exc_info[0] is not None:
            progress(f"server log kept at {self.log_path}")

    async def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        ops = Ops(Target("127.0.0.1", self.port))
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise DrillError(f"`kanjo up` exited with {self.process.returncode}: {self._log_tail()}")
            with contextlib.suppress(DrillError):
                status, _ = await ops.call("GET", "/healthz", timeout_s=5.0)
                if status == 200:
                    return
            await asyncio.sleep(0.2)
        raise DrillError(f"`kanjo up` not healthy after {START_TIMEOUT_S:.0f} s: {self._log_tail()}")

    async def _stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            progress(f"server {process.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s: SIGKILL")
            process.kill()
            await process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_bytes()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"


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
