"""The ATM fleet's device side, pure: cards, operations and their mix, the fault plan, journals, and the seeded plan
of every transaction a run makes (the same seed gives the same transactions, as TigerBeetle's simulator)."""

from __future__ import annotations

import collections
import enum
import itertools
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from kanjo.kernel import invariant, limits
from kanjo.sim.limits import (
    ATMS_MAX,
    CONNECTIONS_MAX,
    CUSTOMERS_WAITING_PER_ATM_MAX,
    JOURNAL_NO_MAX,
    REQUEST_TIMEOUT_MS_MAX,
    RETRIES_MAX,
    WARMUP_S_MAX,
)

CARD_NUMBER = re.compile(r"^[0-9]{16}$")
PIN = re.compile(r"^[0-9]{4}$")
ATM_ID_PREFIX = re.compile(r"^[A-Z0-9]{1,6}$")
ATM_ID_DIGITS = 6  # with a prefix of at most 6 characters the id fits the protocol's ^[A-Z0-9]{4,12}$
CASH_UNIT_MINOR = 1_000  # ATMs dispense and accept notes only


class Operation(enum.StrEnum):
    INQUIRY = "inquiry"
    WITHDRAWAL = "withdrawal"
    DEPOSIT = "deposit"
    TRANSFER = "transfer"
    TIME_DEPOSIT = "time_deposit"
    LOAN_DRAW = "loan_draw"  # card-loan cash (カードローン借入)


class Message(enum.StrEnum):
    """What a device sends; latencies are reported per message."""

    INQUIRY = "inquiry"
    WITHDRAWAL = "withdrawal"
    WITHDRAWAL_ACK = "withdrawal_ack"
    DEPOSIT = "deposit"
    DEPOSIT_ACK = "deposit_ack"
    TRANSFER = "transfer"
    TIME_DEPOSIT = "time_deposit"
    LOAN_DRAW = "loan_draw"
    LOAN_DRAW_ACK = "loan_draw_ack"
    JOURNAL = "journal"


PATHS: dict[Message, str] = {
    Message.INQUIRY: "/atm/v1/inquiry",
    Message.WITHDRAWAL: "/atm/v1/withdrawal",
    Message.WITHDRAWAL_ACK: "/atm/v1/withdrawal/ack",
    Message.DEPOSIT: "/atm/v1/deposit",
    Message.DEPOSIT_ACK: "/atm/v1/deposit/ack",
    Message.TRANSFER: "/atm/v1/transfer",
    Message.TIME_DEPOSIT: "/atm/v1/time-deposit",
    Message.LOAN_DRAW: "/atm/v1/loan-draw",
    Message.LOAN_DRAW_ACK: "/atm/v1/loan-draw/ack",
    Message.JOURNAL: "/atm/v1/journal",
}


class AtmKind(enum.StrEnum):
    OWN = "own"
    OTHER_BANK = "other_bank"
    CONVENIENCE = "convenience"


class Outcome(enum.StrEnum):
    """A transaction as the device saw it, written in its journal."""

    APPROVED = "approved"  # inquiry, transfer, time deposit
    DEPOSITED = "deposited"  # the notes were stored in the machine
    RETURNED = "returned"  # a deposit accepted, but the notes were given back (a jam, the customer cancelled)
    DISPENSED = "dispensed"
    NOT_DISPENSED = "not_dispensed"  # approved, but the cash did not come out (or was retracted)
    REFUSED = "refused"  # a business answer
    NO_ANSWER = "no_answer"  # timeouts and connection errors, after the retries
    SYSTEM_ERROR = "system_error"  # an answer, but not a business one: non-200, malformed


