-- The ops context's own schema: alerts, deduplicated (one open alert per key, with a count), kept across restarts.
-- Resolved alerts are history, pruned to ops_alert_history_max, oldest first.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE ops.alerts (
    id             uuid PRIMARY KEY,
    alert_key      text NOT NULL CHECK (char_length(alert_key) BETWEEN 5 AND 300),
    rule           text NOT NULL CHECK (rule ~ '^[a-z][a-z0-9_]{0,63}$'),
    component      text NOT NULL CHECK (component ~ '^[a-z][a-z0-9_]{0,63}$'),
    subject        text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 128),
    source         text NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]{0,63}$'),
    severity       text NOT NULL CHECK (severity IN ('warning', 'major', 'critical')),
    message        text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 500),
    state          text NOT NULL CHECK (state IN ('open', 'resolved')),
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    resolved_at    timestamptz,
    count          bigint NOT NULL CHECK (count >= 1),
    CONSTRAINT key_is_rule_component_subject CHECK (alert_key = rule || '/' || component || '/' || subject),
    CONSTRAINT resolved_has_a_time CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT seen_in_order CHECK (last_seen >= first_seen AND (resolved_at IS NULL OR resolved_at >= last_seen))
);
-- Deduplication, defended in the database too: at most one open alert per key.
CREATE UNIQUE INDEX alerts_one_open_per_key ON ops.alerts (alert_key) WHERE state = 'open';
-- Listing newest first, and pruning the oldest resolved.
CREATE INDEX alerts_by_first_seen ON ops.alerts (first_seen DESC, id DESC);
CREATE INDEX alerts_resolved_by_age ON ops.alerts (resolved_at, id) WHERE state = 'resolved';
