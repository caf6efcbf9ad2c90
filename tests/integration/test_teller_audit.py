"""The teller audit trail on a real PostgreSQL: a scenario leaves every action in order with who, where, what and
how it ended; the trail is read by operator, target and time, in pages; rows cannot be updated or deleted, and a
row tampered with by a superuser (trigger disabled) is found by the chain verification and by `kanjo verify`."""

from __future__ import annotations

import asyncpg
import pytest

from kanjo.books import verify_books
from kanjo.platform import db
from tests.integration import test_teller_fixtures
from tests.integration.test_teller_fixtures import TODAY, Branch

branch = test_teller_fixtures.branch  # the fixture of these tests


async def _trail(b: Branch, who: str = "A0091", /, **params: object) -> list[dict]:
    status, page = await b.get(who, "audit", limit=500, **params)
    assert status == 200, page
    return page["entries"]


async def _a_scenario_leaves_a_complete_trail(branch: Branch) -> None:
    b = branch
    target = f"account:{b.account(0)['branch_code']}-{b.account(0)['account_number']}"
    b.clock.advance(1)
    start = b.clock()  # after the operators signed on
    await b.sign_on("T0012", password="wrong-password-1")  # a failed sign-on is audited too
    status, pending = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=1_200_000)
    assert status == 202
    await b.approve("T0011", pending)  # refused: a teller cannot check
    await b.approve("S0011", pending)  # refused by the product: the balance is ¥300,000
    status, small = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=10_000)
    assert status == 200
    entries = await _trail(b, target=target)
    got = [(e["operator_id"], e["action"], e["outcome"], e["request_id"]) for e in entries]
    assert got == [
        ("T0011", "requested", "pending", pending["request_id"]),
        ("T0011", "refused", "not_a_supervisor", pending["request_id"]),
        ("S0011", "approved", "ok", pending["request_id"]),
        ("S0011", "refused", "insufficient_funds", pending["request_id"]),
        ("T0011", "requested", "accepted", small["request_id"]),
        ("T0011", "executed", "ok", small["request_id"]),
    ]
    first = entries[0]
    assert (first["branch_code"], first["terminal_id"], first["kind"], first["amount_minor"]) == (
        "001", "WT0011", "cash_withdrawal", 1_200_000)
    assert entries[3]["detail"]["maker"] == "T0011" and entries[3]["detail"]["checker"] == "S0011"
    failed = await _trail(b, "S0012", **{"operator_id": "T0012", "from": start.isoformat()})
    assert [(e["action"], e["outcome"]) for e in failed] == [("sign_on_failed", "invalid_credentials")]
    # the seeding and every sign-on are there, before the scenario
    everything = await _trail(b)
    assert everything[0]["action"] == "operators_seeded"
    assert [e["action"] for e in everything[1:6]] == ["sign_on"] * 5
    # pages: two entries at a time, in order, until the end
    seen, after = [], 0
    while True:
        status, page = await b.get("A0091", "audit", target=target, limit=2, after_seq=after)
        seen += page["entries"]
        if page["next_after_seq"] is None:
            break
        after = page["next_after_seq"]
    assert [e["seq"] for e in seen] == [e["seq"] for e in entries]
    # reading the trail is itself on the trail
    assert (await _trail(b))[-1]["action"] == "audit_read"


async def _the_trail_is_append_only_and_tampering_is_detected(branch: Branch) -> None:
    b = branch
    status, made = await b.make("T0011", "cash-deposits", account=b.account(1), amount_minor=50_000)
    assert status == 200
    status, report = await b.get("A0091", "audit/verification")
    assert status == 200 and report["ok"] is True and report["entries"] == report["head_seq"] > 5
    conn = await db.connect(b.app.state.bank.ledger.dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE teller.audit SET amount_minor = 5 WHERE request_id = $1", made["request_id"])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM teller.audit WHERE request_id = $1", made["request_id"])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE teller.audit")
        # a superuser gets round the trigger and makes the deposit look smaller
        seq = await conn.fetchval("SELECT seq FROM teller.audit WHERE request_id = $1 AND action = 'executed'",
                                  made["request_id"])
        await conn.execute("ALTER TABLE teller.audit DISABLE TRIGGER audit_append_only")
        await conn.execute("UPDATE teller.audit SET amount_minor = 5000 WHERE seq = $1", seq)
        await conn.execute("ALTER TABLE teller.audit ENABLE TRIGGER audit_append_only")
        books = await verify_books(conn, TODAY)
    finally:
        await conn.close()
    status, report = await b.get("A0091", "audit/verification")
    assert report["ok"] is False and report["problems"] == [f"entry {seq} was changed after it was written"]
    assert books["ok"] is False and books["teller_audit"]["problems"] == report["problems"]


async def test_the_audit_trail(branch: Branch) -> None:
    await _a_scenario_leaves_a_complete_trail(branch)
    await _the_trail_is_append_only_and_tampering_is_detected(branch)
