"""The teller channel's maker-checker rules, without a database: when a request waits for a checker, who may check
it, the life of a request, request ids and the digest that ties an approval to what was made."""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from kanjo.channels import TellerSettings
from kanjo.channels.teller.model import (
    SENSITIVE,
    Approval,
    Capability,
    Checked,
    Event,
    IllegalTransition,
    Kind,
    Policy,
    Refused,
    Role,
    State,
    approval_needed,
    content_sha256,
    decision_refusal,
    making_refusal,
    may,
    next_state,
    normalise_request_id,
    password_problem,
    product_request_id,
    withdrawal_refusal,
)

NOW = dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.UTC)


def _pending(**changes: object) -> Checked:
    fields: dict[str, object] = {"kind": Kind.CASH_WITHDRAWAL, "maker_id": "T0011", "branch_code": "001",
                                 "state": State.PENDING, "expires_at": NOW + dt.timedelta(minutes=30),
                                 "checker_id": None}
    return Checked(**{**fields, **changes})  # type: ignore[arg-type]


def test_money_waits_only_above_its_kinds_threshold() -> None:
    policy = Policy(threshold_minor=1_000_000, thresholds_minor={Kind.CASH_WITHDRAWAL: 500_000})
    assert approval_needed(Kind.CASH_DEPOSIT, 1_000_000, policy) is None  # equal: not above
    assert approval_needed(Kind.CASH_DEPOSIT, 1_000_001, policy) is Approval.AMOUNT
    assert approval_needed(Kind.TRANSFER, 1_000_001, policy) is Approval.AMOUNT
    assert approval_needed(Kind.PLACE_TIME_DEPOSIT, 5_000_000, policy) is Approval.AMOUNT
    assert approval_needed(Kind.CASH_WITHDRAWAL, 500_000, policy) is None
    assert approval_needed(Kind.CASH_WITHDRAWAL, 500_001, policy) is Approval.AMOUNT
    assert approval_needed(Kind.REGISTER_CUSTOMER, None, policy) is None
    assert approval_needed(Kind.FREEZE_ACCOUNT, None, policy) is None  # protective: at once


def test_sensitive_changes_always_wait_whatever_the_amount() -> None:
    policy = Policy(threshold_minor=10_000_000_000)
    assert {Kind.CHANGE_CONTACT, Kind.UNLOCK_PIN, Kind.UNFREEZE_ACCOUNT, Kind.CLOSE_ACCOUNT} <= SENSITIVE
    for kind in SENSITIVE:
        assert approval_needed(kind, None, policy) is Approval.SENSITIVE
        assert approval_needed(kind, 1, policy) is Approval.SENSITIVE


def test_who_may_check_first_failing_rule_wins() -> None:
    assert decision_refusal("S0012", Role.SUPERVISOR, "001", _pending(), NOW) is None
    assert decision_refusal("T0012", Role.TELLER, "001", _pending(), NOW).code == "not_a_supervisor"  # type: ignore
    assert decision_refusal("A0091", Role.AUDITOR, "001", _pending(), NOW).code == "not_a_supervisor"  # type: ignore
    own = decision_refusal("S0011", Role.SUPERVISOR, "001", _pending(maker_id="S0011"), NOW)
    assert own is not None and (own.status, own.code) == (403, "maker_cannot_check")
    other = decision_refusal("S0021", Role.SUPERVISOR, "002", _pending(), NOW)
    assert other is not None and other.code == "other_branch"
    done = decision_refusal("S0012", Role.SUPERVISOR, "001", _pending(state=State.EXECUTED, checker_id="S0013"), NOW)
    assert done is not None and (done.status, done.code) == (409, "not_pending") and "S0013" in done.message
    late = decision_refusal("S0012", Role.SUPERVISOR, "001", _pending(expires_at=NOW), NOW)
    assert late is not None and late.code == "expired"  # expiry at the instant counts


