"""Handlers of fees: quote by the tariff, charge to a customer's account, refund in bulk exactly once.

A fee moves only through the ledger: the charge's transfer id derives from the charge request id, and a
refund's transfer id derives from the fee id, so no retry and no overlapping refund request can move a
fee's money twice. An implausible fee is refused before any money moves, counted and logged as an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog
from prometheus_client import Counter

from kanjo.accounting import CURRENT_DEPOSIT, FEE_INCOME, JPY, ORDINARY_DEPOSIT, gl_account_id
from kanjo.business_calendar import BankCalendar
from kanjo.fees import store
from kanjo.fees.grouped import ChargeIn, Grouped
from kanjo.fees.limits import ACCOUNT_CODES_CACHED_MAX, FEES_PER_REFUND_REQUEST_MAX, REFUND_TRANSFERS_PER_BATCH_MAX
from kanjo.fees.model import (
    STANDARD_TARIFF,
    Channel,
    FeeContext,
    FeeImplausible,
    FeeQuote,
    Kind,
    Refused,
    Tariff,
    check_plausible,
    day_type_of,
    local_time_of,
    quote_fee,
)
from kanjo.kernel.ids import name_id
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits
from kanjo.ledger import CreateTransferResult, Ledger, Transfer

R = CreateTransferResult
REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-666565730000")
FEE_CODE = 31  # 手数料 (ledger transfer code)
FEE_REFUND_CODE = 32  # 手数料返戻
CODE_LABELS = {FEE_CODE: "手数料", FEE_REFUND_CODE: "手数料返戻"}
# A fee is charged to a customer's 普通預金 or 総合口座 (code 2001) or 当座預金 (code 2002), nothing else.
CHARGEABLE_CODES = frozenset({ORDINARY_DEPOSIT.code, CURRENT_DEPOSIT.code})

log = structlog.get_logger("kanjo.fees")
IMPLAUSIBLE = Counter("kanjo_fees_implausible_total",
                      "Fees refused as implausible (above the tariff maximum, negative, malformed rule)", ["rule"])


@dataclass
class Fees:
    """The context's handle: its database pool, the ledger, the business date, the calendar and the tariff."""

    pool: asyncpg.Pool
    ledger: Ledger
    business_date: Callable[[], dt.date]
    calendar: BankCalendar
    tariff: Tariff = STANDARD_TARIFF
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    account_codes: dict[int, int] = field(default_factory=dict)  # ledger account → its code (codes never change)
    grouped: Grouped = field(init=False, repr=False)  # the charge's record, grouped across concurrent charges

    def __post_init__(self) -> None:
        self.grouped = Grouped(self.pool)


def derived_id(request_id: int, leg: str) -> int:
    """The id of what a request creates, the same on every retry of that request."""
    return name_id(REQUEST_NAMESPACE, f"{request_id:032x}:{leg}")


def _alert(f: Fees, e: FeeImplausible, **where: object) -> None:
    IMPLAUSIBLE.labels(rule=e.rule_id).inc()
    log.error("fee_implausible", rule=e.rule_id, amount=repr(e.amount_minor), reason=e.reason,
              tariff=f.tariff.name, **where)


# -- quote -------------------------------------------------------------------------------------------

def fee_context(f: Fees, channel: Channel, kind: Kind, amount_minor: int, at: dt.datetime) -> FeeContext:
    """The tariff's view of a transaction at instant `at`: its JST time of day and the calendar's day type."""
    day, local_time = local_time_of(at)
    return FeeContext(channel, kind, amount_minor, day_type_of(day, f.calendar.closed_reason(day)), local_time)


def quote(f: Fees, channel: Channel, kind: Kind, amount_minor: int, at: dt.datetime) -> FeeQuote:
    q = fee_context(f, channel, kind, amount_minor, at)
    try:
        return quote_fee(f.tariff, q)
    except FeeImplausible as e:
        _alert(f, e, channel=channel.value, kind=kind.value, day_type=q.day_type.value)
        raise


# -- charge ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChargedFee:
    fee_id: int
    transfer_id: int
    account_id: int
    amount_minor: int
    rule_id: str
    replayed: bool  # True when this answers a retry of a charge already made


