"""The ledger's metrics (Prometheus): throughput, batch sizes, latency, and result codes by kind."""

from prometheus_client import Counter, Gauge, Histogram

TRANSFERS_COMMITTED = Counter("kanjo_ledger_transfers_committed", "transfers committed to the ledger")
ACCOUNTS_CREATED = Counter("kanjo_ledger_accounts_created", "accounts created")
TRANSFER_RESULTS = Counter(
    "kanjo_ledger_transfer_results", "transfer events answered, by result code", ["result"]
)
ACCOUNT_RESULTS = Counter("kanjo_ledger_account_results", "account events answered, by result code", ["result"])
HOLDS_EXPIRED = Counter("kanjo_ledger_holds_expired", "pending holds released by the expiry sweep")
BATCH_EVENTS = Histogram(
    "kanjo_ledger_batch_events", "events per committed batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8190),
)
BATCH_SECONDS = Histogram(
    "kanjo_ledger_batch_seconds", "time to apply and commit one batch",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
REQUEST_SECONDS = Histogram(
    "kanjo_ledger_request_seconds", "time from intake to answer of one request",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
BUSY_REFUSALS = Counter("kanjo_ledger_busy_refusals", "requests refused because the intake queue was full")
BATCH_FAILURES = Counter("kanjo_ledger_batch_failures", "batches that failed to commit, by reason", ["reason"])
BATCH_REDOS = Counter("kanjo_ledger_batch_redos", "batches re-run with id lookups after a replayed id")
INTAKE_EVENTS = Gauge("kanjo_ledger_intake_events", "events waiting in the intake queue")
