"""Customers (CIF, 顧客管理): individuals and corporations, contact, identity verification and status.

Public surface for other contexts: the domain types and errors, and the handlers. The HTTP router
lives in `kanjo.customers.api`, which the app imports.
"""

from kanjo.customers.model import (
    CIF_NUMBER_MAX,
    Contact,
    Customer,
    CustomerError,
    CustomerKind,
    CustomerNotFound,
    CustomerStatus,
    IdentityVerification,
    IdentityVerificationUpdate,
    IllegalTransition,
    InvalidField,
    NewCustomer,
    RequestConflict,
    format_cif_number,
    normalise_name_kana,
)
from kanjo.customers.service import (
    SearchResult,
    account_opening_refusal,
    customer_history,
    freeze_customer,
    get_customer,
    record_death,
    record_identity_verification,
    register_customer,
    search_customers,
    unfreeze_customer,
    update_contact,
)
from kanjo.customers.store import HistoryEntry

__all__ = [
    "CIF_NUMBER_MAX",
    "Contact",
    "Customer",
    "CustomerError",
    "CustomerKind",
    "CustomerNotFound",
    "CustomerStatus",
    "HistoryEntry",
    "IdentityVerification",
    "IdentityVerificationUpdate",
    "IllegalTransition",
    "InvalidField",
    "NewCustomer",
    "RequestConflict",
    "SearchResult",
    "account_opening_refusal",
    "customer_history",
    "format_cif_number",
    "freeze_customer",
    "get_customer",
    "normalise_name_kana",
    "record_death",
    "record_identity_verification",
    "register_customer",
    "search_customers",
    "unfreeze_customer",
    "update_contact",
]