# A realistic day at a Japanese ATM network, in percent of transactions.
DEFAULT_MIX: tuple[tuple[Operation, float], ...] = (
    (Operation.WITHDRAWAL, 58.0), (Operation.INQUIRY, 20.0), (Operation.DEPOSIT, 15.0),
    (Operation.TRANSFER, 4.0), (Operation.LOAN_DRAW, 2.0), (Operation.TIME_DEPOSIT, 1.0),
)
# (amount, weight): most withdrawals are a few ¥10,000 notes; the protocol caps one cash-out at ¥500,000.
WITHDRAWAL_AMOUNTS = ((10_000, 30), (20_000, 25), (30_000, 20), (50_000, 15), (100_000, 10))
LOAN_DRAW_AMOUNTS = ((10_000, 35), (20_000, 30), (30_000, 20), (50_000, 15))  # borrowed cash: smaller sums
DEPOSIT_AMOUNTS = ((10_000, 30), (30_000, 25), (50_000, 20), (100_000, 15), (200_000, 10))
TRANSFER_AMOUNTS = ((5_000, 25), (10_000, 30), (30_000, 25), (50_000, 15), (100_000, 5))
TIME_DEPOSIT_AMOUNTS = ((100_000, 40), (300_000, 30), (500_000, 20), (1_000_000, 10))
TIME_DEPOSIT_TERMS_MONTHS = ((1, 20), (3, 30), (6, 20), (12, 30))
CASH_OUT = (Operation.WITHDRAWAL, Operation.LOAN_DRAW)  # two-phase: authorised, dispensed, acknowledged
CASH_OPERATIONS = (*CASH_OUT, Operation.DEPOSIT)  # what the journal upload reconciles
KIND_BY_LAST_DIGIT = (AtmKind.OWN,) * 7 + (AtmKind.OTHER_BANK,) + (AtmKind.CONVENIENCE,) * 2


@dataclass(frozen=True, slots=True)
class Card:
    """A customer's cash card as the seeding step hands it out; the payee numbers let others transfer to it, and
    `card_loan` says whether its holder has a card loan to draw cash on."""

    number: str
    pin: str
    account_id: str
    branch_code: str | None = None
    account_number: str | None = None
    card_loan: bool = False

    def __post_init__(self) -> None:
        if not CARD_NUMBER.match(self.number) or not PIN.match(self.pin):
            raise ValueError(f"a card has a 16-digit number and a 4-digit PIN: {self.masked}")

    @property
    def masked(self) -> str:
        """As a journal roll prints it: first four and last four digits."""
        return f"{self.number[:4]}{'*' * 8}{self.number[-4:]}"

    @property
    def payable(self) -> bool:
        return bool(self.branch_code and self.account_number)

    @property
    def wrong_pin(self) -> str:
        return f"{(int(self.pin) + 1) % 10_000:04d}"


def card_from_dict(raw: Mapping[str, object]) -> Card:
    """A card as the seeding endpoint answers it: card_number, pin, account_id (branch_code, account_number,
    card_loan)."""
    def text(name: str) -> str | None:
        value = raw.get(name)
        return None if value is None else str(value)

    number, pin, account_id = text("card_number"), text("pin"), text("account_id")
    if number is None or pin is None or account_id is None:
        raise ValueError("a card needs card_number, pin and account_id")
    card_loan = raw.get("card_loan", False)
    if not isinstance(card_loan, bool):
        raise ValueError(f"a card's card_loan is true or false, not {card_loan!r}")
    return Card(number, pin, account_id, text("branch_code"), text("account_number"), card_loan)


@dataclass(frozen=True, slots=True)
class FaultDraw:
    """What the network does to one attempt of one message."""

    drop_request: bool = False
    lose_answer: bool = False
    delay_s: float = 0.0


