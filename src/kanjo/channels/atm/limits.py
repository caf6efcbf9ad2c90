"""Named limits of the ATM channel."""

from kanjo.kernel.limits import limits

JOURNAL_NO_MAX = limits.declare(
    "atm_journal_no_max", 99_999_999, "numbers",
    "an ATM's journal number has eight digits as printed on its journal roll; a machine never reuses one",
).maximum
WITHDRAWAL_AMOUNT_MAX = limits.declare(
    "atm_withdrawal_amount_max_minor", 500_000, "yen",
    "one cash-out at an ATM dispenses at most 50 notes of ¥10,000 (the cassette's per-transaction maximum)",
).maximum
DEPOSIT_AMOUNT_MAX = limits.declare(
    "atm_deposit_amount_max_minor", 2_000_000, "yen",
    "an ATM's note acceptor counts at most 200 notes per deposit",
).maximum
TRANSFER_AMOUNT_MAX = limits.declare(
    "atm_transfer_amount_max_minor", 1_000_000, "yen",
    "a transfer keyed at an ATM with a card is capped (振り込め詐欺 countermeasure); larger ones go to a branch",
).maximum
ACK_TIMEOUT_S = limits.declare(
    "atm_ack_timeout_s_max", 60, "seconds",
    "an ATM confirms a cash-out within a minute of the authorisation or the hold is voided and the item is in doubt",
).maximum
HOLD_MARGIN_S = 60  # the ledger's own expiry of the hold, after the channel's deadline: a safety net, not the rule
JOURNAL_ENTRIES_PER_UPLOAD_MAX = limits.declare(
    "atm_journal_entries_per_upload_max", 1_000, "entries",
    "one journal upload for reconciliation is read and settled in one request; larger journals come in pages",
).maximum
MACHINES_PER_REGISTRATION_MAX = limits.declare(
    "atm_machines_per_registration_max", 1_000, "machines", "ATMs registered by one request",
).maximum
MACHINES_MAX = limits.declare(
    "atm_machines_max", 100_000, "machines",
    "ATMs the registry (kept in memory for routing) holds; the largest Japanese networks run about 30,000",
).maximum
IN_DOUBT_SWEEP_BATCH_MAX = limits.declare(
    "atm_in_doubt_sweep_batch_max", 500, "holds",
    "unacknowledged holds voided per sweep (each sweep is one short pass); the sweep runs every second",
).maximum
DUPLICATE_WAIT_MS = limits.declare(
    "atm_duplicate_wait_ms_max", 2_000, "milliseconds",
    "a retry arriving while the first message is still being processed waits this long for its answer, then is"
    " told to retry (the card is returned)",
).maximum
NOTICES_ACTIVE_MAX = limits.declare(
    "atm_notices_active_max", 100, "notices", "screen notices live at once; more would not fit any screen",
).maximum
AWAITING_ACK_REMEMBERED_MAX = limits.declare(
    "atm_awaiting_ack_remembered_max", 100_000, "cash items",
    "authorised cash items the process remembers until their acknowledgement (500 a second for a 60 s deadline is"
    " 30,000); past it the oldest is forgotten and its acknowledgement reads the journal, as after a restart",
).maximum
