"""Maker-checker at the counter (real PostgreSQL): above the threshold a request waits; only a supervisor other than
the maker approves it, and the approval executes it exactly once — however many approvals race or are retried;
rejection, withdrawal and expiry change nothing; a request id answers its first outcome."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from kanjo.channels import expire_teller_requests
from kanjo.channels.teller.model import Kind
from tests.integration import test_teller_fixtures
from tests.integration.test_teller_fixtures import Branch

branch = test_teller_fixtures.branch  # the fixture of these tests


async def _big_withdrawal(b: Branch, amount_minor: int = 1_500_000) -> tuple[dict, int]:
    """¥2,000,000 paid in, then a withdrawal above the threshold made; returns it and the balance it waits on."""
    before = await b.balance(0)
    for _ in range(2):  # ¥1,000,000 is the threshold: each deposit executes at once
        assert (await b.make("T0011", "cash-deposits", account=b.account(0), amount_minor=1_000_000))[0] == 200
    funded = before + 2_000_000
    assert await b.balance(0) == funded
    status, pending = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=amount_minor)
    assert (status, pending["state"], pending["approval"]) == (202, "pending", "amount_over_threshold"), pending
    assert pending["maker_id"] == "T0011" and pending["expires_at"] is not None
    assert await b.balance(0) == funded  # nothing moves before the check
    return pending, funded


async def _above_the_threshold_waits_and_the_approval_executes_it_once(branch: Branch) -> None:
    b = branch
    status, at_threshold = await b.make("T0011", "cash-deposits", account=b.account(1), amount_minor=1_000_000)
    assert (status, at_threshold["state"]) == (200, "executed")  # equal to the threshold: not above it
    pending, funded = await _big_withdrawal(b)
    # the maker cannot check their own request, a teller cannot check at all
    status, own = await b.approve("T0011", pending)
    assert (status, own["error"]) == (403, "not_a_supervisor")
    await b.sign_on("S0011", "W0099")
    status, queue = await b.get("S0011", "requests", state="pending")
    assert status == 200 and [r["request_id"] for r in queue["requests"]] == [pending["request_id"]]
    status, other_teller = await b.approve("T0012", pending)
    assert (status, other_teller["error"]) == (403, "not_a_supervisor")
    # the checker approves exactly what was made: a digest of something else is refused
    status, wrong = await b.post("S0011", f"requests/{pending['request_id']}/approve", {"content_sha256": "0" * 64})
    assert (status, wrong["error"]) == (409, "content_mismatch")
    status, done = await b.approve("S0011", pending)
    assert status == 200 and done["state"] == "executed" and done["checker_id"] == "S0011"
    assert done["content"] == pending["content"]
    assert await b.balance(0) == funded - 1_500_000
    # the approval retried answers the same result; another supervisor is told it is decided; nothing moves again
    status, again = await b.approve("S0011", pending)
    assert status == 200 and again["replayed"] is True and again["result"] == done["result"]
    status, late = await b.approve("S0012", pending)
    assert (status, late["error"]) == (409, "not_pending")
    status, retried = await b.post("T0011", "cash-withdrawals", {"request_id": pending["request_id"],
                                                                 **pending["content"]})
    assert status == 200 and retried["state"] == "executed" and retried["replayed"] is True
    assert await b.balance(0) == funded - 1_500_000
    await b.books_ok()


async def _a_supervisor_making_a_request_needs_another_supervisor(branch: Branch) -> None:
    b = branch
    before = (await b.balance(0), await b.balance(1))
    status, pending = await b.make("S0011", "transfers", from_account=b.account(0), to_account=b.account(1),
                                   amount_minor=max(before[0], 1_000_000) + 1)
    assert status == 202
    status, own = await b.approve("S0011", pending)
    assert (status, own["error"]) == (403, "maker_cannot_check")
    status, done = await b.approve("S0012", pending)
    assert (status, done["error"]) == (409, "insufficient_funds")  # approved, and the product's answer is kept
    assert done["state"] == "refused" and done["checker_id"] == "S0012"
    status, again = await b.approve("S0012", pending)
    assert (status, again["error"], again["replayed"]) == (409, "insufficient_funds", True)
    assert (await b.balance(0), await b.balance(1)) == before


async def _concurrent_approvals_execute_once(branch: Branch) -> None:
    b = branch
    pending, funded = await _big_withdrawal(b)
    answers = await asyncio.gather(b.approve("S0011", pending), b.approve("S0012", pending),
                                   b.approve("S0011", pending), b.approve("S0012", pending))
    statuses = sorted(status for status, _ in answers)
    executed = [body for status, body in answers if status == 200]
    assert statuses == [200, 200, 409, 409], answers
    assert {body["checker_id"] for body in executed} == {executed[0]["checker_id"]}  # one checker won
    assert all(body["error"] == "not_pending" for status, body in answers if status == 409)
    assert await b.balance(0) == funded - 1_500_000  # paid out once
    await b.books_ok()


async def _rejection_and_withdrawal_change_nothing(branch: Branch) -> None:
    b = branch
    pending, funded = await _big_withdrawal(b)
    status, rejected = await b.post("S0012", f"requests/{pending['request_id']}/reject", {"reason": "本人確認不足"})
    assert status == 200 and rejected["state"] == "rejected" and rejected["decision_reason"] == "本人確認不足"
    status, late = await b.approve("S0011", pending)
    assert (status, late["error"]) == (409, "not_pending")
    status, again = await b.post("S0012", f"requests/{pending['request_id']}/reject", {"reason": "本人確認不足"})
    assert status == 200 and again["replayed"] is True
    assert await b.balance(0) == funded
    # the maker withdraws their own pending request; nobody else can
    status, second = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=1_200_000)
    status, not_theirs = await b.post("T0012", f"requests/{second['request_id']}/withdraw", {})
    assert (status, not_theirs["error"]) == (403, "not_the_maker")
    status, withdrawn = await b.post("T0011", f"requests/{second['request_id']}/withdraw", {"reason": "お客様都合"})
    assert status == 200 and withdrawn["state"] == "withdrawn"
    status, late = await b.approve("S0011", second)
    assert (status, late["error"]) == (409, "not_pending")
    assert await b.balance(0) == funded
    await b.books_ok()


async def _expired_requests_cannot_be_approved(branch: Branch) -> None:
    b = branch
    for task in b.app.state.background:  # the test sweeps by hand: the app's own sweep would race it
        if task.get_name() == "teller-expiry":
            task.cancel()
    pending, funded = await _big_withdrawal(b)
    status, _ = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=1_100_000)
    assert status == 202
    b.clock.advance(b.teller.policy.pending_expiry_s + 1)
    for operator_id in b.passwords:  # the terminals were idle meanwhile: everyone signs on again
        await b.sign_on(operator_id)
    assert await expire_teller_requests(b.teller) == 2  # the sweep
    assert await expire_teller_requests(b.teller) == 0  # nothing left to expire
    status, late = await b.approve("S0011", pending)
    assert (status, late["error"]) == (409, "not_pending")
    _, seen = await b.get("S0011", f"requests/{pending['request_id']}")
    assert seen["state"] == "expired"
    assert await b.balance(0) == funded
    # one not yet swept is expired when a checker comes to it
    third_status, third = await b.make("S0012", "cash-withdrawals", account=b.account(0), amount_minor=1_300_000)
    assert third_status == 202
    b.clock.advance(b.teller.policy.pending_expiry_s + 1)
    for operator_id in b.passwords:
        await b.sign_on(operator_id)
    status, late = await b.approve("S0011", third)
    assert (status, late["error"]) == (409, "expired")
    _, seen = await b.get("S0011", f"requests/{third['request_id']}")
    assert seen["state"] == "expired"
    assert await b.balance(0) == funded


async def _a_request_id_answers_its_first_outcome(branch: Branch) -> None:
    b = branch
    rid = "WT0011-7"  # the terminal's id and its sequence number
    body = {"request_id": rid, "account": b.account(2), "amount_minor": 12_345}
    first = await b.post("T0011", "cash-deposits", body)
    second = await b.post("T0011", "cash-deposits", body)
    assert first[0] == second[0] == 200 and second[1]["replayed"] is True
    assert second[1]["result"] == first[1]["result"]
    status, reused = await b.post("T0011", "cash-deposits", {**body, "amount_minor": 54_321})
    assert (status, reused["error"]) == (409, "request_reused")
    status, reused = await b.post("T0011", "cash-withdrawals", body)
    assert (status, reused["error"]) == (409, "request_reused")
    status, elsewhere = await b.post("T0011", "cash-deposits", {**body, "request_id": "OTHER1-7"})
    assert (status, elsewhere["error"]) == (422, "invalid_field")  # another terminal's sequence
    # the same new id sent five times at once: one deposit
    racing = {"request_id": b.rid(), "account": b.account(2), "amount_minor": 1_000}
    answers = await asyncio.gather(*(b.post("T0011", "cash-deposits", racing) for _ in range(5)))
    assert [status for status, _ in answers] == [200] * 5
    assert sum(1 for _, body in answers if not body["replayed"]) == 1
    assert await b.balance(2) == 300_000 + 12_345 + 1_000
    await b.books_ok()


async def _per_kind_thresholds(branch: Branch) -> None:
    b = branch
    b.teller.policy = replace(b.teller.policy, thresholds_minor={Kind.CASH_WITHDRAWAL: 100_000})
    status, _ = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=100_000)
    assert status == 200
    status, over = await b.make("T0011", "cash-withdrawals", account=b.account(0), amount_minor=100_001)
    assert (status, over["approval"]) == (202, "amount_over_threshold")
    status, _ = await b.make("T0011", "cash-deposits", account=b.account(0), amount_minor=900_000)
    assert status == 200  # other kinds keep the default


async def _an_outage_during_the_execution_is_retried_by_the_same_approval(branch: Branch) -> None:
    b = branch
    pending, funded = await _big_withdrawal(b, 1_100_000)
    hub = b.app.state.hub
    hub.force_open("deposits", "drill: deposits down")
    try:
        r = await b.api.post(f"/teller/v1/requests/{pending['request_id']}/approve", headers=b.auth("S0012"),
                             json={"content_sha256": pending["content_sha256"]})
        assert r.status_code == 503 and "retry-after" in r.headers  # nothing known to have happened
        _, seen = await b.get("S0012", f"requests/{pending['request_id']}")
        assert (seen["state"], seen["checker_id"]) == ("ready", "S0012")
        status, other = await b.approve("S0011", pending)
        assert (status, other["error"]) == (409, "not_pending")  # approved already: only its checker retries
    finally:
        hub.reset("deposits")
    status, done = await b.approve("S0012", pending)
    assert status == 200 and done["state"] == "executed"
    assert await b.balance(0) == funded - 1_100_000
    entries = [e for e in (await b.get("A0091", "audit", request_id=pending["request_id"]))[1]["entries"]]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("requested", "pending"), ("approved", "ok"), ("failed", "product_unavailable"),
        ("refused", "not_pending"), ("executed", "ok")]


async def test_above_the_threshold_only_another_supervisor_approves_once(branch: Branch) -> None:
    await _above_the_threshold_waits_and_the_approval_executes_it_once(branch)
    await _a_supervisor_making_a_request_needs_another_supervisor(branch)
    await _per_kind_thresholds(branch)


async def test_rejected_withdrawn_and_expired_requests_change_nothing(branch: Branch) -> None:
    await _rejection_and_withdrawal_change_nothing(branch)
    await _expired_requests_cannot_be_approved(branch)


async def test_exactly_once_under_racing_approvals_and_retries(branch: Branch) -> None:
    await _concurrent_approvals_execute_once(branch)
    await _an_outage_during_the_execution_is_retried_by_the_same_approval(branch)
    await _a_request_id_answers_its_first_outcome(branch)
