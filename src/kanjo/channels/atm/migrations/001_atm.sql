-- The ATM channel: the machine registry, the channel's journal of every transaction (the idempotency record of
-- (atm_id, journal_no)), in-doubt items, and screen notices.
CREATE SCHEMA IF NOT EXISTS atm;

CREATE TABLE atm.machines (
    atm_id text PRIMARY KEY CHECK (atm_id ~ '^[A-Z0-9]{4,12}$'),
    kind text NOT NULL CHECK (kind IN ('own', 'other_bank', 'convenience')),
    location text NOT NULL DEFAULT '',
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE atm.transactions (
    atm_id text NOT NULL REFERENCES atm.machines (atm_id),
    journal_no bigint NOT NULL CHECK (journal_no BETWEEN 1 AND 99999999),
    operation text NOT NULL,
    fingerprint bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('processing', 'answered')),
    answer jsonb,
    account_id uuid,
    card_id uuid,
    amount_minor bigint CHECK (amount_minor >= 0),
    fee_minor bigint CHECK (fee_minor >= 0),
    fee_rule text,
    hold_state text CHECK (hold_state IN ('authorised', 'posted', 'voided', 'in_doubt')),
    ack_deadline timestamptz,
    dispensed_minor bigint CHECK (dispensed_minor >= 0),
    ack_answer jsonb,
    business_date date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (atm_id, journal_no)
);
-- The in-doubt sweep reads only authorisations still waiting for their acknowledgement.
CREATE INDEX transactions_waiting ON atm.transactions (ack_deadline) WHERE hold_state = 'authorised';

CREATE TABLE atm.in_doubt (
    atm_id text NOT NULL,
    journal_no bigint NOT NULL,
    account_id uuid NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    reason text NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    atm_says text,
    resolved_at timestamptz,
    resolution text CHECK (resolution IN ('posted', 'nothing_dispensed', 'break')),
    correction_transfer_id uuid,
    PRIMARY KEY (atm_id, journal_no),
    FOREIGN KEY (atm_id, journal_no) REFERENCES atm.transactions (atm_id, journal_no)
);
CREATE INDEX in_doubt_open ON atm.in_doubt (opened_at) WHERE resolved_at IS NULL;

CREATE TABLE atm.notices (
    id bigserial PRIMARY KEY,
    text text NOT NULL CHECK (length(text) BETWEEN 1 AND 200),
    atm_ids text[],  -- NULL: every ATM
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
