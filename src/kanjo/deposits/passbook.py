"""Passbooks (通帳) of ordinary deposits and 総合口座 (a current account has none): unposted lines (未記帳),
printing (記帳) with page turns and 合算記帳, carry-forward to a new passbook (繰越), loss reports and reissue
(再発行); idempotent by request id.

The passbook reads the account's movements from the ledger and remembers only how far it has printed
(page, line, and the ledger timestamp of the last movement printed). What it prints:
- one line per posted movement (pending holds and voids move no posted money and are not printed);
- when more than `passbook_unposted_lines_max` movements are unposted, the oldest are summed into one
  おまとめ line (deposits, withdrawals, their count) and the newest fill the other lines; the statement
  (入出金明細) still lists every movement;
- a full page is turned by the printer and printing continues on the next page; when the last line of
  the last page is printed the passbook is full (満冊): what is left prints after 繰越 to a new passbook,
  whose first line is the balance brought forward (繰越). A reissued passbook starts the same way.
Printing and passbook renewal count as customer activity for dormancy (see dormancy.py).
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

import asyncpg

from kanjo.deposits import store
from kanjo.deposits.limits import (
    PASSBOOK_LINES_PER_PAGE_MAX,
    PASSBOOK_PAGES_MAX,
    PASSBOOK_UNPOSTED_ITEMS_SCANNED_MAX,
    PASSBOOK_UNPOSTED_LINES_MAX,
)
from kanjo.deposits.model import CODE_LABELS, DepositAccount, Refused, Status, check_has_passbook
from kanjo.deposits.service import Deposits, get_account
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import Transfer, TransferFlags

PASSBOOK_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-70617373626b")
SCAN_PAGE_ROWS = 1_024  # ledger transfers read per round trip while collecting unposted movements
invariant(SCAN_PAGE_ROWS <= limits.get("ledger_page_rows_max").maximum, "a scan page fits one ledger page")
invariant(PASSBOOK_UNPOSTED_LINES_MAX >= 2, "consolidation keeps one summary line and at least one movement")
NOT_PRINTED = frozenset({int(TransferFlags.PENDING), int(TransferFlags.VOID_PENDING_TRANSFER)})
CARRIED_FORWARD_LABEL = "繰越"
CONSOLIDATED_LABEL = "おまとめ"
UNKNOWN_CODE_LABEL = "お取引"  # a code another context has not given a passbook label
ATTEMPTS_MAX = 4  # optimistic print attempts when the passbook moves meanwhile; then the caller retries


# -- the passbook's state machine -------------------------------------------------------------------------

class PassbookStatus(enum.StrEnum):
    ACTIVE = "active"  # 使用中: prints at ATMs and passbook printers
    FULL = "full"  # 満冊: no line left; carry it forward (繰越) to a new passbook
    LOST = "lost"  # 喪失届: loss reported; nothing prints on it; reissued at a branch
    CARRIED_FORWARD = "carried_forward"  # 繰越済: replaced by the next passbook when it was full
    REPLACED = "replaced"  # 再発行済: replaced after loss or damage; void


CURRENT_STATUSES = (PassbookStatus.ACTIVE, PassbookStatus.FULL, PassbookStatus.LOST)


class PassbookAction(enum.StrEnum):
    PRINT = "print"
    FILL = "fill"  # the last line of the last page was printed
    CARRY_FORWARD = "carry_forward"
    REPORT_LOST = "report_lost"
    REISSUE = "reissue"  # after loss, or for a damaged (汚損・破損) passbook handed in


PASSBOOK_TRANSITIONS: dict[tuple[PassbookAction, PassbookStatus], PassbookStatus] = {
    (PassbookAction.PRINT, PassbookStatus.ACTIVE): PassbookStatus.ACTIVE,
    (PassbookAction.FILL, PassbookStatus.ACTIVE): PassbookStatus.FULL,
    (PassbookAction.CARRY_FORWARD, PassbookStatus.FULL): PassbookStatus.CARRIED_FORWARD,
    (PassbookAction.REPORT_LOST, PassbookStatus.ACTIVE): PassbookStatus.LOST,
    (PassbookAction.REPORT_LOST, PassbookStatus.FULL): PassbookStatus.LOST,
    (PassbookAction.REISSUE, PassbookStatus.ACTIVE): PassbookStatus.REPLACED,
    (PassbookAction.REISSUE, PassbookStatus.LOST): PassbookStatus.REPLACED,
}
_SPECIFIC_REFUSALS = {
    (PassbookAction.PRINT, PassbookStatus.FULL):
        ("passbook_full", "the passbook is full (満冊): carry it forward (繰越) to a new passbook, then print"),
    (PassbookAction.PRINT, PassbookStatus.LOST):
        ("passbook_lost", "this passbook was reported lost: it cannot print; a branch reissues it (再発行)"),
    (PassbookAction.CARRY_FORWARD, PassbookStatus.ACTIVE):
        ("passbook_not_full", "the passbook still has lines: it is carried forward only when full"),
    (PassbookAction.REISSUE, PassbookStatus.FULL):
        ("passbook_full", "the passbook is full (満冊): carry it forward (繰越) rather than reissue it"),
}


class IllegalPassbookTransition(Refused):
    """The passbook's state does not allow the action; the code and message name the state."""

    def __init__(self, action: PassbookAction, status: PassbookStatus) -> None:
        self.action = action
        self.status = status
        code, message = _SPECIFIC_REFUSALS.get(
            (action, status),
            ("illegal_transition", f"cannot {action.value.replace('_', ' ')} a passbook that is"
                                   f" {status.value.replace('_', ' ')}"))
        super().__init__(code, message)


