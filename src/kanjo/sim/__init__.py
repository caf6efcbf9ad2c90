"""Counterparty and device simulators (DESIGN §2): for now the ATM fleet — load generator and device side of drills.

It speaks the ATM protocol (docs/atm-protocol.md) over HTTP only and imports nothing of the bank's internals.
Public surface: the fleet and its config, the fault plan, the pure plan and roster, the command's entry points.
"""

from kanjo.sim.fleet import Fleet
from kanjo.sim.main import load_cards, main, simulate_atms
from kanjo.sim.model import (
    DEFAULT_MIX,
    Atm,
    AtmKind,
    Card,
    FaultPlan,
    FleetConfig,
    JournalEntry,
    Message,
    Operation,
    Outcome,
    Planned,
    atm_roster,
    card_from_dict,
    parse_link_down,
    parse_mix,
    plan,
)
from kanjo.sim.report import percentiles_ms

__all__ = [
    "DEFAULT_MIX",
    "Atm",
    "AtmKind",
    "Card",
    "FaultPlan",
    "Fleet",
    "FleetConfig",
    "JournalEntry",
    "Message",
    "Operation",
    "Outcome",
    "Planned",
    "atm_roster",
    "card_from_dict",
    "load_cards",
    "main",
    "parse_link_down",
    "parse_mix",
    "percentiles_ms",
    "plan",
    "simulate_atms",
]
