"""Named limits of the fees context."""

from kanjo.kernel.limits import limits

FEE_PER_TRANSACTION_MAX = limits.declare(
    "fee_per_transaction_max_minor", 10_000, "yen",
    "no retail tariff charges more than ¥10,000 for one transaction; a tariff's own maximum must be below it",
).maximum
FEES_PER_REFUND_REQUEST_MAX = limits.declare(
    "fees_per_refund_request_max", 10_000, "fees",
    "one bulk refund (an outage's worth of fees); larger incidents are split into several requests",
).maximum
REFUND_TRANSFERS_PER_BATCH_MAX = limits.declare(
    "fee_refund_transfers_per_batch_max", 500, "transfers",
    "refunds are sent to the ledger in batches this big, well under ledger_events_per_batch_max",
).maximum
ACCOUNT_CODES_CACHED_MAX = limits.declare(
    "fees_account_codes_cached_max", 200_000, "accounts",
    "accounts whose ledger code a fee charge remembers (about 100 bytes each); past it the oldest is forgotten",
).maximum
