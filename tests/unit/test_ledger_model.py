"""Worked examples of docs/ledger-semantics.md, run against the reference model in tests/ledger_model.py.

Each test is a small story a banker would recognise, in yen (ledger 392, scale 0), with the
expected amounts written out: if the model gets these wrong it cannot judge the engine.
"""

from __future__ import annotations

import datetime as dt

import pytest

from kanjo.ledger.model import (
    AMOUNT_MAX,
    ID_MAX,
    TIMEOUT_S_MAX,
    Account,
    AccountFlags,
    AccountOutcome,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
    TransferOutcome,
)
from tests.ledger_model import LedgerModel

A = CreateAccountResult
R = CreateTransferResult
AF = AccountFlags
TF = TransferFlags

JPY = 392
BUSINESS_DATE = dt.date(2025, 4, 1)
S = 1_000_000_000  # nanoseconds per second
T0 = 1_743_465_600 * S  # 2025-04-01 00:00 UTC

# The bank's accounts (assets: debit balances) and its customers' (liabilities: credit balances).
ATM_CASH = 1  # cash in the ATM
FEES = 2  # fee income
LOAN = 3  # Bob's loan: an asset, never repaid beyond what was lent
ALICE = 10  # ordinary deposit: may not go overdrawn
BOB = 11  # ordinary deposit: may not go overdrawn

DEPOSIT = int(AF.DEBITS_MUST_NOT_EXCEED_CREDITS)
LOAN_FLAGS = int(AF.CREDITS_MUST_NOT_EXCEED_DEBITS)


def tr(id_: int, dr: int, cr: int, amount: int, **fields: object) -> Transfer:
    fields = {"ledger": JPY, "code": 1, **fields}
    return Transfer(id=id_, debit_account_id=dr, credit_account_id=cr, amount=amount, **fields)  # type: ignore[arg-type]


def post(id_: int, pending_id: int, amount: int = 0, **fields: object) -> Transfer:
    return Transfer(id=id_, pending_id=pending_id, amount=amount, flags=TF.POST_PENDING_TRANSFER, **fields)


def void(id_: int, pending_id: int, amount: int = 0, **fields: object) -> Transfer:
    return Transfer(id=id_, pending_id=pending_id, amount=amount, flags=TF.VOID_PENDING_TRANSFER, **fields)


def results(outcomes: list[TransferOutcome] | list[AccountOutcome]) -> list[int]:
    return [o.result for o in outcomes]


