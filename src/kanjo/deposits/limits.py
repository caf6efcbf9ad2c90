"""Named limits of the deposits context."""

from kanjo.kernel.limits import limits

ACCOUNT_NUMBERS_PER_BRANCH_MAX = limits.declare(
    "deposit_account_numbers_per_branch_max", 9_999_999, "numbers",
    "a 7-digit account number per branch; numbers are never reused, so a branch runs out after this many",
).maximum
AMOUNT_PER_TRANSACTION_MAX = limits.declare(
    "deposit_amount_per_transaction_max_minor", 10_000_000_000, "yen",
    "¥10 billion in one posting; larger movements go through the wholesale (RTGS) route",
).maximum
STATEMENT_LINES_MAX = limits.declare(
    "deposit_statement_lines_max", 500, "lines", "one page of a statement (入出金明細); page by cursor",
).maximum
