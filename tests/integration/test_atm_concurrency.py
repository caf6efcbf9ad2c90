"""Many ATMs at once, as a busy afternoon: the channel's statements are grouped across concurrent messages
(platform/coalesce.py), so these check what a customer and the ATM centre see when messages share statements —
every withdrawal answered once, duplicates racing their first answered alike, cards' daily limits counted once,
balances and books exact."""

from __future__ import annotations

import asyncio
from typing import Any

from kanjo.cards import set_daily_limit
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