QUIET = FaultDraw()


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Message loss and delay on demand: shares are probabilities per attempt, windows are seconds from the start."""

    drop_request_share: float = 0.0  # the request never reaches the server: the device waits out its timeout
    lose_answer_share: float = 0.0  # the server processed it, the answer never reaches the device
    delay_ms: int = 0  # extra delay before the request leaves; at or past the device's timeout the request is lost
    delay_share: float = 1.0  # share of attempts that get the delay
    link_down_s: tuple[tuple[float, float], ...] = ()  # [start, end) windows: nothing goes through either way

    def __post_init__(self) -> None:
        for name in ("drop_request_share", "lose_answer_share", "delay_share"):
            _check_share(name, getattr(self, name))
        if self.delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        limits.check("sim_link_down_windows_max", len(self.link_down_s))
        for start_s, end_s in self.link_down_s:
            if not 0 <= start_s < end_s:
                raise ValueError(f"a link-down window is [start, end) with 0 <= start < end: {start_s}-{end_s}")

    @property
    def quiet(self) -> bool:
        return not (self.drop_request_share or self.lose_answer_share or (self.delay_ms and self.delay_share)
                    or self.link_down_s)

    def draw(self, rng: random.Random) -> FaultDraw:
        """Always three draws, so one attempt's faults never shift the next attempt's."""
        drop, lose, delay = rng.random(), rng.random(), rng.random()
        return FaultDraw(drop < self.drop_request_share, lose < self.lose_answer_share,
                         self.delay_ms / 1000 if delay < self.delay_share else 0.0)

    def link_down_at(self, offset_s: float) -> bool:
        return any(start_s <= offset_s < end_s for start_s, end_s in self.link_down_s)


def parse_link_down(text: str) -> tuple[tuple[float, float], ...]:
    """"10-15,30-32.5" → ((10.0, 15.0), (30.0, 32.5))."""
    windows = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start, sep, end = part.partition("-")
        if not sep:
            raise ValueError(f"a link-down window is START-END in seconds: {part!r}")
        windows.append((float(start), float(end)))
    return tuple(windows)


def parse_mix(text: str) -> tuple[tuple[Operation, float], ...]:
    """"withdrawal=60,inquiry=20" → ((withdrawal, 60.0), (inquiry, 20.0))."""
    mix = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        if not sep:
            raise ValueError(f"a mix entry is OPERATION=WEIGHT: {part!r}")
        try:
            mix.append((Operation(name.strip()), float(weight)))
        except ValueError:
            raise ValueError(f"unknown operation {name!r}; known: {', '.join(Operation)}") from None
    return tuple(mix)


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a share between 0 and 1")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """One run of the fleet. The offered rate is of withdrawals; the other operations follow the mix."""

    atms: int
    withdrawals_per_s: float
    seconds: float
    cards: tuple[Card, ...]
    seed: int = 1
    mix: Sequence[tuple[Operation | str, float]] = DEFAULT_MIX
    wrong_pin_share: float = 0.0
    request_timeout_ms: int = 5_000
    retries_max: int = 2  # resends of one message on no answer or 5xx, same journal number
    ack_retries_max: int = 5  # an acknowledgement matters more: the cash is out
    retry_backoff_ms: int = 100  # times the attempt number
    ack_after_no_answer: bool = True  # a zero acknowledgement releases a hold the device never heard of
    dispense_delay_ms: int = 0
    dispense_failure_share: float = 0.0  # cash handling fails: a withdrawal dispenses nothing, a deposit jams
    connections: int = 64
    customers_waiting_per_atm_max: int = CUSTOMERS_WAITING_PER_ATM_MAX
    faults: FaultPlan = field(default_factory=FaultPlan)
    journal_no_first: int = 1
    atm_id_prefix: str = "SIM"
    warmup_s: float = 0.0  # a first stretch at the same rate, before `seconds`: its latencies are reported apart

    def __post_init__(self) -> None:
        object.__setattr__(self, "cards", tuple(self.cards))
        object.__setattr__(self, "mix", tuple((Operation(op), float(weight)) for op, weight in self.mix))
        self._check_rates()
        self._check_sizes()
        _check_share("wrong_pin_share", self.wrong_pin_share)
        _check_share("dispense_failure_share", self.dispense_failure_share)
        if not ATM_ID_PREFIX.match(self.atm_id_prefix):
            raise ValueError("atm_id_prefix is 1 to 6 of A-Z and 0-9")
        if Operation.TRANSFER in self.weights and not any(card.payable for card in self.cards):
            raise ValueError("transfers need cards with branch_code and account_number; or leave them out of the mix")
        if Operation.LOAN_DRAW in self.weights and not any(card.card_loan for card in self.cards):
            raise ValueError("loan draws need cards whose holder has a card loan (card_loan: true); or leave them out"
                             " of the mix")

    def _check_sizes(self) -> None:
        if self.atms < 1 or not self.cards:
            raise ValueError("the fleet needs at least one ATM and one card")
        limits.check("sim_atms_max", self.atms)
        limits.check("sim_cards_max", len(self.cards))
        if not 1 <= self.connections <= CONNECTIONS_MAX:
            raise ValueError(f"connections must be 1..{CONNECTIONS_MAX}")
        if not 0 <= self.customers_waiting_per_atm_max <= CUSTOMERS_WAITING_PER_ATM_MAX:
            raise ValueError(f"customers_waiting_per_atm_max must be 0..{CUSTOMERS_WAITING_PER_ATM_MAX}")
        if not (0 <= self.retries_max <= RETRIES_MAX and 0 <= self.ack_retries_max <= RETRIES_MAX):
            raise ValueError(f"retries must be 0..{RETRIES_MAX}")
        limits.check("sim_transactions_per_run_max", self.transactions)
        if not 1 <= self.journal_no_first or self.journal_no_first + self.transactions - 1 > JOURNAL_NO_MAX:
            raise ValueError(f"journal numbers run 1..{JOURNAL_NO_MAX:,}; this run would pass the end")

    def _check_rates(self) -> None:
        if not (self.withdrawals_per_s > 0 and self.seconds > 0):
            raise ValueError("withdrawals_per_s and seconds must be positive")
        if not 0 <= self.warmup_s <= WARMUP_S_MAX:
            raise ValueError(f"warmup_s must be 0..{WARMUP_S_MAX:g}")
        if any(weight < 0 for _, weight in self.mix) or self.weights.get(Operation.WITHDRAWAL, 0) <= 0:
            raise ValueError("the mix's weights are not negative and withdrawals have a positive weight")
        if not 1 <= self.request_timeout_ms <= REQUEST_TIMEOUT_MS_MAX:
            raise ValueError(f"request_timeout_ms must be 1..{REQUEST_TIMEOUT_MS_MAX}")
        if self.retry_backoff_ms < 0 or self.dispense_delay_ms < 0:
            raise ValueError("retry_backoff_ms and dispense_delay_ms must not be negative")

    @property
    def weights(self) -> dict[Operation, float]:
        totals: dict[Operation, float] = collections.defaultdict(float)
        for operation, weight in self.mix:
            totals[Operation(operation)] += weight
        return {operation: weight for operation, weight in totals.items() if weight > 0}

    @property
    def operations_per_s(self) -> float:
        weights = self.weights
        return self.withdrawals_per_s * sum(weights.values()) / weights[Operation.WITHDRAWAL]

    @property
    def transactions(self) -> int:
        return max(1, round(self.operations_per_s * (self.warmup_s + self.seconds)))

    @property
    def request_timeout_s(self) -> float:
        return self.request_timeout_ms / 1000


def atm_roster(count: int, prefix: str = "SIM") -> list[tuple[str, AtmKind]]:
    """The fleet's machines, (atm_id, kind), the same for a count whatever the seed: 7 in 10 are the bank's own."""
    if not 1 <= count <= ATMS_MAX:
        raise ValueError(f"count must be 1..{ATMS_MAX}")
    if not ATM_ID_PREFIX.match(prefix):
        raise ValueError("prefix is 1 to 6 of A-Z and 0-9")
    return [(f"{prefix}{i + 1:0{ATM_ID_DIGITS}d}", KIND_BY_LAST_DIGIT[i % 10]) for i in range(count)]


@dataclass(frozen=True, slots=True)
class Planned:
    """One customer's transaction, decided before the run: when, where, what, and how the network will treat it."""

    seq: int
    scheduled_s: float  # from the run's start
    atm_index: int
    journal_no: int
    operation: Operation
    card_index: int
    amount_minor: int  # 0 for an inquiry
    wrong_pin: bool
    dispense_fails: bool  # the cash unit fails: nothing dispensed, or the deposited notes given back
    payee_index: int | None  # transfers: the card whose account is credited
    term_months: int | None  # time deposits
    fault_seed: int  # seeds this transaction's own fault draws, so concurrency cannot reorder them


