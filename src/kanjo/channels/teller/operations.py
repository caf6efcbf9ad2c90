"""The branch operations: for each kind of request, what is checked when it is made (references exist, fields are
valid: nothing recorded yet) and how it is executed, through the hub's teller partition, by the context that owns
it. Every product call carries the request's product id, so a retried or taken-over execution changes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from kanjo import cards, customers, deposits, fees, time_deposits
from kanjo.channels.teller import operators, store
from kanjo.channels.teller.channel import TellerChannel
from kanjo.channels.teller.model import REQUEST_NAMESPACE, Kind, Refused, Role, new_password
from kanjo.kernel.ids import name_id
from kanjo.kernel.limits import LimitReached

JST = dt.timezone(dt.timedelta(hours=9), "JST")
log = structlog.get_logger("kanjo.teller")


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the audit and the maker-checker rule need before anything runs."""

    targets: tuple[str, ...]
    amount_minor: int | None


@dataclass(frozen=True, slots=True)
class Job:
    """One execution attempt of a request."""

    request_id: str
    product_request_id: int
    kind: Kind
    content: Mapping[str, Any]
    maker_id: str
    checker_id: str | None
    branch_code: str
    made_at: dt.datetime
    attempt: int
    progress: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Executed:
    result: dict[str, Any]  # recorded, and answered to every retry
    targets: tuple[str, ...]
    amount_minor: int | None
    shown_once: dict[str, Any] = field(default_factory=dict)  # answered now only, never stored (a new password)


Prepare = Callable[[TellerChannel, Mapping[str, Any], int, str], Awaitable[Prepared]]
Execute = Callable[[TellerChannel, Job], Awaitable[Executed]]

# -- refusals: every context's business answers in the teller's words -------------------------------------------

BUSINESS_ERRORS: tuple[type[Exception], ...] = (
    customers.CustomerError, deposits.Refused, deposits.NotFound, deposits.IllegalTransition, cards.CardRefused,
    cards.Refused, cards.NotFound, cards.IllegalTransition, time_deposits.Refused, time_deposits.NotFound,
    time_deposits.IllegalTransition, fees.Refused, LimitReached, Refused)


def refusal_of(e: Exception) -> Refused:
    """A product's refusal as the channel answers it: 404 unknown, 422 invalid field, 413 limit, else 409."""
    if isinstance(e, Refused):
        return e
    if isinstance(e, LimitReached):
        return Refused(413, "limit_reached", str(e))
    if isinstance(e, customers.InvalidField):
        return Refused(422, "invalid_field", str(e))
    if isinstance(e, customers.CustomerNotFound):
        return Refused(404, "unknown_customer", str(e))
    if isinstance(e, customers.RequestConflict):
        return Refused(409, "request_reused", str(e))
    if isinstance(e, deposits.NotFound | time_deposits.NotFound):
        return Refused(404, "unknown_account", str(e))
    if isinstance(e, cards.NotFound):
        return Refused(404, "unknown_card", str(e))
    code = getattr(e, "code", None)
    if isinstance(code, str):
        return Refused(422 if code.startswith("invalid_") else 409, code, str(e))
    return Refused(409, "illegal_transition", str(e))


# -- references ------------------------------------------------------------------------------------------------


def _label(ref: Mapping[str, Any]) -> str:
    return deposits.account_label(ref["branch_code"], int(ref["account_number"]))


def _account_target(account: deposits.DepositAccount) -> str:
    return f"account:{account.label}"


def _customer_target(customer_id: int) -> str:
    return f"customer:{uuid.UUID(int=customer_id)}"


async def _account(ch: TellerChannel, ref: Mapping[str, Any]) -> deposits.DepositAccount:
    return await ch.call("deposits", "find", lambda: deposits.find_account(ch.deposits, ref["branch_code"],
                                                                          int(ref["account_number"])))


