"""Many ATMs at once, as a busy afternoon: the channel's statements are grouped across concurrent messages
(platform/coalesce.py), so these check what a customer and the ATM centre see when messages share statements —
every withdrawal answered once, duplicates racing their first answered alike, cards' daily limits counted once,
balances and books exact."""

from __future__ import annotations

import asyncio
from typing import Any

from kanjo.cards import set_daily_limit
from kanjo.channels.atm.model import request_id_of
from kanjo.deposits import void_hold
from kanjo.kernel import new_id
from tests.integration.test_atm_channel import Atm, atm  # noqa: F401  (the fixture)

ATMS = ("A0001", "A0002")  # own ATMs: free on a weekday daytime
AMOUNT = 1_000


async def _both(device: Atm, path: str, atm_id: str, journal_no: int, **body: Any) -> list[tuple[int, dict[str, Any]]]:
    """The same message twice at the same instant (a device's retry racing its first attempt)."""
    sent = await asyncio.gather(*(device.send(path, atm_id, journal_no, **body) for _ in range(2)))
    return [(status, answer) for status, answer, _ in sent]


async def test_concurrent_withdrawals_with_racing_retries_move_each_amount_once(atm: Atm) -> None:  # noqa: F811
    before = [await atm.balance(i) for i in range(4)]
    plan = [(ATMS[n % 2], 10_000 + n, n % 4) for n in range(40)]  # 10 withdrawals per card
    authorised = await asyncio.gather(*(_both(atm, "withdrawal", atm_id, no, card=atm.card(card),
                                              amount_minor=AMOUNT) for atm_id, no, card in plan))
    for answers in authorised:
        bodies = [a for s, a in answers if s == 200]
        assert bodies, answers  # at least the first attempt is answered; a racing retry may be told to retry
        assert all(b["result"] == "approved" and b["card_action"] == "return" for b in bodies)
        assert len({b["dispense_minor"] for b in bodies}) == 1
        assert all(a["card_action"] == "return" for _, a in answers)  # never a card kept
    acknowledged = await asyncio.gather(*(_both(atm, "withdrawal/ack", atm_id, no, dispensed_minor=AMOUNT)
                                          for atm_id, no, _ in plan))
    for answers in acknowledged:
        codes = sorted(a["code"] for s, a in answers if s == 200)
        assert codes and set(codes) == {"posted"}, answers
    after = [await atm.balance(i) for i in range(4)]
    assert [b - a for b, a in zip(before, after, strict=True)] == [10 * AMOUNT] * 4
    await atm.books_ok()


async def test_a_cards_daily_limit_holds_when_its_withdrawals_arrive_together(atm: Atm) -> None:  # noqa: F811
    cards = atm.app.state.bank.cards
    card = atm.card(3)
    row = await cards.grouped.card_by_number(card["number"])
    await set_daily_limit(cards, new_id(), row.card_id, 50_000, "ops-1", "a customer's own lower limit")
    # a burst of withdrawals on one card, all at once: the limit counts each once, in some order, never above it
    burst = await asyncio.gather(*(atm.send("withdrawal", ATMS[n % 2], 20_000 + n, card=card, amount_minor=10_000)
                                   for n in range(12)))
    answers = [(status, body["result"], body["code"]) for status, body, _ in burst]
    assert sorted(answers).count((200, "approved", "ok")) == 5  # ¥50,000 of ¥10,000 withdrawals
    assert sorted(answers).count((200, "refused", "daily_limit_exceeded")) == 7
    for (_, body, no), n in zip(burst, range(12), strict=True):  # the cash went out: post them
        if body["result"] == "approved":
            _, ack, _ = await atm.send("withdrawal/ack", ATMS[n % 2], no, dispensed_minor=10_000)
            assert ack["code"] == "posted"
    assert await atm.balance(3) == 300_000 - 50_000
    _, inquiry, _ = await atm.send("inquiry", card=card)
    assert inquiry["available_minor"] == inquiry["balance_minor"]  # no hold of a refused withdrawal stays
    await atm.books_ok()


async def test_a_withdrawal_over_the_daily_limit_leaves_no_hold(atm: Atm) -> None:  # noqa: F811
    """The daily limit and the funds are checked side by side: the hold placed for a withdrawal the limit refuses is
    voided before the answer."""
    cards = atm.app.state.bank.cards
    card = atm.card(2)
    row = await cards.grouped.card_by_number(card["number"])
    await set_daily_limit(cards, new_id(), row.card_id, 30_000, "ops-1", "a customer's own lower limit")
    _, body, _ = await atm.send("withdrawal", card=card, amount_minor=40_000)
    assert (body["result"], body["code"], body["card_action"]) == ("refused", "daily_limit_exceeded", "return")
    _, inquiry, _ = await atm.send("inquiry", card=card)
    assert inquiry["available_minor"] == inquiry["balance_minor"] == 300_000
    await atm.books_ok()


async def test_a_retry_after_its_hold_lapsed_is_refused_and_gives_everything_back(atm: Atm) -> None:  # noqa: F811
    """A device resending a withdrawal whose first processing died before its answer was recorded, after the hold it
    placed was let go: refused (hold_lapsed), nothing held, the daily limit given back — never approved without a
    hold."""
    cards = atm.app.state.bank.cards
    card = atm.card(1)
    row = await cards.grouped.card_by_number(card["number"])
    await set_daily_limit(cards, new_id(), row.card_id, 50_000, "ops-1", "a customer's own lower limit")
    _, first, no = await atm.send("withdrawal", card=card, amount_minor=40_000)
    assert first["result"] == "approved"
    channel = atm.app.state.atm
    async with channel.pool.acquire() as conn:  # as if its process had died before recording the answer, long ago
        await conn.execute("UPDATE atm.transactions SET state = 'processing', answer = NULL,"
                           " updated_at = now() - interval '1 hour' WHERE atm_id = 'A0001' AND journal_no = $1", no)
    channel.awaiting.take("A0001", no, "withdrawal")
    await void_hold(atm.app.state.bank.deposits, request_id_of("A0001", no))  # and its hold let go since
    _, again, _ = await atm.send("withdrawal", journal_no=no, card=card, amount_minor=40_000)
    assert (again["result"], again["code"], again["card_action"]) == ("refused", "hold_lapsed", "return")
    _, inquiry, _ = await atm.send("inquiry", card=card)
    assert inquiry["available_minor"] == inquiry["balance_minor"] == 300_000
    _, full, _ = await atm.send("withdrawal", card=card, amount_minor=50_000)  # the whole limit is there again
    assert full["result"] == "approved"
    await atm.books_ok()
