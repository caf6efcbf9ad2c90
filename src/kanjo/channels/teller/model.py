"""The teller channel's rules, pure standard library: roles and what each may do, the kinds of branch request,
when a request needs a second operator (maker-checker), the life of a request, and the audit trail's hash chain.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kanjo.kernel.ids import name_id

REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-74656c6c6572")
SYSTEM = "SYSTEM"  # the actor of what no operator did: the expiry sweep, the demo's seeding
OPERATOR_ID_PATTERN = r"^[A-Z][A-Z0-9]{2,11}$"
TERMINAL_ID_PATTERN = r"^[A-Z0-9]{2,12}$"
BRANCH_CODE_PATTERN = r"^[0-9]{3}$"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TERMINAL_SEQUENCE = re.compile(r"^([A-Z0-9]{2,12})-([0-9]{1,10})$")
PASSWORD_CHARS_MIN = 12
GENESIS_SHA256 = bytes(32)  # the hash before the first audit entry


class Role(enum.StrEnum):
    TELLER = "teller"  # 窓口担当: makes requests
    SUPERVISOR = "supervisor"  # 役席: makes requests and checks (検印) other operators' requests
    AUDITOR = "auditor"  # 検査: reads the audit trail and the requests, changes nothing


class Capability(enum.StrEnum):
    MAKE = "make"  # make a branch request (a maker)
    CHECK = "check"  # approve or reject another operator's request (a checker)
    INQUIRE = "inquire"  # read a customer's or an account's data
    READ_REQUESTS = "read_requests"
    READ_AUDIT = "read_audit"
    ADMINISTER = "administer"  # operators of the branch: register, reset a password, deactivate


PERMISSIONS: dict[Capability, frozenset[Role]] = {
    Capability.MAKE: frozenset({Role.TELLER, Role.SUPERVISOR}),
    Capability.CHECK: frozenset({Role.SUPERVISOR}),
    Capability.INQUIRE: frozenset({Role.TELLER, Role.SUPERVISOR}),
    Capability.READ_REQUESTS: frozenset({Role.TELLER, Role.SUPERVISOR, Role.AUDITOR}),
    Capability.READ_AUDIT: frozenset({Role.SUPERVISOR, Role.AUDITOR}),
    Capability.ADMINISTER: frozenset({Role.SUPERVISOR}),
}


def may(role: Role, capability: Capability) -> bool:
    return role in PERMISSIONS[capability]


class Kind(enum.StrEnum):
    """A branch request, each executed by the context that owns it."""

    REGISTER_CUSTOMER = "register_customer"
    VERIFY_IDENTITY = "verify_identity"
    CHANGE_CONTACT = "change_contact"
    OPEN_ACCOUNT = "open_account"
    CASH_DEPOSIT = "cash_deposit"
    CASH_WITHDRAWAL = "cash_withdrawal"
    TRANSFER = "transfer"
    PLACE_TIME_DEPOSIT = "place_time_deposit"
    CLOSE_ACCOUNT = "close_account"
    FREEZE_ACCOUNT = "freeze_account"
    UNFREEZE_ACCOUNT = "unfreeze_account"
    REPORT_CARD_LOST = "report_card_lost"
    UNLOCK_PIN = "unlock_pin"
    CANCEL_CARD = "cancel_card"
    REGISTER_OPERATOR = "register_operator"
    RESET_PASSWORD = "reset_password"
    DEACTIVATE_OPERATOR = "deactivate_operator"


# Always checked by a second operator, whatever the amount: changes that redirect a customer's mail or money, lift
# a protection, end a relationship, or give someone access to the bank's systems.
SENSITIVE: frozenset[Kind] = frozenset({
    Kind.CHANGE_CONTACT, Kind.CLOSE_ACCOUNT, Kind.UNFREEZE_ACCOUNT, Kind.UNLOCK_PIN, Kind.REGISTER_OPERATOR,
    Kind.RESET_PASSWORD,
})
# Checked above the kind's threshold: requests that move money.
MONETARY: frozenset[Kind] = frozenset({Kind.CASH_DEPOSIT, Kind.CASH_WITHDRAWAL, Kind.TRANSFER,
                                       Kind.PLACE_TIME_DEPOSIT})
# Only supervisors make these (the rest, tellers and supervisors alike).
ADMINISTRATIVE: frozenset[Kind] = frozenset({Kind.REGISTER_OPERATOR, Kind.RESET_PASSWORD, Kind.DEACTIVATE_OPERATOR})
APPROVAL_THRESHOLD_DEFAULT_MINOR = 1_000_000


class Approval(enum.StrEnum):
    """Why a request waits for a checker."""

    AMOUNT = "amount_over_threshold"
    SENSITIVE = "sensitive"


@dataclass(frozen=True, slots=True)
class Policy:
    """The maker-checker thresholds: a monetary request above its kind's threshold waits for a checker."""

    threshold_minor: int = APPROVAL_THRESHOLD_DEFAULT_MINOR
    thresholds_minor: Mapping[Kind, int] = field(default_factory=dict)
    pending_expiry_s: int = 1_800

    def threshold_of(self, kind: Kind) -> int:
        return self.thresholds_minor.get(kind, self.threshold_minor)


