"""Passbooks and dormancy without a database: the state machine, the page layout, 合算記帳, the silence."""

from __future__ import annotations

import datetime as dt

import pytest

from kanjo.deposits.dormancy import (
    DORMANCY_SILENCE_MONTHS_DEFAULT,
    job_request_id,
    months_before,
    silence_cutoff,
)
from kanjo.deposits.model import Refused
from kanjo.deposits.passbook import (
    START,
    IllegalPassbookTransition,
    IssueKind,
    LineKind,
    Movement,
    Passbook,
    PassbookAction,
    PassbookStatus,
    Position,
    Unposted,
    lay_out,
    lines_left,
    movement_of,
    next_positions,
    passbook_transition,
)
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import Transfer, TransferFlags

DAY = dt.date(2026, 4, 1)
ACCOUNT = 0x0190C1D27F3A70008000000000000001
OTHER = 0x0190C1D27F3A70008000000000000002


def book(position: Position = START, timestamp: int = 0, balance: int = 0) -> Passbook:
    return Passbook(1, ACCOUNT, 1, PassbookStatus.ACTIVE, IssueKind.FIRST, DAY, position, timestamp, balance, None)


def deposit(ts: int, amount: int, code: int = 11) -> Movement:
    return Movement(ts, DAY, code, amount, 0)


def withdrawal(ts: int, amount: int, code: int = 12) -> Movement:
    return Movement(ts, DAY, code, 0, amount)


# -- the state machine ---------------------------------------------------------------------------------------

def test_a_passbook_prints_while_active_fills_then_is_carried_forward() -> None:
    A, S = PassbookAction, PassbookStatus
    assert passbook_transition(S.ACTIVE, A.PRINT) is S.ACTIVE
    assert passbook_transition(S.ACTIVE, A.FILL) is S.FULL
    assert passbook_transition(S.FULL, A.CARRY_FORWARD) is S.CARRIED_FORWARD
    assert passbook_transition(S.ACTIVE, A.REPORT_LOST) is S.LOST
    assert passbook_transition(S.FULL, A.REPORT_LOST) is S.LOST
    assert passbook_transition(S.LOST, A.REISSUE) is S.REPLACED
    assert passbook_transition(S.ACTIVE, A.REISSUE) is S.REPLACED  # damaged (汚損): handed in and replaced


@pytest.mark.parametrize(("status", "action", "code", "named"), [
    (PassbookStatus.FULL, PassbookAction.PRINT, "passbook_full", "繰越"),
    (PassbookStatus.LOST, PassbookAction.PRINT, "passbook_lost", "再発行"),
    (PassbookStatus.ACTIVE, PassbookAction.CARRY_FORWARD, "passbook_not_full", "only when full"),
    (PassbookStatus.FULL, PassbookAction.REISSUE, "passbook_full", "繰越"),
    (PassbookStatus.LOST, PassbookAction.REPORT_LOST, "illegal_transition", "a passbook that is lost"),
    (PassbookStatus.CARRIED_FORWARD, PassbookAction.PRINT, "illegal_transition", "that is carried forward"),
    (PassbookStatus.REPLACED, PassbookAction.REISSUE, "illegal_transition", "that is replaced"),
])
def test_refusals_name_the_passbooks_state(status: PassbookStatus, action: PassbookAction, code: str,
                                           named: str) -> None:
    with pytest.raises(IllegalPassbookTransition) as refused:
        passbook_transition(status, action)
    assert refused.value.code == code and named in str(refused.value)
    assert isinstance(refused.value, Refused)  # answered as 409 like every business refusal


# -- the page layout: 10 pages of 24 lines ---------------------------------------------------------------------

def test_pages_of_twenty_four_lines_and_ten_pages() -> None:
    assert lines_left(START) == 240
    assert lines_left(Position(1, 24)) == 216
    assert lines_left(Position(10, 23)) == 1 and lines_left(Position(10, 24)) == 0
    positions = next_positions(Position(1, 22), 4)
    assert positions == [Position(1, 23), Position(1, 24), Position(2, 1), Position(2, 2)]  # the page turns
    with pytest.raises(Exception, match="only as many lines"):
        next_positions(Position(10, 23), 2)


# -- movements and 合算記帳 ---------------------------------------------------------------------------------------

def test_only_posted_money_prints() -> None:
    cash_in = Transfer(id=1, debit_account_id=OTHER, credit_account_id=ACCOUNT, amount=5_000, code=11,
                       business_date=DAY, timestamp=10)
    assert movement_of(cash_in, ACCOUNT) == Movement(10, DAY, 11, 5_000, 0)
    cash_out = Transfer(id=2, debit_account_id=ACCOUNT, credit_account_id=OTHER, amount=3_000, code=12,
                        business_date=DAY, timestamp=11)
    assert movement_of(cash_out, ACCOUNT) == Movement(11, DAY, 12, 0, 3_000)
    hold = Transfer(id=3, debit_account_id=ACCOUNT, credit_account_id=OTHER, amount=1_000, code=12,
                    flags=int(TransferFlags.PENDING), business_date=DAY, timestamp=12)
    posted = Transfer(id=4, debit_account_id=ACCOUNT, credit_account_id=OTHER, amount=1_000, code=12, pending_id=3,
                      flags=int(TransferFlags.POST_PENDING_TRANSFER), business_date=DAY, timestamp=13)
    voided = Transfer(id=5, debit_account_id=ACCOUNT, credit_account_id=OTHER, amount=1_000, code=12, pending_id=3,
                      flags=int(TransferFlags.VOID_PENDING_TRANSFER), business_date=DAY, timestamp=14)
    closing = Transfer(id=6, debit_account_id=ACCOUNT, credit_account_id=OTHER, amount=0, code=14,
                       flags=int(TransferFlags.PENDING | TransferFlags.CLOSING_DEBIT), business_date=DAY, timestamp=15)
    assert movement_of(hold, ACCOUNT) is None  # a hold moves no posted money: it prints when posted
    assert movement_of(posted, ACCOUNT) == Movement(13, DAY, 12, 0, 1_000)
    assert movement_of(voided, ACCOUNT) is None and movement_of(closing, ACCOUNT) is None


