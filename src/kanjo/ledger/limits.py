"""The ledger's named limits: every queue, batch, cache and page it keeps has a maximum and a reason."""

from kanjo.kernel.limits import limits

EVENTS_PER_BATCH_MAX = limits.declare(
    "ledger_events_per_batch_max", 8190, "events",
    "one request and one database transaction; keeps a batch commit well under a second",
).maximum
INTAKE_EVENTS_MAX = limits.declare(
    "ledger_intake_events_max", 8190 * 16, "events",
    "bounded intake queue (about 2 s of work at 50k/s); beyond it callers are told busy, never left hanging",
).maximum
ACCOUNT_CACHE_ENTRIES_MAX = limits.declare(
    "ledger_account_cache_entries_max", 2_000_000, "accounts",
    "the writer's in-memory balances (~0.5 GB); colder accounts are reloaded from PostgreSQL",
).maximum
HOLD_CACHE_ENTRIES_MAX = limits.declare(
    "ledger_hold_cache_entries_max", 1_000_000, "holds",
    "pending transfers kept in memory for post/void; others are reloaded",
).maximum
REJECTED_IDS_CACHED_MAX = limits.declare(
    "ledger_rejected_ids_cached_max", 1_000_000, "ids",
    "failed ids kept in memory to answer retries without a lookup; beyond it every batch looks ids up",
).maximum
EXPIRY_QUEUE_ENTRIES_MAX = limits.declare(
    "ledger_expiry_queue_entries_max", 1_000_000, "holds",
    "timed holds tracked in memory; later ones are read from the index when their time comes",
).maximum
PAGE_ROWS_MAX = limits.declare(
    "ledger_page_rows_max", 8190, "rows",
    "one page of an account's transfers or balances; callers page with timestamps",
).maximum
LOOKUP_IDS_MAX = limits.declare(
    "ledger_lookup_ids_max", 8190, "ids", "ids in one lookup request, as many as one batch",
).maximum
TRANSFERS_STORED = limits.declare(
    "ledger_transfers_stored_max", 1_000_000_000, "transfers",
    "the transfers table's provisioned space (about 400 bytes a transfer with its indexes: some 400 GB at this"
    " default); the operator sets it to the storage given and raises it as storage grows. Batch jobs prove they fit"
    " before they start and stop alone at it; online is never refused by it",
    adjustable=True,
)
