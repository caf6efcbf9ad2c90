"""The bank assembled: every product context's handle on one ledger, one pool, one calendar and one business date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from kanjo import cards, customers, deposits, fees, loans, time_deposits
from kanjo.business_calendar import BankCalendar
from kanjo.cards import Cards, card_closing_refusal
from kanjo.customers import account_opening_refusal
from kanjo.deposits import CustomerCheck, Deposits, Status, get_account
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.fees import CODE_LABELS as FEE_LABELS
from kanjo.fees import Fees
from kanjo.hub import Hub, Partition, ProductPolicy
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import Ledger
from kanjo.loans import CODE_LABELS as LOAN_LABELS
from kanjo.loans import Loans, account_closing_refusal
from kanjo.time_deposits import CODE_LABELS as TIME_DEPOSIT_LABELS
from kanjo.time_deposits import TimeDeposits, paying_into, pledged_principal, pledges


@dataclass
class Bank:
    ledger: Ledger
    calendar: BankCalendar
    business_date: Callable[[], dt.date]
    deposits: Deposits
    time_deposits: TimeDeposits
    fees: Fees
    loans: Loans
    cards: Cards


def build_bank(ledger: Ledger, calendar: BankCalendar | None = None,
               business_date: Callable[[], dt.date] | None = None,
               customer_check: CustomerCheck | None = None, *, pin_key: bytes = b"",
               now: Callable[[], dt.datetime] | None = None) -> Bank:
    """Wire the contexts together. By default accounts open only for active, identity-verified customers
    (the customers context decides) and the business date is the ledger's."""
    pool = ledger.pool
    if pool is None:
        raise RuntimeError("start the ledger before building the bank")
    calendar = calendar or BankCalendar()
    today = business_date or ledger.business_date

    async def customers_say(customer_id: int) -> str | None:
        return await account_opening_refusal(pool, customer_id)

    # A 総合口座's overdraft is secured by the time deposits attached to it (read on the locking connection).
    deposits = Deposits(pool=pool, ledger=ledger, business_date=today,
                        customer_check=customer_check or customers_say, collateral=pledges)

    async def others_say(account_id: int) -> str | None:
        """Products that pay into or collect from the account keep it open."""
        if await pledged_principal(pool, account_id) or await paying_into(pool, account_id):
            return "time deposits are attached to or pay into this account: withdraw them or name another account first"
        return await account_closing_refusal(pool, account_id)

    async def card_for(account_id: int) -> str | None:
        """A card is issued only for an active deposit account of this bank."""
        try:
            account = await get_account(deposits, account_id)
        except DepositNotFound:
            return "no deposit account with that id"
        return None if account.status is Status.ACTIVE else f"the account is {account.status.value}"

    async def others_or_cards_say(account_id: int) -> str | None:
        return await others_say(account_id) or await card_closing_refusal(pool, account_id)

    deposits.closing_check = others_or_cards_say
    # How statements and passbooks name the other contexts' transfers (定期預入, 手数料, カードローン借入…).
    deposits.labels = {**deposits.labels, **TIME_DEPOSIT_LABELS, **FEE_LABELS, **LOAN_LABELS}
    async def funding_say(account_id: int) -> str | None:
        """Money leaves an ordinary account for a time deposit only while the account is active."""
        try:
            account = await get_account(deposits, account_id)
        except DepositNotFound:
            return None  # the time-deposit context answers an unknown account itself
        return None if account.status is Status.ACTIVE else (
            f"the funding account is {account.status.value}: nothing can leave it now")

    return Bank(
        ledger=ledger, calendar=calendar, business_date=today, deposits=deposits,
        time_deposits=TimeDeposits(pool=pool, ledger=ledger, business_date=today, calendar=calendar,
                                   funding_check=funding_say),
        fees=Fees(pool=pool, ledger=ledger, business_date=today, calendar=calendar),
        loans=Loans(pool=pool, ledger=ledger, deposits=deposits, business_date=today, calendar=calendar,
                    customer_check=customer_check or customers_say),
        cards=Cards(pool=pool, pin_key=pin_key or DEVELOPMENT_PIN_KEY, business_date=today,
                    now=now or (lambda: dt.datetime.now(dt.UTC)), account_check=card_for),
    )


# Tests and tools that build a bank without settings; the app passes the configured key (platform.secrets).
DEVELOPMENT_PIN_KEY = bytes(range(32))

# What each product answers as business (refusals, unknown ids, limits): never a failure that opens its breaker.
BUSINESS_ANSWERS: dict[str, tuple[type[Exception], ...]] = {
    "cards": (cards.CardRefused, cards.Refused, cards.IllegalTransition, cards.NotFound, LimitReached),
    "customers": (customers.CustomerError, LimitReached),
    "deposits": (deposits.Refused, deposits.NotFound, deposits.IllegalTransition, LimitReached),
    "fees": (fees.Refused, fees.FeeImplausible, LimitReached),
    "loans": (loans.Refused, loans.NotFound, loans.IllegalTransition, LimitReached),
    "time_deposits": (time_deposits.Refused, time_deposits.NotFound, time_deposits.IllegalTransition, LimitReached),
    # the batch's concentrated postings straight to the ledger: a product of their own, so that a slow or failing
    # bulk chunk opens its own breaker, never the deposits' that every ATM needs
    "bulk_posting": (LimitReached,),
}
ONLINE_PRODUCTS = tuple(p for p in BUSINESS_ANSWERS if p != "bulk_posting")
# Timeouts: a card check or a balance is a couple of queries; a posting waits for a ledger batch to commit.
PRODUCT_TIMEOUT_MS = {"cards": 500, "customers": 500, "deposits": 1_000, "fees": 1_000, "loans": 1_000,
                      "time_deposits": 1_000, "bulk_posting": 30_000}
# Which products each channel partition reaches (batch reaches all of them for bulk work).
ROUTES: dict[Partition, tuple[str, ...]] = {
    Partition.OWN_ATM: ("cards", "deposits", "fees", "time_deposits", "loans"),
    Partition.OTHER_ATM: ("cards", "deposits", "fees", "loans"),
    Partition.TELLER: ONLINE_PRODUCTS,
    Partition.INTERNET: ("customers", "deposits", "fees", "time_deposits", "loans"),
    Partition.OPEN_API: ("cards", "deposits", "fees"),  # cards: the customer authorises a consent with card+PIN
    Partition.BATCH: tuple(BUSINESS_ANSWERS),
}


def build_hub() -> Hub:
    """The hub with every product registered (its business answers, timeout and breaker) and every partition
    routed."""
    hub = Hub()
    for product, answers in BUSINESS_ANSWERS.items():
        hub.register_product(product, ProductPolicy(product, timeout_ms=PRODUCT_TIMEOUT_MS[product]),
                             business_errors=answers)
    for partition, products in ROUTES.items():
        hub.route(partition, products)
    return hub