def plan(config: FleetConfig) -> Iterator[Planned]:
    """Every transaction of the run, in schedule order: a pure function of the config and its seed.

    Operations are interleaved by smooth weighted round robin, so the offered rate of each is exact; the
    machine, card, amount and faults are drawn from the seeded generator.
    """
    rng = random.Random(config.seed)
    pick_operation = _Picker(config.weights)
    payees = [i for i, card in enumerate(config.cards) if card.payable]
    borrowers = [i for i, card in enumerate(config.cards) if card.card_loan]
    journal_next = [config.journal_no_first] * config.atms
    interval_s = 1 / config.operations_per_s
    for seq in range(config.transactions):
        operation = pick_operation()
        atm_index = rng.randrange(config.atms)
        holders = borrowers if operation is Operation.LOAN_DRAW else range(len(config.cards))
        card_index = holders[rng.randrange(len(holders))]
        wrong_pin = rng.random() < config.wrong_pin_share
        dispense_fails = rng.random() < config.dispense_failure_share
        fault_seed = rng.getrandbits(64)
        amount_minor, payee_index, term_months = _details(operation, rng, card_index, payees)
        journal_no = journal_next[atm_index]
        invariant(journal_no <= JOURNAL_NO_MAX, "the config's pre-flight keeps journal numbers in range")
        journal_next[atm_index] = journal_no + 1
        yield Planned(seq, seq * interval_s, atm_index, journal_no, operation, card_index, amount_minor, wrong_pin,
                      dispense_fails, payee_index, term_months, fault_seed)