async def charge_fee(f: Fees, request_id: int, account_id: int, fee: FeeQuote,
                     at: dt.datetime | None = None) -> ChargedFee | None:
    """Debit the customer's ordinary or current account, credit fee income. None when the quote is ¥0."""
    t = await charge_transfer(f, request_id, account_id, fee)
    if t is None:
        return None
    t.business_date = f.business_date()
    # The ledger tells a first charge from a retry (its transfer id derives from the request): only a retry reads
    # the charge's record; another amount or account under the same request is the ledger's exists_with_different_.
    [outcome] = await f.ledger.create_transfers([t])
    if outcome.result is not R.OK and outcome.result is not R.EXISTS \
            and outcome.result is not R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE:
        raise _refusal(outcome.result, fee.amount_minor)
    booked_on = None
    if outcome.result is R.EXISTS_WITH_DIFFERENT_BUSINESS_DATE:  # a retry on a later business date
        done = await _recorded(f, request_id, account_id, fee)
        if done is not None:
            return done
        [posted] = await f.ledger.lookup_transfers([t.id])  # the charge's record was lost: the first posting's
        t.business_date = booked_on = posted.business_date  # date, and the ledger compares the rest as booked
        [outcome] = await f.ledger.create_transfers([t])
        if outcome.result is not R.EXISTS:
            raise _refusal(outcome.result, fee.amount_minor)
    invariant(outcome.amount == fee.amount_minor, "the ledger moved exactly the fee")
    return await record_charge(f, request_id, account_id, fee, t.id, replayed=outcome.result is R.EXISTS, at=at,
                               booked_on=booked_on)


async def charge_transfer(f: Fees, request_id: int, account_id: int, fee: FeeQuote, *,
                          leg: str = "charge") -> Transfer | None:
    """The ledger transfer that charges `fee` for `request_id` (None when the quote is ¥0), for a caller that moves
    it in a ledger request of its own making — in a linked chain with the movement the fee is for — and then
    calls record_charge. `leg` names the transfer: one request may move its fee under one leg only. Refused
    (FeeImplausible, Refused) before any money moves, as charge_fee."""
    try:
        check_plausible(f.tariff, fee.rule_id, fee.amount_minor)
    except FeeImplausible as e:
        _alert(f, e, account=str(uuid.UUID(int=account_id)), request=str(uuid.UUID(int=request_id)))
        raise
    if fee.amount_minor == 0:
        return None
    invariant(f.tariff.rule(fee.rule_id) is not None, "a plausible quote names a rule of the tariff")
    if await _account_code(f, account_id) not in CHARGEABLE_CODES:
        raise Refused("unknown_account", f"no ordinary or current deposit account {uuid.UUID(int=account_id)}")
    return Transfer(id=derived_id(request_id, leg), debit_account_id=account_id,
                    credit_account_id=gl_account_id(FEE_INCOME), amount=fee.amount_minor, ledger=JPY, code=FEE_CODE,
                    user_data_128=derived_id(request_id, "fee"))


async def record_charge(f: Fees, request_id: int, account_id: int, fee: FeeQuote, transfer_id: int, *,
                        replayed: bool, at: dt.datetime | None = None,
                        booked_on: dt.date | None = None) -> ChargedFee:
    """Record the charge the ledger just moved by `transfer_id` (OK), or answer a retry of it (EXISTS: `replayed`) —
    recording it then if its record was lost, booked on the date the ledger booked it (`booked_on` when the caller
    has read it already)."""
    rule = f.tariff.rule(fee.rule_id)
    invariant(rule is not None, "a plausible quote names a rule of the tariff")
    assert rule is not None
    if replayed:
        done = await _recorded(f, request_id, account_id, fee)
        if done is not None:
            return done
        if booked_on is None:
            [posted] = await f.ledger.lookup_transfers([transfer_id])  # the charge's record was lost
            booked_on = posted.business_date
    booked_on = booked_on or f.business_date()
    fee_id = derived_id(request_id, "fee")
    await f.grouped.insert_charge(ChargeIn(fee_id, request_id, transfer_id, account_id, fee.amount_minor, fee.rule_id,
                                           rule.channel.value, fee.reason, at or f.now(), booked_on))
    return ChargedFee(fee_id, transfer_id, account_id, fee.amount_minor, fee.rule_id, replayed)


