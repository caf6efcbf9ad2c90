-- 総合口座 (general accounts): the subject 'sogo', each account's automatic overdraft (自動貸越),
-- the planned legs of its money movements (a retry replays them), daily interest accruals and charges.
-- The money is in the ledger (one OVERDRAFT_RECEIVABLE account per 総合口座); this is the product state.

-- Widen the subject CHECK by 'sogo', keeping whatever subjects earlier migrations allowed.
DO $$
DECLARE
    allowed text;
BEGIN
    SELECT string_agg(DISTINCT quote_literal(m[1]), ', ') INTO allowed
    FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
    WHERE c.conrelid = 'deposits.accounts'::regclass AND c.conname = 'accounts_subject_check';
    EXECUTE 'ALTER TABLE deposits.accounts DROP CONSTRAINT IF EXISTS accounts_subject_check';
    EXECUTE format('ALTER TABLE deposits.accounts ADD CONSTRAINT accounts_subject_check CHECK (subject IN (%s))',
                   concat_ws(', ', allowed, quote_literal('sogo')));
END
$$;

-- One row per 総合口座. Drawn amounts are the ledger's; these columns are the jobs' bookmarks.
CREATE TABLE deposits.overdrafts (
    account_id            uuid   PRIMARY KEY REFERENCES deposits.accounts,
    overdraft_account_id  uuid   NOT NULL UNIQUE,  -- its ledger account (code 1301), derived from account_id
    accrued_through       date   NOT NULL,  -- interest accrued for every day up to and including this one
    charged_before        date   NOT NULL,  -- accruals of the days before this one have been charged
    folded_timestamp      bigint NOT NULL DEFAULT 0 CHECK (folded_timestamp >= 0),  -- ledger movements read
    folded_volume_minor   bigint NOT NULL DEFAULT 0 CHECK (folded_volume_minor >= 0),  -- Σ their amounts
    folded_drawn_minor    bigint NOT NULL DEFAULT 0 CHECK (folded_drawn_minor >= 0),  -- drawn after them
    interest_unpaid_minor bigint NOT NULL DEFAULT 0 CHECK (interest_unpaid_minor >= 0),  -- charged, not repaid
    CHECK (charged_before <= accrued_through + 1)
);

-- The legs planned for a movement of money touching a 総合口座, under its lock, before posting:
-- a retry (or a concurrent duplicate) posts exactly these again, so the ledger answers the first outcome.
CREATE TABLE deposits.overdraft_requests (
    request_id            uuid        PRIMARY KEY,
    leg                   text        NOT NULL,
    debit_account_id      uuid        NOT NULL,
    credit_account_id     uuid        NOT NULL,
    amount_minor          bigint      NOT NULL CHECK (amount_minor > 0),
    debit_overdraft_minor bigint      NOT NULL,  -- > 0 drawn, < 0 repaid from spare funds (debit account)
    credit_repaid_minor   bigint      NOT NULL CHECK (credit_repaid_minor >= 0),  -- repaid by the credit
    limit_minor           bigint      CHECK (limit_minor >= 0),  -- what a drawing was checked against
    refused               text,  -- the refusal's code when the overdraft limit refused it (a retry: the same)
    business_date         date        NOT NULL,
    at                    timestamptz NOT NULL DEFAULT now()
);

-- Daily accruals: one row per account and day with a drawn end-of-day balance.
CREATE TABLE deposits.overdraft_accruals (
    account_id       uuid          NOT NULL REFERENCES deposits.overdrafts,
    business_date    date          NOT NULL,
    drawn_minor      bigint        NOT NULL CHECK (drawn_minor > 0),
    interest_product numeric(30,3) NOT NULL CHECK (interest_product >= 0),  -- Σ portion × rate %  (yen·%)
    PRIMARY KEY (account_id, business_date)
);

-- Interest charged (half-yearly, added to the overdraft) or collected at closing, per period.
CREATE TABLE deposits.overdraft_charges (
    account_id     uuid   NOT NULL REFERENCES deposits.overdrafts,
    period_start   date   NOT NULL,
    period_end     date   NOT NULL CHECK (period_end >= period_start),  -- exclusive
    kind           text   NOT NULL CHECK (kind IN ('half_yearly', 'closing')),
    interest_minor bigint NOT NULL CHECK (interest_minor >= 0),
    transfer_id    uuid,  -- null when nothing was due
    business_date  date   NOT NULL,
    PRIMARY KEY (account_id, period_end),
    CHECK ((interest_minor = 0) = (transfer_id IS NULL))
);
