"""Benchmarks (`kanjo bench ...`): measured throughput and latency, reported as JSON lines; not part of `make test`."""
