"""How the open API reads a request, without I/O: the OAuth form (RFC 6749), client authentication by HTTP Basic or
by the form, bearer tokens (RFC 6750), statement queries, and the shape of every refusal."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from kanjo.channels.openapi import errors
from kanjo.channels.openapi.access import bearer_token
from kanjo.channels.openapi.credentials import is_token_syntax, new_client_id, new_secret, new_token, token_digest
from kanjo.channels.openapi.errors import ApiError
from kanjo.channels.openapi.oauth import client_credentials, parse_form
from kanjo.channels.openapi.resources import statement_query

FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> str:
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def refused(fn, *args) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as e:
        fn(*args)
    return e.value


def test_the_form_is_parsed_once_per_parameter() -> None:
    assert parse_form(b"grant_type=client_credentials&scope=balance+statement", FORM) == {
        "grant_type": "client_credentials", "scope": "balance statement"}
    assert parse_form(b"", f"{FORM}; charset=UTF-8") == {}
    for body, content_type in [(b"grant_type=a&grant_type=b", FORM), (b'{"grant_type": "x"}', "application/json"),
                               (b"\xff=1", FORM), (b"a=%ff", FORM), (b"novalue", FORM), (b"a=%00", FORM),
                               ("&".join(f"p{i}=1" for i in range(40)).encode(), FORM), (b"a" * 20_000, FORM)]:
        e = refused(parse_form, body, content_type)
        assert (e.status, e.error) == (400, "invalid_request"), body[:40]


def test_a_client_authenticates_by_basic_or_by_the_form_never_both() -> None:
    creds = client_credentials({}, basic("kc_abc", "s:e cret+/"))  # form-encoded then base64 (RFC 6749 §2.3.1)
    assert (creds.client_id, creds.secret) == ("kc_abc", "s:e cret+/")
    creds = client_credentials({"client_id": "kc_abc", "client_secret": "s"}, None)
    assert (creds.client_id, creds.secret) == ("kc_abc", "s")
    e = refused(client_credentials, {"client_secret": "s"}, basic("kc_abc", "s"))
    assert (e.status, e.error) == (400, "invalid_request")
    e = refused(client_credentials, {"client_id": "kc_other"}, basic("kc_abc", "s"))
    assert (e.status, e.error) == (400, "invalid_request")
    for authorization in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x", None):
        e = refused(client_credentials, {}, authorization)
        assert (e.status, e.error) == (401, "invalid_client")
        assert e.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_bearer_tokens() -> None:
    token = new_token()
    assert bearer_token(f"Bearer {token}") == token and bearer_token(f"bearer {token}") == token
    missing = refused(bearer_token, None)
    assert missing.status == 401 and "error=" not in missing.headers["WWW-Authenticate"]  # RFC 6750 §3.1
    assert refused(bearer_token, f"Basic {token}").status == 401
    for bad in ("Bearer ", "Bearer a b", "Bearer " + "x" * 200, "Bearer tok\u00e9n"):
        e = refused(bearer_token, bad)
        assert e.error == "invalid_token" and 'error="invalid_token"' in e.headers["WWW-Authenticate"]


def test_credentials_are_random_prefixed_and_tokens_are_stored_as_a_digest() -> None:
    assert new_client_id() != new_client_id() and new_client_id().startswith("kc_")
    assert new_secret().startswith("kcs_") and len(new_secret()) > 40
    token = new_token()
    assert is_token_syntax(token) and len(token_digest(token)) == 32 and token_digest(token) != token.encode()


def test_statement_queries() -> None:
    q = statement_query({"from_date": "2026-06-01", "to_date": "2026-06-30", "cursor": "42", "limit": "10"})
    assert (q.from_date.isoformat(), q.to_date.isoformat(), q.after, q.limit) == ("2026-06-01", "2026-06-30", 42, 10)
    assert statement_query({"from_date": "2025-07-02", "to_date": "2026-07-02"}).limit == 50  # 366 days
    for params in ({"to_date": "2026-06-30"}, {"from_date": "2026-06-31", "to_date": "2026-06-30"},
                   {"from_date": "2026-07-01", "to_date": "2026-06-30"},
                   {"from_date": "2025-07-01", "to_date": "2026-07-02"},
                   {"from_date": "2026-06-01", "to_date": "2026-06-30", "limit": "201"},
                   {"from_date": "2026-06-01", "to_date": "2026-06-30", "cursor": "-1"},
                   {"from_date": "2026-06-01", "to_date": "2026-06-30", "page": "2"}):
        assert refused(statement_query, params).error == "invalid_request", params


def test_refusals_carry_the_headers_the_rfcs_ask_for() -> None:
    assert errors.rate_limited(0.2).headers == {"Retry-After": "1"}
    assert errors.quota_exceeded(100, 3600).body()["retry_after_s"] == 3600
    scope = errors.insufficient_scope("transfer")
    assert scope.status == 403 and 'scope="transfer"' in scope.headers["WWW-Authenticate"]
    quoted = errors.invalid_token('bad "token"\n')
    assert '"bad ?token??"' in quoted.headers["WWW-Authenticate"]  # never breaks the header
    assert errors.consent_required("balance").body() == {
        "error": "consent_required",
        "error_description": "no active consent of the customer for this account grants 'balance' to this client"}
