"""Drills (RESILIENCE.md): each builds a failure real banks suffered on a running kanjo, injects it under load,
checks what customers and the books saw, and reports one JSON object with every pass criterion.

Public surface: `run_drill(name, options, url= | server_dsn=)`, the drills' names and options, the flapping TCP link.
"""

from kanjo.drills.batch_overrun import BatchOverrunOptions
from kanjo.drills.hot_account import HotAccountOptions
from kanjo.drills.model import Criterion, FleetOptions, NetworkFlapOptions, ProductDownOptions, flap_windows
from kanjo.drills.month_end_bulk import MonthEndBulkOptions, measure_posting
from kanjo.drills.proxy import FlappingLink
from kanjo.drills.runner import DRILLS, run_drill

__all__ = [
    "DRILLS",
    "BatchOverrunOptions",
    "Criterion",
    "FlappingLink",
    "FleetOptions",
    "HotAccountOptions",
    "MonthEndBulkOptions",
    "NetworkFlapOptions",
    "ProductDownOptions",
    "flap_windows",
    "measure_posting",
    "run_drill",
]
