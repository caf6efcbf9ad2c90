"""OAuth 2 for providers through the HTTP app on a real database: what a provider's developer and the bank's
operations check — tokens by client credentials (Basic and form), RFC-shaped refusals, expiry, revocation
(RFC 7009), suspension and revocation of a client taking effect on the very next call, the secret shown once."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.test_openapi_support import World, account_path, bearer, module_world

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(pg_server_dsn: str) -> AsyncIterator[World]:
    async with module_world(pg_server_dsn, holders=8) as w:
        yield w


@pytest.fixture
def world(shared: World) -> World:
    shared.reset_clocks()
    return shared


async def test_a_token_by_basic_and_by_form_authentication(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    assert client["client_secret"].startswith("kcs_") and client["status"] == "active"
    for basic in (True, False):
        r = await world.token_response(client, "balance statement", basic=basic)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "balance statement"
        assert body["access_token"].startswith("kat_")
        assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    # no scope asked: the client's own scopes
    r = await world.token_response(client)
    assert r.json()["scope"] == "balance statement transfer"
    # the token works: a consent is asked with it
    r = await world.ask_consent(r.json()["access_token"], holder, "balance")
    assert r.status_code == 201, r.text


async def test_a_wrong_secret_or_unknown_client_is_invalid_client(world: World) -> None:
    client = await world.register()
    refused_before = len(await world.access_log(outcome="invalid_client"))
    for basic in (True, False):
        r = await world.token_response(client, secret="kcs_" + "x" * 43, basic=basic)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic realm=")
    stranger = {**client, "client_id": "kc_" + "0" * 24}
    r = await world.token_response(stranger)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    # no authentication at all
    r = await world.api.post("/openapi/v1/oauth/token", data={"grant_type": "client_credentials"})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    # the access log has every attempt, none of them with a client it could not authenticate
    entries = (await world.access_log(outcome="invalid_client"))[:4]
    assert len(await world.access_log(outcome="invalid_client")) == refused_before + 4
    assert all(e["client_id"] is None and e["status"] == 401 and e["route"] == "/oauth/token" for e in entries)


async def test_scope_not_granted_is_invalid_scope(world: World) -> None:
    holder = world.holder()
    client = await world.register("balance")
    r = await world.token_response(client, "balance transfer")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    r = await world.token_response(client, "everything")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    # a token without the statement scope cannot read a statement, even with the customer's consent
    token = await world.token(client, "balance")
    await world.consented(token, holder, "balance")
    r = await world.api.get(account_path(holder) + "/statement",
                            params={"from_date": "2026-06-01", "to_date": "2026-07-01"}, headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_malformed_token_requests_are_invalid_request_or_unsupported_grant_type(world: World) -> None:
    client = await world.register()
    pair = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    basic = {"Authorization": f"Basic {pair}"}
    r = await world.api.post("/openapi/v1/oauth/token", data={"grant_type": "password"}, headers=basic)
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")
    r = await world.api.post("/openapi/v1/oauth/token", data={"scope": "balance"}, headers=basic)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = await world.api.post("/openapi/v1/oauth/token", json={"grant_type": "client_credentials"}, headers=basic)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")  # JSON is not the RFC's form
    r = await world.api.post("/openapi/v1/oauth/token", content=b"grant_type=client_credentials&grant_type=x",
                             headers={**basic, "Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")  # a repeated parameter
    r = await world.api.post("/openapi/v1/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client["client_id"],
        "client_secret": client["client_secret"]}, headers=basic)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")  # two authentication methods
    r = await world.api.post("/openapi/v1/oauth/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": "Basic %%%"})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


async def test_an_expired_token_is_refused(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    token = await world.token(client)
    consent_id = await world.consented(token, holder, "balance")
    assert consent_id
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 200, r.text
    world.clock.advance(seconds=3_600)
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "expired" in r.json()["error_description"]
    # a new token works again with the same consent
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(await world.token(client)))
    assert r.status_code == 200


async def test_a_revoked_token_is_refused_and_revocation_is_rfc_7009(world: World) -> None:
    holder = world.holder()
    client, other = await world.register(), await world.register(name="他社アプリ")
    token = await world.token(client)
    await world.consented(token, holder, "balance")
    pair = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    basic = {"Authorization": f"Basic {pair}"}
    # another client cannot revoke it
    r = await world.api.post("/openapi/v1/oauth/revoke", data={
        "token": token, "client_id": other["client_id"], "client_secret": other["client_secret"]})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 200
    r = await world.api.post("/openapi/v1/oauth/revoke", data={"token": token, "token_type_hint": "access_token"},
                             headers=basic)
    assert r.status_code == 200
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
    assert "revoked" in r.json()["error_description"]
    # revoking again, or an unknown token, is answered 200 (RFC 7009 §2.2)
    for t in (token, "kat_unknown"):
        r = await world.api.post("/openapi/v1/oauth/revoke", data={"token": t}, headers=basic)
        assert r.status_code == 200
    introspection = (await world.api.post("/v1/openapi/tokens/introspect", json={"token": token})).json()
    assert introspection["active"] is False and introspection["client_id"] == client["client_id"]


async def test_suspending_a_client_stops_its_tokens_at_once(world: World) -> None:
    holder = world.holder()
    client = await world.register()
    token = await world.token(client)
    await world.consented(token, holder, "balance")
    assert (await world.api.post("/v1/openapi/tokens/introspect", json={"token": token})).json()["active"] is True
    assert (await world.change_client(client["client_id"], "suspend"))["status"] == "suspended"
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
    r = await world.token_response(client)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and "suspended" in r.json()[
        "error_description"]
    # reactivated: old tokens stay dead, a new one works with the customer's consent (still active)
    await world.change_client(client["client_id"], "reactivate")
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 401
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(await world.token(client)))
    assert r.status_code == 200
    # revoked for good: its customers' consents end too, and it can never come back
    await world.change_client(client["client_id"], "revoke")
    consents = (await world.api.get("/v1/openapi/consents", params={
        "branch_code": holder["branch_code"], "account_number": holder["account_number"]})).json()
    assert [c["status"] for c in consents["consents"]] == ["revoked"]
    r = await world.api.post(f"/v1/openapi/clients/{client['client_id']}/reactivate",
                             json={"by": "ops.sato", "reason": "test"})
    assert (r.status_code, r.json()["error"]) == (409, "illegal_transition")


async def test_registration_is_idempotent_and_the_secret_is_shown_once(world: World) -> None:
    request_id = str(uuid.uuid4())
    body = {"request_id": request_id, "name": "家計簿アプリ", "registration_number": "近畿財務局長（電代）第3号",
            "scopes": ["balance"], "by": "ops.sato"}
    first = await world.api.post("/v1/openapi/clients", json=body)
    again = await world.api.post("/v1/openapi/clients", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["client_id"] == again.json()["client_id"]
    assert first.json()["client_secret"] and again.json()["client_secret"] is None and again.json()["replayed"]
    r = await world.api.post("/v1/openapi/clients", json={**body, "scopes": ["balance", "transfer"]})
    assert (r.status_code, r.json()["error"]) == (409, "request_reused")
    r = await world.api.post("/v1/openapi/clients", json={**body, "request_id": str(uuid.uuid4()),
                                                          "registration_number": "第3号"})
    assert r.status_code == 422
    # the secret is stored only as an argon2id hash
    async with world.app.state.openapi.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret_hash FROM openapi.clients WHERE client_id = $1",
                                     first.json()["client_id"])
    assert stored.startswith("$argon2id$") and first.json()["client_secret"] not in stored
    # a rotation: the new secret works, the old one does not
    client = first.json()
    r = await world.api.post(f"/v1/openapi/clients/{client['client_id']}/secret",
                             json={"request_id": str(uuid.uuid4()), "by": "ops.sato", "reason": "leaked"})
    assert r.status_code == 200 and r.json()["client_secret"]
    assert (await world.token_response(client)).status_code == 401
    assert (await world.token_response({**client, "client_secret": r.json()["client_secret"]})).status_code == 200
