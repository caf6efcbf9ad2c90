"""kanjo over real HTTP: a real `kanjo up` process, a real PostgreSQL, httpx as the client.

Each test checks what a user of the API would check: the answer per event, the balances after, and
that bad input gets a clear answer (400 / 413 / 422 / 503, naming the field or the limit) and changes
nothing.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import create_database, drop_database
from tests.e2e.server import KanjoProcess

JPY = 392
BATCH_MAX = 8190
BODY_BYTES_MAX = 8 * 1024 * 1024


# -- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(pg_server_dsn: str) -> Iterator[KanjoProcess]:
    """One kanjo process for the module: every test works on its own fresh ids, so they do not interfere."""
    dsn = asyncio.run(create_database(pg_server_dsn))
    process = KanjoProcess(dsn)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        asyncio.run(drop_database(pg_server_dsn, dsn))


@pytest.fixture(scope="module")
def api(server: KanjoProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client


def uid() -> str:
    return str(uuid.uuid4())


def open_accounts(api: httpx.Client, n: int, flags: list[str] | None = None) -> list[str]:
    ids = [uid() for _ in range(n)]
    r = api.post("/v1/ledger/accounts",
                 json={"accounts": [{"id": i, "ledger": JPY, "code": 1, "flags": flags or []} for i in ids]})
    assert r.status_code == 200, r.text
    assert [x["result"] for x in r.json()["results"]] == ["ok"] * n
    return ids


def transfer(debit: str, credit: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {"id": uid(), "debit_account_id": debit, "credit_account_id": credit, "amount": amount,
            "ledger": JPY, "code": 1, **extra}


def post_transfers(api: httpx.Client, transfers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = api.post("/v1/ledger/transfers", json={"transfers": transfers})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == [t["id"] for t in transfers]  # one result per event, in order
    return results


def account(api: httpx.Client, account_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/ledger/accounts/{account_id}")
    assert r.status_code == 200, r.text
    return r.json()


def balances(api: httpx.Client, *ids: str) -> list[tuple[int, int, int, int]]:
    out = []
    for i in ids:
        a = account(api, i)
        out.append((a["debits_pending"], a["debits_posted"], a["credits_pending"], a["credits_posted"]))
    return out


def assert_transfer_absent(api: httpx.Client, transfer_id: str) -> None:
    r = api.get(f"/v1/ledger/transfers/{transfer_id}")
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "not_found"


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


# -- money moves, replays are idempotent ------------------------------------------------------------------


def test_accounts_and_transfers_answer_per_event_and_move_integer_yen(api: httpx.Client) -> None:
    cash, deposit = open_accounts(api, 2)
    [customer] = open_accounts(api, 1, flags=["debits_must_not_exceed_credits"])
    got = account(api, customer)
    assert got["id"] == customer and got["ledger"] == JPY and got["flags"] == ["debits_must_not_exceed_credits"]
    assert (got["debits_posted"], got["credits_posted"]) == (0, 0)

    deposit_in = transfer(cash, customer, 10_000)
    overdraft = transfer(customer, deposit, 10_001)
    unknown = transfer(uid(), deposit, 1)
    results = post_transfers(api, [deposit_in, overdraft, unknown])
    assert [r["result"] for r in results] == ["ok", "exceeds_credits", "debit_account_not_found"]
    assert results[0]["amount"] == 10_000 and results[0]["timestamp"] > 0
    assert results[1]["timestamp"] == 0  # nothing committed

    assert balances(api, cash, customer, deposit) == [(0, 10_000, 0, 0), (0, 0, 0, 10_000), (0, 0, 0, 0)]
    t = api.get(f"/v1/ledger/transfers/{deposit_in['id']}").json()
    assert (t["amount"], t["debit_account_id"], t["credit_account_id"]) == (10_000, cash, customer)
    assert t["pending_status"] is None and isinstance(t["amount"], int)

    # the same account again is "exists"; with another code it is "exists_with_different_code"
    r = api.post("/v1/ledger/accounts", json={"accounts": [
        {"id": cash, "ledger": JPY, "code": 1}, {"id": deposit, "ledger": JPY, "code": 2}]})
    assert [x["result"] for x in r.json()["results"]] == ["exists", "exists_with_different_code"]


def test_a_replay_with_the_same_id_is_exists_and_changes_nothing(api: httpx.Client) -> None:
    cash, deposit = open_accounts(api, 2)
    t = transfer(cash, deposit, 5_000)
    [first] = post_transfers(api, [t])
    assert first["result"] == "ok"
    before = balances(api, cash, deposit)

    [again] = post_transfers(api, [t])
    assert again["result"] == "exists"
    assert (again["timestamp"], again["amount"]) == (first["timestamp"], 5_000)  # the original transfer's

    [changed] = post_transfers(api, [{**t, "amount": 4_999}])
    assert changed["result"] == "exists_with_different_amount"
    [changed] = post_transfers(api, [{**t, "credit_account_id": cash, "debit_account_id": deposit}])
    assert changed["result"] == "exists_with_different_debit_account_id"

    assert balances(api, cash, deposit) == before == [(0, 5_000, 0, 0), (0, 0, 0, 5_000)]


def test_two_phase_hold_post_and_void_over_http(api: httpx.Client) -> None:
    customer, atm = open_accounts(api, 2)
    hold = transfer(customer, atm, 30_000, flags=["pending"], timeout=3600)
    assert post_transfers(api, [hold])[0]["result"] == "ok"
    got = api.get(f"/v1/ledger/transfers/{hold['id']}").json()
    assert got["pending_status"] == "pending" and got["flags"] == ["pending"] and got["timeout"] == 3600
    assert balances(api, customer, atm) == [(30_000, 0, 0, 0), (0, 0, 30_000, 0)]

    post = {"id": uid(), "pending_id": hold["id"], "flags": ["post_pending_transfer"], "amount": 20_000}
    [posted] = post_transfers(api, [post])
    assert (posted["result"], posted["amount"]) == ("ok", 20_000)
    assert api.get(f"/v1/ledger/transfers/{hold['id']}").json()["pending_status"] == "posted"
    stored = api.get(f"/v1/ledger/transfers/{post['id']}").json()
    assert (stored["pending_id"], stored["debit_account_id"], stored["amount"]) == (hold["id"], customer, 20_000)
    assert balances(api, customer, atm) == [(0, 20_000, 0, 0), (0, 0, 0, 20_000)]

    late_void = {"id": uid(), "pending_id": hold["id"], "flags": ["void_pending_transfer"]}
    assert post_transfers(api, [late_void])[0]["result"] == "pending_transfer_already_posted"

    hold2 = transfer(customer, atm, 7_000, flags=["pending"])
    void = {"id": uid(), "pending_id": hold2["id"], "flags": ["void_pending_transfer"]}
    assert [r["result"] for r in post_transfers(api, [hold2, void])] == ["ok", "ok"]
    assert api.get(f"/v1/ledger/transfers/{hold2['id']}").json()["pending_status"] == "voided"
    assert balances(api, customer, atm) == [(0, 20_000, 0, 0), (0, 0, 0, 20_000)]

    lookup = api.post("/v1/ledger/transfers/lookup", json={"ids": [hold2["id"], uid(), hold["id"]]})
    assert [(t["id"], t["pending_status"]) for t in lookup.json()["transfers"]] == [
        (hold2["id"], "voided"), (hold["id"], "posted")]


def test_unknown_ids_are_404_and_a_malformed_path_id_is_422(api: httpx.Client) -> None:
    for path in (f"/v1/ledger/accounts/{uid()}", f"/v1/ledger/transfers/{uid()}",
                 f"/v1/ledger/accounts/{uid()}/balances", f"/v1/ledger/accounts/{uid()}/balance-as-of?timestamp=1"):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "not_found"
    r = api.get("/v1/ledger/accounts/not-a-uuid")
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "path.account_id"
    r = api.post("/v1/ledger/accounts/lookup", json={"ids": [uid()]})
    assert r.status_code == 200 and r.json() == {"accounts": []}


# -- paging and history ---------------------------------------------------------------------------------


def _walk(api: httpx.Client, account_id: str, limit: int, reverse: bool = False,
          **params: Any) -> tuple[list[dict[str, Any]], int]:
    cursor_name = "next_timestamp_max" if reverse else "next_timestamp_min"
    query_name = "timestamp_max" if reverse else "timestamp_min"
    seen: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, "reverse": reverse, **params}
    pages = 0
    while True:
        r = api.get(f"/v1/ledger/accounts/{account_id}/transfers", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["transfers"]) <= limit
        seen.extend(page["transfers"])
        if page[cursor_name] is None:
            return seen, pages
        query[query_name] = page[cursor_name]
        assert pages < 100, "paging does not end"


def test_account_transfers_pages_walk_every_transfer_exactly_once(api: httpx.Client) -> None:
    a, b, other = open_accounts(api, 3)
    batch = []
    for i in range(21):
        batch.append(transfer(a, b, i + 1) if i % 2 == 0 else transfer(b, a, i + 1))
        batch.append(transfer(b, other, 1))  # not a's
    assert {r["result"] for r in post_transfers(api, batch)} == {"ok"}
    expected = [t["id"] for t in batch if a in (t["debit_account_id"], t["credit_account_id"])]
    assert len(expected) == 21

    for limit in (5, 7, 21, 100):
        seen, pages = _walk(api, a, limit)
        assert [t["id"] for t in seen] == expected, limit  # all, once each, oldest first
        assert pages == 21 // limit + 1
        timestamps = [t["timestamp"] for t in seen]
        assert timestamps == sorted(set(timestamps))
        backwards, _ = _walk(api, a, limit, reverse=True)
        assert [t["id"] for t in backwards] == expected[::-1]


def test_account_transfers_can_be_filtered_to_one_side(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    out = [transfer(a, b, 1) for _ in range(4)]
    incoming = [transfer(b, a, 2) for _ in range(3)]
    post_transfers(api, out + incoming)
    debits, _ = _walk(api, a, 3, credits=False)
    credits, _ = _walk(api, a, 2, reverse=True, debits=False)
    assert [t["id"] for t in debits] == [t["id"] for t in out]
    assert [t["id"] for t in credits] == [t["id"] for t in incoming][::-1]
    r = api.get(f"/v1/ledger/accounts/{a}/transfers", params={"debits": False, "credits": False})
    assert r.status_code == 200 and r.json()["transfers"] == []


def test_history_balances_and_balance_as_of(api: httpx.Client) -> None:
    [saver] = open_accounts(api, 1, flags=["history"])
    [bank] = open_accounts(api, 1)
    hold = transfer(saver, bank, 200, flags=["pending"])
    steps = [transfer(bank, saver, 1_000), transfer(saver, bank, 300), hold,
             {"id": uid(), "pending_id": hold["id"], "flags": ["void_pending_transfer"]}]
    stamps = [post_transfers(api, [t])[0]["timestamp"] for t in steps]
    expected = [(0, 0, 0, 1_000), (0, 300, 0, 1_000), (200, 300, 0, 1_000), (0, 300, 0, 1_000)]

    r = api.get(f"/v1/ledger/accounts/{saver}/balances")
    assert r.status_code == 200, r.text
    rows = r.json()["balances"]
    assert [(x["debits_pending"], x["debits_posted"], x["credits_pending"], x["credits_posted"]) for x in rows] \
        == expected
    assert [x["timestamp"] for x in rows] == stamps
    newest = api.get(f"/v1/ledger/accounts/{saver}/balances", params={"limit": 1, "reverse": True}).json()
    assert newest["balances"] == rows[-1:]

    for row in rows:
        assert api.get(f"/v1/ledger/accounts/{saver}/balance-as-of",
                       params={"timestamp": row["timestamp"]}).json() == row
    between = api.get(f"/v1/ledger/accounts/{saver}/balance-as-of", params={"timestamp": stamps[2] - 1}).json()
    assert between == rows[1]
    before = api.get(f"/v1/ledger/accounts/{saver}/balance-as-of", params={"timestamp": stamps[0] - 1})
    assert before.status_code == 404 and before.json()["error"] == "not_found"

    for path in (f"/v1/ledger/accounts/{bank}/balances", f"/v1/ledger/accounts/{bank}/balance-as-of?timestamp=1"):
        r = api.get(path)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "conflict" and "history" in r.json()["message"]


# -- bad input: a clear answer, and nothing changes -----------------------------------------------------------


INVALID_TRANSFER_FIELDS = [
    ("negative amount", {"amount": -100}, "transfers.0.amount"),
    ("float amount", {"amount": 1.5}, "transfers.0.amount"),
    ("string amount", {"amount": "100"}, "transfers.0.amount"),
    ("boolean amount", {"amount": True}, "transfers.0.amount"),
    ("amount over 2^63-1", {"amount": 2**63}, "transfers.0.amount"),
    ("unknown flag", {"flags": ["overdraft"]}, "transfers.0.flags.0"),
    ("flags not a list", {"flags": "pending"}, "transfers.0.flags"),
    ("extra unknown field", {"colour": "red"}, "transfers.0.colour"),
    ("bad uuid", {"id": "not-a-uuid"}, "transfers.0.id"),
    ("integer id", {"id": 12345}, "transfers.0.id"),
    ("bad account uuid", {"credit_account_id": "0190c1d2-7f3a"}, "transfers.0.credit_account_id"),
    ("impossible date", {"business_date": "2024-02-30"}, "transfers.0.business_date"),
    ("ledger as text", {"ledger": "392"}, "transfers.0.ledger"),
    ("negative timeout", {"timeout": -1}, "transfers.0.timeout"),
]


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in INVALID_TRANSFER_FIELDS],
                         ids=[c[0] for c in INVALID_TRANSFER_FIELDS])
def test_an_invalid_transfer_field_is_422_naming_the_field_and_changes_nothing(
    api: httpx.Client, change: dict[str, Any], field: str,
) -> None:
    a, b = open_accounts(api, 2)
    post_transfers(api, [transfer(a, b, 1_000)])
    before = balances(api, a, b)
    bad = {**transfer(a, b, 500), **change}
    r = api.post("/v1/ledger/transfers", json={"transfers": [bad]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid_field"
    assert field in [f["field"] for f in body["fields"]]
    assert body["message"].startswith(f"{field}: ")
    assert balances(api, a, b) == before
    if isinstance(bad["id"], str) and len(bad["id"]) == 36:
        assert_transfer_absent(api, bad["id"])


def test_one_invalid_event_refuses_the_whole_batch(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    good, bad = transfer(a, b, 1_000), transfer(a, b, -1)
    r = api.post("/v1/ledger/transfers", json={"transfers": [good, bad]})
    assert r.status_code == 422
    assert r.json()["fields"] == [{"field": "transfers.1.amount", "message": r.json()["fields"][0]["message"]}]
    assert_transfer_absent(api, good["id"])
    assert balances(api, a, b) == [(0, 0, 0, 0), (0, 0, 0, 0)]


@pytest.mark.parametrize(("account_json", "field"), [
    ({"ledger": "392"}, "accounts.0.ledger"),
    ({"ledger": 0}, "accounts.0.ledger"),
    ({"code": 1.0}, "accounts.0.code"),
    ({"flags": ["closed"]}, "accounts.0.flags.0"),
    ({"credits_posted": 1_000_000}, "accounts.0.credits_posted"),  # balances are the ledger's, not the caller's
    ({"id": "0190c1d2-7f3a-7000-8000-00000000000"}, "accounts.0.id"),
], ids=["ledger as text", "ledger zero", "float code", "closed flag", "setting a balance", "short uuid"])
def test_an_invalid_account_field_is_422_naming_the_field_and_creates_nothing(
    api: httpx.Client, account_json: dict[str, Any], field: str,
) -> None:
    new = {"id": uid(), "ledger": JPY, "code": 1, **account_json}
    r = api.post("/v1/ledger/accounts", json={"accounts": [new]})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_field"
    assert field in [f["field"] for f in r.json()["fields"]]
    assert r.json()["message"].startswith(f"{field}: ")
    if len(new["id"]) == 36:
        assert api.get(f"/v1/ledger/accounts/{new['id']}").status_code == 404


@pytest.mark.parametrize("body", [{}, {"transfers": []}, {"transfers": {}}, [], {"transfer": []}],
                         ids=["empty object", "empty batch", "batch not a list", "a list", "misspelt key"])
def test_a_body_of_the_wrong_shape_is_422(api: httpx.Client, body: Any) -> None:
    r = api.post("/v1/ledger/transfers", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_field" and r.json()["fields"]


def test_malformed_json_is_400_and_changes_nothing(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    valid = orjson.dumps({"transfers": [transfer(a, b, 100)]})
    for body in (valid[:-1], valid.replace(b'"amount":100', b'"amount":100,'), b"transfers=1", b"{'a': 1}",
                 b'{"transfers": [}', b"\xff\xfe{}"):
        r = api.post("/v1/ledger/transfers", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (body[:40], r.text)
        assert r.json()["error"] in ("malformed_json", "bad_request"), r.text
    r = api.post("/v1/ledger/transfers", content=valid[:-1], headers={"content-type": "application/json"})
    assert r.json() == {"error": "malformed_json", "message": "the request body is not valid JSON"}
    assert balances(api, a, b) == [(0, 0, 0, 0), (0, 0, 0, 0)]


def test_a_batch_over_8190_events_is_413_naming_the_limit_and_changes_nothing(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    too_many = [transfer(a, b, 1) for _ in range(BATCH_MAX + 1)]
    r = api.post("/v1/ledger/transfers", json={"transfers": too_many})
    assert r.status_code == 413, r.text
    body = r.json()
    assert (body["error"], body["limit"], body["maximum"]) == (
        "limit_reached", "ledger_events_per_batch_max", BATCH_MAX)
    assert "ledger_events_per_batch_max" in body["message"] and "8,191" in body["message"]
    assert_transfer_absent(api, too_many[0]["id"])
    assert balances(api, a, b) == [(0, 0, 0, 0), (0, 0, 0, 0)]

    accounts = [{"id": uid(), "ledger": JPY, "code": 1} for _ in range(BATCH_MAX + 1)]
    r = api.post("/v1/ledger/accounts", json={"accounts": accounts})
    assert r.status_code == 413 and r.json()["limit"] == "ledger_events_per_batch_max"
    assert api.get(f"/v1/ledger/accounts/{accounts[0]['id']}").status_code == 404

    # exactly at the limit is fine
    results = post_transfers(api, too_many[:BATCH_MAX])
    assert {r["result"] for r in results} == {"ok"}
    assert balances(api, a, b) == [(0, BATCH_MAX, 0, 0), (0, 0, 0, BATCH_MAX)]


def test_a_body_over_8_mib_is_413_naming_the_limit_and_changes_nothing(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    first = transfer(a, b, 1)
    padding = "x" * 1000
    events = [first] + [transfer(a, b, 1, user_data_padding=padding) for _ in range(BODY_BYTES_MAX // 1000)]
    big = orjson.dumps({"transfers": events})
    assert len(big) > BODY_BYTES_MAX

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]

    for content in (big, chunks()):
        r = api.post("/v1/ledger/transfers", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        body = r.json()
        assert (body["error"], body["limit"], body["maximum"]) == (
            "limit_reached", "http_request_body_bytes_max", BODY_BYTES_MAX)
        assert "http_request_body_bytes_max" in body["message"]
    assert_transfer_absent(api, first["id"])
    assert balances(api, a, b) == [(0, 0, 0, 0), (0, 0, 0, 0)]


def test_a_body_of_millions_of_empty_events_is_refused_promptly(kanjo_server: KanjoProcess) -> None:
    """Under the byte limit, but 2.8 million events: the batch limit must refuse it before the server
    spends its time (one event loop, shared by every client) validating each of them."""
    junk = b'{"transfers":[' + b",".join([b"{}"] * ((BODY_BYTES_MAX - 20) // 3)) + b"]}"
    assert len(junk) <= BODY_BYTES_MAX
    try:
        r = httpx.post(f"{kanjo_server.base_url}/v1/ledger/transfers", content=junk,
                       headers={"content-type": "application/json"}, timeout=15)
    except httpx.ReadTimeout:
        pytest.fail("no answer within 15 s to a batch of 2.8 million events: the server validated them all")
    assert r.status_code == 413, r.text[:300]
    assert r.json()["limit"] == "ledger_events_per_batch_max"


# -- operations -----------------------------------------------------------------------------------------


def test_metrics_count_committed_transfers_and_export_limit_usage(api: httpx.Client) -> None:
    a, b = open_accounts(api, 2)
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    before = metric(r.text, "kanjo_ledger_transfers_committed_total")
    ok = 'kanjo_ledger_transfer_results_total{result="ok"}'
    missing = 'kanjo_ledger_transfer_results_total{result="debit_account_not_found"}'
    ok_before = metric(r.text, ok) if ok in r.text else 0  # a counter appears with its first count
    missing_before = metric(r.text, missing) if missing in r.text else 0
    post_transfers(api, [transfer(a, b, 1) for _ in range(3)] + [transfer(uid(), b, 1)])  # 3 ok, 1 refused
    text = api.get("/metrics").text
    assert metric(text, "kanjo_ledger_transfers_committed_total") - before == 3
    assert metric(text, ok) - ok_before == 3
    assert metric(text, missing) - missing_before == 1
    assert "kanjo_ledger_batch_events_bucket" in text and "kanjo_ledger_request_seconds_bucket" in text
    for name in ("ledger_events_per_batch_max", "ledger_intake_events_max", "http_request_body_bytes_max"):
        assert 0 <= metric(text, f'kanjo_limit_usage_ratio{{limit="{name}"}}') <= 1


def test_limits_lists_every_limit_with_maximum_and_reason(api: httpx.Client) -> None:
    r = api.get("/v1/limits")
    assert r.status_code == 200
    rows = {row["name"]: row for row in r.json()["limits"]}
    for row in rows.values():
        assert isinstance(row["maximum"], int) and row["maximum"] > 0, row
        assert isinstance(row["reason"], str) and row["reason"], row
        assert row["unit"]
    assert rows["ledger_events_per_batch_max"]["maximum"] == BATCH_MAX
    assert rows["http_request_body_bytes_max"]["maximum"] == BODY_BYTES_MAX
    assert rows["ledger_intake_events_max"]["maximum"] == 16 * BATCH_MAX


def test_openapi_health_and_readiness(api: httpx.Client) -> None:
    r = api.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "kanjo" and spec["openapi"].startswith("3.")
    for path in ("/v1/ledger/accounts", "/v1/ledger/transfers", "/v1/ledger/accounts/{account_id}",
                 "/v1/ledger/transfers/{transfer_id}", "/v1/ledger/accounts/{account_id}/transfers",
                 "/v1/ledger/accounts/{account_id}/balances", "/v1/limits"):
        assert path in spec["paths"], path
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}


# -- busy: 503 with Retry-After, and retries lose or double nothing --------------------------------------


FLOOD_REQUESTS = 28  # of 8,190 transfers each: 229,320 events against an intake of 131,040
FLOOD_WAVES_MAX = 2


async def test_a_flood_is_told_busy_with_retry_after_and_retrying_loses_and_doubles_nothing(
    kanjo_server: KanjoProcess,
) -> None:
    async with httpx.AsyncClient(base_url=kanjo_server.base_url, timeout=120,
                                 limits=httpx.Limits(max_connections=FLOOD_REQUESTS * 2)) as client:
        src, dst = uid(), uid()
        r = await client.post("/v1/ledger/accounts", json={"accounts": [
            {"id": i, "ledger": JPY, "code": 1} for i in (src, dst)]})
        assert [x["result"] for x in r.json()["results"]] == ["ok", "ok"]

        async def send(body: bytes) -> httpx.Response:
            return await client.post("/v1/ledger/transfers", content=body,
                                     headers={"content-type": "application/json"})

        sent: list[tuple[bytes, int]] = []  # (body, amount of each of its transfers)
        busy: list[bytes] = []
        ok: list[bytes] = []
        for _wave in range(FLOOD_WAVES_MAX):
            wave = []
            for _ in range(FLOOD_REQUESTS):
                amount = len(sent) + 1  # every batch moves a different amount: a lost or doubled batch shows
                body = orjson.dumps({"transfers": [
                    {"id": uid(), "debit_account_id": src, "credit_account_id": dst, "amount": amount,
                     "ledger": JPY, "code": 1} for _ in range(BATCH_MAX)]})
                sent.append((body, amount))
                wave.append(body)
            responses = await asyncio.gather(*(send(body) for body in wave))
            for body, resp in zip(wave, responses, strict=True):
                if resp.status_code == 200:
                    assert {x["result"] for x in resp.json()["results"]} == {"ok"}
                    ok.append(body)
                else:
                    assert resp.status_code == 503, resp.text
                    assert resp.json()["error"] == "busy"
                    assert int(resp.headers["retry-after"]) >= 1
                    busy.append(body)
            if busy:
                break
        assert busy, (f"{FLOOD_WAVES_MAX} waves of {FLOOD_REQUESTS} concurrent full batches never made the "
                      "server busy on this machine")

        print(f"flood: {len(ok)} answered, {len(busy)} told busy")  # shown with -s
        refusals = metric((await client.get("/metrics")).text, "kanjo_ledger_busy_refusals_total")
        assert refusals >= len(busy)

        for body in busy:  # retry with the same ids, as the 503 says
            for _attempt in range(30):
                resp = await send(body)
                if resp.status_code != 503:
                    break
                await asyncio.sleep(int(resp.headers["retry-after"]))
            assert resp.status_code == 200, resp.text
            assert {x["result"] for x in resp.json()["results"]} == {"ok"}  # refused before: never applied

        for body in (ok[0], busy[0]):  # replaying is harmless
            resp = await send(body)
            assert {x["result"] for x in resp.json()["results"]} == {"exists"}

        total = BATCH_MAX * sum(amount for _, amount in sent)
        a = (await client.get(f"/v1/ledger/accounts/{src}")).json()
        b = (await client.get(f"/v1/ledger/accounts/{dst}")).json()
        assert (a["debits_posted"], b["credits_posted"]) == (total, total)
        assert (a["debits_pending"], b["credits_pending"]) == (0, 0)
