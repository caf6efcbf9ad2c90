"""Benchmarks (`kanjo bench ...`): measured throughput and latency, reported as JSON lines; not part of `make test`.

Public surface for the command line: `run_ledger_bench`, `run_atm_bench`, `run_month_end_bench` (and
`seed_atm_bank`, which seeds a running kanjo with ATMs and carded customers over HTTP).
"""

from kanjo.bench.atm import run_atm_bench, seed_atm_bank
from kanjo.bench.ledger import run_ledger_bench
from kanjo.bench.month_end import run_month_end_bench

__all__ = ["run_atm_bench", "run_ledger_bench", "run_month_end_bench", "seed_atm_bank"]
