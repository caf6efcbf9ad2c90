"""Random request sequences against the engine (real PostgreSQL) and the reference model, step by step.

After every request both must give the same result codes and move the same amounts; after every
step, lookups of every account and transfer must agree (all fields but the timestamp).

Time. The model gives every event of a request the clock's instant; the engine gives each its own
timestamp, a few nanoseconds past the clock. The two agree on expiry unless a sweep or an event
falls within those nanoseconds of an expiry time, so no instant the test uses may ever be a whole
number of seconds after another: every clock move is whole seconds *plus 1 ms*. Two instants of
one example are then k seconds + n ms apart with 1 <= n < 1000, never within a microsecond of a
whole second. For the same reason the clock starts on a whole second far in the future (so that
long timeouts reach 2^63-1 ns and `overflows_timeout` happens), whose distance to 2^63-1 is
whole seconds plus 0.85 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from dataclasses import replace
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from kanjo.kernel import FixedClock
from kanjo.ledger import Account, AccountFlags, Ledger, Transfer, TransferFlags
from kanjo.ledger.model import AMOUNT_MAX, ID_MAX, TIMEOUT_S_MAX, TIMESTAMP_NS_MAX
from ledger_model import LedgerModel

S = 1_000_000_000
CLOCK_START_NS = 5_000_000_000 * S  # year 2128: 2^63-1 is ~4.22e9 s away, within the longest timeout
CLOCK_STEP_EXTRA_NS = 1_000_000  # every clock move is whole seconds plus this (see the module docstring)
EXAMPLE_GAP_S = 1_000  # each example starts this far after the previous one: engine timestamps never lead
ADVANCES_PER_EXAMPLE_MAX = 999  # n ms stays below a whole second
BUSINESS_DATE = dt.date(2025, 4, 1)
OTHER_DATE = dt.date(2025, 4, 2)

ACCOUNT_SLOTS = 6  # accounts per example: few, so that transfers meet the same accounts often
UNKNOWN_ACCOUNT_SLOT = ACCOUNT_SLOTS + 1  # never created: not_found
TRANSFER_SLOTS = 40  # transfer ids per example: small, so that ids collide and replays happen
BATCH_EVENTS_MAX = 4

SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

AF = AccountFlags
TF = TransferFlags
DMNEC = int(AF.DEBITS_MUST_NOT_EXCEED_CREDITS)
CMNED = int(AF.CREDITS_MUST_NOT_EXCEED_DEBITS)
HISTORY = int(AF.HISTORY)
PENDING = int(TF.PENDING)
POST = int(TF.POST_PENDING_TRANSFER)
VOID = int(TF.VOID_PENDING_TRANSFER)
BALANCING_DEBIT = int(TF.BALANCING_DEBIT)
BALANCING_CREDIT = int(TF.BALANCING_CREDIT)
CLOSING_DEBIT = int(TF.CLOSING_DEBIT)
CLOSING_CREDIT = int(TF.CLOSING_CREDIT)
ACCOUNT_LINKED = int(AF.LINKED)
TRANSFER_LINKED = int(TF.LINKED)

# Valid values dominate; the rest exercises every stateless check.
ACCOUNT_FLAGS = st.sampled_from(
    [
        0,
        0,
        0,
        DMNEC,
        DMNEC,
        CMNED,
        HISTORY,
        DMNEC | HISTORY,
        CMNED | HISTORY,
        DMNEC | CMNED,
        int(AF.CLOSED),
        1 << 5,
    ]
)
LEDGERS = st.sampled_from([392, 392, 392, 392, 840, 0])
CODES = st.sampled_from([1, 1, 1, 2, 0])
USER_DATA_32 = st.sampled_from([0, 0, 1])
BUSINESS_DATES = st.sampled_from([None, None, None, BUSINESS_DATE, OTHER_DATE])
AMOUNTS = st.one_of(
    st.integers(1, 50_000),
    st.sampled_from([1, 12_345, 30_000, AMOUNT_MAX // 2, AMOUNT_MAX // 2 + 1, AMOUNT_MAX - 1, AMOUNT_MAX]),
)
TIMEOUTS_SHORT = st.sampled_from([0, 0, 1, 2, 3, 5, 60, 3_600])
ADVANCES_S = st.sampled_from([0, 1, 1, 2, 3, 5, 59, 60, 3_600, 86_400])
LINKED = st.sampled_from([False, False, True])

_examples = itertools.count(1)  # one id namespace (the high 64 bits) per example


class LedgerComparison(RuleBasedStateMachine):
    """One example: one namespace of ids on the shared engine, and a fresh model."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    engine: ClassVar[Ledger]
    clock: ClassVar[FixedClock]

    def __init__(self) -> None:
        super().__init__()
        self.namespace = next(_examples) << 64
        start_ns = (max(self.clock.now_ns(), CLOCK_START_NS) // S + EXAMPLE_GAP_S) * S
        self.clock.set(start_ns)
        self.advances = 0
        # The longest timeout that fits at the start; 3 s later it overflows 2^63-1.
        self.timeout_edge = (TIMESTAMP_NS_MAX - start_ns) // S - 2
        assert 0 < self.timeout_edge < TIMEOUT_S_MAX
        self.model = LedgerModel(BUSINESS_DATE)
        self.sent: list[Transfer] = []  # every transfer event sent, for replays
        self.pending_ids: list[int] = []  # ids of sent pending events, for posts and voids

    # ------------------------------------------------------------------ drawing events

    def _account_id(self, data: st.DataObject) -> int:
        slot = data.draw(st.integers(1, ACCOUNT_SLOTS + 1))
        return (
            self.namespace | slot
            if data.draw(st.integers(0, 19))
            else data.draw(st.sampled_from([0, ID_MAX]))
        )

    def _transfer_id(self, data: st.DataObject) -> int:
        slot = data.draw(st.integers(1, TRANSFER_SLOTS))
        return (
            self.namespace | slot
            if data.draw(st.integers(0, 29))
            else data.draw(st.sampled_from([0, ID_MAX]))
        )

    def _timeout(self, data: st.DataObject) -> int:
        return data.draw(st.one_of(TIMEOUTS_SHORT, st.sampled_from([self.timeout_edge, TIMEOUT_S_MAX])))

    def _draw_transfer(self, data: st.DataObject) -> Transfer:
        kinds = ["plain", "plain", "pending", "pending", "post", "void", "balancing", "closing", "wild"]
        kind = data.draw(st.sampled_from([*kinds, "replay", "replay"] if self.sent else kinds))
        if kind == "replay":
            return self._draw_replay(data)
        if kind in ("post", "void"):
            return self._draw_resolving(data, POST if kind == "post" else VOID)
        if kind == "wild":
            return self._draw_wild(data)
        flags = {"plain": 0, "pending": PENDING, "balancing": 0, "closing": PENDING}[kind]
        if kind == "balancing" or data.draw(st.integers(0, 9)) == 0:
            flags |= data.draw(
                st.sampled_from([BALANCING_DEBIT, BALANCING_CREDIT, BALANCING_DEBIT | BALANCING_CREDIT])
            )
        if kind == "closing":
            flags |= data.draw(
                st.sampled_from([CLOSING_DEBIT, CLOSING_CREDIT, CLOSING_DEBIT | CLOSING_CREDIT])
            )
            if data.draw(st.integers(0, 9)) == 0:
                flags &= ~PENDING  # closing_transfer_must_be_pending
        amount = data.draw(st.one_of(st.just(0), AMOUNTS) if kind == "closing" else AMOUNTS)
        return Transfer(
            id=self._transfer_id(data),
            debit_account_id=self._account_id(data),
            credit_account_id=self._account_id(data),
            amount=amount,
            ledger=data.draw(LEDGERS),
            code=data.draw(CODES),
            flags=flags | (TRANSFER_LINKED if data.draw(LINKED) else 0),
            timeout=self._timeout(data) if flags & PENDING else 0,
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_resolving(self, data: st.DataObject, flag: int) -> Transfer:
        if self.pending_ids and data.draw(st.integers(0, 4)):
            pending_id = data.draw(st.sampled_from(self.pending_ids))
        else:
            pending_id = self._transfer_id(data)
        optional = st.integers(0, 3)  # mostly left 0, sometimes given
        return Transfer(
            id=self._transfer_id(data),
            debit_account_id=self._account_id(data) if data.draw(optional) == 0 else 0,
            credit_account_id=self._account_id(data) if data.draw(optional) == 0 else 0,
            amount=data.draw(AMOUNTS) if data.draw(optional) == 0 else 0,
            ledger=data.draw(LEDGERS) if data.draw(optional) == 0 else 0,
            code=data.draw(CODES) if data.draw(optional) == 0 else 0,
            flags=flag | (TRANSFER_LINKED if data.draw(LINKED) else 0),
            pending_id=pending_id,
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_wild(self, data: st.DataObject) -> Transfer:
        """Any flags and fields within their widths: every stateless check, in any combination."""
        return Transfer(
            id=self._transfer_id(data),
            debit_account_id=self._account_id(data),
            credit_account_id=self._account_id(data),
            amount=data.draw(st.one_of(st.just(0), AMOUNTS)),
            ledger=data.draw(LEDGERS),
            code=data.draw(CODES),
            flags=data.draw(st.one_of(st.integers(0, (1 << 8) - 1), st.sampled_from([1 << 8, 1 << 15]))),
            pending_id=data.draw(st.sampled_from([0, 0, ID_MAX])) or self._transfer_id(data),
            timeout=data.draw(st.sampled_from([0, 0, 1, TIMEOUT_S_MAX])),
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_replay(self, data: st.DataObject) -> Transfer:
        earlier = data.draw(st.sampled_from(self.sent))
        change = data.draw(
            st.sampled_from(
                ["same", "same", "same", "amount", "user_data_32", "linked", "business_date", "accounts"]
            )
        )
        if change == "amount":
            delta = data.draw(st.sampled_from([-1, 1, 1_000]))
            return replace(earlier, amount=min(AMOUNT_MAX, max(0, earlier.amount + delta)))
        if change == "user_data_32":
            return replace(earlier, user_data_32=earlier.user_data_32 ^ 1)
        if change == "linked":
            return replace(earlier, flags=earlier.flags ^ TRANSFER_LINKED)
        if change == "business_date":
            return replace(earlier, business_date=data.draw(BUSINESS_DATES))
        if change == "accounts":
            return replace(
                earlier,
                debit_account_id=earlier.credit_account_id,
                credit_account_id=earlier.debit_account_id,
            )
        return replace(earlier)

    # ------------------------------------------------------------------ rules

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @rule(data=st.data())
    def create_accounts(self, data: st.DataObject) -> None:
        events = data.draw(st.lists(self._account_event(data), min_size=1, max_size=BATCH_EVENTS_MAX))
        got = self._run(self.engine.create_accounts([replace(e) for e in events]))
        want = self.model.create_accounts([replace(e) for e in events], self.clock.now_ns())
        assert [o.result for o in got] == [o.result for o in want], _diff(events, got, want)

    def _account_event(self, data: st.DataObject) -> st.SearchStrategy[Account]:
        slot = st.integers(1, ACCOUNT_SLOTS)
        ids = st.one_of(
            slot.map(lambda s: self.namespace | s), slot.map(lambda s: self.namespace | s), st.just(0)
        )
        ids = st.one_of(ids, ids, ids, ids, ids, st.just(ID_MAX))
        return st.builds(
            lambda id_, ledger, code, flags, linked, user_data_32: Account(
                id=id_,
                ledger=ledger,
                code=code,
                flags=flags | (ACCOUNT_LINKED if linked else 0),
                user_data_32=user_data_32,
            ),
            ids,
            LEDGERS,
            CODES,
            ACCOUNT_FLAGS,
            LINKED,
            USER_DATA_32,
        )

    @rule(data=st.data())
    def create_transfers(self, data: st.DataObject) -> None:
        size = data.draw(st.integers(1, BATCH_EVENTS_MAX))
        events = [self._draw_transfer(data) for _ in range(size)]
        self.sent.extend(replace(e) for e in events if 0 < e.id < ID_MAX)
        self.pending_ids.extend(e.id for e in events if e.flags & PENDING and 0 < e.id < ID_MAX)
        got = self._run(self.engine.create_transfers([replace(e) for e in events]))
        want = self.model.create_transfers([replace(e) for e in events], self.clock.now_ns())
        assert [o.result for o in got] == [o.result for o in want], _diff(events, got, want)
        moved_got = [o.amount if o.result.succeeded else None for o in got]
        moved_want = [o.amount if o.result.succeeded else None for o in want]
        assert moved_got == moved_want, _diff(events, got, want)

    @rule(seconds=ADVANCES_S)
    def advance_clock_and_sweep(self, seconds: int) -> None:
        self.advances += 1
        assert self.advances <= ADVANCES_PER_EXAMPLE_MAX
        self.clock.advance(seconds, ns=CLOCK_STEP_EXTRA_NS)
        self._run(self.engine.expire_due())
        self.model.expire_due(self.clock.now_ns())

    @rule()
    def sweep(self) -> None:
        self._run(self.engine.expire_due())
        self.model.expire_due(self.clock.now_ns())

    # ------------------------------------------------------------------ invariants

    @invariant()
    def books_agree(self) -> None:
        account_ids = [self.namespace | slot for slot in range(1, UNKNOWN_ACCOUNT_SLOT + 1)]
        got = [replace(a, timestamp=0) for a in self._run(self.engine.lookup_accounts(account_ids))]
        assert got == self.model.lookup_accounts(account_ids)
        transfer_ids = [self.namespace | slot for slot in range(1, TRANSFER_SLOTS + 1)]
        got_t = [replace(t, timestamp=0) for t in self._run(self.engine.lookup_transfers(transfer_ids))]
        assert got_t == self.model.lookup_transfers(transfer_ids)


def _diff(events: list[Any], got: list[Any], want: list[Any]) -> str:
    lines = ["event -> engine | model"]
    for event, g, w in zip(events, got, want, strict=False):
        mark = "  " if (g.result, getattr(g, "amount", 0)) == (w.result, getattr(w, "amount", 0)) else "!!"
        lines.append(
            f"{mark} {event} -> {g.result.name} {getattr(g, 'amount', '')} | {w.result.name} "
            f"{getattr(w, 'amount', '')}"
        )
    if len(got) != len(want):
        lines.append(f"!! engine gave {len(got)} outcomes, model {len(want)}")
    return "\n".join(lines)


def test_engine_agrees_with_the_model(ledger_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    clock = FixedClock(CLOCK_START_NS)
    try:
        engine = loop.run_until_complete(
            Ledger.start(ledger_dsn, clock=clock, business_date=lambda: BUSINESS_DATE)
        )
        try:
            machine = type(
                "LedgerComparisonOnThisEngine",
                (LedgerComparison,),
                {"loop": loop, "engine": engine, "clock": clock},
            )
            run_state_machine_as_test(machine, settings=SETTINGS)
        finally:
            loop.run_until_complete(engine.stop())
    finally:
        loop.close()
