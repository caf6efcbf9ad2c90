"""kanjo as a separate process for benches and drills: a fresh database to run it on, and `kanjo up` from healthy to
stopped (SIGTERM, then SIGKILL after a grace period), its log kept when something went wrong."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kanjo.platform import db
from kanjo.platform.http_client import HttpConnection, ProtocolError
from kanjo.platform.migrations import migrate

START_TIMEOUT_S = 60.0  # migrations and start-up of an empty database take a few seconds
STOP_TIMEOUT_S = 30.0  # a clean stop drains the ledger's writer; beyond this, SIGKILL
LOG_TAIL_BYTES = 4_000  # quoted in the error when the server does not come up
DATABASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dsn_for(server_dsn: str, database: str) -> str:
    parts = urlsplit(server_dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def fresh_database(server_dsn: str, database: str, *, migrated: bool = True) -> str:
    """Drop and create `database` on the server (migrated unless the caller's `kanjo up` will do it); its DSN."""
    if not DATABASE_NAME.match(database):
        raise ValueError("the database name must be a lower-case SQL identifier")
    conn = await asyncpg.connect(server_dsn, timeout=db.CONNECT_TIMEOUT_S)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = dsn_for(server_dsn, database)
    if migrated:
        conn = await db.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return dsn


class KanjoServer:
    """`python -m kanjo up --no-demo` on `port` against `dsn`, with `env` added to this process's environment."""

    def __init__(self, dsn: str, port: int, *, env: Mapping[str, str] | None = None, label: str = "kanjo",
                 progress: Callable[[str], None] | None = None, keep_log: bool = False) -> None:
        self.dsn = dsn
        self.port = port
        # tests drive the batch themselves: nothing starts by the clock unless a test asks for it
        self.env = {**os.environ, "KANJO_BATCH_SCHEDULER": "false", **(env or {}), "KANJO_DATABASE_URL": dsn}
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"kanjo-{label}-server-{os.getpid()}-{port}.log"
        self._progress = progress or (lambda message: None)
        self._keep_log = keep_log  # the caller decides after judging the run (a drill keeps it when one failed)

    async def __aenter__(self) -> KanjoServer:
        with self.log_path.open("wb") as log_file:  # the child keeps its own descriptor
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kanjo", "up", "--no-demo", "--port", str(self.port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=self.env)
        try:
            await self._wait_healthy()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()
        if exc_info[0] is None and not self._keep_log:
            self.log_path.unlink(missing_ok=True)
        else:
            self._progress(f"server log kept at {self.log_path}")

    async def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        conn = HttpConnection("127.0.0.1", self.port)
        probe = conn.request_bytes("GET", "/healthz")
        try:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"`kanjo up` exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    if (await asyncio.wait_for(conn.send(probe), 5)).status == 200:
                        return
                except (OSError, EOFError, TimeoutError, ProtocolError):
                    await conn.close()
                await asyncio.sleep(0.2)
            raise RuntimeError(f"`kanjo up` not healthy after {START_TIMEOUT_S:.0f} s: {self.log_tail()}")
        finally:
            await conn.close()

    async def _stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self._progress(f"server {process.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s: SIGKILL")
            process.kill()
            await process.wait()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_bytes()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"
