"""What the drill tests share: the drill command run as a user runs it, and dropping a drill's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import asyncpg

DRILL_TIMEOUT_S = 180


def drill_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """`python -m kanjo drill …`: its exit code, its one JSON object (stdout), its stderr."""
    done = subprocess.run([sys.executable, "-m", "kanjo", "drill", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=DRILL_TIMEOUT_S, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (done.stdout[-2000:], done.stderr[-3000:])
    return done.returncode, json.loads(lines[0]), done.stderr


async def drop_database(server_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()