def _details(operation: Operation, rng: random.Random, card_index: int,
             payees: Sequence[int]) -> tuple[int, int | None, int | None]:
    """(amount_minor, payee_index, term_months) of one operation."""
    if operation is Operation.INQUIRY:
        return 0, None, None
    if operation is Operation.WITHDRAWAL:
        return _weighted(rng, WITHDRAWAL_AMOUNTS), None, None
    if operation is Operation.LOAN_DRAW:
        return _weighted(rng, LOAN_DRAW_AMOUNTS), None, None
    if operation is Operation.DEPOSIT:
        return _weighted(rng, DEPOSIT_AMOUNTS), None, None
    if operation is Operation.TRANSFER:
        payee = payees[rng.randrange(len(payees))]
        if payee == card_index and len(payees) > 1:  # not to oneself
            payee = payees[(payees.index(payee) + 1) % len(payees)]
        return _weighted(rng, TRANSFER_AMOUNTS), payee, None
    return _weighted(rng, TIME_DEPOSIT_AMOUNTS), None, _weighted(rng, TIME_DEPOSIT_TERMS_MONTHS)


def _weighted(rng: random.Random, table: Sequence[tuple[int, int]]) -> int:
    cumulative = list(itertools.accumulate(weight for _, weight in table))
    draw = rng.random() * cumulative[-1]
    return next(value for (value, _), bound in zip(table, cumulative, strict=True) if draw < bound)


class _Picker:
    """Smooth weighted round robin (nginx's): each operation's share is exact over any long stretch, evenly spread."""

    def __init__(self, weights: Mapping[Operation, float]) -> None:
        self._weights = [(operation, weight) for operation, weight in weights.items()]
        self._total = math.fsum(weight for _, weight in self._weights)
        self._current = [0.0] * len(self._weights)

    def __call__(self) -> Operation:
        best = 0
        for i, (_, weight) in enumerate(self._weights):
            self._current[i] += weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        return self._weights[best][0]


@dataclass(slots=True)
class JournalEntry:
    """One line of an ATM's electronic journal (電子ジャーナル): what the device did, as it saw it."""

    journal_no: int
    operation: str  # an Operation
    amount_minor: int
    card_masked: str
    outcome: Outcome
    code: str  # the answer's code, or what went wrong: timeout, connection, status_503, malformed
    card_action: str  # "return" or "retain"
    latency_ms: float | None  # from the scheduled start to the transaction's last answer
    dispensed_minor: int = 0
    ack_code: str | None = None  # cash-outs: posted / voided / in_doubt / no_answer …; deposits: credited …

    def upload_outcome(self) -> str | None:
        """How the journal upload states the cash of a withdrawal or a loan draw (dispensed / not_dispensed /
        no_answer) or of a deposit (deposited / returned / no_answer); None for operations without cash."""
        if self.operation not in CASH_OPERATIONS:
            return None
        if self.outcome is Outcome.NO_ANSWER:
            return "no_answer"
        if self.operation == Operation.DEPOSIT:
            return "deposited" if self.outcome is Outcome.DEPOSITED else "returned"
        return "dispensed" if self.dispensed_minor > 0 else "not_dispensed"

    def upload_amount_minor(self) -> int:
        """The cash that moved, as the journal states it: what was dispensed, else what was asked or counted."""
        return self.dispensed_minor or self.amount_minor


@dataclass(slots=True)
class Atm:
    """One machine: its id, kind, journal, and the customers waiting at it."""

    atm_id: str
    kind: AtmKind
    journal: list[JournalEntry] = field(default_factory=list)
    journal_no_issued: int = 0  # the highest number handed to a transaction (sent or not): never reused
    waiting: collections.deque[Planned] = field(default_factory=collections.deque)
    busy: bool = False
    operations: int = 0
    system_errors: int = 0
    cards_retained: int = 0
    abandoned: int = 0

    def record(self, entry: JournalEntry) -> None:
        invariant(not self.journal or entry.journal_no > self.journal[-1].journal_no,
                  f"{self.atm_id}: journal numbers increase")
        self.journal.append(entry)

    def issue(self, journal_no: int) -> None:
        invariant(journal_no > self.journal_no_issued, f"{self.atm_id}: a journal number is issued once")
        self.journal_no_issued = journal_no
