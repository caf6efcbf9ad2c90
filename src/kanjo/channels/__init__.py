"""Channels: the Backends-for-Frontends through which devices and people reach the bank — ATMs, tellers at the
branch counter, and third-party providers through the open API. Each speaks its users' language, owns its
idempotency keys and calls products through the hub.

Public surface: each channel's handle, its background sweeps, its HTTP routes, and the teller audit verification.
"""

from kanjo.channels.atm.api import router as atm_router
from kanjo.channels.atm.model import MachineKind
from kanjo.channels.atm.registry import in_doubt_report as atm_in_doubt_report
from kanjo.channels.atm.registry import register_machines as register_atms
from kanjo.channels.atm.service import PRODUCTS as ATM_PRODUCTS
from kanjo.channels.atm.service import AtmChannel
from kanjo.channels.atm.sweep import run_sweeper as run_atm_sweeper
from kanjo.channels.atm.sweep import sweep_overdue as sweep_atm_overdue
from kanjo.channels.atm.wire import AtmWire
from kanjo.channels.openapi.api import router as openapi_router
from kanjo.channels.openapi.bank_api import router as openapi_bank_router
from kanjo.channels.openapi.housekeeping import run_housekeeping as run_openapi_housekeeping
from kanjo.channels.openapi.service import PRODUCTS as OPENAPI_PRODUCTS
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.channels.teller.api import router as teller_router
from kanjo.channels.teller.audit import verify_audit as verify_teller_audit
from kanjo.channels.teller.channel import TellerChannel
from kanjo.channels.teller.operators import seed_operators as seed_teller_operators
from kanjo.channels.teller.service import expire_overdue as expire_teller_requests
from kanjo.channels.teller.service import run_expiry_sweeper as run_teller_sweeper
from kanjo.channels.teller.settings import TellerSettings

__all__ = [
    "ATM_PRODUCTS",
    "OPENAPI_PRODUCTS",
    "AtmChannel",
    "AtmWire",
    "MachineKind",
    "OpenApiChannel",
    "TellerChannel",
    "TellerSettings",
    "atm_in_doubt_report",
    "atm_router",
    "expire_teller_requests",
    "openapi_bank_router",
    "openapi_router",
    "register_atms",
    "run_atm_sweeper",
    "run_openapi_housekeeping",
    "run_teller_sweeper",
    "seed_teller_operators",
    "sweep_atm_overdue",
    "teller_router",
    "verify_teller_audit",
]
