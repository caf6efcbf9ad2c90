"""Named limits of the teller channel: sign-on, sessions, pending requests, pages of reads, the audit trail."""

from kanjo.kernel.limits import limits

SIGN_ON_FAILURES_MAX = limits.declare(
    "teller_sign_on_failures_max", 5, "attempts",
    "consecutive wrong passwords before the operator is locked; a supervisor resets the password to unlock",
).maximum
SESSION_TTL_S_MAX = limits.declare(
    "teller_session_ttl_s_max", 43_200, "seconds",
    "a teller session lasts at most a working day (12 h); the operator signs on again the next day",
).maximum
SESSION_IDLE_S_MAX = limits.declare(
    "teller_session_idle_s_max", 3_600, "seconds",
    "a terminal left unused longer than this needs a new sign-on (a counter is never left open for long)",
).maximum
SESSIONS_PER_OPERATOR_MAX = limits.declare(
    "teller_sessions_per_operator_max", 4, "sessions",
    "live sessions of one operator: a person works at one terminal (a few allow a re-sign-on after a crash)",
).maximum
PASSWORD_CHARS_MAX = limits.declare(
    "teller_password_chars_max", 128, "characters",
    "a password is hashed whole; a longer one is refused before hashing (no hashing of megabytes)",
).maximum
PENDING_EXPIRY_S_MAX = limits.declare(
    "teller_pending_expiry_s_max", 28_800, "seconds",
    "a request waiting for a checker never outlives the branch's business day (8 h)",
).maximum
PENDING_PER_BRANCH_MAX = limits.declare(
    "teller_pending_per_branch_max", 1_000, "requests",
    "requests waiting for a checker at one branch; a queue this long means nobody is checking",
).maximum
APPROVAL_THRESHOLD_MAX_MINOR = limits.declare(
    "teller_approval_threshold_max_minor", 10_000_000_000, "yen",
    "a threshold above the largest posting (¥10 billion) would let every amount through unchecked",
).maximum
AMOUNT_MAX_MINOR = limits.declare(
    "teller_amount_max_minor", 10_000_000_000, "yen",
    "one teller request moves at most what one deposit posting may (¥10 billion); more goes through RTGS",
).maximum
REQUEST_ID_CHARS_MAX = limits.declare(
    "teller_request_id_chars_max", 36, "characters",
    "a client request id is a UUID (36) or a terminal id and its sequence number (at most 12 + 1 + 10)",
).maximum
REQUESTS_PAGE_ROWS_MAX = limits.declare(
    "teller_requests_page_rows_max", 200, "requests", "requests listed per page (a supervisor's queue screen)",
).maximum
AUDIT_PAGE_ROWS_MAX = limits.declare(
    "teller_audit_page_rows_max", 500, "entries", "audit entries read per page; page on with after_seq",
).maximum
AUDIT_VERIFY_PAGE_ROWS = limits.declare(
    "teller_audit_verify_page_rows_max", 5_000, "entries",
    "audit entries the chain verification reads per query; it pages through the whole trail",
).maximum
EXPIRY_SWEEP_BATCH_MAX = limits.declare(
    "teller_expiry_sweep_batch_max", 500, "requests", "pending requests expired per sweep; the sweep loops",
).maximum
DUPLICATE_WAIT_MS = limits.declare(
    "teller_duplicate_wait_ms_max", 3_000, "milliseconds",
    "a retry arriving while the same request is executing waits this long for its outcome, then is told to retry",
).maximum
SEARCH_ROWS_MAX = limits.declare(
    "teller_search_rows_max", 50, "customers", "customers shown by one search on a teller's screen",
).maximum
