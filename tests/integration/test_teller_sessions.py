"""Operators at the terminal (real PostgreSQL): sign-on and sign-off, lock-out after the named number of wrong
passwords and the supervised reset that lifts it, roles that may or may not do things, and bad input answered
with a clear 4xx."""

from __future__ import annotations

import asyncio

from kanjo.channels.teller.limits import SIGN_ON_FAILURES_MAX
from tests.integration import test_teller_fixtures
from tests.integration.test_teller_fixtures import Branch

branch = test_teller_fixtures.branch  # the fixture of these tests


async def _sign_on_whoami_and_sign_off(branch: Branch) -> None:
    b = branch
    r = await b.sign_on("T0011", "T0001")
    assert r.status_code == 201
    session = r.json()
    assert session["operator"] == {"operator_id": "T0011", "name": "窓口 一郎", "branch_code": "001", "role": "teller",
                                   "active": True, "locked": False}
    assert session["terminal_id"] == "T0001" and len(session["token"]) >= 40
    status, me = await b.get("T0011", "sessions/current")
    assert status == 200 and me["token"] is None and me["operator"]["operator_id"] == "T0011"
    assert (await b.api.delete("/teller/v1/sessions/current", headers=b.auth("T0011"))).status_code == 204
    r = await b.api.get("/teller/v1/sessions/current", headers=b.auth("T0011"))
    assert (r.status_code, r.json()["error"]) == (401, "session_ended")
    r = await b.api.get("/teller/v1/requests")
    assert (r.status_code, r.json()["error"]) == (401, "unauthenticated") and r.headers["www-authenticate"] == "Bearer"
    r = await b.api.get("/teller/v1/requests", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    # the session ends by itself when the terminal is left idle
    b.clock.advance(b.teller.session_idle_s + 1)
    r = await b.api.get("/teller/v1/sessions/current", headers=b.auth("T0012"))
    assert (r.status_code, r.json()["error"]) == (401, "session_idle")


async def _wrong_passwords_lock_the_operator_until_a_supervised_reset(branch: Branch) -> None:
    b = branch
    answers = [await b.sign_on("T0012", password="not-the-password") for _ in range(SIGN_ON_FAILURES_MAX)]
    assert [r.status_code for r in answers] == [401] * (SIGN_ON_FAILURES_MAX - 1) + [403]
    assert answers[0].json()["error"] == "invalid_credentials" and answers[-1].json()["error"] == "operator_locked"
    right = await b.sign_on("T0012")  # even the right password now
    assert (right.status_code, right.json()["error"]) == (403, "operator_locked")
    r = await b.api.get("/teller/v1/sessions/current", headers=b.auth("T0012"))
    assert r.status_code == 401  # the session from before the lock-out no longer works
    unknown = await b.sign_on("Z9999", password="whatever-it-is")
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_credentials")  # the same answer
    # a supervisor asks for a reset, another approves it; the new password is shown once, to the checker
    status, pending = await b.make("S0011", "password-resets", operator_id="T0012")
    assert (status, pending["approval"]) == (202, "sensitive")
    status, reset = await b.approve("S0012", pending)
    assert status == 200 and "new_password" in reset["shown_once"]
    assert (await b.approve("S0012", pending))[1].get("shown_once") is None  # a replay does not show it again
    r = await b.sign_on("T0012", password=reset["shown_once"]["new_password"])
    assert r.status_code == 201
    r = await b.api.post("/teller/v1/sessions/current/password", headers=b.auth("T0012"), json={
        "current_password": reset["shown_once"]["new_password"], "new_password": "a-better-one-2026"})
    assert r.status_code == 204
    assert (await b.sign_on("T0012", password="a-better-one-2026")).status_code == 201


async def _concurrent_wrong_passwords_are_counted_one_by_one(branch: Branch) -> None:
    b = branch
    answers = await asyncio.gather(*(b.sign_on("T0011", password="guess-number-x") for _ in range(12)))
    assert sorted(r.status_code for r in answers).count(401) == SIGN_ON_FAILURES_MAX - 1
    async with b.teller.pool.acquire() as conn:
        failures = await conn.fetchval("SELECT failed_sign_ons FROM teller.operators WHERE operator_id = 'T0011'")
    assert failures == SIGN_ON_FAILURES_MAX  # the tries after the lock are refused without being counted


async def _roles(branch: Branch) -> None:
    b = branch
    status, body = await b.make("A0091", "cash-deposits", account=b.account(0), amount_minor=1_000)
    assert (status, body["error"]) == (403, "not_allowed")  # an auditor changes nothing
    status, body = await b.get("T0011", "audit")
    assert (status, body["error"]) == (403, "not_allowed")  # a teller does not read the trail
    status, body = await b.make("T0011", "operators", operator_id="T0013", name="新人 翔", role="teller")
    assert (status, body["error"]) == (403, "not_allowed")  # tellers do not administer operators
    status, body = await b.get("A0091", f"accounts/{b.account(0)['branch_code']}/{b.account(0)['account_number']}")
    assert status == 403
    # a supervisor registers a new teller; another supervisor approves; the initial password is shown once
    status, pending = await b.make("S0011", "operators", operator_id="T0013", name="新人 翔", role="teller")
    assert status == 202 and pending["content"]["branch_code"] == "001"
    status, done = await b.approve("S0012", pending)
    assert status == 200, done
    r = await b.sign_on("T0013", password=done["shown_once"]["initial_password"])
    assert r.status_code == 201 and r.json()["operator"]["role"] == "teller"
    status, body = await b.make("S0011", "operator-deactivations", operator_id="S0011", reason="自分")
    assert (status, body["error"]) == (403, "not_for_oneself")
    status, body = await b.make("S0011", "operator-deactivations", operator_id="T0013", reason="異動")
    assert status == 200
    r = await b.api.get("/teller/v1/sessions/current", headers=b.auth("T0013"))
    assert (r.status_code, r.json()["error"]) == (401, "session_ended")


async def _bad_input_is_a_clear_4xx(branch: Branch) -> None:
    b = branch
    h = b.auth("T0011")
    r = await b.api.post("/teller/v1/cash-deposits", content=b"{not json", headers={**h, "content-type":
                                                                                       "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "malformed_json")
    for body in ({"request_id": b.rid(), "account": b.account(0), "amount_minor": "1000"},  # a string
                 {"request_id": b.rid(), "account": b.account(0), "amount_minor": 10.5},
                 {"request_id": b.rid(), "account": b.account(0), "amount_minor": -1},
                 {"request_id": b.rid(), "account": b.account(0), "amount_minor": 10**13},
                 {"request_id": b.rid(), "account": {"branch_code": "1", "account_number": "x"}, "amount_minor": 1},
                 {"request_id": "not an id", "account": b.account(0), "amount_minor": 1},
                 {"request_id": b.rid(), "account": b.account(0), "amount_minor": 1, "extra": True},
                 {"account": b.account(0), "amount_minor": 1}):
        r = await b.api.post("/teller/v1/cash-deposits", json=body, headers=h)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_field"), body
    status, body = await b.make("T0011", "cash-deposits", account={"branch_code": "999", "account_number": "9999999"},
                                amount_minor=1_000)
    assert (status, body["error"]) == (404, "unknown_account")
    status, body = await b.make("T0011", "time-deposits", account=b.account(0), amount_minor=1_000, term_months=7)
    assert (status, body["error"]) == (409, "term_not_offered")  # the rate table's answer, kept as the outcome
    status, body = await b.make("T0011", "transfers", from_account=b.account(0), to_account=b.account(0),
                                amount_minor=1_000)
    assert (status, body["error"]) == (422, "invalid_field")
    status, body = await b.post("S0011", "requests/NOPE-1/approve", {"content_sha256": "0" * 64})
    assert (status, body["error"]) == (404, "unknown_request")
    status, body = await b.get("S0011", "audit", **{"from": "2026-07-01T00:00:00"})
    assert (status, body["error"]) == (422, "invalid_field")  # a time without a zone
    r = await b.api.post("/teller/v1/sessions", json={"operator_id": "T0011", "password": "x" * 129,
                                                      "terminal_id": "T1"})
    assert r.status_code == 422
    assert await b.balance(0) == 300_000


async def test_sign_on_whoami_sign_off_and_idle_sessions(branch: Branch) -> None:
    await _sign_on_whoami_and_sign_off(branch)


async def test_lock_out_one_guess_at_a_time_and_the_supervised_reset(branch: Branch) -> None:
    await _wrong_passwords_lock_the_operator_until_a_supervised_reset(branch)
    await _concurrent_wrong_passwords_are_counted_one_by_one(branch)


async def test_roles_and_bad_input(branch: Branch) -> None:
    await _bad_input_is_a_clear_4xx(branch)
    await _roles(branch)
