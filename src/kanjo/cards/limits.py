"""Named limits of the cards context."""

from kanjo.cards.model import DAILY_LIMIT_DEFAULT_MINOR, DAILY_LIMIT_STEP_MINOR, SERIAL_DIGITS
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits

PIN_TRIES_MAX = limits.declare(
    "card_pin_consecutive_wrong_max", 3, "tries",
    "the try counter is what protects a 4-digit PIN: 3 guesses in 10,000 before the card is locked and kept",
).maximum
DAILY_LIMIT_MAX = limits.declare(
    "card_daily_withdrawal_limit_max_minor", 2_000_000, "yen",
    "the most a customer may set at a teller as the card's daily ATM withdrawal limit (1日の引出限度額, lowered by"
    " the banks since 2006 against forged and stolen cards)",
).maximum
CARD_SERIAL_MAX = limits.declare(
    "card_serial_max", 10 ** SERIAL_DIGITS - 1, "serials",
    "a card number has 9 serial digits between the issuer prefix and the check digit; numbers are never reused",
).maximum
ROWS_PER_READ_MAX = limits.declare(
    "card_rows_per_read_max", 1_000, "rows",
    "cards (or card events) one read returns: a customer's life of cards, reissues included, fits far below it",
).maximum
REASON_CHARS_MAX = limits.declare(
    "card_event_reason_chars_max", 200, "characters", "a reason recorded with a card event fits a teller's screen line",
).maximum
ACTOR_CHARS_MAX = limits.declare(
    "card_event_actor_chars_max", 64, "characters", "an operator id (or \"customer\") recorded with a card event",
).maximum
USAGE_PURGE_ROWS_MAX = limits.declare(
    "card_usage_purge_rows_per_run_max", 100_000, "rows",
    "daily-usage rows (one per card and day of use) one purge run deletes, in one short transaction",
).maximum

invariant(0 <= DAILY_LIMIT_DEFAULT_MINOR <= DAILY_LIMIT_MAX and DAILY_LIMIT_MAX % DAILY_LIMIT_STEP_MINOR == 0,
          "the default daily limit is one a customer could set, and the maximum is a whole step")