class PassbookBusy(Refused):
    """The passbook kept changing under this request (other prints or renewals at the same moment)."""

    def __init__(self) -> None:
        super().__init__("passbook_busy", "the passbook is being printed or renewed elsewhere: retry with the"
                         " same request id")


def passbook_transition(status: PassbookStatus, action: PassbookAction) -> PassbookStatus:
    target = PASSBOOK_TRANSITIONS.get((action, status))
    if target is None:
        raise IllegalPassbookTransition(action, status)
    return target


class IssueKind(enum.StrEnum):
    FIRST = "first"  # issued with the account
    CARRY_FORWARD = "carry_forward"  # 繰越: the previous one was full
    REISSUE = "reissue"  # 再発行: the previous one was lost or damaged


# -- the page layout -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, order=True)
class Position:
    """The last line used: page 1.., line 0..lines per page (0: nothing printed on that page yet)."""

    page: int
    line: int


START = Position(1, 0)


def lines_left(at: Position, lines_per_page: int = PASSBOOK_LINES_PER_PAGE_MAX,
               pages: int = PASSBOOK_PAGES_MAX) -> int:
    invariant(1 <= at.page <= pages and 0 <= at.line <= lines_per_page, f"a position in the passbook: {at}")
    return (pages - at.page) * lines_per_page + lines_per_page - at.line


def next_positions(at: Position, count: int, lines_per_page: int = PASSBOOK_LINES_PER_PAGE_MAX,
                   pages: int = PASSBOOK_PAGES_MAX) -> list[Position]:
    """Where the next `count` lines print: down the page, then on the next page (the printer turns it)."""
    invariant(count <= lines_left(at, lines_per_page, pages), "only as many lines as the passbook has left")
    positions = []
    for _ in range(count):
        at = Position(at.page + 1, 1) if at.line == lines_per_page else Position(at.page, at.line + 1)
        positions.append(at)
    return positions


# -- lines ---------------------------------------------------------------------------------------------------

class LineKind(enum.StrEnum):
    MOVEMENT = "movement"  # one posted movement
    CONSOLIDATED = "consolidated"  # 合算記帳: the oldest unposted movements summed (おまとめ)
    CARRIED_FORWARD = "carried_forward"  # 繰越: the balance brought forward to a new passbook


@dataclass(frozen=True, slots=True)
class Movement:
    """One posted ledger transfer of the account, as a passbook sees it."""

    timestamp: int
    business_date: dt.date
    code: int
    deposit_minor: int
    withdrawal_minor: int


@dataclass(frozen=True, slots=True)
class PassbookLine:
    kind: LineKind
    business_date: dt.date
    description: str  # 摘要
    withdrawal_minor: int  # お支払金額
    deposit_minor: int  # お預り金額
    balance_minor: int  # 差引残高
    items: int  # movements the line stands for: 1, several for おまとめ, 0 for 繰越
    first_timestamp: int  # the ledger timestamps of the movements it covers
    last_timestamp: int
    page: int = 0  # where it printed; 0 while unposted
    line: int = 0


