"""Loans: card loans (カードローン) on the ledger — contract, draw, repay, daily accrual, monthly collection, arrears.

Public surface for other contexts: the domain types and errors, the handlers, the day-end jobs and the
verification. The HTTP router lives in `kanjo.loans.api`, which the app imports.
"""

from kanjo.loans.cash_draw import CashHold, draw_cash_late, hold_cash_draw, post_cash_draw, void_cash_draw
from kanjo.loans.dayend import AccrualRun, CollectionRun, accrue_interest, collect_interest, collection_transfer_id
from kanjo.loans.links import account_closing_refusal
from kanjo.loans.model import (
    CODE_LABELS,
    Action,
    Channel,
    Collection,
    Contract,
    ContractView,
    IllegalTransition,
    Movement,
    Refused,
    Status,
    interest_minor,
    rate_ceiling_percent,
)
from kanjo.loans.preflight import transfers_needed_for_collection
from kanjo.loans.service import (
    Loans,
    NotFound,
    change_status,
    close_contract,
    collections_of,
    contracts_of_customer,
    derived_id,
    draw,
    get_contract,
    open_contract,
    repay,
    resume,
    suspend,
)
from kanjo.loans.verify import verify_loans

__all__ = [
    "CODE_LABELS",
    "AccrualRun",
    "Action",
    "CashHold",
    "Channel",
    "Collection",
    "CollectionRun",
    "Contract",
    "ContractView",
    "IllegalTransition",
    "Loans",
    "Movement",
    "NotFound",
    "Refused",
    "Status",
    "account_closing_refusal",
    "accrue_interest",
    "change_status",
    "close_contract",
    "collect_interest",
    "collection_transfer_id",
    "collections_of",
    "contracts_of_customer",
    "derived_id",
    "draw",
    "draw_cash_late",
    "get_contract",
    "hold_cash_draw",
    "interest_minor",
    "open_contract",
    "post_cash_draw",
    "rate_ceiling_percent",
    "repay",
    "resume",
    "suspend",
    "transfers_needed_for_collection",
    "verify_loans",
    "void_cash_draw",
]
