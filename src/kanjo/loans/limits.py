"""Named limits of the loans context."""

import kanjo.ledger  # noqa: F401  (declares the ledger's limits, checked against ours below)
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits

CREDIT_LINE_MAX = limits.declare(
    "card_loan_credit_line_max_minor", 8_000_000, "yen",
    "the largest card-loan line offered (800万円); larger needs are underwritten as another loan product",
).maximum
CASH_DRAW_MAX = limits.declare(
    "card_loan_cash_draw_per_transaction_max_minor", 500_000, "yen",
    "an ATM pays out at most ¥500,000 in one transaction",
).maximum
AMOUNT_PER_TRANSACTION_MAX = limits.declare(
    "card_loan_amount_per_transaction_max_minor", 10_000_000, "yen",
    "more than any card loan can owe (the largest line plus its arrears); a larger amount is a keying error",
).maximum
CONTRACTS_PER_BATCH_MAX = limits.declare(
    "card_loan_contracts_per_batch_max", 8_190, "contracts",
    "contracts a day-end job locks and processes at once: one ledger lookup and one ledger request"
    " (a collection is one transfer per contract)",
).maximum

invariant(CONTRACTS_PER_BATCH_MAX <= limits.get("ledger_events_per_batch_max").maximum
          and CONTRACTS_PER_BATCH_MAX <= limits.get("ledger_lookup_ids_max").maximum,
          "a batch of contracts fits one ledger request and one ledger lookup")
invariant(CASH_DRAW_MAX <= CREDIT_LINE_MAX < AMOUNT_PER_TRANSACTION_MAX,
          "an ATM draw fits a line, and a line fits one transaction")
