"""Named limits of the open API channel: clients, their rates and quotas, tokens, consents, transfers, pages, the
access log's retention and the cost of checking client secrets."""

from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits

CLIENTS_MAX = limits.declare(
    "openapi_clients_max", 10_000, "clients",
    "registered provider clients; each has a token bucket in memory. Japan has about a hundred 電子決済等代行業者,"
    " each with a few applications",
).maximum
CLIENT_RATE_PER_S_MAX = limits.declare(
    "openapi_client_rate_per_s_max", 100, "requests/s",
    "the sustained rate one client may be given: the open API partition runs 16 calls at once, and no single"
    " provider may take all of it",
).maximum
CLIENT_BURST_MAX = limits.declare(
    "openapi_client_burst_max", 200, "requests",
    "the token bucket's depth of one client: two seconds at the highest rate",
).maximum
CLIENT_DAILY_QUOTA_MAX = limits.declare(
    "openapi_client_daily_quota_max", 5_000_000, "requests/day",
    "calls one client may make per JST calendar day; each call writes one access-log row",
).maximum
ACCESS_TOKEN_LIFETIME_S_MAX = limits.declare(
    "openapi_access_token_lifetime_s_max", 3_600, "seconds",
    "an access token lives at most an hour; a provider asks for a new one with its client credentials",
).maximum
TOKENS_LIVE_PER_CLIENT_MAX = limits.declare(
    "openapi_tokens_live_per_client_max", 100, "tokens",
    "unexpired tokens one client may hold; a well-behaved client reuses its token until it expires",
).maximum
SECRET_CHECKS_IN_FLIGHT_MAX = limits.declare(
    "openapi_secret_checks_in_flight_max", 2, "checks",
    "argon2id checks of client secrets running at once (19 MiB and ~25 ms of one core each): one per core",
).maximum
SECRET_CHECKS_WAITING_MAX = limits.declare(
    "openapi_secret_checks_waiting_max", 64, "checks",
    "token requests waiting for a secret check; beyond it the token endpoint answers 503 at once",
).maximum
CONSENT_VALIDITY_DAYS_MAX = limits.declare(
    "openapi_consent_validity_days_max", 180, "days",
    "a customer's consent to a provider lasts at most 180 days; the customer then confirms it again",
).maximum
CONSENT_AUTHORISE_WITHIN_S = limits.declare(
    "openapi_consent_authorise_within_s_max", 1_800, "seconds",
    "a consent request waits at most 30 minutes for the customer's authorisation, then lapses",
).maximum
CONSENTS_PENDING_PER_ACCOUNT_MAX = limits.declare(
    "openapi_consents_pending_per_account_max", 5, "consents",
    "consent requests one client may have waiting for one account: a provider cannot flood a customer",
).maximum
TRANSFER_AMOUNT_MAX = limits.declare(
    "openapi_transfer_amount_max_minor", 10_000_000, "yen",
    "one transfer initiated by a provider: internet banking's ceiling; larger payments go through the bank's own"
    " channels",
).maximum
TRANSFER_DAILY_AMOUNT_MAX = limits.declare(
    "openapi_transfer_daily_amount_max_minor", 10_000_000, "yen",
    "transfers one consent may initiate per JST calendar day (振り込め詐欺 countermeasure, as internet banking)",
).maximum
STATEMENT_PERIOD_DAYS_MAX = limits.declare(
    "openapi_statement_period_days_max", 366, "days",
    "a statement through a provider covers at most a year of business dates; older history at the bank",
).maximum
STATEMENT_PAGE_LINES_MAX = limits.declare(
    "openapi_statement_page_lines_max", 200, "lines", "one page of a statement through the open API",
).maximum
ACCESS_LOG_PAGE_ROWS_MAX = limits.declare(
    "openapi_access_log_page_rows_max", 500, "rows", "one page of the access log for operations",
).maximum
LIST_PAGE_ROWS_MAX = limits.declare(
    "openapi_list_page_rows_max", 100, "rows", "one page of clients or consents for operations",
).maximum
ACCESS_LOG_RETENTION_DAYS = limits.declare(
    "openapi_access_log_retention_days_max", 400, "days",
    "the access log keeps 13 months of calls online for audits and customers' disputes; older rows are deleted",
).maximum
HOUSEKEEPING_ROWS_PER_PASS_MAX = limits.declare(
    "openapi_housekeeping_rows_per_pass_max", 10_000, "rows",
    "expired tokens, old quota counters and old access-log rows deleted per statement: short locks; it loops",
).maximum
REQUEST_BODY_BYTES_MAX = limits.declare(
    "openapi_request_body_bytes_max", 16_384, "bytes",
    "a provider's request (a token request, a consent, a transfer) is a few hundred bytes",
).maximum
FORM_FIELDS_MAX = limits.declare(
    "openapi_form_fields_max", 16, "fields", "parameters of one OAuth form request (RFC 6749 uses at most five)",
).maximum
IDEMPOTENCY_KEY_CHARS_MAX = limits.declare(
    "openapi_idempotency_key_chars_max", 64, "characters",
    "an Idempotency-Key (a UUID is 36); stored with every consent and transfer it names",
).maximum
# A transfer being processed is another request's for this long (the open API partition's deadline is 5 s): a
# retry within it waits for the first answer; after it, the record belongs to a process that died and is taken over.
IN_FLIGHT_WINDOW_S = 15


def _check_limits() -> None:
    """A statement page through the open API is one page of the deposits context's statement, and a consent's
    daily maximum can hold at least one transfer of the largest size."""
    import kanjo.deposits  # noqa: F401  (declares the deposits' limits)

    invariant(STATEMENT_PAGE_LINES_MAX <= limits.get("deposit_statement_lines_max").maximum,
              "an open API statement page fits one deposits statement page")
    invariant(TRANSFER_AMOUNT_MAX <= TRANSFER_DAILY_AMOUNT_MAX, "one transfer fits a day's maximum")
    invariant(TRANSFER_AMOUNT_MAX <= limits.get("deposit_amount_per_transaction_max_minor").maximum,
              "an open API transfer fits one deposits posting")


_check_limits()
