-- Card loans (カードローン): contracts, draws and repayments, daily accruals, monthly collections and
-- status changes. The money is in the ledger (a contract's id is its ledger account id, code 1302,
-- whose debits are what is drawn); this is the product state.
CREATE SCHEMA IF NOT EXISTS loans;

CREATE TABLE loans.contracts (
    id                   uuid         PRIMARY KEY,
    customer_id          uuid         NOT NULL,
    account_id           uuid         NOT NULL,  -- the linked ordinary deposit account
    credit_line_minor    bigint       NOT NULL
        CHECK (credit_line_minor BETWEEN 100000 AND 8000000 AND credit_line_minor % 10000 = 0),
    rate_percent         numeric(6,3) NOT NULL CHECK (rate_percent > 0 AND rate_percent <= 20),
    collection_day       smallint     NOT NULL CHECK (collection_day BETWEEN 1 AND 28),
    status               text         NOT NULL CHECK (status IN ('active', 'delinquent', 'suspended', 'closed')),
    opened_on            date         NOT NULL,
    closed_on            date,
    accrued_through      date         NOT NULL,  -- the last day whose interest is in the 積数
    balance_days_current bigint       NOT NULL CHECK (balance_days_current >= 0),  -- 積数 before collect_on
    balance_days_next    bigint       NOT NULL CHECK (balance_days_next >= 0),  -- 積数 from collect_on on
    due_on               date         NOT NULL,  -- the next collection's contractual day (約定日)
    collect_on           date         NOT NULL CHECK (collect_on >= due_on),  -- the business day it is collected
    arrears_minor        bigint       NOT NULL CHECK (arrears_minor >= 0),
    arrears_since        date,  -- the collection date of the oldest unpaid amount
    collected_through    date,  -- the last business date the collection job processed this contract
    open_request_id      uuid         NOT NULL UNIQUE,
    CHECK ((status = 'closed') = (closed_on IS NOT NULL)),
    CHECK ((arrears_minor > 0) = (arrears_since IS NOT NULL)),
    CHECK (status <> 'delinquent' OR arrears_minor > 0),
    CHECK (status <> 'active' OR arrears_minor = 0)
) WITH (fillfactor = 70);  -- the day-end rewrites every open contract daily: room for HOT updates
-- One open card loan per customer.
CREATE UNIQUE INDEX contracts_one_open_per_customer ON loans.contracts (customer_id) WHERE status <> 'closed';
CREATE INDEX contracts_by_customer ON loans.contracts (customer_id, opened_on);

-- Draws and repayments, idempotent by request id; also the basis of an end-of-day balance when a
-- day-end run comes after postings of a later business date.
CREATE TABLE loans.movements (
    request_id      uuid        PRIMARY KEY,
    contract_id     uuid        NOT NULL REFERENCES loans.contracts,
    kind            text        NOT NULL
        CHECK (kind IN ('draw_to_account', 'draw_cash', 'repay_from_account', 'repay_cash')),
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    interest_minor  bigint      NOT NULL CHECK (interest_minor >= 0),  -- arrears paid by a repayment
    principal_minor bigint      NOT NULL CHECK (principal_minor >= 0),
    business_date   date        NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    CHECK (interest_minor + principal_minor = amount_minor),
    CHECK (kind LIKE 'repay%' OR interest_minor = 0)
);
CREATE INDEX movements_by_contract ON loans.movements (contract_id, business_date);
CREATE INDEX movements_by_date ON loans.movements (business_date);

-- Each day-end accrual of each contract (日残 and 積数): one row per (contract, business date).
CREATE TABLE loans.accruals (
    contract_id   uuid   NOT NULL REFERENCES loans.contracts,
    business_date date   NOT NULL,
    from_date     date   NOT NULL,
    through       date   NOT NULL CHECK (through >= from_date),
    balance_minor bigint NOT NULL CHECK (balance_minor >= 0),
    PRIMARY KEY (contract_id, business_date)
);

-- Interest collections by period (and the final settlement at closing), with what is still unpaid.
CREATE TABLE loans.collections (
    contract_id       uuid         NOT NULL REFERENCES loans.contracts,
    due_on            date         NOT NULL,
    kind              text         NOT NULL CHECK (kind IN ('monthly', 'final')),
    collect_on        date         NOT NULL,
    balance_days      bigint       NOT NULL CHECK (balance_days >= 0),
    rate_percent      numeric(6,3) NOT NULL,
    interest_minor    bigint       NOT NULL CHECK (interest_minor > 0),
    outstanding_minor bigint       NOT NULL CHECK (outstanding_minor BETWEEN 0 AND interest_minor),
    PRIMARY KEY (contract_id, due_on, kind)
);
CREATE INDEX collections_unpaid ON loans.collections (contract_id, collect_on) WHERE outstanding_minor > 0;

-- Each collection transfer (口座振替): one per (contract, business date), what it asked and what it took.
CREATE TABLE loans.collection_attempts (
    contract_id     uuid    NOT NULL REFERENCES loans.contracts,
    business_date   date    NOT NULL,
    requested_minor bigint  NOT NULL CHECK (requested_minor > 0),
    collected_minor bigint  NOT NULL CHECK (collected_minor BETWEEN 0 AND requested_minor),
    transfer_id     uuid    NOT NULL UNIQUE,
    result          text    NOT NULL,  -- the ledger's answer, e.g. ok, debit_account_already_closed
    PRIMARY KEY (contract_id, business_date)
);

-- Status changes by the bank (suspend, resume, close), idempotent by request id.
CREATE TABLE loans.status_changes (
    request_id  uuid        PRIMARY KEY,
    contract_id uuid        NOT NULL REFERENCES loans.contracts,
    action      text        NOT NULL,
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    reason      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_changes_by_contract ON loans.status_changes (contract_id, at);