def movement_of(t: Transfer, account_id: int) -> Movement | None:
    """A transfer that moved posted money in or out of the account; None for holds, voids and zero amounts."""
    if t.amount == 0 or any(t.flags & flag for flag in NOT_PRINTED):
        return None
    invariant(account_id in (t.debit_account_id, t.credit_account_id), "a transfer of this account")
    invariant(t.business_date is not None, "the ledger dates every transfer it stores")
    assert t.business_date is not None
    credit = t.credit_account_id == account_id
    return Movement(t.timestamp, t.business_date, t.code, t.amount if credit else 0, 0 if credit else t.amount)


class Unposted:
    """Unposted movements, oldest first, folded as they will print: beyond `lines_max` movements the oldest
    are summed into one おまとめ line and the newest `lines_max - 1` keep a line each. Bounded memory."""

    def __init__(self, lines_max: int = PASSBOOK_UNPOSTED_LINES_MAX,
                 labels: Mapping[int, str] = CODE_LABELS) -> None:
        invariant(lines_max >= 2, "room for a summary line and a movement")
        self.lines_max = lines_max
        self.labels = labels
        self.items = 0
        self._newest: collections.deque[Movement] = collections.deque()
        self._summed: list[Movement] = []  # at most the first and the last summed movement
        self._summed_count = 0
        self._summed_deposit_minor = 0
        self._summed_withdrawal_minor = 0

    def add(self, m: Movement) -> None:
        invariant(not self._newest or m.timestamp > self._newest[-1].timestamp, "movements in ledger order")
        self.items += 1
        self._newest.append(m)
        if self._summed_count or len(self._newest) > self.lines_max:
            while len(self._newest) > self.lines_max - 1:
                self._sum(self._newest.popleft())

    def _sum(self, m: Movement) -> None:
        self._summed_count += 1
        self._summed_deposit_minor += m.deposit_minor
        self._summed_withdrawal_minor += m.withdrawal_minor
        self._summed = [self._summed[0], m] if self._summed else [m]

    def lines(self, balance_before_minor: int) -> list[PassbookLine]:
        """The lines to print, each with the balance after it, from the balance printed last."""
        balance = balance_before_minor
        lines = []
        if self._summed_count:
            first, last = self._summed[0], self._summed[-1]
            balance += self._summed_deposit_minor - self._summed_withdrawal_minor
            lines.append(PassbookLine(LineKind.CONSOLIDATED, last.business_date, CONSOLIDATED_LABEL,
                                      self._summed_withdrawal_minor, self._summed_deposit_minor, balance,
                                      self._summed_count, first.timestamp, last.timestamp))
        for m in self._newest:
            balance += m.deposit_minor - m.withdrawal_minor
            lines.append(PassbookLine(LineKind.MOVEMENT, m.business_date, self.labels.get(m.code, UNKNOWN_CODE_LABEL),
                                      m.withdrawal_minor, m.deposit_minor, balance, 1, m.timestamp, m.timestamp))
        invariant(len(lines) <= self.lines_max and sum(x.items for x in lines) == self.items,
                  "every unposted movement is on exactly one line, in at most lines_max lines")
        return lines


# -- the passbook --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Passbook:
    id: int
    account_id: int
    number: int  # issue sequence: 1 for the first, +1 at each 繰越 or 再発行
    status: PassbookStatus
    issue_kind: IssueKind
    issued_on: dt.date
    position: Position  # the last line used
    printed_timestamp: int  # the ledger timestamp of the last movement printed (0: none yet)
    printed_balance_minor: int  # the balance on the last line printed
    retired_on: dt.date | None

    @property
    def lines_left(self) -> int:
        return lines_left(self.position)


def passbook_id(account_id: int, number: int) -> int:
    """The id of an account's passbook number `number`: the same wherever and whenever it is derived."""
    return name_id(PASSBOOK_NAMESPACE, f"{account_id:032x}:passbook:{number}")


def first_passbook(account: DepositAccount) -> Passbook:
    """Every ordinary account has passbook 1 from its opening; it is stored when first printed or renewed."""
    opened_on = account.opened_on
    assert isinstance(opened_on, dt.date)
    return Passbook(passbook_id(account.id, 1), account.id, 1, PassbookStatus.ACTIVE, IssueKind.FIRST, opened_on,
                    START, 0, 0, None)


