"""Channels: the Backends-for-Frontends through which devices and people reach the bank (ATM; teller and open API
to come). Each speaks its device's language, owns its idempotency keys and calls products through the hub.

Public surface: the ATM channel's handle, its sweep of unacknowledged withdrawals, and its HTTP routes.
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

__all__ = [
    "ATM_PRODUCTS",
    "AtmChannel",
    "AtmWire",
    "MachineKind",
    "atm_in_doubt_report",
    "atm_router",
    "register_atms",
    "run_atm_sweeper",
    "sweep_atm_overdue",
]