def approval_needed(kind: Kind, amount_minor: int | None, policy: Policy) -> Approval | None:
    """None: the maker's request executes at once. Sensitive kinds always wait; money waits above the threshold
    (an amount equal to the threshold does not)."""
    if kind in SENSITIVE:
        return Approval.SENSITIVE
    if kind in MONETARY and amount_minor is not None and amount_minor > policy.threshold_of(kind):
        return Approval.AMOUNT
    return None


class State(enum.StrEnum):
    PENDING = "pending"  # waits for a checker
    EXECUTING = "executing"  # the product is being called (by the maker, or after the approval)
    READY = "ready"  # a system error stopped the execution: the same request (or approval) retried runs it again
    EXECUTED = "executed"
    REFUSED = "refused"  # the product refused it (a business answer)
    REJECTED = "rejected"  # the checker said no
    WITHDRAWN = "withdrawn"  # the maker took it back before anyone checked it
    EXPIRED = "expired"  # nobody checked it in time


FINAL: frozenset[State] = frozenset({State.EXECUTED, State.REFUSED, State.REJECTED, State.WITHDRAWN, State.EXPIRED})


class Event(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    SUCCEED = "succeed"
    REFUSE = "refuse"
    FAIL = "fail"  # a system error: the outcome is unknown, the product call is retried with the same id
    RETRY = "retry"  # the maker (a direct request) or the checker (an approved one) tries again
    TAKE_OVER = "take_over"  # an execution left behind by a process that died


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.PENDING, Event.APPROVE): State.EXECUTING,
    (State.PENDING, Event.REJECT): State.REJECTED,
    (State.PENDING, Event.WITHDRAW): State.WITHDRAWN,
    (State.PENDING, Event.EXPIRE): State.EXPIRED,
    (State.EXECUTING, Event.SUCCEED): State.EXECUTED,
    (State.EXECUTING, Event.REFUSE): State.REFUSED,
    (State.EXECUTING, Event.FAIL): State.READY,
    (State.EXECUTING, Event.TAKE_OVER): State.EXECUTING,
    (State.READY, Event.RETRY): State.EXECUTING,
}


class IllegalTransition(Exception):
    def __init__(self, state: State, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"a request that is {state.value} cannot {event.value.replace('_', ' ')}")


def next_state(state: State, event: Event) -> State:
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise IllegalTransition(state, event)
    return target


# -- refusals the channel itself gives ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal answered to the terminal: an HTTP status, a stable code and a sentence for the operator."""

    status: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.code, "message": self.message}


