"""The teller channel: the Backend-for-Frontend of branch counters (docs/teller.md), with maker-checker and an
append-only, hash-chained audit trail."""
