"""No input produces a 500: the real kanjo process fuzzed over HTTP.

Two fuzzers against one kanjo process (module-scoped, on its own fresh PostgreSQL database):
schemathesis, driven by the served /openapi.json, over every operation (valid and invalid data);
and Hypothesis, posting arbitrary JSON and near-valid batches to the two create endpoints. Last, the
books the fuzzing wrote must still satisfy every invariant of `kanjo verify`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from kanjo.app import create_app
from kanjo.ledger import verify_ledger
from kanjo.ledger.model import CreateAccountResult, CreateTransferResult
from kanjo.platform import db
from tests.conftest import create_database, drop_database
from tests.e2e.server import KanjoProcess

JPY, USD = 392, 840
FUZZ_SETTINGS = settings(max_examples=30, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
RANDOM_JSON_EXAMPLES = 300
REFUSALS = {400, 413, 422}


# -- one server for the module -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dsn(pg_server_dsn: str) -> Iterator[str]:
    dsn = asyncio.run(create_database(pg_server_dsn))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(pg_server_dsn, dsn))


@pytest.fixture(scope="module")
def fuzz_server(fuzz_dsn: str) -> Iterator[KanjoProcess]:
    process = KanjoProcess(fuzz_dsn)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(fuzz_server: KanjoProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.base_url, timeout=60) as c:
        yield c


# Accounts that exist (seeded below), so that near-valid transfers reach the ledger's own checks.
ACCOUNT_IDS = [str(uuid.UUID(int=0x0190C1D2_7F3A_7000_8000_000000000000 + i)) for i in range(1, 7)]
ACCOUNT_FLAGS = [[], [], ["debits_must_not_exceed_credits"], ["credits_must_not_exceed_debits"], ["history"], []]
ACCOUNT_LEDGERS = [JPY, JPY, JPY, JPY, JPY, USD]
# A small pool of transfer ids, so that replays, posts and voids of earlier holds happen often.
TRANSFER_IDS = [str(uuid.UUID(int=0x0190C1D2_7F3A_7000_9000_000000000000 + i)) for i in range(1, 25)]


@pytest.fixture(scope="module")
def seeded(client: httpx.Client) -> None:
    r = client.post("/v1/ledger/accounts", json={"accounts": [
        {"id": i, "ledger": lg, "code": 1, "flags": f}
        for i, lg, f in zip(ACCOUNT_IDS, ACCOUNT_LEDGERS, ACCOUNT_FLAGS, strict=True)]})
    assert r.status_code == 200, r.text
    r = client.post("/v1/ledger/transfers", json={"transfers": [
        {"id": str(uuid.uuid4()), "debit_account_id": ACCOUNT_IDS[0], "credit_account_id": i, "amount": 1_000_000,
         "ledger": JPY, "code": 1} for i in ACCOUNT_IDS[1:5]]})
    assert r.status_code == 200, r.text


# -- schemathesis over every operation of the served OpenAPI -------------------------------------------

# The schema is kanjo's own, built without a server, so that pytest can collect one test per operation
# (schemathesis' lazy `from_fixture` loader does not run under pytest 9). The first test proves it is
# exactly the document the running server serves at /openapi.json.
OPENAPI = create_app(None).openapi()  # type: ignore[arg-type]  # the schema does not touch the ledger
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_fuzzed_schema_is_the_one_the_server_serves(client: httpx.Client) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(OPENAPI))


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, fuzz_server: KanjoProcess,
                                                  seeded: None) -> None:
    response = case.call(base_url=fuzz_server.base_url, timeout=60)
    case.validate_response(response, checks=[
        schemathesis.checks.not_a_server_error,
        response_schema_conformance,
        content_type_conformance,
        response_headers_conformance,
    ])
    if response.status_code >= 400:
        assert "error" in response.json(), response.text


# -- Hypothesis: arbitrary JSON and near-valid batches ---------------------------------------------------


TRANSFER_FLAGS = ["linked", "pending", "post_pending_transfer", "void_pending_transfer", "balancing_debit",
                  "balancing_credit", "closing_debit", "closing_credit"]
ACCOUNT_FLAG_NAMES = ["linked", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits", "history"]
FIELD_NAMES = ["id", "debit_account_id", "credit_account_id", "amount", "ledger", "code", "flags", "pending_id",
               "timeout", "user_data_128", "user_data_64", "user_data_32", "business_date", "transfers",
               "accounts", "ids"]
NASTY_STRINGS = [
    "NaN", "nan", "Infinity", "-Infinity", "1e309", "-0", "0x10", "1_000", "١٢٣", "", " ", "\u0000", "null",
    "true", "[]", "{}", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "{0190c1d2-7f3a-7000-8000-000000000001}", "urn:uuid:0190c1d2-7f3a-7000-8000-000000000001",
    "0190c1d27f3a70008000000000000001", "0190c1d2-7f3a-7000-8000-00000000000g", "2024-02-30", "0000-00-00",
    "9999-12-31", "2024-01-01T00:00:00Z", "\ud800", "𝟙𝟚𝟛", "' OR 1=1 --", "%s%n", "\\", "\"", "a" * 300,
]
BOUNDARY_INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64,
                 2**128 - 1, 2**128, 10**100, -(10**100)]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(BOUNDARY_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.sampled_from(NASTY_STRINGS),
    st.uuids().map(str),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6), max_leaves=40)

uuid_text = st.uuids().map(str)
account_ref = st.one_of(st.sampled_from(ACCOUNT_IDS), st.sampled_from(ACCOUNT_IDS), uuid_text)  # mostly existing
transfer_ref = st.one_of(st.sampled_from(TRANSFER_IDS), uuid_text)
fresh_id = st.builds(lambda: str(uuid.uuid4()))  # the server remembers every id: fresh ones reach new paths
new_transfer_id = st.one_of(fresh_id, fresh_id, st.sampled_from(TRANSFER_IDS))  # mostly new
yen_pair = st.lists(st.sampled_from(ACCOUNT_IDS[:5]), min_size=2, max_size=2, unique=True)
account_pair = st.one_of(yen_pair, yen_pair, st.tuples(account_ref, account_ref).map(list))
amount = st.one_of(st.integers(1, 3_000), st.sampled_from([0, 1, 2**63 - 1]), st.integers(0, 2**63 - 1))
transfer_flags: st.SearchStrategy[list[str]] = st.one_of(
    st.just([]), st.just(["pending"]), st.just(["linked"]), st.just(["linked", "pending"]),
    st.lists(st.sampled_from(TRANSFER_FLAGS), max_size=3))
OPTIONAL_TRANSFER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "flags": transfer_flags,
    "timeout": st.sampled_from([0, 1, 3600, 2**32 - 1]),
    "user_data_128": st.one_of(st.none(), uuid_text),
    "user_data_64": st.sampled_from([0, 1, 2**63 - 1]),
    "user_data_32": st.sampled_from([0, 1, 2**32 - 1]),
    "business_date": st.one_of(st.none(), st.dates().map(str)),
}
plain_transfer = st.builds(
    lambda pair, rest: {"debit_account_id": pair[0], "credit_account_id": pair[1], **rest},
    account_pair,
    st.fixed_dictionaries(
        {"id": new_transfer_id, "amount": amount, "ledger": st.sampled_from([JPY, JPY, JPY, USD, 0]),
         "code": st.sampled_from([1, 1, 2, 0])},
        optional={**OPTIONAL_TRANSFER_FIELDS, "pending_id": st.one_of(st.none(), transfer_ref)}))
resolving_transfer = st.fixed_dictionaries(
    {"id": new_transfer_id, "pending_id": transfer_ref,
     "flags": st.sampled_from([["post_pending_transfer"], ["void_pending_transfer"],
                               ["linked", "post_pending_transfer"]])},
    optional={"amount": amount, "debit_account_id": account_ref, "credit_account_id": account_ref,
              "ledger": st.sampled_from([0, JPY]), "code": st.sampled_from([0, 1]), "timeout": st.just(0)})
valid_transfer = st.one_of(plain_transfer, resolving_transfer)


@st.composite
def hold_then_resolve(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A hold and, in the same batch, a post or void of it: reaches the two-phase paths."""
    hold = {**draw(plain_transfer), "flags": draw(st.sampled_from([["pending"], ["linked", "pending"]]))}
    hold.pop("pending_id", None)
    resolve = {**draw(resolving_transfer), "pending_id": hold["id"]}
    return [hold, resolve]