@dataclass(frozen=True, slots=True)
class UnpostedLines:
    items: int  # movements not printed yet
    lines: tuple[PassbookLine, ...]  # as they would print now (oldest beyond the limit consolidated)


@dataclass(frozen=True, slots=True)
class PrintResult:
    passbook_id: int
    passbook_number: int
    lines: tuple[PassbookLine, ...]  # printed, with their page and line
    items_left: int  # movements still unposted: the passbook filled up before them
    page_turns: int
    passbook_full: bool  # 満冊: carry forward (繰越) to print the rest
    replayed: bool  # True when this answers a retry of a print already done


def check_can_use_passbook(status: Status) -> None:
    """A passbook is used (printed, renewed) only on an active account; the refusal says what to do."""
    if status is Status.ACTIVE:
        return
    if status is Status.FROZEN:
        raise Refused("account_frozen", "the account is frozen: its passbook cannot be used until it is unfrozen")
    if status is Status.DORMANT:
        raise Refused("account_dormant", "the account is dormant: the customer can revive it at a branch")
    raise Refused("account_closed", "the account is closed")


# -- SQL -----------------------------------------------------------------------------------------------------

_BOOK = ("id, account_id, number, status, issue_kind, issued_on, page, line, printed_timestamp,"
         " printed_balance_minor, retired_on")
_LINE = ("kind, business_date, description, withdrawal_minor, deposit_minor, balance_minor, items,"
         " first_timestamp, last_timestamp, page, line")
_CURRENT = "status IN ('active', 'full', 'lost')"


def _book(r: asyncpg.Record) -> Passbook:
    return Passbook(r[0], r[1], r[2], PassbookStatus(r[3]), IssueKind(r[4]), r[5], Position(r[6], r[7]), r[8], r[9],
                    r[10])


def _line(r: asyncpg.Record) -> PassbookLine:
    return PassbookLine(LineKind(r[0]), *r[1:])


async def _stored_current(conn: asyncpg.Connection, account_id: int) -> Passbook | None:
    row = await conn.fetchrow(f"SELECT {_BOOK} FROM deposits.passbooks WHERE account_id = $1 AND {_CURRENT}",
                              account_id)
    return _book(row) if row else None


async def _stored(conn: asyncpg.Connection, book_id: int) -> Passbook:
    row = await conn.fetchrow(f"SELECT {_BOOK} FROM deposits.passbooks WHERE id = $1", book_id)
    invariant(row is not None, "a recorded passbook id names a passbook")
    return _book(row)


def _book_values(b: Passbook) -> tuple:
    return (b.id, b.account_id, b.number, b.status.value, b.issue_kind.value, b.issued_on, b.position.page,
            b.position.line, b.printed_timestamp, b.printed_balance_minor, b.retired_on)


async def _insert_book(conn: asyncpg.Connection, b: Passbook) -> None:
    await conn.execute(
        f"INSERT INTO deposits.passbooks ({_BOOK}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        *_book_values(b))


async def _store_first(conn: asyncpg.Connection, account: DepositAccount) -> None:
    """Stores passbook 1 of an account that has never had a passbook row; otherwise does nothing."""
    await conn.execute(
        f"INSERT INTO deposits.passbooks ({_BOOK}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"
        " WHERE NOT EXISTS (SELECT 1 FROM deposits.passbooks WHERE account_id = $2) ON CONFLICT DO NOTHING",
        *_book_values(first_passbook(account)))


async def _lock_current(conn: asyncpg.Connection, account: DepositAccount) -> Passbook:
    """The account's current passbook, locked until the transaction ends (stored first if never used)."""
    for _ in range(3):  # a concurrent 繰越 or 再発行 may retire the row we waited for: read again
        await _store_first(conn, account)
        row = await conn.fetchrow(
            f"SELECT {_BOOK} FROM deposits.passbooks WHERE account_id = $1 AND {_CURRENT} FOR UPDATE", account.id)
        if row is not None:
            return _book(row)
    raise PassbookBusy()


async def _save_position(conn: asyncpg.Connection, b: Passbook) -> None:
    await conn.execute(
        "UPDATE deposits.passbooks SET status = $2, page = $3, line = $4, printed_timestamp = $5,"
        " printed_balance_minor = $6, retired_on = $7 WHERE id = $1",
        b.id, b.status.value, b.position.page, b.position.line, b.printed_timestamp, b.printed_balance_minor,
        b.retired_on)


async def _insert_lines(conn: asyncpg.Connection, book_id: int, request_id: int, lines: list[PassbookLine]) -> None:
    await conn.executemany(
        f"INSERT INTO deposits.passbook_lines (passbook_id, request_id, {_LINE})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        [(book_id, request_id, x.kind.value, x.business_date, x.description, x.withdrawal_minor, x.deposit_minor,
          x.balance_minor, x.items, x.first_timestamp, x.last_timestamp, x.page, x.line) for x in lines])


