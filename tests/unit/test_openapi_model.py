"""The open API's rules without I/O: scopes, consent terms, what time does to a consent, a consent's transfer
maximums, JST days, registration numbers and a client's life cycle."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kanjo.channels.openapi.model import (
    ALL_SCOPES,
    REGISTRATION_NUMBER,
    ClientAction,
    ClientStatus,
    ConsentStatus,
    ConsentTerms,
    IllegalTransition,
    Invalid,
    InvalidScope,
    Scope,
    check_consent_terms,
    client_transition,
    effective_status,
    format_scopes,
    granted_scopes,
    jst_day,
    parse_scope,
    seconds_to_next_jst_day,
    transfer_refusal,
)

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 7, 1, 10, 0, tzinfo=JST)
LIMITS = {"validity_days_max": 180, "transfer_max_minor": 10_000_000, "daily_transfer_max_minor": 10_000_000}


def terms(scopes: str = "balance", days: float = 90, each: int | None = None, daily: int | None = None
          ) -> ConsentTerms:
    return ConsentTerms(frozenset(Scope(s) for s in scopes.split()), NOW + dt.timedelta(days=days), each, daily)


# -- scopes -----------------------------------------------------------------------------------------------------

def test_a_scope_parameter_is_space_separated_known_names() -> None:
    assert parse_scope("balance transfer") == {Scope.BALANCE, Scope.TRANSFER}
    assert parse_scope(None) is None and parse_scope("") is None
    for bad in ("balance  transfer", "balance,transfer", " balance", "admin", "balance\x00", 'a"b'):
        with pytest.raises(InvalidScope):
            parse_scope(bad)


def test_a_token_gets_what_it_asks_within_its_clients_scopes() -> None:
    allowed = frozenset({Scope.BALANCE, Scope.STATEMENT})
    assert granted_scopes(None, allowed) == allowed
    assert granted_scopes(frozenset({Scope.BALANCE}), allowed) == {Scope.BALANCE}
    with pytest.raises(InvalidScope, match="transfer"):
        granted_scopes(frozenset({Scope.BALANCE, Scope.TRANSFER}), allowed)


@given(st.sets(st.sampled_from(list(Scope))))
def test_scopes_round_trip_in_a_stable_order(scopes: set[Scope]) -> None:
    text = format_scopes(scopes)
    assert (parse_scope(text) or frozenset()) == scopes
    assert text == format_scopes(set(reversed(list(scopes))))


# -- consents ---------------------------------------------------------------------------------------------------

def test_consent_scopes_must_be_in_the_token() -> None:
    check_consent_terms(terms("balance statement"), ALL_SCOPES, NOW, **LIMITS)
    with pytest.raises(Invalid) as e:
        check_consent_terms(terms("balance statement"), frozenset({Scope.BALANCE}), NOW, **LIMITS)
    assert e.value.field == "scopes"


@pytest.mark.parametrize(("t", "field"), [
    (terms(days=-1), "expires_at"),
    (terms(days=181), "expires_at"),
    (terms("transfer"), "transfer_max_minor"),
    (terms("transfer", each=100_000), "daily_transfer_max_minor"),
    (terms("transfer", each=0, daily=100), "transfer_max_minor"),
    (terms("transfer", each=200_000, daily=100_000), "daily_transfer_max_minor"),
    (terms("transfer", each=10_000_001, daily=10_000_001), "transfer_max_minor"),
    (terms("balance", each=1, daily=1), "transfer_max_minor"),
    (ConsentTerms(frozenset({Scope.BALANCE}), dt.datetime(2026, 8, 1), None, None), "expires_at"),
    (ConsentTerms(frozenset(), NOW + dt.timedelta(days=1), None, None), "scopes"),
])
def test_consent_terms_are_refused_naming_the_field(t: ConsentTerms, field: str) -> None:
    with pytest.raises(Invalid) as e:
        check_consent_terms(t, ALL_SCOPES, NOW, **LIMITS)
    assert e.value.field == field


def test_time_expires_active_consents_and_lapses_pending_ones() -> None:
    expires, authorise_by = NOW + dt.timedelta(days=1), NOW + dt.timedelta(minutes=30)
    assert effective_status(ConsentStatus.ACTIVE, expires, authorise_by, NOW) is ConsentStatus.ACTIVE
    assert effective_status(ConsentStatus.ACTIVE, expires, authorise_by, expires) is ConsentStatus.EXPIRED
    assert effective_status(ConsentStatus.PENDING, expires, authorise_by, NOW) is ConsentStatus.PENDING
    assert effective_status(ConsentStatus.PENDING, expires, authorise_by, authorise_by) is ConsentStatus.EXPIRED
    # ended consents stay what they are
    for status in (ConsentStatus.REVOKED, ConsentStatus.SUPERSEDED):
        assert effective_status(status, expires, authorise_by, expires + dt.timedelta(days=9)) is status


def test_the_per_transfer_maximum_is_checked_before_the_days() -> None:
    assert transfer_refusal(100_000, 100_000, 150_000, 50_000) is None
    refusal = transfer_refusal(100_001, 100_000, 150_000, 150_000)
    assert refusal is not None and refusal.code == "exceeds_transfer_maximum"
    refusal = transfer_refusal(50_001, 100_000, 150_000, 100_000)
    assert refusal is not None and refusal.code == "exceeds_daily_maximum" and "¥50,000 remains" in refusal.message


@given(st.lists(st.integers(1, 100_000), max_size=30), st.integers(1, 100_000), st.integers(100_000, 1_000_000))
def test_transfers_a_consent_allows_never_pass_its_daily_maximum(amounts: list[int], each: int, daily: int) -> None:
    used = 0
    for amount in amounts:
        if transfer_refusal(amount, each, daily, used) is None:
            used += amount
            assert amount <= each
    assert used <= daily


# -- days, registration, clients --------------------------------------------------------------------------------

def test_days_are_jst_calendar_days() -> None:
    late_utc = dt.datetime(2026, 6, 30, 15, 0, tzinfo=dt.UTC)  # 00:00 JST on 1 July
    assert jst_day(late_utc) == dt.date(2026, 7, 1)
    assert jst_day(late_utc - dt.timedelta(seconds=1)) == dt.date(2026, 6, 30)
    assert seconds_to_next_jst_day(NOW) == 14 * 3600
    assert seconds_to_next_jst_day(dt.datetime(2026, 7, 1, 23, 59, 59, 500_000, tzinfo=JST)) == 1
    with pytest.raises(ValueError, match="time zone"):
        jst_day(dt.datetime(2026, 7, 1, 10, 0))


@pytest.mark.parametrize(("number", "ok"), [
    ("関東財務局長（電代）第1号", True), ("近畿財務局長（電代）第123号", True), ("福岡財務支局長（電代）第7号", True),
    ("沖縄総合事務局長（電代）第2号", True), ("関東財務局長（電代）第0号", False), ("東京財務局長（電代）第1号", False),
    ("関東財務局長(電代)第1号", False), ("関東財務局長（登金）第1号", False), ("", False),
])
def test_registration_numbers_are_a_local_finance_bureaus(number: str, ok: bool) -> None:
    assert bool(REGISTRATION_NUMBER.match(number)) is ok


def test_a_client_is_suspended_reactivated_and_revoked_for_good() -> None:
    assert client_transition(ClientStatus.ACTIVE, ClientAction.SUSPEND) is ClientStatus.SUSPENDED
    assert client_transition(ClientStatus.SUSPENDED, ClientAction.REACTIVATE) is ClientStatus.ACTIVE
    assert client_transition(ClientStatus.SUSPENDED, ClientAction.REVOKE) is ClientStatus.REVOKED
    for action in ClientAction:
        with pytest.raises(IllegalTransition):
            client_transition(ClientStatus.REVOKED, action)
