"""Named limits of the time-deposits context."""

import kanjo.ledger  # noqa: F401  (declares the ledger's limits, checked against ours below)
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits

PRINCIPAL_MAX = limits.declare(
    "time_deposit_principal_max_minor", 10_000_000_000, "yen",
    "¥10 billion in one time deposit; larger placements are negotiated (自由金利) outside the rate table",
).maximum
MATURITY_BATCHES_IN_FLIGHT_MAX = limits.declare(
    "time_deposit_maturity_batches_in_flight_max", 3, "batches",
    "maturity batches awaiting the ledger at once, each holding its rows' locks and a pooled connection:"
    " keeps the ledger's pipeline full within a pool of 10",
).maximum
LEGS_PER_SETTLEMENT_MAX = 4  # interest, national tax, local tax, payout: one linked chain per deposit
MATURITIES_PER_BATCH_MAX = limits.declare(
    "time_deposit_maturities_per_batch_max", 2_047, "deposits",
    "deposits settled per ledger request: 4 legs each must fit one ledger batch (8,190 events)",
).maximum

invariant(MATURITIES_PER_BATCH_MAX * LEGS_PER_SETTLEMENT_MAX
          <= limits.get("ledger_events_per_batch_max").maximum,
          "a batch of maturities must fit one ledger request, never splitting a deposit's chain")
