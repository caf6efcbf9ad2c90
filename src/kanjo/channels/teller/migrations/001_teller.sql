-- The teller channel: the operators (bank staff) and their sessions, every branch request with its maker-checker
-- state (the idempotency record of the client's request id), and the append-only, hash-chained audit trail.
CREATE SCHEMA IF NOT EXISTS teller;

CREATE TABLE teller.operators (
    operator_id text PRIMARY KEY CHECK (operator_id ~ '^[A-Z][A-Z0-9]{2,11}$'),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    branch_code text NOT NULL CHECK (branch_code ~ '^[0-9]{3}$'),
    role text NOT NULL CHECK (role IN ('teller', 'supervisor', 'auditor')),
    active boolean NOT NULL DEFAULT true,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    failed_sign_ons integer NOT NULL DEFAULT 0 CHECK (failed_sign_ons >= 0),
    locked_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Only the SHA-256 of a session token is kept: the table gives nobody a way in.
CREATE TABLE teller.sessions (
    token_sha256 bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    operator_id text NOT NULL REFERENCES teller.operators (operator_id),
    terminal_id text NOT NULL CHECK (terminal_id ~ '^[A-Z0-9]{2,12}$'),
    signed_on_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > signed_on_at),
    signed_off_at timestamptz
);
CREATE INDEX sessions_live ON teller.sessions (operator_id) WHERE signed_off_at IS NULL;

-- One row per client request id: what was asked (content and its digest), by whom, where, whether it waits for a
-- checker, and its outcome. A retry is compared with it; an approval executes exactly its content.
CREATE TABLE teller.requests (
    request_id text PRIMARY KEY CHECK (char_length(request_id) BETWEEN 1 AND 36),
    product_request_id uuid NOT NULL UNIQUE,
    kind text NOT NULL,
    content jsonb NOT NULL,
    content_sha256 bytea NOT NULL CHECK (octet_length(content_sha256) = 32),
    maker_id text NOT NULL REFERENCES teller.operators (operator_id),
    branch_code text NOT NULL CHECK (branch_code ~ '^[0-9]{3}$'),
    terminal_id text NOT NULL,
    amount_minor bigint CHECK (amount_minor > 0),
    targets text[] NOT NULL,
    approval text CHECK (approval IN ('amount_over_threshold', 'sensitive')),
    state text NOT NULL CHECK (state IN ('pending', 'executing', 'ready', 'executed', 'refused', 'rejected',
                                         'withdrawn', 'expired')),
    checker_id text REFERENCES teller.operators (operator_id),
    decided_at timestamptz,
    decision_reason text,
    expires_at timestamptz,
    attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    attempt_started_at timestamptz,
    progress jsonb,  -- steps of a multi-step execution already done (a closing's interest and payout)
    result jsonb,
    refusal jsonb,
    made_at timestamptz NOT NULL,
    finished_at timestamptz,
    CONSTRAINT checker_is_not_maker CHECK (checker_id IS NULL OR checker_id <> maker_id),
    CONSTRAINT checked_when_needed CHECK (
        approval IS NULL OR state IN ('pending', 'rejected', 'withdrawn', 'expired') OR checker_id IS NOT NULL),
    CONSTRAINT pending_expires CHECK (state <> 'pending' OR expires_at IS NOT NULL)
);
CREATE INDEX requests_pending ON teller.requests (branch_code, made_at) WHERE state = 'pending';
CREATE INDEX requests_expiring ON teller.requests (expires_at) WHERE state = 'pending';
CREATE INDEX requests_by_maker ON teller.requests (maker_id, made_at);

-- The audit trail: every action at a terminal, in order. Entry n carries the SHA-256 of entry n-1 and its own
-- (over its canonical fields), so any change, removal or reordering is detected by recomputing the chain; the
-- head row names the last entry, so a removal at the end is detected too. Rows are never updated or deleted.
CREATE TABLE teller.audit (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    at timestamptz NOT NULL,
    operator_id text NOT NULL,
    branch_code text,
    terminal_id text,
    action text NOT NULL,
    kind text,
    request_id text,
    targets text[] NOT NULL,
    amount_minor bigint,
    outcome text NOT NULL,
    detail jsonb NOT NULL,
    prev_sha256 bytea NOT NULL CHECK (octet_length(prev_sha256) = 32),
    sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32)
);
CREATE INDEX audit_by_operator ON teller.audit (operator_id, seq);
CREATE INDEX audit_by_target ON teller.audit USING gin (targets);
CREATE INDEX audit_by_time ON teller.audit (at);
CREATE INDEX audit_by_request ON teller.audit (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE teller.audit_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL CHECK (seq >= 0),
    sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32)
);
INSERT INTO teller.audit_head (one, seq, sha256) VALUES (true, 0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION teller.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'teller.audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON teller.audit
    FOR EACH ROW EXECUTE FUNCTION teller.refuse_audit_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON teller.audit
    FOR EACH STATEMENT EXECUTE FUNCTION teller.refuse_audit_change();
