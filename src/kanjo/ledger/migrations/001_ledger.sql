-- The ledger's own schema: accounts with four balances, immutable transfers, hold resolutions,
-- remembered failures, balance history, and the writer lease that fences a second writer.
CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE ledger.accounts (
    id              uuid PRIMARY KEY,
    ledger          bigint  NOT NULL CHECK (ledger BETWEEN 1 AND 4294967295),
    code            integer NOT NULL CHECK (code BETWEEN 1 AND 65535),
    flags           integer NOT NULL,
    user_data_128   uuid    NOT NULL,
    user_data_64    bigint  NOT NULL,
    user_data_32    bigint  NOT NULL,
    debits_pending  bigint  NOT NULL CHECK (debits_pending >= 0),
    debits_posted   bigint  NOT NULL CHECK (debits_posted >= 0),
    credits_pending bigint  NOT NULL CHECK (credits_pending >= 0),
    credits_posted  bigint  NOT NULL CHECK (credits_posted >= 0),
    timestamp       bigint  NOT NULL,
    -- Defence in depth: even a faulty engine cannot overdraw a guarded account.
    CONSTRAINT debits_must_not_exceed_credits
        CHECK (flags & 2 = 0 OR debits_pending + debits_posted <= credits_posted),
    CONSTRAINT credits_must_not_exceed_debits
        CHECK (flags & 4 = 0 OR credits_pending + credits_posted <= debits_posted)
) WITH (fillfactor = 70);

CREATE TABLE ledger.transfers (
    id                uuid PRIMARY KEY,
    debit_account_id  uuid    NOT NULL,
    credit_account_id uuid    NOT NULL,
    amount            bigint  NOT NULL CHECK (amount >= 0),
    pending_id        uuid,
    user_data_128     uuid    NOT NULL,
    user_data_64      bigint  NOT NULL,
    user_data_32      bigint  NOT NULL,
    timeout           bigint  NOT NULL,
    ledger            bigint  NOT NULL,
    code              integer NOT NULL,
    flags             integer NOT NULL,
    business_date     date    NOT NULL,
    timestamp         bigint  NOT NULL,
    expires_at        bigint
);
CREATE INDEX transfers_debit_account ON ledger.transfers (debit_account_id, timestamp);
CREATE INDEX transfers_credit_account ON ledger.transfers (credit_account_id, timestamp);
CREATE INDEX transfers_expiring ON ledger.transfers (expires_at) WHERE expires_at IS NOT NULL;

-- A hold resolves once: posted (2), voided (3) or expired (4). Insert-only.
CREATE TABLE ledger.pending_resolutions (
    pending_id  uuid PRIMARY KEY,
    status      smallint NOT NULL CHECK (status IN (2, 3, 4)),
    transfer_id uuid,
    timestamp   bigint NOT NULL
);

-- Events refused for a state-dependent reason: a retry of the id answers the same again.
CREATE TABLE ledger.rejected_transfers (
    id                uuid PRIMARY KEY,
    result            smallint NOT NULL,
    debit_account_id  uuid    NOT NULL,
    credit_account_id uuid    NOT NULL,
    amount            bigint  NOT NULL,
    pending_id        uuid,
    user_data_128     uuid    NOT NULL,
    user_data_64      bigint  NOT NULL,
    user_data_32      bigint  NOT NULL,
    timeout           bigint  NOT NULL,
    ledger            bigint  NOT NULL,
    code              integer NOT NULL,
    flags             integer NOT NULL,
    business_date     date,
    timestamp         bigint  NOT NULL
);

-- Balances after every change, for accounts with the history flag.
CREATE TABLE ledger.account_balances (
    account_id      uuid   NOT NULL,
    timestamp       bigint NOT NULL,
    debits_pending  bigint NOT NULL,
    debits_posted   bigint NOT NULL,
    credits_pending bigint NOT NULL,
    credits_posted  bigint NOT NULL,
    PRIMARY KEY (account_id, timestamp)
);

-- One serial writer per shard; the epoch fences a writer that lost its lease.
CREATE TABLE ledger.writer (
    shard          integer PRIMARY KEY,
    epoch          bigint  NOT NULL,
    holder         text    NOT NULL,
    last_timestamp bigint  NOT NULL,
    heartbeat_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ledger.writer (shard, epoch, holder, last_timestamp) VALUES (0, 0, 'nobody', 0);