async def _recorded(f: Fees, request_id: int, account_id: int, fee: FeeQuote) -> ChargedFee | None:
    """The charge already recorded for `request_id` (a retry's answer), None when there is no record."""
    async with f.pool.acquire() as conn:
        done = await store.charge_by_request(conn, request_id)
    if done is None:
        return None
    if (done["account_id"], done["amount_minor"], done["rule_id"]) != (account_id, fee.amount_minor, fee.rule_id):
        raise Refused("request_reused", "this request id already charged another fee or account")
    return ChargedFee(done["fee_id"], done["transfer_id"], account_id, fee.amount_minor, fee.rule_id, True)


async def _account_code(f: Fees, account_id: int) -> int | None:
    """The ledger account's code (None: no such account). A code never changes, so it is remembered, up to a
    named number of accounts — a fee on the ATM path then costs no lookup."""
    code = f.account_codes.get(account_id)
    if code is None:
        found = await f.ledger.lookup_accounts([account_id])
        if not found:
            return None
        code = found[0].code
        if len(f.account_codes) >= ACCOUNT_CODES_CACHED_MAX:
            del f.account_codes[next(iter(f.account_codes))]  # the oldest remembered
        f.account_codes[account_id] = code
    return code


def _refusal(result: CreateTransferResult, amount_minor: int) -> Refused:
    name = result.name.lower()
    if name.startswith("exists_with_different_"):
        return Refused("request_reused", "this request id was already used for a different charge")
    if result is R.EXCEEDS_CREDITS:
        return Refused("insufficient_funds", f"the available balance is less than the fee ¥{amount_minor:,}")
    if result is R.DEBIT_ACCOUNT_ALREADY_CLOSED:
        return Refused("account_closed", "the account is closed")
    return Refused(name, f"the ledger refused the fee: {name}")


# -- bulk refund -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NotRefunded:
    fee_id: int
    reason: str  # what a teller needs to finish it by hand


@dataclass(frozen=True, slots=True)
class RefundReport:
    requested: int  # distinct fees selected
    refunded: int  # refunded by this request (now or by an earlier run of it)
    refunded_minor: int  # their total, tax-inclusive yen
    already_refunded: int  # refunded earlier by another request: left alone
    not_refunded: list[NotRefunded]


@dataclass(frozen=True, slots=True)
class RefundSelection:
    """Either explicit fee ids, or every fee charged in [charged_from, charged_until) (optionally one channel)."""

    fee_ids: tuple[int, ...] = ()
    channel: Channel | None = None
    charged_from: dt.datetime | None = None
    charged_until: dt.datetime | None = None

    def canonical(self) -> str:
        if self.fee_ids:
            digest = hashlib.sha256(",".join(f"{i:032x}" for i in sorted(set(self.fee_ids))).encode()).hexdigest()
            return f"ids:{len(set(self.fee_ids))}:{digest}"
        invariant(self.charged_from is not None and self.charged_until is not None, "a window has two ends")
        assert self.charged_from is not None and self.charged_until is not None
        return (f"window:{self.channel.value if self.channel else '*'}:"
                f"{self.charged_from.astimezone(dt.UTC).isoformat()}:{self.charged_until.astimezone(dt.UTC).isoformat()}")


