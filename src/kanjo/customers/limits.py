"""The customers context's named limits: CIF numbers, name and address widths, search and history pages."""

from kanjo.customers.model import ADDRESS_CHARS_MAX, CIF_NUMBER_DIGITS, CIF_NUMBER_MAX, NAME_CHARS_MAX
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits

CIF_NUMBER = limits.declare(
    "customers_cif_number_max", CIF_NUMBER_MAX, "numbers",
    "CIF numbers are printed as 10 digits on forms, cards and interface files; the sequence stops there"
    " and never wraps, because a number is never reused",
)
NAME_CHARS = limits.declare(
    "customers_name_chars_max", NAME_CHARS_MAX, "characters",
    "the widest name (kanji or kana) that teller screens, passbooks and notices print in full",
)
ADDRESS_CHARS = limits.declare(
    "customers_address_chars_max", ADDRESS_CHARS_MAX, "characters",
    "the longest address the notice envelopes and statements print",
)
SEARCH_ROWS = limits.declare(
    "customers_search_rows_max", 100, "rows", "one page of a clerk's search screen; narrow the prefix for more",
)
EVENTS_ROWS = limits.declare(
    "customers_events_rows_max", 1000, "events", "one page of a customer's history",
)

invariant(len(str(CIF_NUMBER.maximum)) == CIF_NUMBER_DIGITS, "a CIF number fits its printed width")
SEARCH_ROWS_MAX = SEARCH_ROWS.maximum
EVENTS_ROWS_MAX = EVENTS_ROWS.maximum
