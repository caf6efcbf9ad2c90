"""Transfer initiation by providers through the HTTP app on a real database: what a customer, a provider and an
auditor check — money moves exactly once per Idempotency-Key (retries, concurrent duplicates, a retry after a
system error whose first attempt had posted), the consent's maximums hold even under concurrency, refusals change
nothing, and the books balance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kanjo.channels.openapi.transfers import transfer_id_of
from kanjo.deposits import transfer
from kanjo.hub import FaultMode
from tests.integration.test_openapi_support import BALANCE_MINOR, World, account_path, bearer, module_world

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(pg_server_dsn: str) -> AsyncIterator[World]:
    async with module_world(pg_server_dsn, holders=24) as w:
        yield w


@pytest.fixture
def world(shared: World) -> World:
    shared.reset_clocks()
    return shared


async def pay(world: World, token: str, payer: dict[str, str], payee: dict[str, str], amount_minor: int,
              key: str) -> httpx.Response:
    return await world.api.post(account_path(payer) + "/transfers", headers={**bearer(token), "Idempotency-Key": key},
                                json={"to_branch_code": payee["branch_code"],
                                      "to_account_number": payee["account_number"], "amount_minor": amount_minor})


async def provider(world: World, payer: dict[str, str], **limits: Any) -> tuple[dict[str, Any], str]:
    client = await world.register()
    token = await world.token(client)
    await world.consented(token, payer, "balance transfer", **limits)
    return client, token


async def test_a_transfer_moves_money_exactly_once_on_retry(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer)
    first = await pay(world, token, payer, payee, 12_345, "order-1")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "completed" and body["amount_minor"] == 12_345 and body["fee_minor"] == 0
    assert body["to"] == {"branch_code": payee["branch_code"], "account_number": payee["account_number"]}
    again = await pay(world, token, payer, payee, 12_345, "order-1")  # the answer was lost: the same request again
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert {**again.json(), "replayed": False} == body
    assert await world.balance_minor(payer) == BALANCE_MINOR - 12_345
    assert await world.balance_minor(payee) == BALANCE_MINOR + 12_345
    # the same key for another transfer changes nothing
    r = await pay(world, token, payer, payee, 99, "order-1")
    assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_reused")
    assert await world.balance_minor(payer) == BALANCE_MINOR - 12_345
    status = await world.api.get(account_path(payer) + f"/transfers/{body['transfer_id']}", headers=bearer(token))
    assert status.status_code == 200 and status.json()["status"] == "completed"
    await world.books_ok()


async def test_concurrent_duplicates_move_money_once(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer)
    answers = await asyncio.gather(*(pay(world, token, payer, payee, 40_000, "same") for _ in range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, [r.text for r in answers]
    assert all(r.json()["error"] == "request_in_progress" for r in answers if r.status_code == 409)
    assert len({r.json()["transfer_id"] for r in answers if r.status_code == 201}) == 1
    assert await world.balance_minor(payer) == BALANCE_MINOR - 40_000
    assert await world.balance_minor(payee) == BALANCE_MINOR + 40_000


async def test_over_the_consents_maximums_is_refused(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer, transfer_max_minor=100_000, daily_transfer_max_minor=150_000)
    r = await pay(world, token, payer, payee, 100_001, "too-big")
    assert (r.status_code, r.json()["error"]) == (403, "exceeds_transfer_maximum")
    assert (await pay(world, token, payer, payee, 100_000, "a")).status_code == 201
    assert (await pay(world, token, payer, payee, 50_000, "b")).status_code == 201
    r = await pay(world, token, payer, payee, 1, "c")
    assert (r.status_code, r.json()["error"]) == (403, "exceeds_daily_maximum")
    assert "¥0 remains today" in r.json()["error_description"]
    assert await world.balance_minor(payer) == BALANCE_MINOR - 150_000


async def test_the_days_maximum_holds_under_concurrency(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer, transfer_max_minor=50_000, daily_transfer_max_minor=150_000)
    answers = await asyncio.gather(*(pay(world, token, payer, payee, 50_000, f"k{i}") for i in range(6)))
    assert sorted(r.status_code for r in answers) == [201, 201, 201, 403, 403, 403]
    assert await world.balance_minor(payer) == BALANCE_MINOR - 150_000


async def test_the_next_day_brings_a_new_daily_maximum(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    client, token = await provider(world, payer, transfer_max_minor=50_000, daily_transfer_max_minor=50_000)
    assert (await pay(world, token, payer, payee, 50_000, "day-1")).status_code == 201
    assert (await pay(world, token, payer, payee, 50_000, "day-1b")).status_code == 403
    world.clock.advance(hours=14)  # 10:00 → 00:00 JST the next day
    token = await world.token(client)
    assert (await pay(world, token, payer, payee, 50_000, "day-2")).status_code == 201
    assert await world.balance_minor(payer) == BALANCE_MINOR - 100_000


async def test_insufficient_funds_is_refused_and_remembered(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer, transfer_max_minor=1_000_000, daily_transfer_max_minor=1_000_000)
    r = await pay(world, token, payer, payee, BALANCE_MINOR + 1, "big")
    assert (r.status_code, r.json()["error"]) == (409, "insufficient_funds")
    assert await world.balance_minor(payer) == BALANCE_MINOR and await world.balance_minor(payee) == BALANCE_MINOR
    status = await world.api.get(account_path(payer) + f"/transfers/{r.json()['transfer_id']}", headers=bearer(token))
    assert status.json()["status"] == "refused" and status.json()["refusal"]["error"] == "insufficient_funds"
    # the same order retried is answered the same, even once the money is there: a new order needs a new key
    from kanjo.deposits import deposit_cash

    await deposit_cash(world.app.state.bank.deposits, uuid.uuid4().int, uuid.UUID(payer["account_id"]).int, 10)
    r = await pay(world, token, payer, payee, BALANCE_MINOR + 1, "big")
    assert r.status_code == 409 and r.headers["idempotent-replayed"] == "true"
    assert (await pay(world, token, payer, payee, BALANCE_MINOR + 1, "big-2")).status_code == 201
    # the refused transfer did not count toward the day's maximum
    assert await world.balance_minor(payer) == 10 - 1


async def test_payees_and_scopes_are_checked(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    client, token = await provider(world, payer)
    r = await pay(world, token, payer, {**payee, "account_number": "9999997"}, 1_000, "nobody")
    assert (r.status_code, r.json()["error"]) == (422, "unknown_payee")
    r = await pay(world, token, payer, payer, 1_000, "myself")
    assert (r.status_code, r.json()["error"]) == (422, "same_account")
    # a balance-only consent cannot pay; neither can a token without the transfer scope
    other = world.holder()
    await world.consented(token, other, "balance")
    r = await pay(world, token, other, payee, 1_000, "no-consent")
    assert (r.status_code, r.json()["error"]) == (403, "consent_required")
    narrow = await world.token(client, "balance")
    r = await pay(world, narrow, payer, payee, 1_000, "no-scope")
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")
    assert await world.balance_minor(payer) == BALANCE_MINOR and await world.balance_minor(payee) == BALANCE_MINOR


async def test_a_system_error_answers_503_and_the_retry_finishes_the_transfer_once(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    client, token = await provider(world, payer, transfer_max_minor=BALANCE_MINOR,
                                   daily_transfer_max_minor=BALANCE_MINOR)
    hub = world.app.state.hub
    hub.inject_fault("deposits", FaultMode.ERROR)
    try:
        r = await pay(world, token, payer, payee, BALANCE_MINOR, "all-of-it")
    finally:
        hub.clear_fault("deposits")
    assert (r.status_code, r.json()["error"]) == (503, "temporarily_unavailable") and r.headers["retry-after"]
    transfer_id = transfer_id_of(client["client_id"], "all-of-it")
    status = await world.api.get(account_path(payer) + f"/transfers/{uuid.UUID(int=transfer_id)}",
                                 headers=bearer(token))
    assert status.json()["status"] == "processing"
    # what a first attempt that posted but whose answer was lost would have left: the posting under the same id
    await transfer(world.app.state.bank.deposits, transfer_id, uuid.UUID(payer["account_id"]).int,
                   uuid.UUID(payee["account_id"]).int, BALANCE_MINOR)
    r = await pay(world, token, payer, payee, BALANCE_MINOR, "all-of-it")  # not refused for lack of funds
    assert r.status_code == 201, r.text
    assert await world.balance_minor(payer) == 0 and await world.balance_minor(payee) == 2 * BALANCE_MINOR
    await world.books_ok()


async def test_a_revoked_consent_stops_payments(world: World) -> None:
    payer, payee = world.holder(), world.holder()
    _, token = await provider(world, payer)
    consent = (await world.api.get("/v1/openapi/consents", params={
        "branch_code": payer["branch_code"], "account_number": payer["account_number"]})).json()["consents"][0]
    assert (await pay(world, token, payer, payee, 1_000, "before")).status_code == 201
    r = await world.api.post(f"/v1/openapi/consents/{consent['consent_id']}/revoke-by-customer",
                             json={"card_number": payer["card_number"], "pin": payer["pin"]})
    assert r.status_code == 200
    r = await pay(world, token, payer, payee, 1_000, "after")
    assert (r.status_code, r.json()["error"]) == (403, "consent_required")
    assert await world.balance_minor(payer) == BALANCE_MINOR - 1_000
