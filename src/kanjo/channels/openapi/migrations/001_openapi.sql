-- The open API channel (電子決済等代行業者): provider clients and their history, access tokens (only their SHA-256),
-- daily quota counters, customers' consents and their history, transfers initiated (the idempotency record of
-- (client, Idempotency-Key)), and the access log of every call.
CREATE SCHEMA IF NOT EXISTS openapi;

CREATE TABLE openapi.clients (
    client_id text PRIMARY KEY CHECK (client_id ~ '^kc_[0-9a-f]{24}$'),
    request_id uuid NOT NULL UNIQUE,
    fingerprint bytea NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    registration_number text NOT NULL CHECK (length(registration_number) BETWEEN 1 AND 40),
    secret_hash text NOT NULL,
    secret_rotated_by uuid,  -- the request id of the last rotation: a retried rotation is recognised
    scopes text[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['balance', 'statement', 'transfer']),
    status text NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    rate_per_s integer NOT NULL CHECK (rate_per_s >= 1),
    burst integer NOT NULL CHECK (burst >= 1),
    daily_quota integer NOT NULL CHECK (daily_quota >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX clients_by_registration ON openapi.clients (registration_number);

CREATE TABLE openapi.client_events (
    id bigserial PRIMARY KEY,
    client_id text NOT NULL REFERENCES openapi.clients (client_id),
    event text NOT NULL,
    status text NOT NULL,
    by text NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX client_events_of_client ON openapi.client_events (client_id, id);

CREATE TABLE openapi.tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    client_id text NOT NULL REFERENCES openapi.clients (client_id),
    scopes text[] NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > issued_at),
    revoked_at timestamptz
);
CREATE INDEX tokens_of_client ON openapi.tokens (client_id, expires_at);
CREATE INDEX tokens_by_expiry ON openapi.tokens (expires_at);

-- Calls per client per JST calendar day: the daily quota survives a restart and is shared by every process.
CREATE TABLE openapi.usage (
    client_id text NOT NULL REFERENCES openapi.clients (client_id),
    day date NOT NULL,
    calls integer NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (client_id, day)
);
CREATE INDEX usage_by_day ON openapi.usage (day);

CREATE TABLE openapi.consents (
    consent_id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- the order requests arrived in (ids are random)
    client_id text NOT NULL REFERENCES openapi.clients (client_id),
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,
    branch_code text NOT NULL CHECK (branch_code ~ '^[0-9]{3}$'),
    account_number integer NOT NULL CHECK (account_number BETWEEN 1 AND 9999999),
    account_id uuid,  -- known once the customer authorised it with the account's card
    customer_id uuid,
    scopes text[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['balance', 'statement', 'transfer']),
    transfer_max_minor bigint CHECK (transfer_max_minor > 0),
    daily_transfer_max_minor bigint CHECK (daily_transfer_max_minor >= transfer_max_minor),
    status text NOT NULL CHECK (status IN ('pending', 'active', 'revoked', 'superseded')),
    requested_at timestamptz NOT NULL,
    authorise_by timestamptz NOT NULL,
    expires_at timestamptz NOT NULL CHECK (expires_at > requested_at),
    authorised_at timestamptz,
    authorised_card text,  -- masked: the last four digits
    revoked_at timestamptz,
    revoked_by text CHECK (revoked_by IN ('customer', 'bank', 'provider')),
    revoke_reason text,
    UNIQUE (client_id, idempotency_key),
    CHECK ((transfer_max_minor IS NULL) = NOT ('transfer' = ANY (scopes))),
    CHECK (status <> 'active' OR (account_id IS NOT NULL AND customer_id IS NOT NULL AND authorised_at IS NOT NULL))
);
-- One active consent per client and account: a newer one authorised supersedes it.
CREATE UNIQUE INDEX consents_one_active ON openapi.consents (client_id, branch_code, account_number)
    WHERE status = 'active';
CREATE INDEX consents_of_account ON openapi.consents (branch_code, account_number, seq);
-- A client's revocation ends its live consents.
CREATE INDEX consents_live_of_client ON openapi.consents (client_id) WHERE status IN ('pending', 'active');

CREATE TABLE openapi.consent_events (
    id bigserial PRIMARY KEY,
    consent_id uuid NOT NULL REFERENCES openapi.consents (consent_id),
    event text NOT NULL,
    by text NOT NULL,
    detail text NOT NULL DEFAULT '',
    at timestamptz NOT NULL
);
CREATE INDEX consent_events_of_consent ON openapi.consent_events (consent_id, id);

CREATE TABLE openapi.transfers (
    transfer_id uuid PRIMARY KEY,  -- derived from (client, Idempotency-Key): the deposits request id
    client_id text NOT NULL REFERENCES openapi.clients (client_id),
    idempotency_key text NOT NULL,
    fingerprint bytea NOT NULL,
    consent_id uuid NOT NULL REFERENCES openapi.consents (consent_id),
    from_account_id uuid NOT NULL,
    from_label text NOT NULL,
    to_label text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    fee_minor bigint CHECK (fee_minor >= 0),
    day date NOT NULL,  -- the JST calendar day the consent's daily maximum counts it on
    state text NOT NULL CHECK (state IN ('processing', 'completed', 'refused')),
    in_flight_until timestamptz NOT NULL,
    http_status integer,
    answer jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (client_id, idempotency_key),
    CHECK (state = 'processing' OR (http_status IS NOT NULL AND answer IS NOT NULL))
);
CREATE INDEX transfers_of_consent_day ON openapi.transfers (consent_id, day) WHERE state <> 'refused';

CREATE TABLE openapi.access_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    request_id uuid NOT NULL,
    client_id text,  -- NULL when the caller could not be identified
    consent_id uuid,
    method text NOT NULL,
    route text NOT NULL,
    account text,
    status integer NOT NULL,
    outcome text NOT NULL,
    latency_ms integer NOT NULL
);
CREATE INDEX access_log_of_client ON openapi.access_log (client_id, id);
CREATE INDEX access_log_of_consent ON openapi.access_log (consent_id, id) WHERE consent_id IS NOT NULL;
CREATE INDEX access_log_by_time ON openapi.access_log (at);