class Refused(Exception):
    """The channel refuses: `refusal` says with which status, code and words."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.refusal = Refusal(status, code, message)
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Checked:
    """What the maker-checker rules need to know of a request."""

    kind: Kind
    maker_id: str
    branch_code: str
    state: State
    expires_at: dt.datetime | None
    checker_id: str | None


def decision_refusal(operator_id: str, role: Role, branch_code: str, request: Checked,
                     now: dt.datetime) -> Refusal | None:
    """Why this operator may not approve or reject this request now, or None. The first failing rule wins:
    a supervisor, never the maker, of the request's branch, on a request still pending and not expired."""
    if not may(role, Capability.CHECK):
        return Refusal(403, "not_a_supervisor", f"a {role.value} cannot check requests: a supervisor approves or"
                       " rejects them")
    if operator_id == request.maker_id:
        return Refusal(403, "maker_cannot_check", "the maker of a request cannot check it: another supervisor must")
    if branch_code != request.branch_code:
        return Refusal(403, "other_branch", f"the request was made at branch {request.branch_code}: a supervisor"
                       " of that branch checks it")
    if request.state is not State.PENDING:
        by = f" by {request.checker_id}" if request.checker_id else ""
        return Refusal(409, "not_pending", f"the request is {request.state.value}{by}: it can no longer be checked")
    if request.expires_at is not None and request.expires_at <= now:
        return Refusal(409, "expired", "the request expired before it was checked: the maker makes it again")
    return None


def withdrawal_refusal(operator_id: str, request: Checked) -> Refusal | None:
    if operator_id != request.maker_id:
        return Refusal(403, "not_the_maker", "only the maker of a request can withdraw it")
    if request.state is not State.PENDING:
        return Refusal(409, "not_pending", f"the request is {request.state.value}: it can no longer be withdrawn")
    return None


def making_refusal(role: Role, kind: Kind) -> Refusal | None:
    if not may(role, Capability.MAKE):
        return Refusal(403, "not_allowed", f"a {role.value} cannot make requests")
    if kind in ADMINISTRATIVE and not may(role, Capability.ADMINISTER):
        return Refusal(403, "not_allowed", f"a {role.value} cannot administer operators: a supervisor makes the"
                       " request and another supervisor checks it")
    return None


# -- request ids and content -----------------------------------------------------------------------------------


def normalise_request_id(text: str, terminal_id: str) -> str:
    """A client request id: a UUID (written in lower case), or the terminal's id and its sequence number
    (`T0012-42`), which must be the signing-on terminal's own."""
    if _UUID.match(text):
        return str(uuid.UUID(text))
    m = _TERMINAL_SEQUENCE.match(text)
    if m is None:
        raise Refused(422, "invalid_field", "request_id: a UUID, or the terminal id and its sequence number such as"
                      f" {terminal_id}-42")
    if m[1] != terminal_id:
        raise Refused(422, "invalid_field", f"request_id: {text} names terminal {m[1]}, but this session is at"
                      f" terminal {terminal_id}")
    return f"{m[1]}-{int(m[2])}"


def product_request_id(request_id: str) -> int:
    """The id every product sees for this teller request: the same on every retry and after the approval."""
    return name_id(REQUEST_NAMESPACE, request_id)


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8 (what is hashed must be reproducible)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_sha256(kind: Kind, content: Mapping[str, Any]) -> bytes:
    """The digest of what the maker asked: a retry must repeat it, and the checker approves exactly it."""
    return hashlib.sha256(canonical_json({"kind": kind.value, "content": dict(content)})).digest()


# -- sessions -------------------------------------------------------------------------------------------------


def new_session_token() -> str:
    """256 random bits: only its hash is stored."""
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> bytes:
    """A session token is random, not chosen by a person: a fast hash is enough to make a stolen table useless."""
    return hashlib.sha256(token.encode()).digest()


def new_password() -> str:
    """An initial or reset password, handed to the operator once (about 96 bits)."""
    return secrets.token_urlsafe(12)


