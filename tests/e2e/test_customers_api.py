"""Customers (CIF) over real HTTP: register, look up, search, change, and every refusal a clerk can meet.

Bad input gets 422 naming the field, an unknown customer 404, an illegal transition or a reused
request id 409 naming the transition or the field, never a 500; and a refusal changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import create_database, drop_database
from tests.e2e.server import KanjoProcess


@pytest.fixture(scope="module")
def api(pg_server_dsn: str) -> Iterator[httpx.Client]:
    """One kanjo process for the module: every test works on its own customers."""
    dsn = asyncio.run(create_database(pg_server_dsn))
    process = KanjoProcess(dsn)
    process.start()
    try:
        with httpx.Client(base_url=process.base_url, timeout=30) as client:
            yield client
    finally:
        process.stop()
        asyncio.run(drop_database(pg_server_dsn, dsn))


def uid() -> str:
    return str(uuid.uuid4())


def person(**changes: Any) -> dict[str, Any]:
    body = {
        "id": uid(), "kind": "individual", "name_kanji": "山田 太郎", "name_kana": "ﾔﾏﾀﾞ ﾀﾛｳ",
        "birth_date": "1980-04-01", "phone": "03-1234-5678", "email": "taro.yamada@example.jp",
        "postal_code": "1000005", "address": "東京都千代田区丸の内1-1-1",
    }
    body.update(changes)
    return body


def register(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    r = api.post("/v1/customers", json=person(**changes))
    assert r.status_code == 201, r.text
    return r.json()


def refused(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == error, body
    return body


def test_register_and_look_up(api: httpx.Client) -> None:
    body = person()
    r = api.post("/v1/customers", json=body)
    assert r.status_code == 201, r.text
    customer = r.json()
    assert customer["id"] == body["id"]
    assert len(customer["cif_number"]) == 10 and customer["cif_number"].isdigit()
    assert {k: customer[k] for k in ("name_kana", "postal_code", "status", "identity_verification", "version")} == {
        "name_kana": "ヤマダ\u3000タロウ", "postal_code": "100-0005", "status": "active",
        "identity_verification": "unverified", "version": 1}
    assert api.get(f"/v1/customers/{body['id']}").json() == customer
    # A retry of the registration answers the same customer, CIF number included.
    again = api.post("/v1/customers", json=body)
    assert (again.status_code, again.json()) == (201, customer)
    other = register(api, kind="corporate", name_kanji="株式会社山田商事", name_kana="ｶﾌﾞｼｷｶﾞｲｼｬ ﾔﾏﾀﾞｼｮｳｼﾞ",
                     birth_date=None, registration_date="1950-01-10")
    assert int(other["cif_number"]) > int(customer["cif_number"])

    conflict = refused(api.post("/v1/customers", json={**body, "name_kanji": "山田 次郎"}), 409, "request_conflict")
    assert conflict["fields"][0]["field"] == "name_kanji"
    refused(api.get(f"/v1/customers/{uid()}"), 404, "not_found")
    refused(api.get("/v1/customers/not-a-uuid"), 422, "invalid_field")


@pytest.mark.parametrize(("changes", "field"), [
    ({"name_kana": "やまだ たろう"}, "name_kana"),
    ({"name_kana": "ヤマダ" * 21}, "name_kana"),
    ({"name_kanji": ""}, "name_kanji"),
    ({"phone": "12-34"}, "phone"),
    ({"email": "taro"}, "email"),
    ({"postal_code": "100-00"}, "postal_code"),
    ({"address": "あ" * 201}, "address"),
    ({"birth_date": "2999-01-01"}, "birth_date"),
    ({"birth_date": "1880-01-01"}, "birth_date"),
    ({"birth_date": None}, "birth_date"),
    ({"registration_date": "2000-01-01"}, "registration_date"),
    ({"kind": "partnership"}, "kind"),
    ({"id": "42"}, "id"),
    ({"phone": 312345678}, "phone"),  # strict: a number is not text
    ({"nickname": "タロ"}, "nickname"),  # unknown fields are refused
])
def test_invalid_registration_names_the_field(api: httpx.Client, changes: dict[str, Any], field: str) -> None:
    body = person(**changes)
    problem = refused(api.post("/v1/customers", json=body), 422, "invalid_field")
    assert problem["fields"][0]["field"] == field, problem
    assert problem["message"].startswith(f"{field}:"), problem
    if field != "id":
        refused(api.get(f"/v1/customers/{body['id']}"), 404, "not_found")  # nothing was registered


def test_status_transitions_and_refusals(api: httpx.Client) -> None:
    customer = register(api)
    base = f"/v1/customers/{customer['id']}"
    freeze = {"request_id": uid(), "reason": "差押命令"}
    r = api.post(f"{base}/freeze", json=freeze)
    assert r.status_code == 200, r.text
    frozen = r.json()
    assert (frozen["status"], frozen["status_reason"], frozen["version"]) == ("frozen", "差押命令", 2)
    assert api.post(f"{base}/freeze", json=freeze).json() == frozen  # a retry: the same answer

    illegal = refused(api.post(f"{base}/freeze", json={"request_id": uid(), "reason": "二重"}), 409,
                      "illegal_transition")
    assert (illegal["transition"], illegal["current_status"]) == ("freeze", "frozen")
    assert "cannot freeze customer" in illegal["message"] and "it is frozen" in illegal["message"]
    conflict = refused(api.post(f"{base}/freeze", json={**freeze, "reason": "別"}), 409, "request_conflict")
    assert conflict["fields"][0]["field"] == "reason"
    conflict = refused(api.post(f"{base}/unfreeze", json=freeze), 409, "request_conflict")
    assert conflict["fields"][0]["field"] == "request_id"

    assert api.post(f"{base}/unfreeze", json={"request_id": uid(), "reason": "差押解除"}).json()["status"] == "active"
    death = {"request_id": uid(), "died_on": "2025-01-15", "reason": "親族からの届出"}
    dead = api.post(f"{base}/death", json=death).json()
    assert (dead["status"], dead["died_on"]) == ("deceased", "2025-01-15")
    illegal = refused(api.post(f"{base}/unfreeze", json={"request_id": uid(), "reason": "x"}), 409,
                      "illegal_transition")
    assert illegal["current_status"] == "deceased"
    refused(api.post(f"{base}/freeze", json={"request_id": uid(), "reason": ""}), 422, "invalid_field")
    refused(api.post(f"{base}/death", json={**death, "request_id": uid(), "died_on": "2999-01-01"}), 422,
            "invalid_field")
    refused(api.post(f"/v1/customers/{uid()}/freeze", json={"request_id": uid(), "reason": "x"}), 404, "not_found")
    problem = refused(api.post(f"{base}/freeze", json={"reason": "x"}), 422, "invalid_field")
    assert problem["fields"][0]["field"] == "request_id"

    events = api.get(f"{base}/events").json()["events"]
    assert [(e["kind"], e["version"]) for e in events] == [
        ("registered", 1), ("frozen", 2), ("unfrozen", 3), ("death_recorded", 4)]
    assert events[1]["details"] == {"from": "active", "to": "frozen", "reason": "差押命令"}


def test_contact_and_identity_verification(api: httpx.Client) -> None:
    customer = register(api)
    base = f"/v1/customers/{customer['id']}"
    contact = {"request_id": uid(), "phone": "０９０－９８７６－５４３２", "email": None, "postal_code": "530-0001",
               "address": "大阪府大阪市北区梅田1-1"}
    moved = api.post(f"{base}/contact", json=contact).json()
    assert (moved["phone"], moved["email"], moved["postal_code"]) == ("090-9876-5432", None, "530-0001")
    problem = refused(api.post(f"{base}/contact", json={**contact, "request_id": uid(), "postal_code": "5300"}),
                      422, "invalid_field")
    assert problem["fields"][0]["field"] == "postal_code"
    problem = refused(api.post(f"{base}/contact", json={k: v for k, v in contact.items() if k != "email"}),
                      422, "invalid_field")
    assert problem["fields"][0]["field"] == "email"  # explicit: null removes the address, absence is an error

    verified = api.post(f"{base}/identity-verification",
                        json={"request_id": uid(), "status": "verified", "verified_on": "2025-04-01"}).json()
    assert (verified["identity_verification"], verified["identity_verified_on"]) == ("verified", "2025-04-01")
    problem = refused(api.post(f"{base}/identity-verification", json={"request_id": uid(), "status": "verified"}),
                      422, "invalid_field")
    assert problem["fields"][0]["field"] == "verified_on"
    problem = refused(api.post(f"{base}/identity-verification", json={"request_id": uid(), "status": "lost"}),
                      422, "invalid_field")
    assert problem["fields"][0]["field"] == "status"


def test_search(api: httpx.Client) -> None:
    phone = f"0{uuid.uuid4().int % 10**10:010d}"  # this test's own number in a shared database
    a = register(api, name_kana="ﾜﾀﾅﾍﾞ ﾊﾅｺ", phone=phone)
    b = register(api, name_kana="ワタナベ　イチロウ")
    c = register(api, name_kana="ワタヌキ　ジロウ", phone=f"{phone[:3]}-{phone[3:7]}-{phone[7:]}")

    r = api.get("/v1/customers", params={"kana": "ﾜﾀﾅﾍﾞ"})
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["customers"]] == [b["id"], a["id"]]  # イ before ハ
    assert r.json()["more"] is False
    page = api.get("/v1/customers", params={"kana": "ワタ", "limit": 2}).json()
    assert (len(page["customers"]), page["more"]) == (2, True)
    by_phone = api.get("/v1/customers", params={"phone": phone}).json()["customers"]
    assert [x["id"] for x in by_phone] == [a["id"], c["id"]]
    both = api.get("/v1/customers", params={"phone": phone, "kana": "ワタヌ"}).json()["customers"]
    assert [x["id"] for x in both] == [c["id"]]

    assert refused(api.get("/v1/customers", params={"kana": "わたなべ"}), 422, "invalid_field")[
        "fields"][0]["field"] == "kana"
    assert refused(api.get("/v1/customers", params={"phone": "12"}), 422, "invalid_field")[
        "fields"][0]["field"] == "phone"
    refused(api.get("/v1/customers"), 422, "invalid_field")
    refused(api.get("/v1/customers", params={"kana": "ワ", "limit": 0}), 422, "invalid_field")
    limit = refused(api.get("/v1/customers", params={"kana": "ワ", "limit": 101}), 413, "limit_reached")
    assert limit["limit"] == "customers_search_rows_max"


def test_openapi_documents_the_routes(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/v1/customers", "/v1/customers/{customer_id}", "/v1/customers/{customer_id}/freeze",
                 "/v1/customers/{customer_id}/unfreeze", "/v1/customers/{customer_id}/death",
                 "/v1/customers/{customer_id}/contact", "/v1/customers/{customer_id}/identity-verification"):
        assert path in paths, path
