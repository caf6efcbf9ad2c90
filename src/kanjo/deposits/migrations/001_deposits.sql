-- Deposits: branches with their account-number counters, and customers' deposit accounts.
-- The money is in the ledger (the account's id is its ledger account id); this is the product state.
CREATE SCHEMA IF NOT EXISTS deposits;

CREATE TABLE deposits.branches (
    branch_code         char(3) PRIMARY KEY CHECK (branch_code ~ '^[0-9]{3}$'),
    name                text    NOT NULL,
    next_account_number integer NOT NULL DEFAULT 1 CHECK (next_account_number BETWEEN 1 AND 10000000)
);
INSERT INTO deposits.branches (branch_code, name) VALUES
    ('001', '本店営業部'), ('101', '東京支店'), ('102', '新宿支店'), ('103', '渋谷支店'),
    ('201', '大阪支店'), ('301', '名古屋支店'), ('401', '福岡支店'), ('501', '札幌支店');

CREATE TABLE deposits.accounts (
    id               uuid PRIMARY KEY,
    branch_code      char(3) NOT NULL REFERENCES deposits.branches,
    account_number   integer NOT NULL CHECK (account_number BETWEEN 1 AND 9999999),
    subject          text    NOT NULL CHECK (subject IN ('ordinary')),
    customer_id      uuid    NOT NULL,
    status           text    NOT NULL CHECK (status IN ('active', 'dormant', 'frozen', 'closed')),
    opened_on        date    NOT NULL,
    closed_on        date,
    last_activity_on date    NOT NULL,
    open_request_id  uuid    NOT NULL UNIQUE,
    UNIQUE (branch_code, account_number),
    CHECK ((status = 'closed') = (closed_on IS NOT NULL))
);
CREATE INDEX accounts_by_customer ON deposits.accounts (customer_id);

-- Status changes, idempotent by request id; an append-only history of the account.
CREATE TABLE deposits.status_changes (
    request_id  uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES deposits.accounts,
    action      text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_changes_by_account ON deposits.status_changes (account_id, at);
