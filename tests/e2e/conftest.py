"""End-to-end fixtures: kanjo as a real process over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import KanjoProcess


@pytest.fixture
def kanjo_server(ledger_dsn: str) -> Iterator[KanjoProcess]:
    server = KanjoProcess(ledger_dsn)
    server.start()
    try:
        yield server
    finally:
        server.stop()