async def _lines_of_request(conn: asyncpg.Connection, request_id: int) -> tuple[PassbookLine, ...]:
    rows = await conn.fetch(
        f"SELECT {_LINE} FROM deposits.passbook_lines WHERE request_id = $1 ORDER BY page, line", request_id)
    return tuple(_line(r) for r in rows)


async def _print_record(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT p.account_id, p.passbook_id, b.number, p.items_left, p.page_turns, p.passbook_full"
        " FROM deposits.passbook_prints p JOIN deposits.passbooks b ON b.id = p.passbook_id"
        " WHERE p.request_id = $1", request_id)


async def _event(conn: asyncpg.Connection, request_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT account_id, passbook_id, action, new_passbook_id FROM deposits.passbook_events"
        " WHERE request_id = $1", request_id)


# -- reads ---------------------------------------------------------------------------------------------------

async def _passbook_account(d: Deposits, account_id: int) -> DepositAccount:
    """The account, if its subject has a passbook: a current account (当座預金) is refused `no_passbook`."""
    account = await get_account(d, account_id)
    check_has_passbook(account.subject)
    return account


async def get_passbook(d: Deposits, account_id: int) -> Passbook:
    """The account's current passbook (active, full or lost)."""
    account = await _passbook_account(d, account_id)
    async with d.pool.acquire() as conn:
        stored = await _stored_current(conn, account_id)
    return stored if stored is not None else first_passbook(account)


async def unposted(d: Deposits, account_id: int) -> UnpostedLines:
    """未記帳: the movements the current passbook has not printed, as they would print now."""
    return (await passbook_view(d, account_id)).unposted


@dataclass(frozen=True, slots=True)
class PassbookView:
    passbook: Passbook
    unposted: UnpostedLines  # read from that passbook's position


async def passbook_view(d: Deposits, account_id: int) -> PassbookView:
    """What the screen at the counter shows: the current passbook and its unposted lines."""
    book = await get_passbook(d, account_id)
    folded = await _collect(d, book)
    return PassbookView(book, UnpostedLines(folded.items, tuple(await _checked_lines(d, book, folded))))


async def _collect(d: Deposits, book: Passbook) -> Unposted:
    """The account's movements after the passbook's position, page by page from the ledger, folded."""
    folded = Unposted(labels=d.labels)
    after, scanned = book.printed_timestamp, 0
    while True:
        page = await d.ledger.get_account_transfers(book.account_id, timestamp_min=after + 1, limit=SCAN_PAGE_ROWS)
        scanned += len(page)
        limits.observe("passbook_unposted_items_scanned_max", scanned)
        if scanned > PASSBOOK_UNPOSTED_ITEMS_SCANNED_MAX:
            raise LimitReached(limits.get("passbook_unposted_items_scanned_max"), scanned)
        for t in page:
            m = movement_of(t, book.account_id)
            if m is not None:
                folded.add(m)
        if len(page) < SCAN_PAGE_ROWS:
            return folded
        after = page[-1].timestamp


async def _posted_balance_at(d: Deposits, account_id: int, timestamp: int) -> int:
    if timestamp == 0:
        return 0  # before its first movement an account holds nothing
    b = await d.ledger.balance_as_of(account_id, timestamp)
    invariant(b is not None, "a printed movement has a balance row in the account's history")
    assert b is not None
    return b.credits_posted - b.debits_posted


async def _checked_lines(d: Deposits, book: Passbook, folded: Unposted) -> list[PassbookLine]:
    """The lines with their balances, checked against the ledger's own history at both ends."""
    before = await _posted_balance_at(d, book.account_id, book.printed_timestamp)
    invariant(before == book.printed_balance_minor, "the passbook's last balance is the ledger's at that movement")
    lines = folded.lines(book.printed_balance_minor)
    if lines:
        after = await _posted_balance_at(d, book.account_id, lines[-1].last_timestamp)
        invariant(after == lines[-1].balance_minor, "the running balance agrees with the ledger's history")
    return lines


