"""The ATM channel's handle and the life of one message: idempotency by (atm_id, journal_no), the hub partition of
the machine, and the rule that every system error returns the card and names what still works.

Each operation is a function of the handle returning an `Answer`; `handle_message` wraps it: the first message under
a key is processed, a retry gets the recorded answer, a retry racing the first waits for it. A business answer is
recorded for ever; a system error records nothing, so the device's retry is processed afresh (every product call is
idempotent by the request id derived from the key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog
from prometheus_client import Counter, Histogram

from kanjo.cards import CardRefused, Cards
from kanjo.cards import Refused as CardsRefused
from kanjo.channels.atm import store
from kanjo.channels.atm.awaiting import Awaiting
from kanjo.channels.atm.grouped import AnswerIn, ClaimIn, Grouped
from kanjo.channels.atm.limits import DUPLICATE_WAIT_MS, MACHINES_MAX
from kanjo.channels.atm.model import (
    Answer,
    HoldState,
    MachineKind,
    Operation,
    Result,
    fingerprint,
    refused,
    unavailable,
)
from kanjo.deposits import Deposits
from kanjo.deposits import Refused as DepositRefused
from kanjo.fees import Channel as FeeChannel
from kanjo.fees import Fees
from kanjo.fees import Refused as FeeRefused
from kanjo.hub import Hub, HubError, Partition, ProductFailed, ProductUnavailable
from kanjo.kernel.limits import LimitReached
from kanjo.loans import Loans
from kanjo.loans import Refused as LoanRefused
from kanjo.platform.metrics import Children
from kanjo.time_deposits import Refused as TimeDepositRefused
from kanjo.time_deposits import TimeDeposits

T = TypeVar("T")
log = structlog.get_logger("kanjo.atm")

# The products each operation needs, to tell a customer what still works when one is down.
NEEDS: dict[Operation, frozenset[str]] = {
    Operation.INQUIRY: frozenset({"cards", "deposits"}),
    Operation.WITHDRAWAL: frozenset({"cards", "deposits", "fees"}),
    Operation.DEPOSIT: frozenset({"cards", "deposits", "fees"}),
    Operation.TRANSFER: frozenset({"cards", "deposits", "fees"}),
    Operation.PASSBOOK: frozenset({"deposits"}),
    Operation.TIME_DEPOSIT: frozenset({"cards", "deposits", "time_deposits"}),
    Operation.LOAN_DRAW: frozenset({"cards", "loans"}),
}
PRODUCTS = frozenset().union(*NEEDS.values())
PARTITION_OF = {MachineKind.OWN: Partition.OWN_ATM, MachineKind.OTHER_BANK: Partition.OTHER_ATM,
                MachineKind.CONVENIENCE: Partition.OTHER_ATM}
FEE_CHANNEL_OF = {MachineKind.OWN: FeeChannel.ATM_OWN, MachineKind.OTHER_BANK: FeeChannel.ATM_OTHER_BANK,
                  MachineKind.CONVENIENCE: FeeChannel.ATM_CONVENIENCE}
DUPLICATE_POLL_S = 0.02
STALE_PROCESSING_S = 30.0  # a message processing longer than this belongs to a process that died

MESSAGES = Counter("kanjo_atm_messages_total", "ATM messages answered, by operation, result and code",
                   ["operation", "result", "code"])
SYSTEM_ERRORS = Counter("kanjo_atm_system_errors_total", "ATM messages that ended in a system error (card returned)",
                        ["operation", "cause"])
MESSAGE_SECONDS = Histogram("kanjo_atm_message_seconds", "time to answer one ATM message", ["operation"],
                            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))
MESSAGE_COUNTS = Children(MESSAGES)
MESSAGE_TIMES = Children(MESSAGE_SECONDS)
CARDS_RETAINED = Counter("kanjo_atm_cards_retained_total", "cards an ATM was told to keep, by reason", ["reason"])


class UnknownMachine(Exception):
    """The message names an ATM that is not registered."""


@dataclass
class AtmChannel:
    """The channel's handle: its own pool (schema `atm`), the hub, and the products it reaches through the hub."""

    pool: asyncpg.Pool
    hub: Hub
    deposits: Deposits
    cards: Cards
    fees: Fees
    time_deposits: TimeDeposits
    loans: Loans
    business_date: Callable[[], dt.date]
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    ack_timeout_s: int = 60
    machines: dict[str, MachineKind] = field(default_factory=dict)  # the registry, cached for routing
    _sweeper: asyncio.Task[None] | None = None
    grouped: Grouped = field(init=False)  # the journal's busiest statements, grouped across messages
    awaiting: Awaiting = field(init=False)  # cash items this process authorised, until their acknowledgement

    def __post_init__(self) -> None:
        self.grouped = Grouped(self.pool)
        self.awaiting = Awaiting()

    async def load_machines(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await store.all_machines(conn, MACHINES_MAX)
        self.machines.update({atm_id: MachineKind(kind) for atm_id, kind in rows})

    def kind_of(self, atm_id: str) -> MachineKind:
        kind = self.machines.get(atm_id)
        if kind is None:
            raise UnknownMachine(f"ATM {atm_id} is not registered")
        return kind

    async def call(self, kind: MachineKind, product: str, operation: str, fn: Callable[[], Awaitable[T]]) -> T:
        """A product call through the hub, in the machine's partition."""
        return await self.hub.call(PARTITION_OF[kind], product, operation, fn)


@dataclass(frozen=True, slots=True)
class Reply:
    """What goes back on the wire: an HTTP status (200 for every business answer) and the body."""

    status: int
    body: dict[str, Any]


Work = Callable[[MachineKind], Awaitable[tuple[Answer, dict[str, Any]]]]


async def handle_message(ch: AtmChannel, atm_id: str, journal_no: int, operation: Operation,
                         content: dict[str, Any], work: Work) -> Reply:
    """Process a message once per (atm_id, journal_no); `work` returns the answer and what to record with it."""
    started = asyncio.get_running_loop().time()
    try:
        kind = ch.kind_of(atm_id)
    except UnknownMachine:
        return _reply(operation, atm_id, journal_no, refused("unknown_atm", f"ATM {atm_id} is not registered."))
    fp = fingerprint(operation, content)
    day = ch.business_date()
    try:
        claimed = await ch.grouped.claim(ClaimIn(atm_id, journal_no, operation.value, fp, day, STALE_PROCESSING_S))
        if not claimed.fresh:
            earlier = await _earlier(ch, atm_id, journal_no, operation, fp, claimed)
            if earlier is not None:
                return earlier
        answer, recorded = await _work(ch, kind, operation, work)
    except HubError as e:
        await _forget(ch, atm_id, journal_no)
        return _unavailable_reply(operation, atm_id, journal_no, e)
    except Exception as e:  # a system error: the card goes back and the retry starts afresh
        SYSTEM_ERRORS.labels(operation.value, type(e).__name__).inc()
        log.error("atm_system_error", atm=atm_id, journal_no=journal_no, operation=operation.value,
                  error=repr(e))
        await _forget(ch, atm_id, journal_no)
        return _reply(operation, atm_id, journal_no,
                      unavailable("unavailable", "System error.", _still_working(set()), 5.0), status=503)
    await ch.grouped.record_answer(AnswerIn(atm_id, journal_no, answer.body(atm_id, journal_no), recorded))
    if claimed.fresh and recorded.get("hold_state") == HoldState.AUTHORISED.value:
        ch.awaiting.remember(store.CashItem(
            atm_id, journal_no, recorded["account_id"], recorded["card_id"], recorded["amount_minor"],
            recorded.get("fee_minor") or 0, recorded.get("fee_rule"), HoldState.AUTHORISED.value,
            recorded["ack_deadline"], None, None, day, operation.value), ch.now())
    MESSAGE_TIMES(operation.value).observe(asyncio.get_running_loop().time() - started)
    return _reply(operation, atm_id, journal_no, answer)


async def _work(ch: AtmChannel, kind: MachineKind, operation: Operation,
                work: Work) -> tuple[Answer, dict[str, Any]]:
    try:
        return await work(kind)
    except CardRefused as e:  # a business rule on the card: only these may keep it
        if e.retain:
            CARDS_RETAINED.labels(e.code).inc()
        return refused(e.code, str(e), retain=e.retain), {}
    except (CardsRefused, DepositRefused, FeeRefused, TimeDepositRefused, LoanRefused) as e:  # other business answers
        return refused(e.code, str(e)), {}
    except LimitReached as e:
        return refused("limit_reached", str(e)), {}


async def _earlier(ch: AtmChannel, atm_id: str, journal_no: int, operation: Operation, fp: bytes,
                   claimed: store.Claimed) -> Reply | None:
    """The answer to a message seen before under this key, or None when this one must be processed."""
    if claimed.operation != operation.value or claimed.fingerprint != fp:
        return _reply(operation, atm_id, journal_no, refused(
            "request_reused", f"journal number {journal_no} of ATM {atm_id} was used for another transaction."))
    deadline = asyncio.get_running_loop().time() + DUPLICATE_WAIT_MS / 1000
    while True:
        if claimed.state == "answered" and claimed.answer is not None:
            return Reply(_status_of(claimed.answer), {**claimed.answer, "replayed": True})
        if claimed.stale:
            async with ch.pool.acquire() as conn:
                if await store.take_over(conn, atm_id, journal_no):
                    return None
        if asyncio.get_running_loop().time() >= deadline:
            return _reply(operation, atm_id, journal_no,
                          unavailable("busy", "The same transaction is still being processed.",
                                      _still_working(set()), DUPLICATE_WAIT_MS / 1000), status=503)
        await asyncio.sleep(DUPLICATE_POLL_S)
        async with ch.pool.acquire() as conn:
            claimed = await store.claim(conn, atm_id, journal_no, operation.value, fp, ch.business_date(),
                                        STALE_PROCESSING_S)
        if claimed.fresh:  # the first attempt ended in a system error and was forgotten: this one goes ahead
            return None


async def _forget(ch: AtmChannel, atm_id: str, journal_no: int) -> None:
    try:
        async with ch.pool.acquire() as conn:
            await store.release(conn, atm_id, journal_no)
    except Exception as e:  # the record goes stale instead, and a retry takes it over
        log.warning("atm_release_failed", atm=atm_id, journal_no=journal_no, error=repr(e))


def _still_working(down: set[str]) -> list[str]:
    return [op.value for op, needs in NEEDS.items() if not needs & down]


def _unavailable_reply(operation: Operation, atm_id: str, journal_no: int, e: HubError) -> Reply:
    """A product down (breaker open) or failing: name what still works without it. A busy partition or a missed
    deadline: try again shortly. Either way the card goes back."""
    SYSTEM_ERRORS.labels(operation.value, e.code).inc()
    if isinstance(e, ProductUnavailable | ProductFailed):
        answer = unavailable("unavailable", e.message, _still_working({e.product}), e.retry_after_s)
    else:
        answer = unavailable("busy", e.message, [], e.retry_after_s)
    return _reply(operation, atm_id, journal_no, answer, status=503)


def _status_of(body: dict[str, Any]) -> int:
    return 503 if body.get("result") == Result.UNAVAILABLE.value else 200


def _reply(operation: Operation, atm_id: str, journal_no: int, answer: Answer, *, status: int = 200) -> Reply:
    MESSAGE_COUNTS(operation.value, answer.result.value, answer.code).inc()
    return Reply(status, answer.body(atm_id, journal_no))
