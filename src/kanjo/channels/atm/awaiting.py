"""Cash items waiting for their ATM's acknowledgement, remembered by the process that authorised them, so the
acknowledgement (half of the bank's busiest traffic) need not read back what was just written to the journal.

What is remembered is what the authorisation recorded, and is never trusted as the item's state: settling goes
through the ledger (a hold the sweep voided cannot be posted) and a conditional update of the journal (only an item
still `authorised` is settled), and either refusing sends the acknowledgement down the slow path, which locks and
reads the journal, exactly as when the sweep wins a race against an acknowledgement that read the journal itself.
An item is taken out by its first acknowledgement; one not here (another process authorised it, this one restarted,
it was forgotten at the limit or past its deadline) is read from the journal.
"""

from __future__ import annotations

import datetime as dt

from kanjo.channels.atm.limits import AWAITING_ACK_REMEMBERED_MAX
from kanjo.channels.atm.store import CashItem
from kanjo.kernel.limits import limits


class Awaiting:
    def __init__(self, maximum: int = AWAITING_ACK_REMEMBERED_MAX) -> None:
        self.maximum = maximum
        self._items: dict[tuple[str, int], CashItem] = {}  # in order of authorisation

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, item: CashItem, now: dt.datetime) -> None:
        items = self._items
        items[(item.atm_id, item.journal_no)] = item
        while items:  # the oldest first: past its deadline (the sweep's now) or over the limit, forgotten
            oldest = next(iter(items.values()))
            if oldest.ack_deadline >= now and len(items) <= self.maximum:
                break
            del items[(oldest.atm_id, oldest.journal_no)]
        limits.observe("atm_awaiting_ack_remembered_max", len(items))

    def take(self, atm_id: str, journal_no: int, operation: str) -> CashItem | None:
        """The item authorised under this key, forgotten now; None if not remembered (or for another operation)."""
        item = self._items.pop((atm_id, journal_no), None)
        if item is not None and item.operation != operation:
            return None
        return item
