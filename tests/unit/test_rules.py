"""The ledger's rules without a database: worked examples a banker would recognise (JPY, whole yen)."""

from __future__ import annotations

import datetime as dt

from kanjo.ledger.model import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    PendingStatus,
    Transfer,
    TransferFlags,
)
from kanjo.ledger.rules import Batch

R = CreateTransferResult
JPY = 392
TODAY = dt.date(2026, 2, 27)
GUARDED = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)


def bank() -> Batch:
    batch = Batch({}, {}, {}, {}, TODAY)
    codes = batch.create_accounts([
        Account(id=1, ledger=JPY, code=1001),  # cash
        Account(id=2, ledger=JPY, code=2001, flags=GUARDED),  # Sato's ordinary deposit
        Account(id=3, ledger=JPY, code=2001, flags=GUARDED),  # Suzuki's ordinary deposit
        Account(id=4, ledger=JPY, code=1301, flags=int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)),  # card loan
    ], ts_first=100)
    assert codes == [CreateAccountResult.OK] * 4
    return batch


def tr(id: int, dr: int, cr: int, amount: int, flags: int = 0, **kw: int) -> Transfer:
    return Transfer(id=id, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=JPY, code=1,
                    flags=flags, **kw)  # type: ignore[arg-type]


def test_teller_deposit_then_withdrawal_beyond_the_balance_is_refused() -> None:
    b = bank()
    assert b.create_transfers([tr(10, 1, 2, 50_000)], 200) == [(R.OK, 50_000)]
    assert b.create_transfers([tr(11, 2, 1, 50_001)], 201) == [(R.EXCEEDS_CREDITS, 0)]
    assert b.create_transfers([tr(12, 2, 1, 50_000)], 202) == [(R.OK, 50_000)]
    sato = b.accounts[2]
    assert (sato.credits_posted, sato.debits_posted) == (50_000, 50_000)
    assert 11 in b.new_rejected and b.new_rejected[11][1] == R.EXCEEDS_CREDITS


def test_atm_withdrawal_holds_then_posts_on_acknowledgement() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 2, 100_000)], 200)
    hold = tr(20, 2, 1, 30_000, flags=int(TransferFlags.PENDING), timeout=60)
    assert b.create_transfers([hold], 300) == [(R.OK, 30_000)]
    assert b.accounts[2].debits_pending == 30_000
    # a second withdrawal cannot spend the held yen: 100,000 - 30,000 held = 70,000 available
    assert b.create_transfers([tr(21, 2, 1, 70_001)], 301) == [(R.EXCEEDS_CREDITS, 0)]
    post = Transfer(id=22, pending_id=20, flags=int(TransferFlags.POST_PENDING_TRANSFER))
    assert b.create_transfers([post], 302) == [(R.OK, 30_000)]
    sato = b.accounts[2]
    assert (sato.debits_pending, sato.debits_posted) == (0, 30_000)
    assert b.holds[20].status is PendingStatus.POSTED


def test_a_hold_past_its_timeout_cannot_be_posted() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 2, 10_000)], 200)
    b.create_transfers([tr(20, 2, 1, 5_000, flags=int(TransferFlags.PENDING), timeout=60)], 1_000)
    expired_at = 1_000 + 60 * 1_000_000_000
    post = Transfer(id=21, pending_id=20, flags=int(TransferFlags.POST_PENDING_TRANSFER))
    assert b.create_transfers([post], expired_at) == [(R.PENDING_TRANSFER_EXPIRED, 0)]
    b.expire(b.holds[20], expired_at + 1)
    assert b.accounts[2].debits_pending == 0 and b.holds[20].status is PendingStatus.EXPIRED


def test_loan_collection_takes_what_is_there() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 3, 12_345)], 200)
    collect = tr(30, 3, 1, 30_000, flags=int(TransferFlags.BALANCING_DEBIT))
    assert b.create_transfers([collect], 201) == [(R.OK, 12_345)]
    assert b.accounts[3].credits_posted - b.accounts[3].debits_posted == 0


def test_linked_chain_fails_as_one_and_rolls_back() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 2, 1_000)], 200)
    chain = [tr(40, 1, 3, 500, flags=int(TransferFlags.LINKED)), tr(41, 2, 1, 5_000)]
    assert b.create_transfers(chain, 300) == [(R.LINKED_EVENT_FAILED, 0), (R.EXCEEDS_CREDITS, 0)]
    assert b.accounts[3].credits_posted == 0 and 40 not in b.known
    open_chain = [tr(42, 1, 3, 1, flags=int(TransferFlags.LINKED))]
    assert b.create_transfers(open_chain, 400) == [(R.LINKED_EVENT_CHAIN_OPEN, 0)]


def test_balances_never_overflow_into_an_exception() -> None:
    b = bank()
    top = 2**63 - 1
    assert b.create_transfers([tr(50, 4, 1, top)], 200) == [(R.OK, top)]
    assert b.create_transfers([tr(51, 4, 3, 1)], 201) == [(R.OVERFLOWS_DEBITS_POSTED, 0)]
    assert b.accounts[4].debits_posted == top and b.accounts[3].credits_posted == 0


def test_replays_answer_exists_or_name_the_field() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 2, 1_000)], 200)
    assert b.create_transfers([tr(10, 1, 2, 1_000)], 201) == [(R.EXISTS, 1_000)]
    assert b.create_transfers([tr(10, 1, 2, 999)], 202) == [(R.EXISTS_WITH_DIFFERENT_AMOUNT, 0)]
    assert b.create_transfers([tr(10, 1, 3, 1_000)], 203) == [(R.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID, 0)]
    assert b.accounts[2].credits_posted == 1_000


def test_rollback_of_a_whole_batch_restores_the_caches() -> None:
    committed = bank()
    b = Batch(committed.accounts, committed.holds, {}, {}, TODAY)  # the next batch over the same caches
    before = (b.accounts[1].debits_posted, b.accounts[2].credits_posted)
    b.create_transfers([tr(10, 1, 2, 1_000), tr(11, 2, 1, 10, flags=int(TransferFlags.PENDING))], 200)
    b.rollback()
    assert (b.accounts[1].debits_posted, b.accounts[2].credits_posted) == before
    assert b.accounts[2].debits_pending == 0 and 11 not in b.holds and not b.new_transfers


def test_a_retried_failed_chain_answers_as_the_first_time_even_after_balances_change() -> None:
    b = bank()
    b.create_transfers([tr(10, 1, 2, 100)], 200)
    chain = [tr(60, 2, 3, 50, flags=int(TransferFlags.LINKED)), tr(61, 1, 3, 10, flags=int(TransferFlags.LINKED)),
             tr(62, 2, 3, 1_000)]
    first = b.create_transfers(chain, 300)
    assert first == [(R.LINKED_EVENT_FAILED, 0), (R.LINKED_EVENT_FAILED, 0), (R.EXCEEDS_CREDITS, 0)]
    later = Batch(b.accounts, b.holds, {**b.rejected, **b.new_rejected}, dict(b.known), TODAY)
    later.create_transfers([tr(63, 2, 3, 100)], 400)  # drains Sato's account: event 60 alone would now fail
    assert later.create_transfers(chain, 500) == first
    assert later.accounts[3].credits_posted == 100
