"""Per-client rate limits and daily quotas, the access log, and bad input, through the HTTP app on a real database:
one client over its rate gets 429 while another goes on; a spent quota stays spent across a restart and renews at
midnight JST; the bank reads every call in the access log; no malformed request gets a 500."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from kanjo.channels.openapi.housekeeping import purge
from tests.integration.test_openapi_support import World, account_path, app_on, bearer, module_world

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(pg_server_dsn: str) -> AsyncIterator[World]:
    async with module_world(pg_server_dsn, holders=8) as w:
        yield w


@pytest.fixture
def world(shared: World) -> World:
    shared.reset_clocks()
    return shared


async def test_one_client_over_its_rate_gets_429_while_another_proceeds(world: World) -> None:
    holder = world.holder()
    slow = await world.register(rate_per_s=1, burst=3, name="小さなアプリ")
    busy = await world.register(name="大きなアプリ")
    slow_token, busy_token = await world.token(slow), await world.token(busy)  # one of slow's three
    await world.consented(slow_token, holder, "balance")  # two (the customer's authorisation is not slow's call)
    await world.consented(busy_token, holder, "balance")
    balance = account_path(holder) + "/balance"
    assert (await world.api.get(balance, headers=bearer(slow_token))).status_code == 200  # three
    r = await world.api.get(balance, headers=bearer(slow_token))
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert r.headers["retry-after"] == "1" and r.json()["retry_after_s"] == 1
    for _ in range(5):  # the other client is not slowed at all
        assert (await world.api.get(balance, headers=bearer(busy_token))).status_code == 200
    world.monotonic_s[0] += 1.0  # a second later one token is back
    assert (await world.api.get(balance, headers=bearer(slow_token))).status_code == 200
    assert (await world.api.get(balance, headers=bearer(slow_token))).status_code == 429
    # the token endpoint is rate-limited too, after the client is authenticated
    r = await world.token_response(slow)
    assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
    entries = await world.access_log(client_id=slow["client_id"], outcome="rate_limited")
    assert [(e["route"], e["status"]) for e in entries] == [
        ("/oauth/token", 429), ("/accounts/{branch_code}/{account_number}/balance", 429),
        ("/accounts/{branch_code}/{account_number}/balance", 429)]


async def test_a_spent_daily_quota_survives_a_restart_and_renews_at_midnight_jst(world: World) -> None:
    holder = world.holder()
    client = await world.register(daily_quota=4)
    token = await world.token(client)  # 1
    await world.consented(token, holder, "balance")  # 2 (the customer's authorisation is not the client's call)
    balance = account_path(holder) + "/balance"
    assert (await world.api.get(balance, headers=bearer(token))).status_code == 200  # 3
    assert (await world.api.get(balance, headers=bearer(token))).status_code == 200  # 4
    r = await world.api.get(balance, headers=bearer(token))
    assert (r.status_code, r.json()["error"]) == (429, "quota_exceeded")
    assert r.headers["retry-after"] == str(14 * 3600)  # 10:00 JST: the quota renews at midnight
    usage = (await world.api.get(f"/v1/openapi/clients/{client['client_id']}")).json()["usage"]
    assert (usage["calls"], usage["daily_quota"], usage["remaining"]) == (4, 4, 0)
    # a restart: a new process has nothing in memory, the quota is still spent
    async with app_on(world.app.state.bank.ledger, world.clock) as restarted:
        r = await restarted.api.get(balance, headers=bearer(token))
        assert (r.status_code, r.json()["error"]) == (429, "quota_exceeded")
        world.clock.advance(hours=14)
        r = await restarted.api.get(balance, headers=bearer(await restarted.token(client)))
        assert r.status_code == 200, r.text


async def test_the_bank_reads_every_call_in_the_access_log(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    token = await world.token(client)
    consent_id = await world.consented(token, holder, "balance")
    for _ in range(3):
        await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    await world.api.get(account_path(holder) + "/statement", headers=bearer(token))  # the consent has no statement
    everything = await world.access_log(client_id=client["client_id"])
    assert [(e["route"], e["status"], e["outcome"]) for e in everything] == [
        ("/accounts/{branch_code}/{account_number}/statement", 403, "consent_required"),
        *[("/accounts/{branch_code}/{account_number}/balance", 200, "ok")] * 3,
        ("/consents", 201, "ok"), ("/oauth/token", 200, "ok")]
    balance_calls = [e for e in everything if e["route"].endswith("/balance")]
    assert all(e["consent_id"] == consent_id and e["account"] == f"{holder['branch_code']}-"
               f"{holder['account_number']}" and e["latency_ms"] >= 0 for e in balance_calls)
    # by consent, and a page at a time
    by_consent = await world.access_log(consent_id=consent_id)
    assert len(by_consent) == 4  # the consent request and three balances
    page = (await world.api.get("/v1/openapi/access-log", params={"client_id": client["client_id"],
                                                                  "limit": 4})).json()
    assert len(page["entries"]) == 4 and page["next_before_id"] == page["entries"][-1]["id"]
    rest = (await world.api.get("/v1/openapi/access-log", params={
        "client_id": client["client_id"], "limit": 4, "before_id": page["next_before_id"]})).json()
    assert [e["id"] for e in page["entries"] + rest["entries"]] == [e["id"] for e in everything]
    r = await world.api.get("/v1/openapi/access-log", params={"limit": 501})
    assert r.status_code == 422


async def test_bad_input_is_a_clear_4xx_never_a_500(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    token = await world.token(client)
    await world.consented(token, holder, "balance statement transfer")
    auth = bearer(token)
    path = account_path(holder)
    pair = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/openapi/v1/oauth/token", {"content": b"\xff\xfe", "headers": {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {pair}"}}),
        ("POST", "/openapi/v1/oauth/token", {"content": b"a" * 20_000, "headers": {
            "Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/openapi/v1/oauth/token", {"content": "&".join(f"f{i}=1" for i in range(50)).encode(),
                                              "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/openapi/v1/oauth/token", {"data": {"grant_type": "client_credentials", "scope": "balance\x00"},
                                              "headers": {"Authorization": f"Basic {pair}"}}),
        ("POST", "/openapi/v1/oauth/token", {"data": {"grant_type": "client_credentials"},
                                              "headers": {"Authorization": "Basic " + "A" * 5_000}}),
        ("POST", "/openapi/v1/oauth/revoke", {"data": {}, "headers": {"Authorization": f"Basic {pair}"}}),
        ("GET", path + "/balance", {"headers": {"Authorization": "Bearer"}}),
        ("GET", path + "/balance", {"headers": {"Authorization": "Bearer " + "x" * 300}}),
        ("GET", path + "/balance", {"headers": {"Authorization": "Bearer kat_\u00e9".encode("latin-1")}}),
        ("GET", "/openapi/v1/accounts/01/1234567/balance", {"headers": auth}),
        ("GET", "/openapi/v1/accounts/abc/%00/balance", {"headers": auth}),
        ("GET", path + "/statement", {"headers": auth}),
        ("GET", path + "/statement", {"headers": auth, "params": {"from_date": "2026-13-01", "to_date": "x"}}),
        ("GET", path + "/statement", {"headers": auth, "params": {"from_date": "2026-07-02", "to_date": "2026-07-01"}}),
        ("GET", path + "/statement", {"headers": auth, "params": {"from_date": "2026-07-01", "to_date": "2026-07-01",
                                                                  "cursor": "-1"}}),
        ("GET", path + "/statement", {"headers": auth, "params": {"from_date": "2026-07-01", "to_date": "2026-07-01",
                                                                  "cursor": "9" * 25, "limit": "0"}}),
        ("GET", path + "/transfers/not-a-uuid", {"headers": auth}),
        ("GET", path + "/transfers/00000000-0000-0000-0000-000000000001", {"headers": auth}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k1"}, "content": b"{not json"}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k2"}, "json": {
            "to_branch_code": "001", "to_account_number": "0000000", "amount_minor": 1}}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k3"}, "json": {
            "to_branch_code": "001", "to_account_number": "1234567", "amount_minor": "100"}}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k4"}, "json": {
            "to_branch_code": "001", "to_account_number": "1234567", "amount_minor": 1.5}}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k5"}, "json": {
            "to_branch_code": "001", "to_account_number": "1234567", "amount_minor": 10**30}}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "x" * 65}, "json": {}}),
        ("POST", path + "/transfers", {"headers": {**auth, "Idempotency-Key": "k6"}, "json": [1, 2]}),
        ("POST", "/openapi/v1/consents", {"headers": {**auth, "Idempotency-Key": "c1"}, "json": {
            "branch_code": "001", "account_number": "0000000", "scopes": ["balance"],
            "expires_at": "2026-08-01T00:00:00+09:00"}}),
        ("POST", "/openapi/v1/consents", {"headers": {**auth, "Idempotency-Key": "c2"}, "json": {
            "branch_code": "001", "account_number": "1234567", "scopes": ["balance"],
            "expires_at": "2026-08-01T00:00:00"}}),
        ("POST", "/openapi/v1/consents", {"headers": {**auth, "Idempotency-Key": "c3"}, "json": {
            "branch_code": "001", "account_number": "1234567", "scopes": ["admin"],
            "expires_at": "2026-08-01T00:00:00+09:00"}}),
        ("POST", "/openapi/v1/consents", {"headers": {**auth, "Idempotency-Key": "c4"}, "json": {
            "branch_code": "001", "account_number": "1234567", "scopes": [],
            "expires_at": "9999-12-31T23:59:59+09:00"}}),
        ("DELETE", "/openapi/v1/consents/zzz", {"headers": auth}),
        ("POST", "/v1/openapi/consents/00000000-0000-0000-0000-000000000001/authorise", {"json": {
            "card_number": "1" * 16, "pin": "1234"}}),
        ("POST", "/v1/openapi/consents/not-a-uuid/authorise", {"json": {"card_number": "1", "pin": "x"}}),
        ("POST", "/v1/openapi/clients", {"json": {"request_id": "x", "scopes": ["balance"]}}),
        ("POST", "/v1/openapi/clients", {"json": {
            "request_id": "0190c1d2-7f3a-7000-8000-000000000001", "name": "x", "registration_number": "x",
            "scopes": ["balance"], "by": "ops", "rate_per_s": 10_000}}),
        ("POST", f"/v1/openapi/clients/{client['client_id']}/limits", {"json": {
            "rate_per_s": 0, "burst": 1, "daily_quota": 1, "by": "ops", "reason": "x"}}),
        ("POST", "/v1/openapi/clients/kc_000000000000000000000000/suspend", {"json": {"by": "ops", "reason": "x"}}),
        ("POST", "/v1/openapi/tokens/introspect", {"json": {"token": "\x00"}}),
        ("GET", "/v1/openapi/access-log", {"params": {"since": "2026-07-01T00:00:00"}}),
    ]
    for method, url, kwargs in requests:
        r = await world.api.request(method, url, **kwargs)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        assert "error" in r.json(), (method, url, r.text)
    # nothing moved, and the channel's tables hold no half-made row
    assert await world.balance_minor(holder) == 300_000
    await world.books_ok()


async def test_housekeeping_keeps_the_tables_bounded(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    old_token = await world.token(client)
    await world.consented(old_token, holder, "balance")
    ch = world.app.state.openapi
    world.clock.advance(days=401)  # past the access log's retention and a day past the token's expiry
    new_token = await world.token(client)
    assert (await world.api.get(account_path(holder) + "/balance", headers=bearer(new_token))).status_code == 403
    done = await purge(ch)
    assert done["tokens"] >= 1 and done["access_log"] >= 2 and done["usage"] >= 1
    async with ch.pool.acquire() as conn:
        tokens = await conn.fetchval("SELECT count(*) FROM openapi.tokens WHERE client_id = $1", client["client_id"])
        days = await conn.fetch("SELECT day FROM openapi.usage WHERE client_id = $1", client["client_id"])
    assert tokens == 1 and [r["day"].isoformat() for r in days] == ["2027-08-06"]  # only today's are left
    routes = [e["route"] for e in await world.access_log(client_id=client["client_id"])]
    assert routes == ["/accounts/{branch_code}/{account_number}/balance", "/oauth/token"]  # (the consent expired)
    assert (await purge(ch)) == {"tokens": 0, "usage": 0, "access_log": 0}
