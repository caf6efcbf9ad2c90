"""The cash items a process remembers between authorisation and acknowledgement: taken once, forgotten past their
deadline or over the limit (their acknowledgement then reads the journal)."""

import datetime as dt

from kanjo.channels.atm.awaiting import Awaiting
from kanjo.channels.atm.store import CashItem

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


def item(journal_no: int, deadline_s: int = 60, operation: str = "withdrawal") -> CashItem:
    return CashItem("A0001", journal_no, 7, 8, 10_000, 110, "fee-1", "authorised",
                    NOW + dt.timedelta(seconds=deadline_s), None, None, dt.date(2026, 11, 22), operation)


def test_an_item_is_taken_once_by_its_first_acknowledgement() -> None:
    awaiting = Awaiting()
    awaiting.remember(item(1), NOW)
    assert awaiting.take("A0001", 1, "withdrawal") == item(1)
    assert awaiting.take("A0001", 1, "withdrawal") is None  # a repeat reads the journal
    assert awaiting.take("A0001", 2, "withdrawal") is None


def test_another_operation_under_the_key_is_not_answered_from_memory() -> None:
    awaiting = Awaiting()
    awaiting.remember(item(1, operation="deposit"), NOW)
    assert awaiting.take("A0001", 1, "withdrawal") is None


def test_the_oldest_are_forgotten_over_the_limit() -> None:
    awaiting = Awaiting(maximum=3)
    for journal_no in range(1, 6):
        awaiting.remember(item(journal_no), NOW)
    assert len(awaiting) == 3
    assert awaiting.take("A0001", 1, "withdrawal") is None
    assert awaiting.take("A0001", 2, "withdrawal") is None
    assert awaiting.take("A0001", 5, "withdrawal") == item(5)


def test_items_past_their_deadline_are_forgotten_when_a_new_one_comes() -> None:
    awaiting = Awaiting()
    awaiting.remember(item(1, deadline_s=1), NOW)
    awaiting.remember(item(2, deadline_s=60), NOW + dt.timedelta(seconds=2))
    assert len(awaiting) == 1
    assert awaiting.take("A0001", 1, "withdrawal") is None  # the sweep's now: the journal says what happened
