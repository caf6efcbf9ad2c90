"""Benchmarks (`kanjo bench ...`): measured throughput and latency, reported as JSON lines; not part of `make test`.

Public surface for the command line: `run_ledger_bench`.
"""

from kanjo.bench.ledger import run_ledger_bench

__all__ = ["run_ledger_bench"]