def balances(model: LedgerModel, account_id: int) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted)"""
    (a,) = model.lookup_accounts([account_id])
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def available_yen(model: LedgerModel, deposit_id: int) -> int:
    """What a depositor may still withdraw: credits less posted and held debits."""
    (a,) = model.lookup_accounts([deposit_id])
    return a.credits_posted - a.debits_posted - a.debits_pending


def one(model: LedgerModel, transfer: Transfer, now_ns: int = T0) -> TransferOutcome:
    (outcome,) = model.create_transfers([transfer], now_ns)
    return outcome


@pytest.fixture
def bank() -> LedgerModel:
    """Alice has deposited ¥100,000 at the ATM; Bob holds ¥12,345 and owes ¥500,000 on a loan."""
    model = LedgerModel(BUSINESS_DATE)
    accounts = [
        Account(ATM_CASH, JPY, 1),
        Account(FEES, JPY, 2),
        Account(LOAN, JPY, 3, flags=LOAN_FLAGS),
        Account(ALICE, JPY, 4, flags=DEPOSIT),
        Account(BOB, JPY, 4, flags=DEPOSIT),
    ]
    assert results(model.create_accounts(accounts, T0)) == [A.OK] * 5
    setup = [
        tr(1001, ATM_CASH, ALICE, 100_000),  # Alice pays ¥100,000 cash in
        tr(1002, LOAN, ATM_CASH, 500_000),  # Bob's loan is paid out in cash
        tr(1003, ATM_CASH, BOB, 12_345),  # Bob pays ¥12,345 in
    ]
    assert results(model.create_transfers(setup, T0)) == [R.OK] * 3
    return model


# ---------------------------------------------------------------- two-phase: hold, post, void, expire


def test_atm_withdrawal_holds_then_posts(bank: LedgerModel) -> None:
    hold = one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING, timeout=60))
    assert hold == TransferOutcome(R.OK, amount=20_000)
    assert balances(bank, ALICE) == (20_000, 0, 0, 100_000)
    assert available_yen(bank, ALICE) == 80_000

    posted = one(bank, post(2, pending_id=1), T0 + 5 * S)  # the ATM dispensed the notes
    assert posted == TransferOutcome(R.OK, amount=20_000)
    assert balances(bank, ALICE) == (0, 20_000, 0, 100_000)
    assert bank.pending_status(1) is PendingStatus.POSTED
    (stored,) = bank.lookup_transfers([2])
    assert (stored.debit_account_id, stored.credit_account_id, stored.ledger, stored.code) == (
        ALICE,
        ATM_CASH,
        JPY,
        1,
    )
    assert stored.amount == 20_000 and stored.business_date == BUSINESS_DATE

    assert one(bank, post(3, pending_id=1)).result is R.PENDING_TRANSFER_ALREADY_POSTED
    assert one(bank, void(4, pending_id=1)).result is R.PENDING_TRANSFER_ALREADY_POSTED


def test_partial_post_releases_the_whole_hold(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING))
    assert one(bank, post(2, pending_id=1, amount=20_001)).result is R.EXCEEDS_PENDING_TRANSFER_AMOUNT

    # id 2 is burned by that refusal; the ATM could only dispense ¥10,000:
    posted = one(bank, post(3, pending_id=1, amount=10_000))
    assert posted == TransferOutcome(R.OK, amount=10_000)
    assert balances(bank, ALICE) == (0, 10_000, 0, 100_000)
    assert available_yen(bank, ALICE) == 90_000
    assert balances(bank, ATM_CASH) == (0, 100_000 + 12_345, 0, 500_000 + 10_000)


def test_void_gives_the_hold_back(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING))
    assert one(bank, void(2, pending_id=1, amount=5_000)).result is R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT

    assert one(bank, void(3, pending_id=1)) == TransferOutcome(R.OK, amount=20_000)  # amount released
    assert balances(bank, ALICE) == (0, 0, 0, 100_000)
    assert bank.pending_status(1) is PendingStatus.VOIDED
    assert one(bank, post(4, pending_id=1)).result is R.PENDING_TRANSFER_ALREADY_VOIDED


def test_hold_expires_after_its_timeout(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING, timeout=30), T0)
    bank.expire_due(T0 + 29 * S)
    assert bank.pending_status(1) is PendingStatus.PENDING
    assert available_yen(bank, ALICE) == 80_000

    bank.expire_due(T0 + 30 * S)  # expiry time = creation + 30 s, inclusive
    assert bank.pending_status(1) is PendingStatus.EXPIRED
    assert balances(bank, ALICE) == (0, 0, 0, 100_000)
    assert one(bank, post(2, pending_id=1), T0 + 31 * S).result is R.PENDING_TRANSFER_EXPIRED


def test_sweep_runs_before_every_batch(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING, timeout=30), T0)
    # No explicit sweep: posting at the expiry instant finds the hold expired.
    assert one(bank, post(2, pending_id=1), T0 + 30 * S).result is R.PENDING_TRANSFER_EXPIRED
    assert balances(bank, ALICE) == (0, 0, 0, 100_000)


def test_hold_without_timeout_never_expires(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING), T0)
    bank.expire_due(T0 + 10 * 365 * 86_400 * S)
    assert bank.pending_status(1) is PendingStatus.PENDING


def test_overflows_timeout() -> None:
    model = LedgerModel(BUSINESS_DATE)
    model.create_accounts([Account(1, JPY, 1), Account(2, JPY, 1)], T0)
    late_ns = AMOUNT_MAX - TIMEOUT_S_MAX * S + 1  # a hold of the longest timeout would end past 2^63-1
    assert one(model, tr(1, 1, 2, 5, flags=TF.PENDING, timeout=TIMEOUT_S_MAX), late_ns).result is (R.OVERFLOWS_TIMEOUT)
    assert one(model, tr(2, 1, 2, 5, flags=TF.PENDING, timeout=TIMEOUT_S_MAX), late_ns - 1).result is R.OK


# ---------------------------------------------------------------- linked chains


def test_linked_chain_fails_as_one(bank: LedgerModel) -> None:
    # A ¥220 fee and a ¥100,000 withdrawal: together more than Alice's ¥100,000.
    chain = [
        tr(1, ALICE, FEES, 220, flags=TF.LINKED),
        tr(2, ALICE, ATM_CASH, 100_000),
        tr(3, BOB, ATM_CASH, 345),  # a separate request event: unaffected
    ]
    assert results(bank.create_transfers(chain, T0)) == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.OK]
    assert balances(bank, ALICE) == (0, 0, 0, 100_000)
    assert balances(bank, FEES) == (0, 0, 0, 0)
    assert bank.lookup_transfers([1, 2, 3]) == [tr(3, BOB, ATM_CASH, 345, business_date=BUSINESS_DATE)]
    # The chain failed on the balance, so its fee is remembered with it: retrying the same chain
    # answers as the first time, and the fee's id cannot be reused for another transfer.
    assert results(bank.create_transfers(chain[:2], T0)) == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]
    assert one(bank, tr(1, ALICE, FEES, 220)).result is R.ID_ALREADY_FAILED


def test_events_after_the_failing_one_are_not_evaluated(bank: LedgerModel) -> None:
    chain = [
        tr(1, ALICE, FEES, 220, flags=TF.LINKED),
        tr(2, ALICE, ATM_CASH, 999_999, flags=TF.LINKED),
        tr(0, ALICE, ATM_CASH, 1),  # would be id_must_not_be_zero on its own
    ]
    assert results(bank.create_transfers(chain, T0)) == [
        R.LINKED_EVENT_FAILED,
        R.EXCEEDS_CREDITS,
        R.LINKED_EVENT_FAILED,
    ]


def test_linked_chain_succeeds_as_one(bank: LedgerModel) -> None:
    chain = [tr(1, ALICE, FEES, 220, flags=TF.LINKED), tr(2, ALICE, ATM_CASH, 10_000)]
    assert results(bank.create_transfers(chain, T0)) == [R.OK, R.OK]
    assert available_yen(bank, ALICE) == 100_000 - 220 - 10_000


def test_open_chain_is_refused(bank: LedgerModel) -> None:
    events = [
        tr(1, BOB, ATM_CASH, 1_000),
        tr(2, ALICE, FEES, 220, flags=TF.LINKED),
        tr(3, ALICE, ATM_CASH, 10_000, flags=TF.LINKED),
    ]
    assert results(bank.create_transfers(events, T0)) == [
        R.OK,
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_CHAIN_OPEN,
    ]
    assert available_yen(bank, ALICE) == 100_000


def test_exists_does_not_break_a_chain(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, FEES, 220))
    chain = [tr(1, ALICE, FEES, 220, flags=TF.LINKED), tr(2, ALICE, ATM_CASH, 10_000)]
    # The replay differs in `linked`, so it is not an identical replay:
    assert results(bank.create_transfers(chain, T0)) == [R.EXISTS_WITH_DIFFERENT_FLAGS, R.LINKED_EVENT_FAILED]
    chain = [tr(1, ALICE, FEES, 220), tr(2, ALICE, ATM_CASH, 10_000)]
    assert results(bank.create_transfers(chain, T0)) == [R.EXISTS, R.OK]


def test_hold_and_post_in_one_chain(bank: LedgerModel) -> None:
    chain = [
        tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING | TF.LINKED),
        post(2, pending_id=1, amount=15_000),
    ]
    assert [(o.result, o.amount) for o in bank.create_transfers(chain, T0)] == [
        (R.OK, 20_000),
        (R.OK, 15_000),
    ]
    assert balances(bank, ALICE) == (0, 15_000, 0, 100_000)


# ---------------------------------------------------------------- balancing and limits


def test_balancing_debit_takes_up_to_the_balance(bank: LedgerModel) -> None:
    # A ¥30,000 loan instalment is due; Bob's account holds ¥12,345: the bank takes what is there.
    collect = tr(1, BOB, LOAN, 30_000, flags=TF.BALANCING_DEBIT)
    assert one(bank, collect) == TransferOutcome(R.OK, amount=12_345)
    assert available_yen(bank, BOB) == 0
    assert balances(bank, LOAN) == (0, 500_000, 0, 12_345)
    (stored,) = bank.lookup_transfers([1])
    assert stored.amount == 12_345

    # Replays: the requested ¥30,000 covers what was moved; less than that does not.
    assert one(bank, collect) == TransferOutcome(R.EXISTS, amount=12_345)
    assert one(bank, tr(1, BOB, LOAN, 12_345, flags=TF.BALANCING_DEBIT)).result is R.EXISTS
    assert one(bank, tr(1, BOB, LOAN, 12_344, flags=TF.BALANCING_DEBIT)).result is R.EXISTS_WITH_DIFFERENT_AMOUNT

    # Next month the account is empty: the transfer records that nothing could be taken.
    assert one(bank, tr(2, BOB, LOAN, 30_000, flags=TF.BALANCING_DEBIT)) == TransferOutcome(R.OK, amount=0)


def test_balancing_debit_counts_holds(bank: LedgerModel) -> None:
    one(bank, tr(1, BOB, ATM_CASH, 2_345, flags=TF.PENDING))  # a card payment is on hold
    assert one(bank, tr(2, BOB, LOAN, 30_000, flags=TF.BALANCING_DEBIT)).amount == 10_000


def test_balancing_credit_repays_no_more_than_owed(bank: LedgerModel) -> None:
    # Alice pays off Bob's loan (¥500,000 owed) with "up to ¥600,000": only ¥500,000 moves.
    one(bank, tr(1, ATM_CASH, ALICE, 500_000))  # Alice pays in another ¥500,000
    outcome = one(bank, tr(2, ALICE, LOAN, 600_000, flags=TF.BALANCING_CREDIT))
    assert outcome == TransferOutcome(R.OK, amount=500_000)
    assert available_yen(bank, ALICE) == 100_000


def test_debits_must_not_exceed_credits_refuses_an_overdraft(bank: LedgerModel) -> None:
    assert one(bank, tr(1, BOB, ATM_CASH, 12_346)).result is R.EXCEEDS_CREDITS
    assert one(bank, tr(2, BOB, ATM_CASH, 12_346, flags=TF.PENDING)).result is R.EXCEEDS_CREDITS
    assert available_yen(bank, BOB) == 12_345
    assert one(bank, tr(3, BOB, ATM_CASH, 12_345)) == TransferOutcome(R.OK, amount=12_345)
    assert available_yen(bank, BOB) == 0


def test_credits_must_not_exceed_debits_refuses_overpaying_a_loan(bank: LedgerModel) -> None:
    one(bank, tr(1, ATM_CASH, ALICE, 500_000))
    assert one(bank, tr(2, ALICE, LOAN, 500_001)).result is R.EXCEEDS_DEBITS
    assert one(bank, tr(3, ALICE, LOAN, 500_000)).result is R.OK


# ---------------------------------------------------------------- idempotency: replays and burned ids


def test_replay_returns_exists_and_moves_nothing(bank: LedgerModel) -> None:
    payment = tr(1, ALICE, BOB, 5_000, user_data_64=20250401)
    assert one(bank, payment) == TransferOutcome(R.OK, amount=5_000)
    assert one(bank, payment) == TransferOutcome(R.EXISTS, amount=5_000)
    assert bank.create_transfers([payment, payment], T0 + S) == [TransferOutcome(R.EXISTS, amount=5_000)] * 2
    assert available_yen(bank, ALICE) == 95_000
    assert available_yen(bank, BOB) == 17_345


def test_replay_with_a_different_field_names_the_field(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, BOB, 5_000, user_data_32=7))
    assert one(bank, tr(1, ALICE, BOB, 5_001, user_data_32=7)).result is R.EXISTS_WITH_DIFFERENT_AMOUNT
    assert one(bank, tr(1, ALICE, BOB, 5_000, user_data_32=8)).result is R.EXISTS_WITH_DIFFERENT_USER_DATA_32
    assert one(bank, tr(1, ALICE, FEES, 5_000, user_data_32=7)).result is R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    # The first differing field in the page's order wins: flags before amount.
    changed = tr(1, ALICE, BOB, 9_999, user_data_32=7, flags=TF.PENDING)
    assert one(bank, changed).result is R.EXISTS_WITH_DIFFERENT_FLAGS
    other_day = tr(1, ALICE, BOB, 5_000, user_data_32=7, business_date=dt.date(2025, 4, 2))
    assert one(bank, other_day).result is R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE
    same_day = tr(1, ALICE, BOB, 5_000, user_data_32=7, business_date=BUSINESS_DATE)
    assert one(bank, same_day).result is R.EXISTS
    assert available_yen(bank, ALICE) == 95_000


def test_replay_of_a_post_may_leave_out_what_it_took_from_the_hold(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING))
    one(bank, post(2, pending_id=1))
    assert one(bank, post(2, pending_id=1)) == TransferOutcome(R.EXISTS, amount=20_000)
    spelled_out = post(2, pending_id=1, amount=20_000, debit_account_id=ALICE, ledger=JPY, code=1)
    assert one(bank, spelled_out).result is R.EXISTS
    assert one(bank, post(2, pending_id=1, amount=19_000)).result is R.EXISTS_WITH_DIFFERENT_AMOUNT
    assert one(bank, post(2, pending_id=1, debit_account_id=BOB)).result is R.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
    assert one(bank, void(2, pending_id=1)).result is R.EXISTS_WITH_DIFFERENT_FLAGS


def test_burned_id_returns_its_first_outcome_again(bank: LedgerModel) -> None:
    withdrawal = tr(1, BOB, ATM_CASH, 20_000)
    assert one(bank, withdrawal).result is R.EXCEEDS_CREDITS
    one(bank, tr(2, ATM_CASH, BOB, 10_000))  # Bob pays in ¥10,000: ¥22,345 now covers it
    assert one(bank, withdrawal) == TransferOutcome(R.EXCEEDS_CREDITS)  # the same answer, nothing moves
    assert available_yen(bank, BOB) == 22_345
    assert one(bank, tr(1, BOB, ATM_CASH, 19_000)).result is R.ID_ALREADY_FAILED
    assert one(bank, withdrawal).result is R.EXCEEDS_CREDITS


def test_a_failure_inside_a_chain_burns_the_id(bank: LedgerModel) -> None:
    chain = [tr(1, ALICE, FEES, 220, flags=TF.LINKED), tr(2, BOB, ATM_CASH, 20_000)]
    assert results(bank.create_transfers(chain, T0)) == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]
    one(bank, tr(3, ATM_CASH, BOB, 10_000))
    assert results(bank.create_transfers(chain, T0)) == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]


def test_a_burned_retry_is_compared_as_submitted(bank: LedgerModel) -> None:
    withdrawal = tr(1, BOB, ATM_CASH, 20_000)  # no business date: the ledger's is used
    assert one(bank, withdrawal).result is R.EXCEEDS_CREDITS
    bank.business_date = dt.date(2025, 4, 2)  # the day changes before the client retries
    assert one(bank, withdrawal).result is R.EXCEEDS_CREDITS  # identical bytes, identical answer
    spelled_out = tr(1, BOB, ATM_CASH, 20_000, business_date=BUSINESS_DATE)
    assert one(bank, spelled_out).result is R.ID_ALREADY_FAILED


def test_the_rest_of_a_chain_failed_on_the_state_is_burned(bank: LedgerModel) -> None:
    chain = [tr(1, ALICE, FEES, 220, flags=TF.LINKED), tr(2, BOB, ATM_CASH, 20_000), tr(3, ALICE, BOB, 1)]
    assert results(bank.create_transfers(chain, T0)) == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.OK]
    # the chain failed on the state: its other valid members are remembered with it.
    assert one(bank, tr(1, ALICE, FEES, 330)).result is R.ID_ALREADY_FAILED
    assert one(bank, tr(2, BOB, ATM_CASH, 1)).result is R.ID_ALREADY_FAILED


def test_the_first_failing_event_of_a_chain_wins(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, FEES, 220))
    assert one(bank, tr(2, BOB, ATM_CASH, 20_000)).result is R.EXCEEDS_CREDITS  # burns id 2
    chain = [
        tr(1, ALICE, FEES, 220, flags=TF.LINKED),  # fails first: a replay, but now linked
        tr(2, BOB, ATM_CASH, 1, flags=TF.LINKED),  # would be id_already_failed: not evaluated
        tr(3, ALICE, BOB, 0),  # would be amount_must_not_be_zero: not evaluated
    ]
    assert results(bank.create_transfers(chain, T0)) == [
        R.EXISTS_WITH_DIFFERENT_FLAGS,
        R.LINKED_EVENT_FAILED,
        R.LINKED_EVENT_FAILED,
    ]


def test_a_post_may_name_a_transfer_of_the_same_request(bank: LedgerModel) -> None:
    events = [
        tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING),
        post(2, pending_id=1, amount=5_000),
        tr(3, ALICE, FEES, 220),
        post(4, pending_id=3),
    ]
    assert results(bank.create_transfers(events, T0)) == [R.OK, R.OK, R.OK, R.PENDING_TRANSFER_NOT_PENDING]


def test_stateless_failure_does_not_burn_the_id(bank: LedgerModel) -> None:
    assert one(bank, tr(1, ALICE, BOB, 0)).result is R.AMOUNT_MUST_NOT_BE_ZERO
    assert one(bank, tr(1, ALICE, BOB, 1_000)).result is R.OK


def test_business_date_defaults_to_the_ledgers() -> None:
    model = LedgerModel(dt.date(2025, 12, 30))  # the last business day of the year
    model.create_accounts([Account(1, JPY, 1), Account(2, JPY, 1)], T0)
    one(model, tr(1, 1, 2, 1_000))
    one(model, tr(2, 1, 2, 1_000, business_date=dt.date(2026, 1, 5)))
    assert [t.business_date for t in model.lookup_transfers([1, 2])] == [
        dt.date(2025, 12, 30),
        dt.date(2026, 1, 5),
    ]


# ---------------------------------------------------------------- overflow


def test_overflow_is_a_result_code() -> None:
    model = LedgerModel(BUSINESS_DATE)
    accounts = [Account(1, JPY, 1), Account(2, JPY, 1), Account(3, JPY, 1)]
    model.create_accounts(accounts, T0)
    assert one(model, tr(1, 1, 2, AMOUNT_MAX)) == TransferOutcome(R.OK, amount=AMOUNT_MAX)
    assert one(model, tr(2, 1, 3, 1)).result is R.OVERFLOWS_DEBITS_POSTED
    assert one(model, tr(3, 3, 2, 1)).result is R.OVERFLOWS_CREDITS_POSTED
    assert one(model, tr(4, 1, 3, 1, flags=TF.PENDING)).result is R.OVERFLOWS_DEBITS  # pending + posted
    assert one(model, tr(5, 3, 2, 1, flags=TF.PENDING)).result is R.OVERFLOWS_CREDITS
    assert one(model, tr(6, 3, 1, AMOUNT_MAX, flags=TF.PENDING)).result is R.OK
    assert one(model, tr(7, 3, 1, 1, flags=TF.PENDING)).result is R.OVERFLOWS_DEBITS_PENDING
    assert balances(model, 1) == (0, AMOUNT_MAX, AMOUNT_MAX, 0)


# ---------------------------------------------------------------- closing accounts


def test_closing_transfer_closes_and_a_void_reopens(bank: LedgerModel) -> None:
    closing = tr(1, BOB, ATM_CASH, 0, flags=TF.PENDING | TF.CLOSING_DEBIT)
    assert one(bank, closing) == TransferOutcome(R.OK, amount=0)
    (bob,) = bank.lookup_accounts([BOB])
    assert bob.flags == DEPOSIT | AF.CLOSED
    assert one(bank, tr(2, ALICE, BOB, 1_000)).result is R.CREDIT_ACCOUNT_ALREADY_CLOSED
    assert one(bank, tr(3, BOB, ALICE, 1_000)).result is R.DEBIT_ACCOUNT_ALREADY_CLOSED
    # Re-creating the account is an identical replay: `closed` is not compared.
    assert results(bank.create_accounts([Account(BOB, JPY, 4, flags=DEPOSIT)], T0)) == [A.EXISTS]

    assert one(bank, void(4, pending_id=1)).result is R.OK
    (bob,) = bank.lookup_accounts([BOB])
    assert bob.flags == DEPOSIT
    assert one(bank, tr(5, ALICE, BOB, 1_000)).result is R.OK


def test_closing_hold_that_expires_reopens(bank: LedgerModel) -> None:
    one(bank, tr(1, BOB, ATM_CASH, 0, flags=TF.PENDING | TF.CLOSING_DEBIT, timeout=60), T0)
    bank.expire_due(T0 + 60 * S)
    (bob,) = bank.lookup_accounts([BOB])
    assert bob.flags == DEPOSIT


def test_closing_an_account_paying_out_its_balance(bank: LedgerModel) -> None:
    # Bob closes his account and takes whatever is left in cash: ¥12,345.
    flags = TF.PENDING | TF.CLOSING_DEBIT | TF.BALANCING_DEBIT
    assert one(bank, tr(1, BOB, ATM_CASH, AMOUNT_MAX, flags=flags)) == TransferOutcome(R.OK, amount=12_345)
    # Posting is allowed although Bob's account is closed: this hold is what closed it.
    assert one(bank, post(2, pending_id=1)) == TransferOutcome(R.OK, amount=12_345)
    (bob,) = bank.lookup_accounts([BOB])
    assert bob.flags == DEPOSIT | AF.CLOSED and bob.balance_credit_minor() == 0


def test_closing_transfer_must_be_pending(bank: LedgerModel) -> None:
    assert one(bank, tr(1, BOB, ATM_CASH, 0, flags=TF.CLOSING_DEBIT)).result is R.CLOSING_TRANSFER_MUST_BE_PENDING


# ---------------------------------------------------------------- the order of checks


def test_first_failing_stateless_check_wins(bank: LedgerModel) -> None:
    assert one(bank, Transfer(id=0, flags=1 << 15)).result is R.ID_MUST_NOT_BE_ZERO
    assert one(bank, Transfer(id=ID_MAX)).result is R.ID_MUST_NOT_BE_INT_MAX
    assert one(bank, Transfer(id=1, flags=1 << 8)).result is R.RESERVED_FLAG
    both = TF.POST_PENDING_TRANSFER | TF.VOID_PENDING_TRANSFER
    assert one(bank, Transfer(id=1, flags=both)).result is R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    assert one(bank, post(1, pending_id=0)).result is R.PENDING_ID_MUST_NOT_BE_ZERO
    assert one(bank, post(1, pending_id=ID_MAX)).result is R.PENDING_ID_MUST_NOT_BE_INT_MAX
    assert one(bank, post(1, pending_id=1)).result is R.PENDING_ID_MUST_BE_DIFFERENT
    assert one(bank, post(1, pending_id=2, timeout=5)).result is R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    assert one(bank, tr(1, 0, ALICE, 1)).result is R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
    assert one(bank, tr(1, ALICE, ID_MAX, 1)).result is R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
    assert one(bank, tr(1, ALICE, ALICE, 1)).result is R.ACCOUNTS_MUST_BE_DIFFERENT
    assert one(bank, tr(1, ALICE, BOB, 1, pending_id=9)).result is R.PENDING_ID_MUST_BE_ZERO
    assert one(bank, tr(1, ALICE, BOB, 1, timeout=9)).result is R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
    assert one(bank, tr(1, ALICE, BOB, 0)).result is R.AMOUNT_MUST_NOT_BE_ZERO
    assert one(bank, tr(1, ALICE, BOB, 1, ledger=0)).result is R.LEDGER_MUST_NOT_BE_ZERO
    assert one(bank, tr(1, ALICE, BOB, 1, code=0)).result is R.CODE_MUST_NOT_BE_ZERO
    assert one(bank, tr(1, ALICE, BOB, 1)).result is R.OK  # none of the above burned id 1


def test_state_checks_against_accounts(bank: LedgerModel) -> None:
    bank.create_accounts([Account(20, 840, 1)], T0)  # a US dollar account
    assert one(bank, tr(1, 99, 98, 1)).result is R.DEBIT_ACCOUNT_NOT_FOUND
    assert one(bank, tr(2, ALICE, 98, 1)).result is R.CREDIT_ACCOUNT_NOT_FOUND
    assert one(bank, tr(3, ALICE, 20, 1)).result is R.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
    assert one(bank, tr(4, ALICE, BOB, 1, ledger=840)).result is R.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS


def test_state_checks_against_the_hold(bank: LedgerModel) -> None:
    one(bank, tr(1, ALICE, ATM_CASH, 20_000, flags=TF.PENDING, code=7))
    one(bank, tr(2, ALICE, ATM_CASH, 1_000))
    assert one(bank, post(10, pending_id=99)).result is R.PENDING_TRANSFER_NOT_FOUND
    assert one(bank, post(11, pending_id=2)).result is R.PENDING_TRANSFER_NOT_PENDING
    assert (
        one(bank, post(12, pending_id=1, debit_account_id=BOB)).result
        is R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
    )
    assert one(bank, post(13, pending_id=1, credit_account_id=FEES)).result is (
        R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
    )
    assert one(bank, post(14, pending_id=1, ledger=840)).result is R.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
    assert one(bank, post(15, pending_id=1, code=1)).result is R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
    assert one(bank, post(16, pending_id=1, code=7, ledger=JPY)).result is R.OK


# ---------------------------------------------------------------- accounts


def test_account_checks_in_order() -> None:
    model = LedgerModel(BUSINESS_DATE)
    both = AF.DEBITS_MUST_NOT_EXCEED_CREDITS | AF.CREDITS_MUST_NOT_EXCEED_DEBITS
    events = [
        Account(0, JPY, 1),
        Account(ID_MAX, JPY, 1),
        Account(1, JPY, 1, flags=1 << 5),
        Account(1, JPY, 1, flags=both),
        Account(1, JPY, 1, flags=AF.CLOSED),
        Account(1, 0, 1),
        Account(1, JPY, 0),
        Account(1, JPY, 1, flags=AF.HISTORY, user_data_32=5),
        Account(1, JPY, 1, flags=AF.HISTORY, user_data_32=5),
        Account(1, JPY, 1, user_data_32=5),
        Account(1, JPY, 1, flags=AF.HISTORY, user_data_32=6),
        Account(1, 840, 2, flags=AF.HISTORY, user_data_32=5),
        Account(1, JPY, 2, flags=AF.HISTORY, user_data_32=5),
    ]
    assert results(model.create_accounts(events, T0)) == [
        A.ID_MUST_NOT_BE_ZERO,
        A.ID_MUST_NOT_BE_INT_MAX,
        A.RESERVED_FLAG,
        A.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
        A.CLOSED_FLAG_NOT_ALLOWED,
        A.LEDGER_MUST_NOT_BE_ZERO,
        A.CODE_MUST_NOT_BE_ZERO,
        A.OK,
        A.EXISTS,
        A.EXISTS_WITH_DIFFERENT_FLAGS,
        A.EXISTS_WITH_DIFFERENT_USER_DATA_32,
        A.EXISTS_WITH_DIFFERENT_LEDGER,
        A.EXISTS_WITH_DIFFERENT_CODE,
    ]


def test_account_chain_rolls_back() -> None:
    model = LedgerModel(BUSINESS_DATE)
    chain = [Account(1, JPY, 1, flags=AF.LINKED), Account(2, JPY, 0)]
    assert results(model.create_accounts(chain, T0)) == [A.LINKED_EVENT_FAILED, A.CODE_MUST_NOT_BE_ZERO]
    assert model.lookup_accounts([1, 2]) == []
    assert results(model.create_accounts([Account(1, JPY, 1, flags=AF.LINKED)], T0)) == [A.LINKED_EVENT_CHAIN_OPEN]
