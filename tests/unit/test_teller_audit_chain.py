"""The audit trail's hash chain, without a database: recomputing it finds a changed, removed, inserted or reordered
entry, and a head that does not name the last entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from kanjo.channels.teller.model import (
    GENESIS_SHA256,
    Action,
    AuditEntry,
    ChainCheck,
    StoredEntry,
    chain_sha256,
)

AT = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def _chain(n: int) -> list[StoredEntry]:
    rows, prev = [], GENESIS_SHA256
    for seq in range(1, n + 1):
        entry = AuditEntry(operator_id="T0011", action=Action.EXECUTED, outcome="ok", at=AT + dt.timedelta(seconds=seq),
                           branch_code="001", terminal_id="T01", kind="cash_deposit", request_id=f"T01-{seq}",
                           targets=("account:001-0000001",), amount_minor=1_000 * seq, detail={"maker": "T0011"})
        digest = chain_sha256(prev, seq, entry)
        rows.append(StoredEntry(seq, entry, prev, digest))
        prev = digest
    return rows


def _check(rows: list[StoredEntry], head: tuple[int, bytes] | None = None) -> list[str]:
    check = ChainCheck()
    check.feed(rows)
    last = rows[-1] if rows else None
    check.finish(*(head or ((last.seq, last.sha256) if last else (0, GENESIS_SHA256))))
    return check.problems


def test_an_untouched_chain_verifies() -> None:
    assert _check(_chain(10)) == []
    assert _check([]) == []


def test_the_hash_covers_every_field_and_the_time_in_utc() -> None:
    row = _chain(1)[0]
    same_instant = replace(row.entry, at=row.entry.at.astimezone(dt.UTC))
    assert chain_sha256(GENESIS_SHA256, 1, same_instant) == row.sha256
    for change in ({"amount_minor": 1_001}, {"operator_id": "T0012"}, {"outcome": "refused"},
                   {"targets": ("account:001-0000002",)}, {"detail": {"maker": "T0012"}},
                   {"at": row.entry.at + dt.timedelta(microseconds=1)}):
        assert chain_sha256(GENESIS_SHA256, 1, replace(row.entry, **change)) != row.sha256, change  # type: ignore
    assert chain_sha256(GENESIS_SHA256, 2, row.entry) != row.sha256  # the position too


def test_a_changed_entry_is_found() -> None:
    rows = _chain(5)
    rows[2] = replace(rows[2], entry=replace(rows[2].entry, amount_minor=999_999))
    assert _check(rows) == ["entry 3 was changed after it was written"]


def test_a_removed_entry_is_found() -> None:
    rows = _chain(5)
    del rows[1]
    problems = _check(rows)
    assert "entry 3 follows entry 1: entries are missing" in problems
    assert "entry 3 does not link to the entry before it" in problems


def test_a_removed_last_entry_is_found_by_the_head() -> None:
    rows = _chain(5)
    head = (rows[-1].seq, rows[-1].sha256)
    assert _check(rows[:-1], head) == ["the trail ends at entry 4 but its head says 5: entries were removed or the"
                                       " head was changed"]


def test_reordered_entries_are_found() -> None:
    rows = _chain(4)
    rows[1], rows[2] = rows[2], rows[1]
    assert _check(rows, (4, rows[-1].sha256)) != []


def test_a_recomputed_entry_breaks_the_next_link() -> None:
    """Rewriting an entry and its own hash is not enough: the entry after it names the old hash."""
    rows = _chain(3)
    changed = replace(rows[1].entry, amount_minor=1)
    rows[1] = replace(rows[1], entry=changed, sha256=chain_sha256(rows[1].prev_sha256, 2, changed))
    assert _check(rows, (3, rows[2].sha256)) == ["entry 3 does not link to the entry before it"]


def test_problems_are_bounded() -> None:
    rows = [replace(r, entry=replace(r.entry, outcome="x")) for r in _chain(50)]
    assert len(_check(rows)) == ChainCheck().problems_max