def password_problem(password: str, chars_max: int) -> str | None:
    if len(password) < PASSWORD_CHARS_MIN:
        return f"a password has at least {PASSWORD_CHARS_MIN} characters"
    if len(password) > chars_max:
        return f"a password has at most {chars_max} characters"
    if any(not ch.isprintable() for ch in password):
        return "a password has printable characters only"
    return None


# -- the audit trail --------------------------------------------------------------------------------------------


class Action(enum.StrEnum):
    SIGN_ON = "sign_on"
    SIGN_ON_FAILED = "sign_on_failed"
    OPERATOR_LOCKED = "operator_locked"
    SIGN_OFF = "sign_off"
    PASSWORD_CHANGED = "password_changed"
    REQUESTED = "requested"  # a request made (executed at once, or pending)
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    EXECUTED = "executed"
    REFUSED = "refused"  # the channel or the product refused (outcome: the code)
    FAILED = "failed"  # a system error: the outcome is unknown until retried
    INQUIRED = "inquired"  # customer or account data read at a terminal
    AUDIT_READ = "audit_read"
    OPERATORS_SEEDED = "operators_seeded"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the trail. `targets` are `customer:<uuid>`, `account:<branch>-<number>`, `card:<uuid>`,
    `operator:<id>` or `request:<id>`; the first is the main one."""

    operator_id: str
    action: Action
    outcome: str
    at: dt.datetime
    branch_code: str | None = None
    terminal_id: str | None = None
    kind: str | None = None
    request_id: str | None = None
    targets: tuple[str, ...] = ()
    amount_minor: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def fields(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "at": _utc_text(self.at), "operator_id": self.operator_id,
                "branch_code": self.branch_code, "terminal_id": self.terminal_id, "action": self.action.value,
                "kind": self.kind, "request_id": self.request_id, "targets": list(self.targets),
                "amount_minor": self.amount_minor, "outcome": self.outcome, "detail": dict(self.detail)}


def _utc_text(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit times carry a time zone")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def chain_sha256(prev_sha256: bytes, seq: int, entry: AuditEntry) -> bytes:
    """The hash of entry `seq`: SHA-256 of the previous entry's hash and this entry's canonical fields, so changing,
    removing or reordering any entry breaks every hash after it."""
    if len(prev_sha256) != 32:
        raise ValueError("a chain hash is 32 bytes")
    return hashlib.sha256(prev_sha256 + canonical_json(entry.fields(seq))).digest()


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An audit row as read back: its entry, where it sits in the chain, and the hashes it was stored with."""

    seq: int
    entry: AuditEntry
    prev_sha256: bytes
    sha256: bytes


@dataclass
class ChainCheck:
    """The running state of a chain verification (pages are fed in order)."""

    last_seq: int = 0
    last_sha256: bytes = GENESIS_SHA256
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    problems_max: int = 20

    def feed(self, rows: Iterable[StoredEntry]) -> None:
        for row in rows:
            self.entries += 1
            if row.seq != self.last_seq + 1:
                self._problem(f"entry {row.seq} follows entry {self.last_seq}: entries are missing")
            if row.prev_sha256 != self.last_sha256:
                self._problem(f"entry {row.seq} does not link to the entry before it")
            if chain_sha256(row.prev_sha256, row.seq, row.entry) != row.sha256:
                self._problem(f"entry {row.seq} was changed after it was written")
            self.last_seq, self.last_sha256 = row.seq, row.sha256

    def finish(self, head_seq: int, head_sha256: bytes) -> None:
        if (head_seq, head_sha256) != (self.last_seq, self.last_sha256):
            self._problem(f"the trail ends at entry {self.last_seq} but its head says {head_seq}: entries were"
                          " removed or the head was changed")

    def _problem(self, text: str) -> None:
        if len(self.problems) < self.problems_max:
            self.problems.append(text)
