-- The batch: business dates (the online date and the nights behind it), each date's job plan and the jobs' standing,
-- their history, the cut-off snapshot, and the work areas of concentrated postings (センター集中記帳).
CREATE SCHEMA IF NOT EXISTS batch;

CREATE TABLE batch.days (
    business_date date PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('open', 'cut_off', 'closed')),
    opened_at timestamptz NOT NULL DEFAULT now(),
    cut_off_at timestamptz,
    closed_at timestamptz,
    CHECK ((state = 'open') = (cut_off_at IS NULL)),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
-- Online posts on exactly one business date at a time.
CREATE UNIQUE INDEX days_one_open ON batch.days ((true)) WHERE state = 'open';

CREATE TABLE batch.jobs (
    business_date date NOT NULL REFERENCES batch.days,
    name text NOT NULL CHECK (name ~ '^[a-z0-9_.:-]{1,64}$'),
    spec jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('waiting', 'running', 'succeeded', 'failed', 'skipped')),
    held boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    owner text,  -- the process running it
    heartbeat_at timestamptz,  -- a running job whose heartbeat stops belongs to a process that died
    started_at timestamptz,  -- of the current (or last) attempt
    finished_at timestamptz,
    done_items bigint NOT NULL DEFAULT 0 CHECK (done_items >= 0),
    total_items bigint CHECK (total_items >= 0),
    checkpoint jsonb,  -- where a stopped or killed job resumes
    result jsonb,
    error text,
    PRIMARY KEY (business_date, name),
    CHECK ((state = 'running') = (owner IS NOT NULL))
);

CREATE TABLE batch.history (
    id bigserial PRIMARY KEY,
    business_date date NOT NULL,
    name text NOT NULL,
    event text NOT NULL,
    detail jsonb,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX history_by_job ON batch.history (business_date, name, id);

-- What the books stood at when online moved on to the next date: per ledger and code, the posted balances.
CREATE TABLE batch.snapshots (
    business_date date PRIMARY KEY REFERENCES batch.days,
    taken_at timestamptz NOT NULL DEFAULT now(),
    totals jsonb NOT NULL
);

-- A concentrated posting's items, loaded before it runs; each posts once, by an id derived from (date, job, item).
CREATE TABLE batch.bulk_items (
    business_date date NOT NULL,
    job text NOT NULL,
    item_no integer NOT NULL CHECK (item_no >= 1),
    debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    code integer NOT NULL CHECK (code BETWEEN 1 AND 65535),
    PRIMARY KEY (business_date, job, item_no),
    FOREIGN KEY (business_date, job) REFERENCES batch.jobs (business_date, name)
);

-- Items the ledger refused (an account closed since the file was made…): reported, never retried blindly.
CREATE TABLE batch.bulk_rejects (
    business_date date NOT NULL,
    job text NOT NULL,
    item_no integer NOT NULL,
    result text NOT NULL,
    PRIMARY KEY (business_date, job, item_no)
);