def test_thirty_unposted_print_one_line_each() -> None:
    folded = Unposted(30)
    for i in range(30):
        folded.add(deposit(i + 1, 1_000))
    lines = folded.lines(balance_before_minor=0)
    assert len(lines) == 30 and all(x.kind is LineKind.MOVEMENT and x.items == 1 for x in lines)
    assert [x.balance_minor for x in lines[:3]] == [1_000, 2_000, 3_000] and lines[-1].balance_minor == 30_000
    assert lines[0].description == "現金入金"


def test_beyond_thirty_the_oldest_are_summed_into_one_omatome_line() -> None:
    # Balance printed last ¥10,000. 32 movements: ¥50,000 in, ¥20,000 out, ¥5,000 out, then 29 × ¥1,000 in.
    folded = Unposted(30)
    folded.add(deposit(1, 50_000))
    folded.add(withdrawal(2, 20_000))
    folded.add(withdrawal(3, 5_000))
    for i in range(29):
        folded.add(deposit(4 + i, 1_000))
    lines = folded.lines(balance_before_minor=10_000)
    assert folded.items == 32 and len(lines) == 30
    summary = lines[0]
    # the 3 oldest: ¥25,000 paid out, ¥50,000 paid in; 10,000 − 25,000 + 50,000 = ¥35,000
    assert (summary.kind, summary.description, summary.items) == (LineKind.CONSOLIDATED, "おまとめ", 3)
    assert (summary.withdrawal_minor, summary.deposit_minor, summary.balance_minor) == (25_000, 50_000, 35_000)
    assert (summary.first_timestamp, summary.last_timestamp) == (1, 3)
    assert [x.balance_minor for x in lines[1:4]] == [36_000, 37_000, 38_000]
    assert lines[-1].balance_minor == 64_000 and lines[-1].last_timestamp == 32
    assert sum(x.items for x in lines) == 32


# -- printing into the passbook ----------------------------------------------------------------------------------

def test_a_print_turns_the_page_and_stops_when_the_passbook_is_full() -> None:
    folded = Unposted(30)
    for i in range(5):
        folded.add(deposit(101 + i, 2_000))
    near_full = book(Position(10, 22), timestamp=100, balance=7_000)
    result, after = lay_out(near_full, folded.lines(7_000), folded.items)
    assert [(x.page, x.line, x.balance_minor) for x in result.lines] == [(10, 23, 9_000), (10, 24, 11_000)]
    assert (result.items_left, result.passbook_full, result.page_turns) == (3, True, 0)
    assert after.status is PassbookStatus.FULL and after.position == Position(10, 24)
    assert (after.printed_timestamp, after.printed_balance_minor) == (102, 11_000)

    turning = book(Position(3, 23), timestamp=100, balance=7_000)
    result, after = lay_out(turning, folded.lines(7_000), folded.items)
    assert [(x.page, x.line) for x in result.lines] == [(3, 24), (4, 1), (4, 2), (4, 3), (4, 4)]
    assert (result.items_left, result.passbook_full, result.page_turns) == (0, False, 1)
    assert after.status is PassbookStatus.ACTIVE and after.printed_balance_minor == 17_000


def test_nothing_unposted_prints_nothing_and_keeps_the_position() -> None:
    result, after = lay_out(book(Position(2, 5), 9, 100), [], 0)
    assert result.lines == () and after == book(Position(2, 5), 9, 100) and result.page_turns == 0


# -- the dormancy silence -----------------------------------------------------------------------------------------

def test_the_silence_is_counted_in_calendar_months() -> None:
    assert DORMANCY_SILENCE_MONTHS_DEFAULT == 36
    assert silence_cutoff(dt.date(2029, 3, 1), 36) == dt.date(2026, 3, 1)
    assert months_before(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_before(dt.date(2028, 2, 29), 12) == dt.date(2027, 2, 28)
    assert months_before(dt.date(2026, 1, 15), 120) == dt.date(2016, 1, 15)
    with pytest.raises(LimitReached, match="deposit_dormancy_silence_months_max"):
        silence_cutoff(dt.date(2029, 3, 1), 121)
    with pytest.raises(Refused) as refused:
        silence_cutoff(dt.date(2029, 3, 1), 11)
    assert refused.value.code == "silence_too_short"


def test_a_jobs_request_id_is_one_per_account_day_and_job() -> None:
    first = job_request_id(ACCOUNT, dt.date(2029, 3, 1))
    assert first == job_request_id(ACCOUNT, dt.date(2029, 3, 1))
    assert first != job_request_id(ACCOUNT, dt.date(2029, 3, 2))
    assert first != job_request_id(OTHER, dt.date(2029, 3, 1))
    assert first != job_request_id(ACCOUNT, dt.date(2029, 3, 1), "another_job")
