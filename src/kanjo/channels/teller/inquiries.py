"""What a teller reads at the counter — a customer with their accounts and cards, a customer search, an account with
its balance — through the hub, each read audited (who looked at whose data, from which terminal)."""

from __future__ import annotations

import uuid
from typing import Any

from kanjo import cards, customers, deposits
from kanjo.channels.teller import audit
from kanjo.channels.teller.channel import TellerChannel
from kanjo.channels.teller.limits import SEARCH_ROWS_MAX
from kanjo.channels.teller.model import Action, Capability, Refused, may
from kanjo.channels.teller.operations import account_summary, card_summary, customer_summary, refusal_of
from kanjo.channels.teller.operators import Session
from kanjo.kernel.limits import LimitReached, limits

READ_ERRORS = (customers.CustomerError, deposits.NotFound, cards.NotFound, LimitReached)


def _allowed(session: Session) -> None:
    if not may(session.role, Capability.INQUIRE):
        raise Refused(403, "not_allowed", f"a {session.role.value} does not read customers' data at a terminal")


async def _audited(ch: TellerChannel, session: Session, what: str, targets: tuple[str, ...], outcome: str) -> None:
    await audit.record(ch.pool, session.entry(Action.INQUIRED, outcome, ch.now(), targets=targets,
                                              detail={"what": what}))


async def _balance(ch: TellerChannel, account: deposits.DepositAccount) -> deposits.Balance | None:
    if account.status is deposits.Status.CLOSED:
        return None
    return await ch.call("deposits", "balance", lambda: deposits.balance(ch.deposits, account.id))


async def customer_view(ch: TellerChannel, session: Session, customer_id: int) -> dict[str, Any]:
    """The customer, their deposit accounts with balances, and their cards (masked)."""
    _allowed(session)
    target = (f"customer:{uuid.UUID(int=customer_id)}",)
    try:
        customer = await ch.call("customers", "get", lambda: customers.get_customer(ch.pool, customer_id))
        accounts = await ch.call("deposits", "accounts", lambda: deposits.accounts_of_customer(ch.deposits,
                                                                                              customer_id))
        if len(accounts) > SEARCH_ROWS_MAX:
            raise LimitReached(limits.get("teller_search_rows_max"), len(accounts))
        views = [account_summary(a, await _balance(ch, a)) for a in accounts]
        held = await ch.call("cards", "of-customer", lambda: cards.cards_of_customer(ch.cards, customer_id))
    except READ_ERRORS as e:
        refusal = refusal_of(e)
        await _audited(ch, session, "customer", target, refusal.refusal.code)
        raise refusal from None
    await _audited(ch, session, "customer", target, "ok")
    return {"customer": customer_summary(customer), "accounts": views, "cards": [card_summary(c) for c in held]}


async def search(ch: TellerChannel, session: Session, kana: str | None, phone: str | None,
                 limit: int) -> dict[str, Any]:
    _allowed(session)
    if limit > SEARCH_ROWS_MAX:
        raise LimitReached(limits.get("teller_search_rows_max"), limit)
    try:
        found = await ch.call("customers", "search", lambda: customers.search_customers(
            ch.pool, kana_prefix=kana, phone=phone, limit=limit))
    except READ_ERRORS as e:
        raise refusal_of(e) from None
    await _audited(ch, session, f"search kana={kana!r} phone={phone!r}",
                   tuple(f"customer:{uuid.UUID(int=c.id)}" for c in found.customers), "ok")
    return {"customers": [customer_summary(c) for c in found.customers], "more": found.more}


async def account_view(ch: TellerChannel, session: Session, branch_code: str, account_number: int) -> dict[str, Any]:
    _allowed(session)
    target = (f"account:{deposits.account_label(branch_code, account_number)}",)
    try:
        account = await ch.call("deposits", "find", lambda: deposits.find_account(ch.deposits, branch_code,
                                                                                  account_number))
        b = await _balance(ch, account)
    except READ_ERRORS as e:
        refusal = refusal_of(e)
        await _audited(ch, session, "account", target, refusal.refusal.code)
        raise refusal from None
    await _audited(ch, session, "account", target, "ok")
    return account_summary(account, b)