# -- printing (記帳) -------------------------------------------------------------------------------------------

async def print_passbook(d: Deposits, request_id: int, account_id: int) -> PrintResult:
    """記帳: prints the unposted lines the passbook has room for and advances its position, once per request:
    a retry (printer jam, timeout) answers the same lines without printing or advancing again.

    The lines are read from the ledger without holding a database connection, then written only if the
    passbook has not moved meanwhile (optimistic): no connection waits on another, however many ATMs print."""
    async with d.pool.acquire() as conn:
        done = await _print_record(conn, request_id)
        if done is not None:
            return await _replayed_print(conn, done, request_id, account_id)
    account = await _passbook_account(d, account_id)
    check_can_use_passbook(account.status)
    for _ in range(ATTEMPTS_MAX):
        book = await get_passbook(d, account_id)
        passbook_transition(book.status, PassbookAction.PRINT)
        folded = await _collect(d, book)
        result, after = lay_out(book, await _checked_lines(d, book, folded), folded.items)
        async with d.pool.acquire() as conn, conn.transaction():
            locked = await _lock_current(conn, account)
            done = await _print_record(conn, request_id)
            if done is not None:  # the first attempt of this request committed meanwhile
                return await _replayed_print(conn, done, request_id, account_id)
            if await _event(conn, request_id) is not None:
                raise _reused("a passbook renewal or loss report")
            if locked != book:
                continue  # another print or a renewal moved the passbook: read it again
            await _record_print(conn, request_id, result, after, d.business_date())
            return result
    raise PassbookBusy()


async def _record_print(conn: asyncpg.Connection, request_id: int, result: PrintResult, after: Passbook,
                        today: dt.date) -> None:
    await _insert_lines(conn, after.id, request_id, list(result.lines))
    await _save_position(conn, after)
    await conn.execute(
        "INSERT INTO deposits.passbook_prints (request_id, account_id, passbook_id, business_date, lines,"
        " items_left, page_turns, passbook_full) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        request_id, after.account_id, after.id, today, len(result.lines), result.items_left, result.page_turns,
        result.passbook_full)
    await store.touch(conn, [after.account_id], today)  # the customer used the passbook: activity (dormancy.py)


def lay_out(book: Passbook, lines: list[PassbookLine], items: int) -> tuple[PrintResult, Passbook]:
    """Places as many lines as the passbook has room for; returns what printed and the passbook after it."""
    room = book.lines_left
    invariant(room > 0, "an active passbook has a line left: it becomes full as its last line prints")
    printing = lines[:room]
    positions = next_positions(book.position, len(printing))
    placed = tuple(replace(x, page=p.page, line=p.line) for x, p in zip(printing, positions, strict=True))
    after = book
    if placed:
        status = book.status
        if lines_left(positions[-1]) == 0:
            status = passbook_transition(status, PassbookAction.FILL)
        after = replace(book, status=status, position=positions[-1], printed_timestamp=placed[-1].last_timestamp,
                        printed_balance_minor=placed[-1].balance_minor)
    items_left = items - sum(x.items for x in placed)
    invariant(items_left == 0 or after.status is PassbookStatus.FULL, "only a full passbook leaves items unposted")
    return PrintResult(book.id, book.number, placed, items_left, after.position.page - book.position.page,
                       after.status is PassbookStatus.FULL, replayed=False), after


async def _replayed_print(conn: asyncpg.Connection, done: asyncpg.Record, request_id: int,
                          account_id: int) -> PrintResult:
    if done["account_id"] != account_id:
        raise Refused("request_reused", "this request id already printed the passbook of another account")
    return PrintResult(done["passbook_id"], done["number"], await _lines_of_request(conn, request_id),
                       done["items_left"], done["page_turns"], done["passbook_full"], replayed=True)


# -- renewal (繰越, 再発行) and loss (喪失届) -----------------------------------------------------------------------

async def carry_forward(d: Deposits, request_id: int, account_id: int) -> Passbook:
    """繰越: a full passbook is retired and the next one issued, its first line the balance brought forward;
    what the full one could not print prints on the new one."""
    return await _renew(d, request_id, account_id, PassbookAction.CARRY_FORWARD, IssueKind.CARRY_FORWARD,
                        "満冊のため繰越 (the passbook was full)")