async def _customer(ch: TellerChannel, customer_id: int) -> customers.Customer:
    return await ch.call("customers", "get", lambda: customers.get_customer(ch.pool, customer_id))


def _id(text: str) -> int:
    return uuid.UUID(text).int


def _today_in_japan(ch: TellerChannel) -> dt.date:
    return ch.now().astimezone(JST).date()


def sub_request_id(request_id: str, step: str) -> int:
    """The product id of a further step of one request (a closing's cash payout)."""
    return name_id(REQUEST_NAMESPACE, f"{request_id}/{step}")


# -- customers --------------------------------------------------------------------------------------------------


def _contact(c: Mapping[str, Any]) -> customers.Contact:
    return customers.Contact(c["phone"], c.get("email"), c["postal_code"], c["address"])


def _new_customer(content: Mapping[str, Any], customer_id: int) -> customers.NewCustomer:
    def day(name: str) -> dt.date | None:
        return dt.date.fromisoformat(content[name]) if content.get(name) else None

    return customers.NewCustomer(id=customer_id, kind=customers.CustomerKind(content["customer_kind"]),
                                 name_kanji=content["name_kanji"], name_kana=content["name_kana"],
                                 contact=_contact(content["contact"]), birth_date=day("birth_date"),
                                 registration_date=day("registration_date"))


