-- Ordinary-deposit interest (普通預金利息): the rate table, each account's running 積数, payouts and job runs.
-- The money is in the ledger; these tables say what was accrued, what was paid, and which day-end jobs ran.

-- Rates in percent p.a. in force from a date (the latest not after a day applies to that day).
CREATE TABLE deposits.interest_rates (
    effective_from date         PRIMARY KEY,
    rate_percent   numeric(7,3) NOT NULL CHECK (rate_percent >= 0 AND rate_percent < 100)
);
INSERT INTO deposits.interest_rates (effective_from, rate_percent) VALUES
    (DATE '2000-01-01', 0.100), (DATE '2025-03-01', 0.200);

-- One row per ordinary account seen by the accrual: totals crystallised over [period_start, balance_from),
-- then balance_minor counts from balance_from on. Only a change of balance rewrites a row (fillfactor
-- leaves room for HOT updates: the primary key never changes). A half-yearly payout rewrites no row: a
-- row whose period_start is before the latest completed payout restarts from that payout's date.
-- No foreign key to deposits.accounts: the ledger account exists a moment before the product row.
CREATE TABLE deposits.interest_accruals (
    account_id    uuid          PRIMARY KEY,
    tax_class     text          NOT NULL DEFAULT 'individual'
        CHECK (tax_class IN ('individual', 'corporate', 'exempt')),
    period_start  date          NOT NULL,
    balance_minor bigint        NOT NULL CHECK (balance_minor >= 0),
    balance_from  date          NOT NULL CHECK (balance_from >= period_start),
    balance_days  numeric(38,0) NOT NULL DEFAULT 0 CHECK (balance_days >= 0),   -- 積数 (yen × days)
    rate_weighted numeric(38,0) NOT NULL DEFAULT 0 CHECK (rate_weighted >= 0)  -- Σ yen × days × rate (0.001 %)
) WITH (fillfactor = 70);

-- What each account was paid for each period: the tax report (源泉徴収) reads this.
-- A half-yearly row is written once its credit is in the ledger (paid, or failed with the ledger's answer);
-- a closing row is written first (planned), then marked. The withholding tax is posted per payout day
-- (half-yearly: the sum over the paid rows, in two transfers) or per closing (its own transfers).
CREATE TABLE deposits.interest_payments (
    paid_on            date          NOT NULL,
    kind               text          NOT NULL CHECK (kind IN ('half_yearly', 'closing')),
    account_id         uuid          NOT NULL,
    tax_class          text          NOT NULL CHECK (tax_class IN ('individual', 'corporate', 'exempt')),
    period_start       date          NOT NULL,
    period_end         date          NOT NULL CHECK (period_end >= period_start),
    balance_days       bigint        NOT NULL CHECK (balance_days >= 0),  -- 積数 of the period
    gross_minor        bigint        NOT NULL CHECK (gross_minor > 0),
    national_tax_minor bigint        NOT NULL CHECK (national_tax_minor >= 0),
    local_tax_minor    bigint        NOT NULL CHECK (local_tax_minor >= 0),
    net_minor          bigint        NOT NULL CHECK (net_minor > 0),
    status             text          NOT NULL CHECK (status IN ('planned', 'paid', 'failed')),
    failure            text,
    PRIMARY KEY (paid_on, kind, account_id),
    CHECK (gross_minor = national_tax_minor + local_tax_minor + net_minor),
    CHECK ((status = 'failed') = (failure IS NOT NULL))
);
CREATE INDEX interest_payments_by_account ON deposits.interest_payments (account_id);

-- Day-end jobs, one row per (job, business date): a second run of the same day finds it and does nothing;
-- a payout still 'running' (its process died) is finished by running it again.
CREATE TABLE deposits.interest_runs (
    job           text        NOT NULL CHECK (job IN ('accrual', 'payout')),
    business_date date        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'done')),
    counts        jsonb       NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    PRIMARY KEY (job, business_date)
);
