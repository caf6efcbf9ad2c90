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
STATEMENT_PERIOD_MONTHS_MAX = limits.declare(
    "deposit_statement_period_months_max", 13, "months",
    "a statement by period covers at most 13 calendar months (a year and the same month a year back), as"
    " online banking shows; older history is a 取引明細書 ordered at a branch",
).maximum
STATEMENT_BACKDATING_DAYS_MAX = limits.declare(
    "deposit_statement_backdating_days_max", 10, "days",
    "a statement by period reads this many days of business dates beyond each end: a posting may carry a"
    " business date earlier than one booked before it (a day-end job, a catch-up) by at most this",
).maximum
STATEMENT_TRANSFERS_SCANNED_MAX = limits.declare(
    "deposit_statement_transfers_scanned_max", 20_000, "transfers",
    "transfers read to answer one page of a statement by period; beyond it the page ends early with a cursor",
).maximum
HOLD_TIMEOUT_S_MAX = limits.declare(
    "deposit_hold_timeout_s_max", 3_600, "seconds",
    "a hold (two-phase cash out) waits at most an hour for its confirmation; funds are never reserved open-ended",
).maximum
# Passbooks (通帳) and dormancy: see passbook.py and dormancy.py.
PASSBOOK_LINES_PER_PAGE_MAX = limits.declare(
    "passbook_lines_per_page_max", 24, "lines", "a passbook page has 24 printed lines; the printer then turns the page",
).maximum
PASSBOOK_PAGES_MAX = limits.declare(
    "passbook_pages_max", 10, "pages", "a passbook has 10 pages of movements; when full it is carried forward (繰越)",
).maximum
PASSBOOK_UNPOSTED_LINES_MAX = limits.declare(
    "passbook_unposted_lines_max", 30, "lines",
    "unposted items printed one per line; beyond this the oldest become one おまとめ line (合算記帳), as banks do",
).maximum
PASSBOOK_UNPOSTED_ITEMS_SCANNED_MAX = limits.declare(
    "passbook_unposted_items_scanned_max", 100_000, "items",
    "unposted movements read to print a passbook; an account this busy is served by statements (入出金明細)",
).maximum
DORMANCY_SILENCE_MONTHS_MAX = limits.declare(
    "deposit_dormancy_silence_months_max", 120, "months",
    "休眠預金等活用法: after 10 years of silence a deposit is dormant by law; the bank marks it by then at the latest",
).maximum
DORMANCY_ACCOUNTS_PER_BATCH_MAX = limits.declare(
    "deposit_dormancy_accounts_per_batch_max", 50_000, "accounts",
    "accounts marked dormant per transaction: short row locks and a bounded commit; the run loops over batches",
).maximum
DORMANCY_BATCHES_PER_RUN_MAX = limits.declare(
    "deposit_dormancy_batches_per_run_max", 2_000, "batches",
    "2,000 batches of 50,000 are 100 million accounts, more than any bank holds; more means a runaway loop",
).maximum
# 総合口座 overdrafts: see overdraft.py.
OVERDRAFT_PLEDGES_PER_ACCOUNT_MAX = limits.declare(
    "deposit_overdraft_pledges_per_account_max", 200, "time deposits",
    "time deposits read as one 総合口座's collateral while its money-out lock is held; more is refused",
).maximum
OVERDRAFT_ACCOUNTS_PER_BATCH_MAX = limits.declare(
    "deposit_overdraft_accounts_per_batch_max", 1_000, "accounts",
    "総合口座 handled per transaction by the day-end jobs (sweep, accrual, charge): short row locks; they loop",
).maximum
OVERDRAFT_CATCH_UP_DAYS_MAX = limits.declare(
    "deposit_overdraft_catch_up_days_max", 400, "days",
    "days of overdraft interest one accrual run catches up per account; a longer gap is left for the next run",
).maximum
OVERDRAFT_TRANSFERS_FOLDED_MAX = limits.declare(
    "deposit_overdraft_transfers_folded_max", 81_900, "transfers",
    "overdraft movements read per account per accrual run (ten ledger pages); an account this busy is refused",
).maximum
# Ordinary-deposit interest: see interest.py.
INTEREST_CREDITS_PER_BATCH_MAX = limits.declare(
    "deposit_interest_credits_per_batch_max", 8_190, "credits",
    "interest credits per ledger request of a payout (one ledger batch); the batch's tax follows in two transfers",
).maximum
INTEREST_BATCHES_IN_FLIGHT_MAX = limits.declare(
    "deposit_interest_batches_in_flight_max", 4, "requests",
    "payout requests awaiting the ledger at once: keeps its pipeline full, 4 × 8,190 well inside its intake",
).maximum
INTEREST_DAYS_PER_RUN_MAX = limits.declare(
    "deposit_interest_days_per_run_max", 1_000, "days",
    "days between an accrual's oldest unchanged balance and the run (one period is 184): more means a stuck job",
).maximum


def _check_interest_limits() -> None:
    """A payout page is one ledger request, and the pages in flight fit the ledger's intake together."""
    import kanjo.ledger  # noqa: F401  (declares the ledger's limits)
    from kanjo.kernel.invariants import invariant

    invariant(INTEREST_CREDITS_PER_BATCH_MAX <= limits.get("ledger_events_per_batch_max").maximum,
              "an interest page's credits fit one ledger request")
    invariant(INTEREST_CREDITS_PER_BATCH_MAX * INTEREST_BATCHES_IN_FLIGHT_MAX
              <= limits.get("ledger_intake_events_max").maximum, "the pages in flight fit the ledger's intake")


_check_interest_limits()
TOUCHED_REMEMBERED_MAX = limits.declare(
    "deposit_touched_remembered_max", 200_000, "accounts",
    "accounts whose activity of the day one process remembers having recorded (about 10 MB); past it the memory is"
    " dropped and the next movement of each account writes its date again (harmless: the same date)",
).maximum
