"""Random request sequences against the engine (real PostgreSQL) and the reference model, step by step.

After every request both must give the same result codes and move the same amounts; after every
step, lookups of every account and transfer must agree (all fields but the timestamp).

Ids. One engine serves every example of the test function (starting it costs more than an
example); each example works in its own namespace, the high 64 bits of every id it uses. Six
account slots are opened first; transfer ids are numbered as they are drawn and drawn again on
purpose, for replays (identical or with one field changed) and collisions. Bad ids (0, 2^128-1)
and every other stateless refusal come from the rarer "corrupt" and "wild" events.

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
import os
from dataclasses import replace
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kanjo.kernel import FixedClock
from kanjo.ledger import (
    Account,
    AccountFlags,
    AccountOutcome,
    Ledger,
    Transfer,
    TransferFlags,
    TransferOutcome,
)
from kanjo.ledger.model import AMOUNT_MAX, ID_MAX, TIMEOUT_S_MAX, TIMESTAMP_NS_MAX
from tests.ledger_model import LedgerModel

_SHRINK = os.environ.get("KANJO_STATEFUL_SHRINK") == "1"
S = 1_000_000_000
CLOCK_START_NS = 5_000_000_000 * S  # year 2128: 2^63-1 is ~4.22e9 s away, within the longest timeout
CLOCK_STEP_EXTRA_NS = 1_000_000  # every clock move is whole seconds plus this (see the module docstring)
EXAMPLE_GAP_S = 1_000  # each example starts this far after the previous one: engine timestamps never lead
ADVANCES_PER_EXAMPLE_MAX = 999  # n ms stays below a whole second
BUSINESS_DATE = dt.date(2025, 4, 1)
OTHER_DATE = dt.date(2025, 4, 2)

ACCOUNT_SLOTS = 6  # accounts per example: few, so that transfers meet the same accounts often
UNKNOWN_ACCOUNT_SLOT = ACCOUNT_SLOTS + 1  # never created: not_found
BATCH_EVENTS_MAX = 4

HISTORY_LINES_SHOWN = 200

# About half a minute. No shrinking: each attempt replays an example against PostgreSQL, and shrinking a
# failure took over five minutes; the failure message shows the example's history instead. Set
# KANJO_STATEFUL_SHRINK=1 to shrink anyway (Hypothesis's database replays the failure first).
SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, *([Phase.shrink] if _SHRINK else [])],
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


def mostly(common: object, weight: int, *rare: object) -> st.SearchStrategy[Any]:
    """`common` `weight` times as often as each rare value: valid events dominate, the rest probes checks.

    (Weights need sampled_from: st.one_of merges repeated branches.)
    """
    return st.sampled_from([common] * weight + list(rare))


VALID_ACCOUNT_FLAGS_LIST = [0, 0, DMNEC, DMNEC, CMNED, HISTORY, DMNEC | HISTORY, CMNED | HISTORY]
VALID_ACCOUNT_FLAGS = st.sampled_from(VALID_ACCOUNT_FLAGS_LIST)
ACCOUNT_FLAGS = st.sampled_from(VALID_ACCOUNT_FLAGS_LIST * 3 + [DMNEC | CMNED, int(AF.CLOSED), 1 << 5])
LEDGERS = mostly(392, 12, 840, 0)  # for account events
CODES = mostly(1, 10, 2, 0)
USER_DATA_32 = mostly(0, 4, 1)
BUSINESS_DATES = st.sampled_from([None, None, None, BUSINESS_DATE, OTHER_DATE])
EDGE_AMOUNTS = [1, 12_345, 30_000, AMOUNT_MAX // 2, AMOUNT_MAX // 2 + 1, AMOUNT_MAX - 1, AMOUNT_MAX]
AMOUNTS = mostly("small", 3, "edge").flatmap(
    lambda kind: st.integers(1, 50_000) if kind == "small" else st.sampled_from(EDGE_AMOUNTS)
)
TIMEOUTS_SHORT = st.sampled_from([0, 0, 1, 2, 3, 5, 60, 3_600])
ADVANCES_S = st.sampled_from([0, 1, 1, 2, 3, 5, 59, 60, 3_600, 86_400])
LINKED = mostly(False, 5, True)

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
        self.start_ns = start_ns
        self.advances = 0
        self.history: list[str] = []  # what this example did, for the failure message
        # The longest timeout that fits at the start; 3 s later it overflows 2^63-1.
        self.timeout_edge = (TIMESTAMP_NS_MAX - start_ns) // S - 2
        assert 0 < self.timeout_edge < TIMEOUT_S_MAX
        self.model = LedgerModel(BUSINESS_DATE)
        self.transfer_ids: list[int] = []  # every valid transfer id drawn in this example
        self.sent: list[Transfer] = []  # every transfer event sent, for replays
        self.hold_ids: list[int] = []  # ids of holds the ledger created, for posts and voids

    # ------------------------------------------------------------------ drawing events

    def _account_id(self, data: st.DataObject) -> int:
        """An opened account, rarely one never opened (not found)."""
        slot = data.draw(mostly("opened", 30, UNKNOWN_ACCOUNT_SLOT))
        return self.namespace | (data.draw(st.integers(1, ACCOUNT_SLOTS)) if slot == "opened" else slot)

    def _account_pair(self, data: st.DataObject) -> tuple[int, int]:
        debit_account_id = self._account_id(data)
        others = [self.namespace | s for s in range(1, ACCOUNT_SLOTS + 1) if self.namespace | s != debit_account_id]
        if data.draw(mostly(True, 30, False)):
            return debit_account_id, data.draw(st.sampled_from(others))
        return debit_account_id, self.namespace | UNKNOWN_ACCOUNT_SLOT

    def _transfer_id(self, data: st.DataObject) -> int:
        """Mostly a new id; sometimes one used before (a replay or a collision)."""
        if self.transfer_ids and data.draw(mostly(False, 6, True)):
            return data.draw(st.sampled_from(self.transfer_ids))
        new_id = self.namespace | (len(self.transfer_ids) + 1)
        self.transfer_ids.append(new_id)
        return new_id

    def _timeout(self, data: st.DataObject) -> int:
        if data.draw(mostly(True, 12, False)):
            return data.draw(TIMEOUTS_SHORT)
        return data.draw(st.sampled_from([self.timeout_edge, TIMEOUT_S_MAX]))  # overflows_timeout

    def _draw_transfer(self, data: st.DataObject) -> Transfer:
        kinds = ["plain"] * 4 + ["pending"] * 3 + ["post", "post", "void", "balancing", "closing", "corrupt", "wild"]
        kind = data.draw(st.sampled_from([*kinds, "replay", "replay"] if self.sent else kinds))
        if kind == "replay":
            return self._draw_replay(data)
        if kind in ("post", "void"):
            return self._draw_resolving(data, POST if kind == "post" else VOID)
        if kind == "wild":
            return self._draw_wild(data)
        if kind == "corrupt":
            return self._draw_corrupt(data)
        flags = {"plain": 0, "pending": PENDING, "balancing": 0, "closing": PENDING}[kind]
        if kind == "balancing" or data.draw(mostly(False, 10, True)):
            flags |= data.draw(st.sampled_from([BALANCING_DEBIT, BALANCING_CREDIT, BALANCING_DEBIT | BALANCING_CREDIT]))
        if kind == "closing":
            flags |= data.draw(st.sampled_from([CLOSING_DEBIT, CLOSING_CREDIT, CLOSING_DEBIT | CLOSING_CREDIT]))
        amount = data.draw(st.one_of(st.just(0), AMOUNTS) if kind == "closing" else AMOUNTS)
        debit_account_id, credit_account_id = self._account_pair(data)
        return Transfer(
            id=self._transfer_id(data),
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            ledger=data.draw(mostly(392, 20, 840)),  # the accounts' ledger, rarely not
            code=data.draw(st.sampled_from([1, 1, 2])),
            flags=flags | (TRANSFER_LINKED if data.draw(LINKED) else 0),
            timeout=self._timeout(data) if flags & PENDING else 0,
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_resolving(self, data: st.DataObject, flag: int) -> Transfer:
        """A post or void, mostly of a hold sent before; accounts, ledger, code, amount mostly left 0."""
        if self.hold_ids and data.draw(mostly(True, 6, False)):
            pending_id = data.draw(st.sampled_from(self.hold_ids))
        else:
            pending_id = self._transfer_id(data)  # not found, not pending, or itself
        given = mostly(False, 3, True)
        held = [t for t in self.sent if t.id == pending_id]
        p = held[-1] if held else Transfer(id=0, ledger=392, code=1)
        # A given field mostly repeats the hold's (allowed), sometimes differs (refused).
        return Transfer(
            id=self._transfer_id(data),
            debit_account_id=data.draw(st.sampled_from([p.debit_account_id] * 2 + [self._account_id(data)]))
            if data.draw(given)
            else 0,
            credit_account_id=data.draw(st.sampled_from([p.credit_account_id] * 2 + [self._account_id(data)]))
            if data.draw(given)
            else 0,
            amount=data.draw(st.sampled_from([p.amount, p.amount, max(1, p.amount // 2), p.amount + 1]))
            if data.draw(given) and p.amount < AMOUNT_MAX
            else 0,
            ledger=data.draw(st.sampled_from([p.ledger, p.ledger, 840])) if data.draw(given) else 0,
            code=data.draw(st.sampled_from([p.code, p.code, 2])) if data.draw(given) else 0,
            flags=flag | (TRANSFER_LINKED if data.draw(LINKED) else 0),
            pending_id=pending_id,
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_corrupt(self, data: st.DataObject) -> Transfer:
        """A valid-looking transfer with one field out of bounds: a stateless check must refuse it."""
        debit_account_id, credit_account_id = self._account_pair(data)
        valid = Transfer(
            id=self._transfer_id(data),
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=data.draw(AMOUNTS),
            ledger=392,
            code=1,
            flags=TRANSFER_LINKED if data.draw(LINKED) else 0,
        )
        field, value = data.draw(
            st.sampled_from(
                [
                    ("id", 0),
                    ("id", ID_MAX),
                    ("debit_account_id", 0),
                    ("debit_account_id", ID_MAX),
                    ("credit_account_id", 0),
                    ("credit_account_id", ID_MAX),
                    ("credit_account_id", debit_account_id),
                    ("pending_id", self.namespace | 1),
                    ("timeout", 1),
                    ("amount", 0),
                    ("ledger", 0),
                    ("code", 0),
                    ("flags", valid.flags | CLOSING_CREDIT),
                    ("flags", valid.flags | 1 << 8),
                    ("flags", valid.flags | PENDING | POST),
                    ("flags", valid.flags | POST | VOID),
                    ("flags", valid.flags | BALANCING_DEBIT | VOID),
                ]
            )
        )
        return replace(valid, **{field: value})

    def _draw_wild(self, data: st.DataObject) -> Transfer:
        """Any flags and any fields within their widths: the stateless checks in any combination."""
        ids = st.sampled_from([0, ID_MAX, self.namespace | 1, self.namespace | UNKNOWN_ACCOUNT_SLOT])
        return Transfer(
            id=data.draw(st.sampled_from([0, ID_MAX])) if data.draw(st.booleans()) else self._transfer_id(data),
            debit_account_id=data.draw(ids),
            credit_account_id=data.draw(ids),
            amount=data.draw(st.one_of(st.just(0), AMOUNTS)),
            ledger=data.draw(st.sampled_from([0, 392])),
            code=data.draw(st.sampled_from([0, 1])),
            flags=data.draw(st.one_of(st.integers(0, (1 << 8) - 1), st.sampled_from([1 << 8, 1 << 15]))),
            pending_id=data.draw(st.sampled_from([0, ID_MAX])) if data.draw(st.booleans()) else self._transfer_id(data),
            timeout=data.draw(st.sampled_from([0, 1, TIMEOUT_S_MAX])),
            user_data_32=data.draw(USER_DATA_32),
            business_date=data.draw(BUSINESS_DATES),
        )

    def _draw_replay(self, data: st.DataObject) -> Transfer:
        earlier = data.draw(st.sampled_from(self.sent))
        change = data.draw(
            st.sampled_from(["same", "same", "same", "amount", "user_data_32", "linked", "business_date", "accounts"])
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

    @initialize(data=st.data())
    def open_accounts(self, data: st.DataObject) -> None:
        """Transfers need accounts to meet: open every slot first, in one request.

        The first two are the bank's own, without limits (cash, clearing): money comes from there.
        """
        events = [
            Account(
                id=self.namespace | slot,
                ledger=data.draw(mostly(392, 8, 840)),
                code=1,
                flags=data.draw(VALID_ACCOUNT_FLAGS) if slot > 2 else data.draw(st.sampled_from([0, HISTORY])),
            )
            for slot in range(1, ACCOUNT_SLOTS + 1)
        ]
        self._compare_accounts(events)

    @rule(data=st.data())
    def create_accounts(self, data: st.DataObject) -> None:
        events = data.draw(st.lists(self._account_event(), min_size=1, max_size=2))
        self._compare_accounts(events)

    def _compare_accounts(self, events: list[Account]) -> None:
        got = self._run(self.engine.create_accounts([replace(e) for e in events]))
        want = self.model.create_accounts([replace(e) for e in events], self.clock.now_ns())
        lines = [self._describe_account(e, g, w) for e, g, w in zip(events, got, want, strict=False)]
        self._record("create_accounts", lines)
        assert len(got) == len(events), self._failure(f"{len(got)} outcomes for {len(events)} events")
        assert [o.result for o in got] == [o.result for o in want], self._failure("result codes differ")

    def _account_event(self) -> st.SearchStrategy[Account]:
        slot = st.integers(1, ACCOUNT_SLOTS).map(lambda s: self.namespace | s)
        ids = mostly("slot", 20, 0, ID_MAX).flatmap(lambda kind: slot if kind == "slot" else st.just(kind))
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
        self._compare_transfers([self._draw_transfer(data) for _ in range(size)])

    @precondition(lambda self: self.hold_ids)
    @rule(data=st.data())
    def resolve_holds(self, data: st.DataObject) -> None:
        """Posts and voids, mostly of earlier holds (a second rule doubles how often they come)."""
        size = data.draw(st.integers(1, BATCH_EVENTS_MAX))
        flags = st.sampled_from([POST, POST, VOID])
        self._compare_transfers([self._draw_resolving(data, data.draw(flags)) for _ in range(size)])

    def _compare_transfers(self, events: list[Transfer]) -> None:
        self.sent.extend(replace(e) for e in events if 0 < e.id < ID_MAX)
        got = self._run(self.engine.create_transfers([replace(e) for e in events]))
        want = self.model.create_transfers([replace(e) for e in events], self.clock.now_ns())
        lines = [self._describe_transfer(e, g, w) for e, g, w in zip(events, got, want, strict=False)]
        self._record("create_transfers", lines)
        assert len(got) == len(events), self._failure(f"{len(got)} outcomes for {len(events)} events")
        assert [o.result for o in got] == [o.result for o in want], self._failure("result codes differ")
        moved_got = [o.amount if o.result.succeeded else None for o in got]
        moved_want = [o.amount if o.result.succeeded else None for o in want]
        assert moved_got == moved_want, self._failure("amounts moved differ")
        self.hold_ids.extend(e.id for e, o in zip(events, want, strict=True) if o.result == 0 and e.flags & PENDING)

    @rule(seconds=ADVANCES_S)
    def advance_clock_and_sweep(self, seconds: int) -> None:
        self.advances += 1
        assert self.advances <= ADVANCES_PER_EXAMPLE_MAX
        self.clock.advance(seconds, ns=CLOCK_STEP_EXTRA_NS)
        self._run(self.engine.expire_due())
        self.model.expire_due(self.clock.now_ns())
        self._record(f"clock +{seconds} s 1 ms, expire_due", [])

    # ------------------------------------------------------------------ invariants

    @invariant()
    def books_agree(self) -> None:
        account_ids = [self.namespace | slot for slot in range(1, UNKNOWN_ACCOUNT_SLOT + 1)]
        got = [replace(a, timestamp=0) for a in self._run(self.engine.lookup_accounts(account_ids))]
        want = self.model.lookup_accounts(account_ids)
        assert got == want, self._failure(f"accounts differ:\nengine {got}\nmodel  {want}")
        got_t = [replace(t, timestamp=0) for t in self._run(self.engine.lookup_transfers(self.transfer_ids))]
        want_t = self.model.lookup_transfers(self.transfer_ids)
        assert got_t == want_t, self._failure(f"transfers differ:\nengine {got_t}\nmodel  {want_t}")

    # ------------------------------------------------------------------ reporting a disagreement

    def _record(self, what: str, lines: list[str]) -> None:
        self.history.append(f"@{(self.clock.now_ns() - self.start_ns) / S:.3f} s {what}")
        self.history.extend(lines)

    def _failure(self, what: str) -> str:
        """The example so far, ids shown as #n (this example's namespace), marked where the two differ.

        Shrinking is off (see SETTINGS), so this history is what there is to read.
        """
        recent = self.history[-HISTORY_LINES_SHOWN:]
        return "\n".join([f"engine and model disagree: {what}", "(engine | model)", *recent])

    def _short(self, value: int) -> str:
        if value == ID_MAX:
            return "MAX"
        if value and value >> 64 == self.namespace >> 64:
            return f"#{value & ((1 << 64) - 1)}"
        return str(value)

    def _describe_transfer(self, e: Transfer, got: TransferOutcome, want: TransferOutcome) -> str:
        if got.result.succeeded or want.result.succeeded:
            same = (got.result, got.amount) == (want.result, want.amount)
        else:
            same = got.result == want.result
        return (
            f"{'  ' if same else '!!'} transfer {self._short(e.id)} {self._short(e.debit_account_id)}->"
            f"{self._short(e.credit_account_id)} amount={e.amount} ledger={e.ledger} code={e.code} "
            f"flags={_flag_names(e.flags, TransferFlags)} pending_id={self._short(e.pending_id)} "
            f"timeout={e.timeout} user_data_32={e.user_data_32} business_date={e.business_date}: "
            f"{got.result.name} {got.amount} | {want.result.name} {want.amount}"
        )

    def _describe_account(self, e: Account, got: AccountOutcome, want: AccountOutcome) -> str:
        return (
            f"{'  ' if got.result == want.result else '!!'} account {self._short(e.id)} ledger={e.ledger} "
            f"code={e.code} flags={_flag_names(e.flags, AccountFlags)} user_data_32={e.user_data_32}: "
            f"{got.result.name} | {want.result.name}"
        )


def _flag_names(flags: int, kind: type[AccountFlags] | type[TransferFlags]) -> str:
    names = [member.name or "" for member in kind if member and flags & member]
    unknown = flags & ~sum(int(member) for member in kind)
    return "|".join(names + ([hex(unknown)] if unknown else [])) or "0"


def test_engine_agrees_with_the_model(ledger_dsn: str) -> None:
    loop = asyncio.new_event_loop()
    clock = FixedClock(CLOCK_START_NS)
    try:
        engine = loop.run_until_complete(Ledger.start(ledger_dsn, clock=clock, business_date=lambda: BUSINESS_DATE))
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
