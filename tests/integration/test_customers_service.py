"""The customers handlers against a real PostgreSQL: CIF numbers, idempotent replays, history and search."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kanjo.customers import (
    Contact,
    CustomerKind,
    CustomerNotFound,
    CustomerStatus,
    IdentityVerification,
    IdentityVerificationUpdate,
    IllegalTransition,
    InvalidField,
    NewCustomer,
    RequestConflict,
    account_opening_refusal,
    customer_history,
    freeze_customer,
    get_customer,
    record_death,
    record_identity_verification,
    register_customer,
    search_customers,
    unfreeze_customer,
    update_contact,
)
from kanjo.kernel.clock import FixedClock
from kanjo.kernel.limits import LimitReached
from kanjo.platform.db import create_pool

NOW = dt.datetime(2025, 6, 2, 1, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo
CONTACT = Contact("03-1234-5678", None, "100-0005", "東京都千代田区丸の内1-1-1")


@pytest.fixture
async def pool(ledger_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(ledger_dsn, size_max=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(int(NOW.timestamp()) * 1_000_000_000)


def rid() -> int:
    return uuid.uuid4().int


def person(kana: str = "ﾔﾏﾀﾞ ﾀﾛｳ", phone: str = "03-1234-5678", **changes: object) -> NewCustomer:
    fields: dict[str, object] = {
        "id": rid(), "kind": CustomerKind.INDIVIDUAL, "name_kanji": "山田 太郎", "name_kana": kana,
        "contact": Contact(phone, None, "100-0005", "東京都千代田区丸の内1-1-1"), "birth_date": dt.date(1980, 4, 1),
    }
    fields.update(changes)
    return NewCustomer(**fields)  # type: ignore[arg-type]


async def count(pool: asyncpg.Pool, table: str) -> int:
    value: int = await pool.fetchval(f"SELECT count(*) FROM customers.{table}")
    return value


# -- registration --------------------------------------------------------------------------------------


async def test_cif_numbers_are_unique_and_increasing(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customers = [await register_customer(pool, person(), clock=clock) for _ in range(5)]
    numbers = [c.cif_number for c in customers]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1
    first = customers[0]
    assert first.cif_text == f"{first.cif_number:010d}"
    assert (first.status, first.identity_verification, first.version) == (
        CustomerStatus.ACTIVE, IdentityVerification.UNVERIFIED, 1)
    assert first.name_kana == "ヤマダ\u3000タロウ"
    assert first.created_at == NOW
    assert await get_customer(pool, first.id) == first
    history = await customer_history(pool, first.id)
    assert [(e.kind, e.version, e.request_id) for e in history] == [("registered", 1, first.id)]


async def test_registration_replays_and_conflicts(pool: asyncpg.Pool, clock: FixedClock) -> None:
    new = person()
    first = await register_customer(pool, new, clock=clock)
    clock.advance(60)
    # The same request, typed in full-width this time: the same normalised fields, the first answer.
    again = await register_customer(pool, person(id=new.id, kana="ヤマダ　タロウ", phone="０３-１２３４-５６７８"),
                                    clock=clock)
    assert again == first
    for changes, field in [({"name_kanji": "山田 次郎"}, "name_kanji"), ({"birth_date": dt.date(1980, 4, 2)},
                                                                        "birth_date")]:
        with pytest.raises(RequestConflict) as caught:
            await register_customer(pool, person(id=new.id, **changes), clock=clock)
        assert caught.value.field == field
        assert f"different {field}" in str(caught.value)
    assert await count(pool, "customers") == 1
    next_one = await register_customer(pool, person(), clock=clock)
    assert next_one.cif_number == first.cif_number + 1  # replays and refusals used no number


async def test_concurrent_duplicate_registrations_make_one_customer(pool: asyncpg.Pool, clock: FixedClock) -> None:
    new = person()
    results = await asyncio.gather(*(register_customer(pool, new, clock=clock) for _ in range(8)))
    assert len({(c.id, c.cif_number) for c in results}) == 1
    assert await count(pool, "customers") == 1
    assert await count(pool, "events") == 1


async def test_invalid_registration_changes_nothing(pool: asyncpg.Pool, clock: FixedClock) -> None:
    with pytest.raises(InvalidField) as caught:
        await register_customer(pool, person(kana="やまだ"), clock=clock)
    assert caught.value.field == "name_kana"
    with pytest.raises(InvalidField) as caught:
        await register_customer(pool, person(birth_date=dt.date(2025, 6, 2)), clock=clock)  # today in Tokyo
    assert caught.value.field == "birth_date"
    assert await count(pool, "customers") == 0


async def test_cif_numbers_stop_at_ten_digits(pool: asyncpg.Pool, clock: FixedClock) -> None:
    await pool.execute("SELECT setval('customers.cif_number_seq', 9999999998)")
    last = await register_customer(pool, person(), clock=clock)
    assert last.cif_text == "9999999999"
    with pytest.raises(LimitReached) as caught:
        await register_customer(pool, person(), clock=clock)
    assert caught.value.limit.name == "customers_cif_number_max"
    assert await count(pool, "customers") == 1


# -- changes, replays and refusals ---------------------------------------------------------------------


async def test_status_changes_are_idempotent_by_request_id(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    freeze_id = rid()
    clock.advance(60)
    frozen = await freeze_customer(pool, customer.id, freeze_id, "差押命令", clock=clock)
    assert (frozen.status, frozen.version, frozen.status_reason) == (CustomerStatus.FROZEN, 2, "差押命令")
    assert frozen.updated_at == NOW + dt.timedelta(seconds=60)
    thawed = await unfreeze_customer(pool, customer.id, rid(), "差押解除", clock=clock)
    assert (thawed.status, thawed.version) == (CustomerStatus.ACTIVE, 3)

    # A late retry of the freeze answers what it answered then, and changes nothing now.
    assert await freeze_customer(pool, customer.id, freeze_id, "差押命令", clock=clock) == frozen
    assert (await get_customer(pool, customer.id)).status is CustomerStatus.ACTIVE

    with pytest.raises(RequestConflict) as caught:
        await freeze_customer(pool, customer.id, freeze_id, "別の理由", clock=clock)
    assert caught.value.field == "reason"
    with pytest.raises(RequestConflict) as caught:
        await unfreeze_customer(pool, customer.id, freeze_id, "差押命令", clock=clock)
    assert caught.value.field == "request_id"
    assert "already used for freeze_customer" in str(caught.value)
    other = await register_customer(pool, person(), clock=clock)
    with pytest.raises(RequestConflict) as caught:
        await freeze_customer(pool, other.id, freeze_id, "差押命令", clock=clock)
    assert caught.value.field == "customer_id"
    assert [e.kind for e in await customer_history(pool, customer.id)] == ["registered", "frozen", "unfrozen"]


async def test_an_illegal_transition_is_remembered(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    unfreeze_id = rid()
    with pytest.raises(IllegalTransition) as caught:
        await unfreeze_customer(pool, customer.id, unfreeze_id, "誤操作", clock=clock)
    assert (caught.value.transition, caught.value.status) == ("unfreeze", "active")
    await freeze_customer(pool, customer.id, rid(), "本人申出", clock=clock)
    # Now the customer is frozen, but a retry of the refused request gets the same refusal.
    with pytest.raises(IllegalTransition, match="it is active"):
        await unfreeze_customer(pool, customer.id, unfreeze_id, "誤操作", clock=clock)
    assert (await get_customer(pool, customer.id)).status is CustomerStatus.FROZEN


async def test_concurrent_duplicate_changes_apply_once(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    request_id = rid()
    results = await asyncio.gather(
        *(freeze_customer(pool, customer.id, request_id, "不正利用の疑い", clock=clock) for _ in range(8)))
    assert {(c.status, c.version) for c in results} == {(CustomerStatus.FROZEN, 2)}
    assert len(await customer_history(pool, customer.id)) == 2


async def test_unknown_customer(pool: asyncpg.Pool, clock: FixedClock) -> None:
    missing = rid()
    with pytest.raises(CustomerNotFound):
        await get_customer(pool, missing)
    with pytest.raises(CustomerNotFound):
        await freeze_customer(pool, missing, rid(), "x", clock=clock)
    with pytest.raises(CustomerNotFound):
        await customer_history(pool, missing)
    assert await count(pool, "requests") == 0


async def test_contact_verification_and_death(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    request_id = rid()
    moved = await update_contact(pool, customer.id, request_id,
                                 Contact("090-1111-2222", "taro@example.jp", "5300001", "大阪府大阪市北区梅田1-1"),
                                 clock=clock)
    assert moved.contact == Contact("090-1111-2222", "taro@example.jp", "530-0001", "大阪府大阪市北区梅田1-1")
    with pytest.raises(RequestConflict) as caught:
        await update_contact(pool, customer.id, request_id,
                             Contact("090-1111-2222", None, "530-0001", "大阪府大阪市北区梅田1-1"), clock=clock)
    assert caught.value.field == "email"
    assert [c.id for c in (await search_customers(pool, phone="09011112222")).customers] == [customer.id]
    assert (await search_customers(pool, phone="03-1234-5678")).customers == []

    verified = await record_identity_verification(
        pool, customer.id, rid(), IdentityVerificationUpdate(IdentityVerification.VERIFIED, dt.date(2025, 6, 1)),
        clock=clock)
    assert (verified.identity_verification, verified.identity_verified_on) == (
        IdentityVerification.VERIFIED, dt.date(2025, 6, 1))
    with pytest.raises(InvalidField) as invalid:
        await record_death(pool, customer.id, rid(), dt.date(2025, 6, 3), "届出", clock=clock)
    assert invalid.value.field == "died_on"
    dead = await record_death(pool, customer.id, rid(), dt.date(2025, 5, 30), "親族からの届出", clock=clock)
    assert (dead.status, dead.died_on, dead.version) == (CustomerStatus.DECEASED, dt.date(2025, 5, 30), 4)
    with pytest.raises(IllegalTransition, match=r"cannot freeze customer .*: it is deceased"):
        await freeze_customer(pool, customer.id, rid(), "x", clock=clock)

    history = await customer_history(pool, customer.id)
    assert [(e.kind, e.version) for e in history] == [
        ("registered", 1), ("contact_updated", 2), ("identity_verification_recorded", 3), ("death_recorded", 4)]
    assert history[1].details["postal_code"] == {"from": "100-0005", "to": "530-0001"}


async def test_history_and_requests_are_append_only(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    for statement in ("UPDATE customers.events SET kind = 'frozen'", "DELETE FROM customers.events",
                      "DELETE FROM customers.requests"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await pool.execute(statement)
    assert len(await customer_history(pool, customer.id)) == 1


async def test_the_database_refuses_what_the_domain_refuses(pool: asyncpg.Pool) -> None:
    good = ("'individual', '山田', 'ヤマダ', DATE '1980-04-01', NULL, '03-1234-5678', '0312345678', NULL,"
            " '100-0005', '東京都', 'unverified', NULL, 'active', NULL, NULL, now(), now(), 1")
    columns = ("id, kind, name_kanji, name_kana, birth_date, registration_date, phone, phone_digits, email,"
               " postal_code, address, identity_verification, identity_verified_on, status, status_reason,"
               " died_on, created_at, updated_at, version")
    await pool.execute(f"INSERT INTO customers.customers ({columns}) VALUES (gen_random_uuid(), {good})")
    for bad in (good.replace("'ヤマダ'", "'やまだ'"), good.replace("'0312345678'", "'0312345679'"),
                good.replace("'100-0005'", "'1000005'"), good.replace("DATE '1980-04-01'", "NULL"),
                good.replace("'active', NULL, NULL", "'deceased', NULL, NULL")):
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute(f"INSERT INTO customers.customers ({columns}) VALUES (gen_random_uuid(), {bad})")


# -- search --------------------------------------------------------------------------------------------


async def test_search_by_kana_prefix_in_gojuon_order(pool: asyncpg.Pool, clock: FixedClock) -> None:
    names = ["ヤマダ　ハナコ", "ヤマダ　タロウ", "ヤマダイ　ケン", "ヤマモト　ジロウ", "スズキ　イチロウ",
             "ヤマダ　タロウ"]
    registered = [await register_customer(pool, person(kana=n), clock=clock) for n in names]

    found = await search_customers(pool, kana_prefix="ﾔﾏﾀﾞ")
    assert [c.name_kana for c in found.customers] == [
        "ヤマダ　タロウ", "ヤマダ　タロウ", "ヤマダ　ハナコ", "ヤマダイ　ケン"]  # 五十音 order, then CIF number
    assert found.customers[0].cif_number < found.customers[1].cif_number
    assert found.more is False
    assert [c.name_kana for c in (await search_customers(pool, kana_prefix="ﾔﾏﾀﾞ ")).customers] == [
        "ヤマダ　タロウ", "ヤマダ　タロウ", "ヤマダ　ハナコ"]  # the trailing space ends the family name
    assert len((await search_customers(pool, kana_prefix="ヤマ")).customers) == 5
    page = await search_customers(pool, kana_prefix="ヤマ", limit=2)
    assert (len(page.customers), page.more) == (2, True)
    assert (await search_customers(pool, kana_prefix="ワ")).customers == []
    assert {c.id for c in (await search_customers(pool, kana_prefix="ス")).customers} == {registered[4].id}

    with pytest.raises(InvalidField) as caught:
        await search_customers(pool, kana_prefix="やま")
    assert caught.value.field == "kana"
    with pytest.raises(InvalidField):
        await search_customers(pool)
    with pytest.raises(LimitReached) as limit:
        await search_customers(pool, kana_prefix="ヤ", limit=101)
    assert limit.value.limit.name == "customers_search_rows_max"


async def test_search_by_phone(pool: asyncpg.Pool, clock: FixedClock) -> None:
    a = await register_customer(pool, person(kana="アオキ", phone="090-1234-5678"), clock=clock)
    b = await register_customer(pool, person(kana="イトウ", phone="09012345678"), clock=clock)
    await register_customer(pool, person(kana="ウエダ", phone="03-1234-5678"), clock=clock)
    for typed in ("09012345678", "090-1234-5678", "０９０１２３４５６７８", "0901-23-45678"):
        assert [c.id for c in (await search_customers(pool, phone=typed)).customers] == [a.id, b.id], typed
    both = await search_customers(pool, phone="090-1234-5678", kana_prefix="ｲ")
    assert [c.id for c in both.customers] == [b.id]
    with pytest.raises(InvalidField) as caught:
        await search_customers(pool, phone="12-34")
    assert caught.value.field == "phone"


async def test_searches_use_their_indexes(pool: asyncpg.Pool, clock: FixedClock) -> None:
    await register_customer(pool, person(), clock=clock)
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index can serve it
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN SELECT id FROM customers.customers WHERE name_kana >= $1 AND name_kana < $2"
            " ORDER BY name_kana, cif_number LIMIT 21", "ヤマダ", "ヤマヂ"))
        assert "customers_by_name_kana" in plan and "Sort" not in plan, plan
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN SELECT id FROM customers.customers WHERE phone_digits = $1", "0312345678"))
        assert "customers_by_phone" in plan, plan


async def test_who_may_open_an_account(pool: asyncpg.Pool, clock: FixedClock) -> None:
    customer = await register_customer(pool, person(), clock=clock)
    assert "identity is unverified" in (await account_opening_refusal(pool, customer.id) or "")
    await record_identity_verification(
        pool, customer.id, rid(), IdentityVerificationUpdate(IdentityVerification.VERIFIED, dt.date(2025, 6, 1)),
        clock=clock)
    assert await account_opening_refusal(pool, customer.id) is None
    await freeze_customer(pool, customer.id, rid(), "不正利用の疑い", clock=clock)
    assert (await account_opening_refusal(pool, customer.id) or "").endswith("is frozen")
    assert (await account_opening_refusal(pool, rid()) or "").startswith("no customer")
