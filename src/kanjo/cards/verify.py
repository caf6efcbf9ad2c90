"""`kanjo verify` for cards: counters and limits within their named maxima, numbers well formed, each card's status
the one its last event recorded, and daily usage within the limit and equal to what its reservations count."""

from __future__ import annotations

import uuid

import asyncpg

from kanjo.cards.limits import DAILY_LIMIT_MAX, PIN_TRIES_MAX
from kanjo.cards.model import expiry_of, is_card_number

PAGE_ROWS = 10_000  # cards read per round trip when checking numbers in Python
SAMPLE_ROWS_MAX = 5

# (what must hold, SQL giving the ids of the rows where it does not, in the order of the checks)
_CHECKS: tuple[tuple[str, str], ...] = (
    (f"a card's wrong-PIN counter is 0 to {PIN_TRIES_MAX} (card_pin_consecutive_wrong_max)",
     f"SELECT card_id FROM cards.cards WHERE pin_failures NOT BETWEEN 0 AND {PIN_TRIES_MAX} ORDER BY card_id"),
    (f"a card's daily limit is ¥0 to ¥{DAILY_LIMIT_MAX:,} (card_daily_withdrawal_limit_max_minor)",
     f"SELECT card_id FROM cards.cards WHERE daily_limit_minor NOT BETWEEN 0 AND {DAILY_LIMIT_MAX} ORDER BY card_id"),
    ("a card's status is the one its last event recorded",
     "SELECT c.card_id FROM cards.cards c LEFT JOIN LATERAL (SELECT status_after FROM cards.card_events e"
     " WHERE e.card_id = c.card_id ORDER BY e.event_id DESC LIMIT 1) last ON true"
     " WHERE last.status_after IS DISTINCT FROM c.status ORDER BY c.card_id"),
    ("a replaced card is cancelled",
     "SELECT o.card_id FROM cards.cards n JOIN cards.cards o ON o.card_id = n.replaces_card_id"
     " WHERE o.status <> 'cancelled' ORDER BY o.card_id"),
    ("a card's daily usage is within the limit it had when the usage last rose, and within the maximum",
     f"SELECT card_id FROM cards.daily_usage WHERE used_minor > limit_minor OR used_minor > {DAILY_LIMIT_MAX}"
     " OR used_minor < 0 ORDER BY card_id"),
    ("a card's daily usage is the sum of its reservations still counted",
     "SELECT coalesce(u.card_id, r.card_id) FROM cards.daily_usage u FULL JOIN (SELECT card_id, business_date,"
     " sum(amount_minor) AS counted FROM cards.reservations WHERE state = 'reserved'"
     " GROUP BY card_id, business_date) r ON r.card_id = u.card_id AND r.business_date = u.business_date"
     " WHERE coalesce(u.used_minor, 0) <> coalesce(r.counted, 0) ORDER BY 1"),
)


async def verify_cards(db: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Every broken rule as one sentence with a count and a sample of card ids; empty when the cards hold."""
    problems: list[str] = []
    for rule, sql in _CHECKS:
        rows = await db.fetch(f"SELECT count(*) OVER () AS n, x.* FROM ({sql}) x LIMIT {SAMPLE_ROWS_MAX}")
        if rows:
            problems.append(_problem(rule, rows[0]["n"], [r[1] for r in rows]))
    problems += await _verify_numbers(db)
    return problems


async def _verify_numbers(db: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Numbers of our issuer with a right check digit; expiry at the month end five years after issue."""
    bad_number: list[int] = []
    bad_expiry: list[int] = []
    after = 0
    while True:
        page = await db.fetch("SELECT card_id, card_number, issued_on, expires_on FROM cards.cards"
                              " WHERE card_id > $1 ORDER BY card_id LIMIT $2", after, PAGE_ROWS)
        for r in page:
            if not is_card_number(r["card_number"]):
                bad_number.append(r["card_id"])
            if r["expires_on"] != expiry_of(r["issued_on"]):
                bad_expiry.append(r["card_id"])
        if len(page) < PAGE_ROWS:
            break
        after = page[-1]["card_id"]
    problems = []
    if bad_number:
        problems.append(_problem("a card number is 16 digits of the bank's issuer prefix with a right Luhn digit",
                                 len(bad_number), bad_number))
    if bad_expiry:
        problems.append(_problem("a card expires at the month end five years after its issue", len(bad_expiry),
                                 bad_expiry))
    return problems


def _problem(rule: str, count: int, sample: list[int]) -> str:
    ids = ", ".join(str(uuid.UUID(int=i)) for i in sample[:SAMPLE_ROWS_MAX])
    return f"{count} broken: {rule} (e.g. {ids})"