async def _prepare_register(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    _new_customer(c, rid).validated(_today_in_japan(ch))
    return Prepared((_customer_target(rid),), None)


async def _register(ch: TellerChannel, job: Job) -> Executed:
    new = _new_customer(job.content, job.product_request_id)
    customer = await ch.call("customers", "register", lambda: customers.register_customer(ch.pool, new))
    return Executed(customer_summary(customer), (_customer_target(customer.id),), None)


def customer_summary(c: customers.Customer) -> dict[str, Any]:
    return {"customer_id": str(uuid.UUID(int=c.id)), "cif_number": c.cif_text, "name_kanji": c.name_kanji,
            "name_kana": c.name_kana, "status": c.status.value, "identity_verification": c.identity_verification.value,
            "contact": {"phone": c.contact.phone, "email": c.contact.email, "postal_code": c.contact.postal_code,
                        "address": c.contact.address}}


def _verification(content: Mapping[str, Any]) -> customers.IdentityVerificationUpdate:
    on = content.get("verified_on")
    return customers.IdentityVerificationUpdate(customers.IdentityVerification(content["status"]),
                                                dt.date.fromisoformat(on) if on else None)


async def _prepare_customer(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    customer_id = _id(c["customer_id"])
    await _customer(ch, customer_id)
    if "status" in c:
        _verification(c).validated(_today_in_japan(ch))
    if "contact" in c:
        _contact(c["contact"]).normalised()
    return Prepared((_customer_target(customer_id),), None)


async def _verify_identity(ch: TellerChannel, job: Job) -> Executed:
    customer_id, update = _id(job.content["customer_id"]), _verification(job.content)
    customer = await ch.call("customers", "verify", lambda: customers.record_identity_verification(
        ch.pool, customer_id, job.product_request_id, update))
    return Executed(customer_summary(customer), (_customer_target(customer_id),), None)


async def _change_contact(ch: TellerChannel, job: Job) -> Executed:
    customer_id, contact = _id(job.content["customer_id"]), _contact(job.content["contact"])
    customer = await ch.call("customers", "update-contact", lambda: customers.update_contact(
        ch.pool, customer_id, job.product_request_id, contact))
    return Executed(customer_summary(customer), (_customer_target(customer_id),), None)


# -- deposits ---------------------------------------------------------------------------------------------------


def account_summary(a: deposits.DepositAccount, b: deposits.Balance | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"account_id": str(uuid.UUID(int=a.id)), "branch_code": a.branch_code,
                            "account_number": f"{a.account_number:07d}", "label": a.label, "subject": a.subject.value,
                            "customer_id": str(uuid.UUID(int=a.customer_id)), "status": a.status.value}
    if b is not None:
        view.update(balance_minor=b.balance_minor, held_minor=b.held_minor, available_minor=b.available_minor)
    return view


async def _balance(ch: TellerChannel, account_id: int) -> deposits.Balance:
    return await ch.call("deposits", "balance", lambda: deposits.balance(ch.deposits, account_id))


async def _prepare_open(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    customer_id = _id(c["customer_id"])
    await _customer(ch, customer_id)
    return Prepared((_customer_target(customer_id),), None)


async def _open_account(ch: TellerChannel, job: Job) -> Executed:
    customer_id, subject = _id(job.content["customer_id"]), deposits.Subject(job.content["subject"])
    account = await ch.call("deposits", "open", lambda: deposits.open_ordinary_account(
        ch.deposits, job.product_request_id, customer_id, job.content["branch_code"], subject))
    return Executed(account_summary(account), (_customer_target(customer_id), _account_target(account)), None)


async def _prepare_account(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    account = await _account(ch, c["account"])
    if "term_months" in c:
        time_deposits.Term(int(c["term_months"]))  # refuses a term the product does not offer
    return Prepared((_account_target(account),), c.get("amount_minor"))


async def _cash(ch: TellerChannel, job: Job, deposit: bool) -> Executed:
    account, amount = await _account(ch, job.content["account"]), int(job.content["amount_minor"])
    move = deposits.deposit_cash if deposit else deposits.withdraw_cash
    posting = await ch.call("deposits", "cash-in" if deposit else "cash-out",
                            lambda: move(ch.deposits, job.product_request_id, account.id, amount))
    after = await _balance(ch, account.id)
    return Executed({"transfer_id": str(uuid.UUID(int=posting.transfer_id)), "amount_minor": amount,
                     "account": account_summary(account, after)}, (_account_target(account),), amount)


async def _cash_deposit(ch: TellerChannel, job: Job) -> Executed:
    return await _cash(ch, job, deposit=True)


async def _cash_withdrawal(ch: TellerChannel, job: Job) -> Executed:
    return await _cash(ch, job, deposit=False)


async def _prepare_transfer(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    payer, payee = await _account(ch, c["from_account"]), await _account(ch, c["to_account"])
    if payer.id == payee.id:
        raise Refused(422, "invalid_field", "to_account: the accounts to debit and to credit are the same")
    return Prepared((_account_target(payer), _account_target(payee)), int(c["amount_minor"]))


async def _transfer(ch: TellerChannel, job: Job) -> Executed:
    """振替 at the counter, with the counter's fee (quoted at the time the request was made, so the checker approves
    the fee too): refused when the payer's available balance does not cover both."""
    payer, payee = await _account(ch, job.content["from_account"]), await _account(ch, job.content["to_account"])
    amount, rid = int(job.content["amount_minor"]), job.product_request_id
    fee = fees.quote(ch.fees, fees.Channel.TELLER, fees.Kind.TRANSFER_SAME_BANK, amount, job.made_at)
    if not (job.progress or {}).get("funds_checked"):  # a retry after the check may find its transfer posted
        available = (await _balance(ch, payer.id)).available_minor
        if available < amount + fee.amount_minor:
            raise Refused(409, "insufficient_funds", f"¥{amount + fee.amount_minor:,} is needed (the fee ¥"
                          f"{fee.amount_minor:,} included) and ¥{available:,} is available")
        await _save_progress(ch, job, {"funds_checked": True})
    posting = await ch.call("deposits", "transfer", lambda: deposits.transfer(ch.deposits, rid, payer.id, payee.id,
                                                                              amount))
    charged = await _charge(ch, job, payer.id, fee)
    after = await _balance(ch, payer.id)
    return Executed({"transfer_id": str(uuid.UUID(int=posting.transfer_id)), "amount_minor": amount,
                     "fee_minor": charged, "fee_rule": fee.rule_id,
                     "from_account": account_summary(payer, after), "to_account": account_summary(payee)},
                    (_account_target(payer), _account_target(payee)), amount)


async def _charge(ch: TellerChannel, job: Job, account_id: int, fee: fees.FeeQuote) -> int:
    """The counter's fee, once per request. A fee the account can no longer pay (money left it since the check) is
    waived and logged: the transfer has moved, and the request must not be answered as refused."""
    if fee.amount_minor == 0:
        return 0
    try:
        charged = await ch.call("fees", "charge", lambda: fees.charge_fee(ch.fees, job.product_request_id, account_id,
                                                                          fee, job.made_at))
    except fees.Refused as e:
        log.warning("teller_fee_waived", request_id=job.request_id, fee_minor=fee.amount_minor, reason=str(e))
        return 0
    return 0 if charged is None else charged.amount_minor


async def _place_time_deposit(ch: TellerChannel, job: Job) -> Executed:
    account, c = await _account(ch, job.content["account"]), job.content
    amount, instruction = int(c["amount_minor"]), time_deposits.Instruction(c["instruction"])
    placed = await ch.call("time_deposits", "place", lambda: time_deposits.place_time_deposit(
        ch.time_deposits, job.product_request_id, account.customer_id, account.id, amount, int(c["term_months"]),
        instruction))
    return Executed({"deposit_id": str(uuid.UUID(int=placed.id)), "principal_minor": placed.principal_minor,
                     "term_months": placed.term_months, "rate_percent": str(placed.rate_percent),
                     "matures_on": placed.matures_on.isoformat(), "instruction": placed.instruction.value,
                     "funding_account": account_summary(account)},
                    (_account_target(account), _customer_target(account.customer_id)), amount)


async def _status(ch: TellerChannel, job: Job, action: deposits.Action) -> Executed:
    account = await _account(ch, job.content["account"])
    changed = await ch.call("deposits", action.value, lambda: deposits.change_status(
        ch.deposits, job.product_request_id, account.id, action, job.content["reason"]))
    return Executed({"account": account_summary(changed)}, (_account_target(account),), None)


async def _freeze(ch: TellerChannel, job: Job) -> Executed:
    return await _status(ch, job, deposits.Action.FREEZE)


async def _unfreeze(ch: TellerChannel, job: Job) -> Executed:
    return await _status(ch, job, deposits.Action.UNFREEZE)


async def _close_account(ch: TellerChannel, job: Job) -> Executed:
    """解約 at the counter: the interest to the day before is credited, the balance is paid out in cash, the account
    is closed. Each step is recorded before the next, so a retried execution neither pays interest twice nor pays
    out a different amount; whatever else keeps the account open (a card, a time deposit) refuses before any cash
    leaves."""
    account = await _account(ch, job.content["account"])
    progress = dict(job.progress or {})
    if "interest_gross_minor" not in progress:
        paid = await ch.call("deposits", "closing-interest", lambda: deposits.settle_interest_on_close(
            ch.deposits, ch.calendar, account.id))
        progress.update(interest_gross_minor=paid.gross_minor, interest_net_minor=paid.net_minor)
        await _save_progress(ch, job, progress)
    close = _closer(ch, job, account.id)
    try:
        closed = await close()
    except deposits.Refused as e:
        if e.code != "balance_not_zero":
            raise
        if "payout_minor" not in progress:
            progress["payout_minor"] = (await _balance(ch, account.id)).balance_minor
            await _save_progress(ch, job, progress)
        payout = int(progress["payout_minor"])
        if payout > 0:
            await ch.call("deposits", "cash-out", lambda: deposits.withdraw_cash(
                ch.deposits, sub_request_id(job.request_id, "payout"), account.id, payout))
        closed = await close()
    payout = int(progress.get("payout_minor", 0))
    return Executed({"account": account_summary(closed), "interest_net_minor": progress["interest_net_minor"],
                     "paid_out_minor": payout}, (_account_target(account),), payout or None)


def _closer(ch: TellerChannel, job: Job, account_id: int) -> Callable[[], Awaitable[deposits.DepositAccount]]:
    async def close() -> deposits.DepositAccount:
        return await ch.call("deposits", "close", lambda: deposits.close_account(
            ch.deposits, job.product_request_id, account_id, job.content["reason"]))
    return close


async def _save_progress(ch: TellerChannel, job: Job, progress: dict[str, Any]) -> None:
    async with ch.pool.acquire() as conn:
        if not await store.save_progress(conn, job.request_id, job.attempt, progress):
            raise TakenOver(job.request_id)


class TakenOver(Exception):
    """Another attempt took this request over (this one was presumed dead): it stops and lets that one finish."""


# -- cards ------------------------------------------------------------------------------------------------------


async def _prepare_card(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    card = await ch.call("cards", "get", lambda: cards.get_card(ch.cards, _id(c["card_id"])))
    return Prepared((f"card:{c['card_id']}", _customer_target(card.customer_id)), None)


def card_summary(card: cards.Card) -> dict[str, Any]:
    return {"card_id": str(uuid.UUID(int=card.card_id)), "card_number_masked": card.card_number_masked,
            "status": card.status.value, "account_id": str(uuid.UUID(int=card.account_id)),
            "expires_on": card.expires_on.isoformat()}


async def _card(ch: TellerChannel, job: Job, handler: Any, operation: str) -> Executed:
    card_id, reason = _id(job.content["card_id"]), job.content["reason"]
    if job.checker_id is not None:
        reason = f"{reason} (検印 {job.checker_id})"
    card = await ch.call("cards", operation, lambda: handler(ch.cards, job.product_request_id, card_id, job.maker_id,
                                                             reason))
    return Executed({"card": card_summary(card)}, (f"card:{job.content['card_id']}",
                                                 _customer_target(card.customer_id)), None)


async def _report_lost(ch: TellerChannel, job: Job) -> Executed:
    return await _card(ch, job, cards.report_lost, "report-lost")


async def _unlock_pin(ch: TellerChannel, job: Job) -> Executed:
    return await _card(ch, job, cards.unlock_pin, "unlock-pin")


async def _cancel_card(ch: TellerChannel, job: Job) -> Executed:
    return await _card(ch, job, cards.cancel_card, "cancel")


# -- operators (the channel's own registry; no product is called) ----------------------------------------------


async def _prepare_new_operator(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    existing = await operators.get_operator(ch.pool, c["operator_id"])
    if existing is not None:
        raise Refused(409, "operator_exists", f"operator {c['operator_id']} already exists ({existing.name})")
    return Prepared((f"operator:{c['operator_id']}",), None)


async def _prepare_operator(ch: TellerChannel, c: Mapping[str, Any], rid: int, maker: str) -> Prepared:
    target = await operators.get_operator(ch.pool, c["operator_id"])
    me = await operators.get_operator(ch.pool, maker)
    if target is None:
        raise Refused(404, "unknown_operator", f"no operator {c['operator_id']}")
    if target.operator_id == maker:
        raise Refused(403, "not_for_oneself", "an operator's own access is changed by another supervisor")
    if me is None or target.branch_code != me.branch_code:
        raise Refused(403, "other_branch", f"operator {target.operator_id} works at branch {target.branch_code}")
    return Prepared((f"operator:{target.operator_id}",), None)


async def _register_operator(ch: TellerChannel, job: Job) -> Executed:
    c, password = job.content, new_password()
    created = await operators.register_operator(ch, c["operator_id"], c["name"], c["branch_code"], Role(c["role"]),
                                                password, ch.now())
    result = {"operator_id": c["operator_id"], "name": c["name"], "branch_code": c["branch_code"],
              "role": c["role"], "initial_password": "shown once to the checker; reset the password if it was lost"}
    return Executed(result, (f"operator:{c['operator_id']}",), None,
                    {"initial_password": password} if created else {})


async def _reset_password(ch: TellerChannel, job: Job) -> Executed:
    password = new_password()
    await operators.set_password(ch, job.content["operator_id"], password, ch.now())
    return Executed({"operator_id": job.content["operator_id"], "password": "reset: the new one was shown once to"
                     " the checker"}, (f"operator:{job.content['operator_id']}",), None, {"new_password": password})


async def _deactivate_operator(ch: TellerChannel, job: Job) -> Executed:
    await operators.deactivate_operator(ch, job.content["operator_id"], ch.now())
    return Executed({"operator_id": job.content["operator_id"], "active": False},
                    (f"operator:{job.content['operator_id']}",), None)


@dataclass(frozen=True, slots=True)
class Spec:
    prepare: Prepare
    execute: Execute


KINDS: dict[Kind, Spec] = {
    Kind.REGISTER_CUSTOMER: Spec(_prepare_register, _register),
    Kind.VERIFY_IDENTITY: Spec(_prepare_customer, _verify_identity),
    Kind.CHANGE_CONTACT: Spec(_prepare_customer, _change_contact),
    Kind.OPEN_ACCOUNT: Spec(_prepare_open, _open_account),
    Kind.CASH_DEPOSIT: Spec(_prepare_account, _cash_deposit),
    Kind.CASH_WITHDRAWAL: Spec(_prepare_account, _cash_withdrawal),
    Kind.TRANSFER: Spec(_prepare_transfer, _transfer),
    Kind.PLACE_TIME_DEPOSIT: Spec(_prepare_account, _place_time_deposit),
    Kind.CLOSE_ACCOUNT: Spec(_prepare_account, _close_account),
    Kind.FREEZE_ACCOUNT: Spec(_prepare_account, _freeze),
    Kind.UNFREEZE_ACCOUNT: Spec(_prepare_account, _unfreeze),
    Kind.REPORT_CARD_LOST: Spec(_prepare_card, _report_lost),
    Kind.UNLOCK_PIN: Spec(_prepare_card, _unlock_pin),
    Kind.CANCEL_CARD: Spec(_prepare_card, _cancel_card),
    Kind.REGISTER_OPERATOR: Spec(_prepare_new_operator, _register_operator),
    Kind.RESET_PASSWORD: Spec(_prepare_operator, _reset_password),
    Kind.DEACTIVATE_OPERATOR: Spec(_prepare_operator, _deactivate_operator),
}
# The products each kind calls (for the docs and for telling the operator what still works when one is down).
PRODUCTS: dict[Kind, frozenset[str]] = {
    Kind.REGISTER_CUSTOMER: frozenset({"customers"}), Kind.VERIFY_IDENTITY: frozenset({"customers"}),
    Kind.CHANGE_CONTACT: frozenset({"customers"}), Kind.OPEN_ACCOUNT: frozenset({"customers", "deposits"}),
    Kind.CASH_DEPOSIT: frozenset({"deposits"}), Kind.CASH_WITHDRAWAL: frozenset({"deposits"}),
    Kind.TRANSFER: frozenset({"deposits", "fees"}), Kind.PLACE_TIME_DEPOSIT: frozenset({"deposits", "time_deposits"}),
    Kind.CLOSE_ACCOUNT: frozenset({"deposits"}), Kind.FREEZE_ACCOUNT: frozenset({"deposits"}),
    Kind.UNFREEZE_ACCOUNT: frozenset({"deposits"}), Kind.REPORT_CARD_LOST: frozenset({"cards"}),
    Kind.UNLOCK_PIN: frozenset({"cards"}), Kind.CANCEL_CARD: frozenset({"cards"}),
    Kind.REGISTER_OPERATOR: frozenset(), Kind.RESET_PASSWORD: frozenset(), Kind.DEACTIVATE_OPERATOR: frozenset(),
}