async def refund_fees(f: Fees, request_id: int, selection: RefundSelection, reason: str) -> RefundReport:
    """Refund every selected fee that no request has refunded yet; re-running or overlapping never refunds twice."""
    if not selection.fee_ids and (selection.charged_from is None or selection.charged_until is None):
        raise Refused("empty_selection", "name the fees, or a time window in which they were charged")
    async with f.pool.acquire() as conn:
        fee_ids = await _select(conn, selection)
        async with conn.transaction():
            prior = await store.refund_request(conn, request_id)
            if prior is not None and prior["selection"] != selection.canonical():
                raise Refused("request_reused", "this request id already refunded another selection of fees")
            await store.insert_refund_request(conn, request_id, selection.canonical(), reason)
        charged = {r["fee_id"]: r for r in await store.charges(conn, fee_ids)}
        done = await store.refunds(conn, fee_ids)
    not_refunded = [NotRefunded(i, "no such fee") for i in fee_ids if i not in charged]
    ours = [i for i, r in done.items() if r["request_id"] == request_id]
    others = [i for i, r in done.items() if r["request_id"] != request_id]
    todo = [i for i in fee_ids if i in charged and i not in done]
    for start in range(0, len(todo), REFUND_TRANSFERS_PER_BATCH_MAX):
        batch = todo[start:start + REFUND_TRANSFERS_PER_BATCH_MAX]
        mine, theirs, failed = await _refund_batch(f, request_id, [charged[i] for i in batch])
        ours += mine
        others += theirs
        not_refunded += failed
    total = sum(charged[i]["amount_minor"] for i in ours)
    log.info("fees_refunded", request=str(uuid.UUID(int=request_id)), refunded=len(ours), refunded_minor=total,
             already_refunded=len(others), not_refunded=len(not_refunded))
    invariant(len(ours) + len(others) + len(not_refunded) == len(fee_ids), "every selected fee is accounted for")
    return RefundReport(len(fee_ids), len(ours), total, len(others), not_refunded)


async def _select(conn: asyncpg.Connection, s: RefundSelection) -> list[int]:
    if s.fee_ids:
        ids = list(dict.fromkeys(s.fee_ids))
    else:
        assert s.charged_from is not None and s.charged_until is not None
        ids = await store.fee_ids_charged(conn, s.channel.value if s.channel else None, s.charged_from,
                                          s.charged_until, FEES_PER_REFUND_REQUEST_MAX + 1)
    if len(ids) > FEES_PER_REFUND_REQUEST_MAX:
        raise LimitReached(limits.get("fees_per_refund_request_max"), len(ids))
    return ids


async def _refund_batch(f: Fees, request_id: int, charges: Sequence[asyncpg.Record]
                        ) -> tuple[list[int], list[int], list[NotRefunded]]:
    """One ledger batch of refunds; the refund's id derives from the fee, the request rides in user_data_128."""
    transfers = [Transfer(id=derived_id(c["fee_id"], "refund"), debit_account_id=gl_account_id(FEE_INCOME),
                          credit_account_id=c["account_id"], amount=c["amount_minor"], ledger=JPY,
                          code=FEE_REFUND_CODE, user_data_128=request_id, business_date=f.business_date())
                 for c in charges]
    outcomes = await f.ledger.create_transfers(transfers)
    mine: list[int] = []
    theirs: list[int] = []
    failed: list[NotRefunded] = []
    rows: list[tuple[int, int, int, int]] = []
    existing = [t.id for t, o in zip(transfers, outcomes, strict=True) if _exists(o.result)]
    owners = {t.id: t.user_data_128 for t in await f.ledger.lookup_transfers(existing)} if existing else {}
    for c, t, o in zip(charges, transfers, outcomes, strict=True):
        owner = request_id if o.result is R.OK else owners.get(t.id)
        if owner is None:
            failed.append(NotRefunded(c["fee_id"], _why_not(o.result)))
            continue
        (mine if owner == request_id else theirs).append(c["fee_id"])
        rows.append((t.id, c["fee_id"], owner, t.amount))
    # Every owner's request row exists: a request records itself before it sends any refund to the ledger.
    async with f.pool.acquire() as conn, conn.transaction():
        await store.insert_refunds(conn, rows)
    return mine, theirs, failed


def _exists(result: CreateTransferResult) -> bool:
    """The fee's refund transfer is already in the ledger (this request's, or another's, or another day's)."""
    return result is R.EXISTS or result.name.startswith("EXISTS_WITH_DIFFERENT_")


def _why_not(result: CreateTransferResult) -> str:
    if result is R.CREDIT_ACCOUNT_ALREADY_CLOSED:
        return "the account is closed: refund in cash at a teller"
    if result is R.CREDIT_ACCOUNT_NOT_FOUND:
        return "the account is not in the ledger: investigate before refunding by hand"
    return f"the ledger refused the refund: {result.name.lower()}"