valid_account = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(ACCOUNT_IDS), uuid_text), "ledger": st.sampled_from([JPY, USD, 2**32 - 1]),
     "code": st.sampled_from([1, 2, 2**16 - 1])},
    optional={
        "flags": st.lists(st.sampled_from(ACCOUNT_FLAG_NAMES), max_size=3),
        "user_data_128": st.one_of(st.none(), uuid_text),
        "user_data_64": st.sampled_from([0, 1, 2**63 - 1]),
        "user_data_32": st.sampled_from([0, 1, 2**32 - 1]),
    })


@st.composite
def corrupted(draw: st.DrawFn, event: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid event with one field replaced, removed or added as arbitrary JSON."""
    value = dict(draw(event))
    key = draw(st.one_of(st.sampled_from(sorted(value)), keys))
    if draw(st.booleans()) and key in value:
        del value[key]
    else:
        value[key] = draw(json_values)
    return value


def bodies(kind: str, event: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    events = st.one_of(event, corrupted(event))
    extra = []
    if kind == "transfers":
        extra.append(st.fixed_dictionaries({kind: st.lists(hold_then_resolve(), min_size=1, max_size=3).map(
            lambda pairs: [e for pair in pairs for e in pair])}))
    return st.one_of(
        *extra,
        json_values,  # anything at all
        st.fixed_dictionaries({kind: json_values}),  # the right key, anything under it
        st.fixed_dictionaries({kind: st.lists(events, max_size=8)}),  # near-valid batches (many pass)
        st.fixed_dictionaries({kind: st.lists(event, min_size=1, max_size=8)}),  # valid batches
        st.fixed_dictionaries({kind: st.lists(events, max_size=4)}, optional={"extra": json_values}),
    )


def encoded(body: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(body, allow_nan=True)  # NaN / Infinity tokens: not JSON, but Python's json reads them
    return st.sampled_from([text.encode(), json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")])


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(1, 3_000).map(lambda depth: b"[" * depth + b"]" * depth),  # deep nesting
    st.integers(1, 3_000).map(lambda depth: b'{"transfers":' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(1, 2_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def check_answer(response: httpx.Response, body: bytes, result_names: set[str], kind: str) -> None:
    assert response.status_code == 200 or response.status_code in REFUSALS, (response.status_code, response.text,
                                                                            body[:300])
    answer = response.json()
    assert isinstance(answer, dict), answer
    event(f"{response.status_code} {answer.get('error', '')}")  # --hypothesis-show-statistics
    if response.status_code != 200:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
        assert isinstance(answer.get("message"), str), answer
        if response.status_code == 422:
            assert answer["error"] == "invalid_field" and isinstance(answer["fields"], list) and answer["fields"]
        return
    sent = json.loads(body)[kind]
    assert len(answer["results"]) == len(sent)
    for one, result in zip(sent, answer["results"], strict=True):
        assert str(uuid.UUID(one["id"])) == result["id"]
        assert result["result"] in result_names, result
        event(f"result {result['result']}")


TRANSFER_RESULTS = {r.name.lower() for r in CreateTransferResult}
ACCOUNT_RESULTS = {r.name.lower() for r in CreateAccountResult}


@given(data=st.data())
@settings(max_examples=RANDOM_JSON_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_random_json_to_create_transfers_is_answered_never_a_500(client: httpx.Client, seeded: None,
                                                                   data: st.DataObject) -> None:
    body = data.draw(st.one_of(bodies("transfers", valid_transfer).flatmap(encoded), raw_bodies), label="body")
    response = client.post("/v1/ledger/transfers", content=body, headers={"content-type": "application/json"})
    check_answer(response, body, TRANSFER_RESULTS, "transfers")


@given(data=st.data())
@settings(max_examples=RANDOM_JSON_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_random_json_to_create_accounts_is_answered_never_a_500(client: httpx.Client, seeded: None,
                                                                  data: st.DataObject) -> None:
    body = data.draw(st.one_of(bodies("accounts", valid_account).flatmap(encoded), raw_bodies), label="body")
    response = client.post("/v1/ledger/accounts", content=body, headers={"content-type": "application/json"})
    check_answer(response, body, ACCOUNT_RESULTS, "accounts")


PATHOLOGICAL = {
    "nesting far past the parser's recursion limit": b"[" * 100_000 + b"]" * 100_000,
    "an integer of 5,000 digits": b'{"transfers":[{"id":"0190c1d2-7f3a-7000-8000-000000000001","amount":'
                                  + b"9" * 5_000 + b"}]}",
    "NaN amount": b'{"transfers":[{"id":"0190c1d2-7f3a-7000-8000-000000000001","amount":NaN}]}',
    "infinite amount": b'{"transfers":[{"id":"0190c1d2-7f3a-7000-8000-000000000001","amount":1e999}]}',
    "a lone surrogate": b'{"transfers":[{"id":"\\ud800"}]}',
    "a byte-order mark": b'\xef\xbb\xbf{"transfers":[]}',
    "latin-1 bytes": b'{"transfers":[{"id":"\xe9"}]}',
    "a NUL byte": b'{"transfers":[{"id":"\x00"}]}',
    "duplicate keys": b'{"transfers":[],"transfers":[{"id":"0190c1d2-7f3a-7000-8000-000000000001","id":1}]}',
    "a megabyte string": b'{"transfers":[{"id":"' + b"7" * 1_000_000 + b'"}]}',
    "ten thousand invalid events": b'{"transfers":[' + b",".join([b"{}"] * 10_000) + b"]}",
    "empty": b"",
}


@pytest.mark.parametrize("body", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_bodies_get_a_clear_refusal(client: httpx.Client, body: bytes) -> None:
    response = client.post("/v1/ledger/transfers", content=body, headers={"content-type": "application/json"})
    assert response.status_code in REFUSALS, (response.status_code, response.text)
    assert response.json()["error"]


# -- afterwards: the books still balance ------------------------------------------------------------------


def test_the_books_satisfy_every_invariant_after_the_fuzzing(fuzz_server: KanjoProcess, fuzz_dsn: str,
                                                             client: httpx.Client, seeded: None) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}

    async def verify() -> dict[str, Any]:
        conn = await db.connect(fuzz_dsn)
        try:
            return await verify_ledger(conn)
        finally:
            await conn.close()

    report = asyncio.run(verify())
    assert report["ok"], report
