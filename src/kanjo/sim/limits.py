"""Named limits of the ATM fleet simulator: fleet size, connections, retries, journals and a run's length."""

from kanjo.kernel.limits import limits

ATMS_MAX = limits.declare(
    "sim_atms_max", 100_000, "machines",
    "ATMs one simulator process drives (each a task and a journal); the largest Japanese networks run ~30,000",
).maximum
CONNECTIONS_MAX = limits.declare(
    "sim_connections_max", 256, "connections",
    "keep-alive connections the fleet shares; each is a socket and a task on the server too",
).maximum
TRANSACTIONS_PER_RUN_MAX = limits.declare(
    "sim_transactions_per_run_max", 2_000_000, "transactions",
    "every transaction stays in its ATM's journal until the run ends: about 300 MB at this many; run longer"
    " drills as several runs that continue the journal numbers",
).maximum
CUSTOMERS_WAITING_PER_ATM_MAX = limits.declare(
    "sim_customers_waiting_per_atm_max", 16, "customers",
    "customers queueing at one machine while it serves another; the next one walks away (counted as abandoned)",
).maximum
RETRIES_MAX = limits.declare(
    "sim_retries_max", 10, "retries",
    "a device resends one message at most this often (with the same journal number) before it gives up",
).maximum
REQUEST_TIMEOUT_MS_MAX = limits.declare(
    "sim_request_timeout_ms_max", 120_000, "ms",
    "the longest a device waits for one answer; a customer does not stand at a machine longer",
).maximum
WARMUP_S_MAX = limits.declare(
    "sim_warmup_s_max", 600, "s",
    "a run's warm-up (load at the same rate whose latencies are reported apart): enough for caches, pools and"
    " the day's first touch of every account; longer is a run of its own",
).maximum
CARDS_MAX = limits.declare(
    "sim_cards_max", 1_000_000, "cards", "cards the fleet holds in memory to draw customers from",
).maximum
LINK_DOWN_WINDOWS_MAX = limits.declare(
    "sim_link_down_windows_max", 100, "windows", "network-flap windows in one fault plan",
).maximum
JOURNAL_ENTRIES_PER_UPLOAD_MAX = limits.declare(
    "sim_journal_entries_per_upload_max", 1_000, "entries",
    "the protocol's page size for a journal upload (POST /atm/v1/journal takes at most 1,000 entries)",
).maximum
JOURNAL_NO_MAX = limits.declare(
    "sim_journal_no_max", 99_999_999, "numbers",
    "an ATM's journal number has eight digits as printed on its journal roll; a machine never reuses one",
).maximum