def test_only_the_maker_withdraws_and_only_while_pending() -> None:
    assert withdrawal_refusal("T0011", _pending()) is None
    assert withdrawal_refusal("T0012", _pending()).code == "not_the_maker"  # type: ignore[union-attr]
    assert withdrawal_refusal("T0011", _pending(state=State.REJECTED)).code == "not_pending"  # type: ignore


def test_roles() -> None:
    assert may(Role.SUPERVISOR, Capability.CHECK) and not may(Role.TELLER, Capability.CHECK)
    assert may(Role.AUDITOR, Capability.READ_AUDIT) and not may(Role.TELLER, Capability.READ_AUDIT)
    assert making_refusal(Role.AUDITOR, Kind.CASH_DEPOSIT) is not None
    assert making_refusal(Role.TELLER, Kind.CASH_DEPOSIT) is None
    assert making_refusal(Role.TELLER, Kind.REGISTER_OPERATOR) is not None
    assert making_refusal(Role.SUPERVISOR, Kind.REGISTER_OPERATOR) is None


def test_the_life_of_a_request() -> None:
    assert next_state(State.PENDING, Event.APPROVE) is State.EXECUTING
    assert next_state(State.EXECUTING, Event.SUCCEED) is State.EXECUTED
    assert next_state(State.EXECUTING, Event.FAIL) is State.READY
    assert next_state(State.READY, Event.RETRY) is State.EXECUTING
    for final in (State.EXECUTED, State.REFUSED, State.REJECTED, State.WITHDRAWN, State.EXPIRED):
        for event in Event:
            with pytest.raises(IllegalTransition):
                next_state(final, event)
    with pytest.raises(IllegalTransition):
        next_state(State.EXECUTING, Event.APPROVE)  # an approval never runs a request twice


def test_request_ids() -> None:
    assert normalise_request_id("0190C1D2-7F3A-7000-8000-00000000000A", "T01") == "0190c1d2-7f3a-7000-8000-00000000000a"
    assert normalise_request_id("T01-0042", "T01") == "T01-42"
    with pytest.raises(Refused):
        normalise_request_id("T02-42", "T01")  # another terminal's sequence
    with pytest.raises(Refused):
        normalise_request_id("42", "T01")
    assert product_request_id("T01-42") == product_request_id("T01-42") != product_request_id("T01-43")


def test_the_digest_is_of_the_content_whatever_its_key_order() -> None:
    a = content_sha256(Kind.CASH_DEPOSIT, {"amount_minor": 1_000, "account": {"branch_code": "001",
                                                                               "account_number": "0000001"}})
    b = content_sha256(Kind.CASH_DEPOSIT, {"account": {"account_number": "0000001", "branch_code": "001"},
                                           "amount_minor": 1_000})
    assert a == b
    assert a != content_sha256(Kind.CASH_WITHDRAWAL, {"amount_minor": 1_000, "account": {
        "branch_code": "001", "account_number": "0000001"}})
    assert a != content_sha256(Kind.CASH_DEPOSIT, {"amount_minor": 1_001, "account": {
        "branch_code": "001", "account_number": "0000001"}})


def test_passwords_and_their_hash() -> None:
    assert password_problem("short", 128) is not None
    assert password_problem("x" * 129, 128) is not None
    assert password_problem("long enough passphrase", 128) is None
    default = PasswordHasher()  # what the channel uses unless told otherwise: Argon2id, RFC 9106 parameters
    assert default.type is RFC_9106_LOW_MEMORY.type
    assert (default.time_cost, default.memory_cost) >= (RFC_9106_LOW_MEMORY.time_cost, RFC_9106_LOW_MEMORY.memory_cost)


def test_settings_refuse_thresholds_on_kinds_without_money(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANJO_TELLER_APPROVAL_THRESHOLDS_MINOR", '{"cash_withdrawal": 500000}')
    assert TellerSettings().policy().threshold_of(Kind.CASH_WITHDRAWAL) == 500_000
    monkeypatch.setenv("KANJO_TELLER_APPROVAL_THRESHOLDS_MINOR", '{"change_contact": 1}')
    with pytest.raises(ValueError):
        TellerSettings()