async def reissue_passbook(d: Deposits, request_id: int, account_id: int, reason: str) -> Passbook:
    """再発行: a lost (reported) or damaged passbook is voided and a new one issued at a branch; the new one
    starts at the old one's printed position, so nothing unposted is lost with it."""
    return await _renew(d, request_id, account_id, PassbookAction.REISSUE, IssueKind.REISSUE, reason)


async def _renew(d: Deposits, request_id: int, account_id: int, action: PassbookAction, kind: IssueKind,
                 reason: str) -> Passbook:
    async with d.pool.acquire() as conn:
        done = await _event(conn, request_id)
        if done is not None:
            return await _replayed_event(conn, done, account_id, action)
    account = await _passbook_account(d, account_id)
    check_can_use_passbook(account.status)
    today = d.business_date()
    async with d.pool.acquire() as conn, conn.transaction():
        old = await _lock_current(conn, account)
        done = await _event(conn, request_id)
        if done is not None:
            return await _replayed_event(conn, done, account_id, action)
        if await _print_record(conn, request_id) is not None:
            raise _reused("a passbook print")
        retired = replace(old, status=passbook_transition(old.status, action), retired_on=today)
        new = Passbook(passbook_id(account_id, old.number + 1), account_id, old.number + 1, PassbookStatus.ACTIVE,
                       kind, today, Position(1, 1), old.printed_timestamp, old.printed_balance_minor, None)
        await _save_position(conn, retired)
        await _insert_book(conn, new)
        await _insert_lines(conn, new.id, request_id, [PassbookLine(
            LineKind.CARRIED_FORWARD, today, CARRIED_FORWARD_LABEL, 0, 0, old.printed_balance_minor, 0,
            old.printed_timestamp, old.printed_timestamp, page=1, line=1)])
        await _record_event(conn, request_id, old, retired.status, action, new.id, reason, today)
        await store.touch(conn, [account_id], today)  # the customer renewed the passbook: activity
    return new


async def report_lost(d: Deposits, request_id: int, account_id: int, reason: str) -> Passbook:
    """喪失届: the passbook stops printing at once (whatever the account's state); a branch then reissues it."""
    async with d.pool.acquire() as conn:
        done = await _event(conn, request_id)
        if done is not None:
            return await _replayed_event(conn, done, account_id, PassbookAction.REPORT_LOST)
    account = await _passbook_account(d, account_id)
    async with d.pool.acquire() as conn, conn.transaction():
        book = await _lock_current(conn, account)
        done = await _event(conn, request_id)
        if done is not None:
            return await _replayed_event(conn, done, account_id, PassbookAction.REPORT_LOST)
        if await _print_record(conn, request_id) is not None:
            raise _reused("a passbook print")
        lost = replace(book, status=passbook_transition(book.status, PassbookAction.REPORT_LOST))
        await _save_position(conn, lost)
        await _record_event(conn, request_id, book, lost.status, PassbookAction.REPORT_LOST, None, reason,
                            d.business_date())
    return lost


async def _record_event(conn: asyncpg.Connection, request_id: int, book: Passbook, to_status: PassbookStatus,
                        action: PassbookAction, new_passbook_id: int | None, reason: str,
                        business_date: dt.date) -> None:
    await conn.execute(
        "INSERT INTO deposits.passbook_events (request_id, account_id, passbook_id, action, from_status, to_status,"
        " new_passbook_id, reason, business_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        request_id, book.account_id, book.id, action.value, book.status.value, to_status.value, new_passbook_id,
        reason, business_date)


def _reused(what: str) -> Refused:
    return Refused("request_reused", f"this request id was already used for {what}")


async def _replayed_event(conn: asyncpg.Connection, done: asyncpg.Record, account_id: int,
                          action: PassbookAction) -> Passbook:
    """A retried renewal or loss report answers the passbook it made (as it is now)."""
    if done["account_id"] != account_id or done["action"] != action.value:
        raise _reused("another passbook action or account")
    return await _stored(conn, done["new_passbook_id"] or done["passbook_id"])


async def passbook_lines(d: Deposits, book_id: int) -> list[PassbookLine]:
    """Every line printed in one passbook, in page order (for a clerk reprinting a damaged page)."""
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {_LINE} FROM deposits.passbook_lines WHERE passbook_id = $1"
                                " ORDER BY page, line", book_id)
    return [_line(r) for r in rows]
