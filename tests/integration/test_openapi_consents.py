"""Consents per customer and account, through the HTTP app on a real database: what a customer, a provider and the
bank check — the customer authorises with the account's cash card and PIN (wrong PINs count toward the card's lock
as at an ATM), data only with a consent that grants the scope, nothing told about other accounts, revocation by
anyone entitled to it taking effect on the next call, expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kanjo.cards import CardRefused, verify_card
from tests.integration.test_openapi_support import (
    BALANCE_MINOR,
    TODAY,
    World,
    account_path,
    bearer,
    module_world,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(pg_server_dsn: str) -> AsyncIterator[World]:
    async with module_world(pg_server_dsn, holders=16) as w:
        yield w


@pytest.fixture
def world(shared: World) -> World:
    shared.reset_clocks()
    return shared


async def test_the_customer_authorises_with_the_accounts_card_and_pin(world: World) -> None:
    holder = world.holder()
    client = await world.register(name="家計簿アプリ")
    token = await world.token(client)
    r = await world.ask_consent(token, holder, "balance statement")
    assert r.status_code == 201, r.text
    consent = r.json()
    assert consent["status"] == "pending" and consent["scopes"] == ["balance", "statement"]
    assert consent["authorisation_path"] == f"/v1/openapi/consents/{consent['consent_id']}/authorise"
    # pending: no data yet
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert (r.status_code, r.json()["error"]) == (403, "consent_required")
    # what the customer is shown: who asks, with its registration, and for what
    page = (await world.api.get(f"/v1/openapi/consents/{consent['consent_id']}")).json()
    assert page["provider"] == {"name": "家計簿アプリ", "registration_number": "関東財務局長（電代）第12号"}
    assert page["account"] == {"branch_code": holder["branch_code"], "account_number": holder["account_number"]}
    # a wrong PIN is refused and counted; the right one then authorises
    wrong = "0000" if holder["pin"] != "0000" else "1111"
    r = await world.authorise(consent["consent_id"], holder, pin=wrong)
    assert (r.status_code, r.json()["error"]) == (403, "wrong_pin")
    r = await world.authorise(consent["consent_id"], holder)
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["authorised_at"]
    assert [e["event"] for e in r.json()["history"]] == ["requested", "authorised"]
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["balance_minor"] == body["available_minor"] == BALANCE_MINOR == await world.balance_minor(holder)
    assert body["currency"] == "JPY"
    # authorising again changes nothing
    r = await world.authorise(consent["consent_id"], holder)
    assert r.status_code == 200 and [e["event"] for e in r.json()["history"]] == ["requested", "authorised"]


async def test_wrong_pins_lock_the_card_as_at_an_atm(world: World) -> None:
    holder = world.holder()
    token = await world.token(await world.register())
    consent_id = (await world.ask_consent(token, holder, "balance")).json()["consent_id"]
    wrong = "0000" if holder["pin"] != "0000" else "1111"
    answers = [(await world.authorise(consent_id, holder, pin=wrong)).json()["error"] for _ in range(3)]
    assert answers == ["wrong_pin", "wrong_pin", "pin_locked"]
    r = await world.authorise(consent_id, holder)  # the right PIN no longer helps: the card is locked
    assert (r.status_code, r.json()["error"]) == (403, "pin_locked")
    with pytest.raises(CardRefused) as refused:  # and it is locked at the ATMs too: one counter
        await verify_card(world.app.state.bank.cards, holder["card_number"], holder["pin"])
    assert refused.value.code == "pin_locked"
    page = (await world.api.get(f"/v1/openapi/consents/{consent_id}")).json()
    assert page["status"] == "pending"


async def test_another_accounts_card_cannot_authorise(world: World) -> None:
    holder, other = world.holder(), world.holder()
    token = await world.token(await world.register())
    consent_id = (await world.ask_consent(token, holder, "balance")).json()["consent_id"]
    r = await world.authorise(consent_id, other)
    assert (r.status_code, r.json()["error"]) == (403, "card_not_for_account")
    assert (await world.api.get(f"/v1/openapi/consents/{consent_id}")).json()["status"] == "pending"
    # a consent for an account that does not exist is accepted as pending (nothing is told) and no card opens it
    r = await world.ask_consent(token, {**holder, "account_number": "9999999"}, "balance")
    assert r.status_code == 201
    r = await world.authorise(r.json()["consent_id"], holder)
    assert (r.status_code, r.json()["error"]) == (403, "card_not_for_account")


async def test_an_account_outside_the_consent_is_refused_and_nothing_leaks(world: World) -> None:
    holder, other = world.holder(), world.holder()
    client = await world.register()
    token = await world.token(client)
    await world.consented(token, holder, "balance statement")
    # another customer's real account, and an account that does not exist: the same answer, no figure
    r_other = await world.api.get(account_path(other) + "/balance", headers=bearer(token))
    r_none = await world.api.get(account_path({**other, "account_number": "9999998"}) + "/balance",
                                 headers=bearer(token))
    assert r_other.status_code == r_none.status_code == 403
    assert r_other.json() == r_none.json() == {
        "error": "consent_required",
        "error_description": "no active consent of the customer for this account grants 'balance' to this client"}
    r = await world.api.get(account_path(other) + "/statement", params={"from_date": "2026-06-01",
                                                                         "to_date": "2026-07-01"},
                            headers=bearer(token))
    assert r.status_code == 403 and "lines" not in r.json()
    # another provider's token does not reach the first provider's consented account either
    stranger = await world.token(await world.register(name="他社"))
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(stranger))
    assert (r.status_code, r.json()["error"]) == (403, "consent_required")
    # the refusals are in the access log with the account asked for
    entries = await world.access_log(client_id=client["client_id"], outcome="consent_required")
    assert {e["account"] for e in entries} == {f"{other['branch_code']}-{other['account_number']}",
                                                f"{other['branch_code']}-9999998"}


async def test_balance_and_statement_need_a_consent_that_grants_the_scope(world: World) -> None:
    holder, payee = world.holder(), world.holder()
    client = await world.register()
    token = await world.token(client)
    await world.consented(token, holder, "balance")
    statement = account_path(holder) + "/statement"
    period = {"from_date": "2026-06-01", "to_date": "2026-07-31"}
    r = await world.api.get(statement, params=period, headers=bearer(token))
    assert (r.status_code, r.json()["error"]) == (403, "consent_required")  # the token has it, the consent not
    # a new consent for the statement too supersedes the first
    await world.consented(token, holder, "balance statement transfer", transfer_max_minor=50_000,
                          daily_transfer_max_minor=100_000)
    for amount in (10_000, 20_000):
        r = await world.api.post(account_path(holder) + "/transfers", headers={
            **bearer(token), "Idempotency-Key": f"pay-{amount}"}, json={
            "to_branch_code": payee["branch_code"], "to_account_number": payee["account_number"],
            "amount_minor": amount})
        assert r.status_code == 201, r.text
    r = await world.api.get(statement, params={**period, "limit": "2"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [(ln["deposit_minor"], ln["withdrawal_minor"], ln["balance_minor"]) for ln in page["lines"]] == [
        (BALANCE_MINOR, 0, BALANCE_MINOR), (0, 10_000, BALANCE_MINOR - 10_000)]
    assert page["lines"][0]["business_date"] == TODAY.isoformat() and page["next_cursor"]
    r = await world.api.get(statement, params={**period, "limit": "2", "cursor": page["next_cursor"]},
                            headers=bearer(token))
    assert [ln["balance_minor"] for ln in r.json()["lines"]] == [BALANCE_MINOR - 30_000]
    assert r.json()["next_cursor"] is None
    # the period and the page have limits, refused with their names
    r = await world.api.get(statement, params={"from_date": "2025-01-01", "to_date": "2026-07-01"},
                            headers=bearer(token))
    assert r.status_code == 400 and r.json()["limit"] == "openapi_statement_period_days_max"
    r = await world.api.get(statement, params={**period, "limit": "1000"}, headers=bearer(token))
    assert r.status_code == 400 and r.json()["limit"] == "openapi_statement_page_lines_max"
    consents = (await world.api.get("/v1/openapi/consents", params={
        "branch_code": holder["branch_code"], "account_number": holder["account_number"]})).json()["consents"]
    assert [c["status"] for c in consents] == ["active", "superseded"]


async def test_revocation_by_the_customer_the_bank_or_the_provider_ends_access_at_the_next_call(world: World) -> None:
    holders = [world.holder() for _ in range(3)]
    client = await world.register()
    token = await world.token(client)
    consent_ids = [await world.consented(token, h, "balance") for h in holders]
    for h in holders:
        assert (await world.api.get(account_path(h) + "/balance", headers=bearer(token))).status_code == 200
    # the customer, with the card and PIN
    r = await world.api.post(f"/v1/openapi/consents/{consent_ids[0]}/revoke-by-customer",
                             json={"card_number": holders[0]["card_number"], "pin": holders[0]["pin"]})
    assert r.status_code == 200 and (r.json()["status"], r.json()["revoked_by"]) == ("revoked", "customer")
    # the bank
    r = await world.api.post(f"/v1/openapi/consents/{consent_ids[1]}/revoke",
                             json={"by": "ops.sato", "reason": "fraud suspected at the provider"})
    assert r.status_code == 200 and r.json()["revoked_by"] == "bank"
    # the provider itself
    r = await world.api.delete(f"/openapi/v1/consents/{consent_ids[2]}", headers=bearer(token))
    assert r.status_code == 200 and r.json()["revoked_by"] == "provider"
    for h in holders:
        r = await world.api.get(account_path(h) + "/balance", headers=bearer(token))
        assert (r.status_code, r.json()["error"]) == (403, "consent_required")
    # a revoked consent cannot be authorised again: the provider asks for a new one
    r = await world.authorise(consent_ids[0], holders[0])
    assert (r.status_code, r.json()["error"]) == (409, "consent_not_pending")
    # another provider can neither read nor end a consent that is not its own
    stranger = await world.token(await world.register(name="他社"))
    r = await world.api.get(f"/openapi/v1/consents/{consent_ids[0]}", headers=bearer(stranger))
    assert r.status_code == 404


async def test_consents_expire_and_pending_ones_lapse(world: World) -> None:
    holder, late = world.holder(), world.holder()
    token = await world.token(await world.register())
    consent_id = await world.consented(token, holder, "balance", days=1)
    assert (await world.api.get(account_path(holder) + "/balance", headers=bearer(token))).status_code == 200
    pending = (await world.ask_consent(token, late, "balance")).json()
    world.clock.advance(minutes=31)  # past the 30 minutes a customer has to authorise
    r = await world.authorise(pending["consent_id"], late)
    assert (r.status_code, r.json()["error"]) == (409, "consent_not_pending")
    world.clock.advance(days=1)
    token = await world.token(await world.register())  # (the first token expired with the hour)
    r = await world.api.get(f"/v1/openapi/consents/{consent_id}")
    assert r.json()["status"] == "expired"
    r = await world.api.get(account_path(holder) + "/balance", headers=bearer(token))
    assert r.status_code == 403


async def test_consent_requests_are_checked_and_idempotent(world: World) -> None:
    holder = world.holder()
    client = await world.register("balance transfer")
    token = await world.token(client)
    r = await world.ask_consent(token, holder, "balance statement")
    assert r.status_code == 422 and "statement" in r.json()["error_description"]  # not in the token
    r = await world.ask_consent(token, holder, "transfer", transfer_max_minor=None, daily_transfer_max_minor=None)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    r = await world.ask_consent(token, holder, "transfer", transfer_max_minor=200_000,
                                daily_transfer_max_minor=100_000)
    assert r.status_code == 422 and "daily_transfer_max_minor" in r.json()["error_description"]
    r = await world.ask_consent(token, holder, "balance", days=181)
    assert r.status_code == 422 and "180 days" in r.json()["error_description"]
    first = await world.ask_consent(token, holder, "balance", key="same-key")
    again = await world.ask_consent(token, holder, "balance", key="same-key")
    assert first.status_code == again.status_code == 201
    assert first.json()["consent_id"] == again.json()["consent_id"] and again.json()["replayed"] is True
    r = await world.ask_consent(token, holder, "transfer", key="same-key")
    assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_reused")
    r = await world.api.post("/openapi/v1/consents", headers=bearer(token), json={
        "branch_code": holder["branch_code"], "account_number": holder["account_number"], "scopes": ["balance"],
        "expires_at": (world.clock.now() + dt.timedelta(days=1)).isoformat()})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error_description"]
    # a provider cannot flood a customer with requests
    answers = [(await world.ask_consent(token, holder, "balance")).status_code for _ in range(5)]
    assert answers == [201, 201, 201, 201, 409]


async def test_two_consents_authorised_at_once_leave_one_active(world: World) -> None:
    holder = world.holder()
    token = await world.token(await world.register())
    ids = [(await world.ask_consent(token, holder, "balance")).json()["consent_id"] for _ in range(2)]
    answers = await asyncio.gather(*(world.authorise(consent_id, holder) for consent_id in ids))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    consents = (await world.api.get("/v1/openapi/consents", params={
        "branch_code": holder["branch_code"], "account_number": holder["account_number"]})).json()["consents"]
    assert sorted(c["status"] for c in consents) == ["active", "superseded"]
    assert (await world.api.get(account_path(holder) + "/balance", headers=bearer(token))).status_code == 200
