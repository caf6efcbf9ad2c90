-- Periodic statements (当座勘定照合表) issued by the month-end job (statements_run.py): one row per account and
-- period, its figures checked against the ledger before it is written. The lines themselves are the ledger's: a
-- statement by period (GET …/statement?from=&to=) reprints them at any time.
CREATE TABLE deposits.statements (
    account_id    uuid        NOT NULL REFERENCES deposits.accounts,
    period_first  date        NOT NULL,  -- the first business date of the month
    period_last   date        NOT NULL CHECK (period_last >= period_first),  -- the month's last business date
    opening_minor bigint      NOT NULL,  -- 前月繰越: the balance at the close of the previous period
    credits_minor bigint      NOT NULL CHECK (credits_minor >= 0),  -- Σ お預り of the period
    debits_minor  bigint      NOT NULL CHECK (debits_minor >= 0),  -- Σ お支払 of the period
    closing_minor bigint      NOT NULL,  -- 差引残高 at the period's close
    lines         integer     NOT NULL CHECK (lines >= 0),  -- posted movements dated in the period
    business_date date        NOT NULL CHECK (business_date >= period_last),  -- the run that issued it
    issued_at     timestamptz NOT NULL DEFAULT now(),
    -- a rerun or a resumed run finds the row and writes nothing: one statement per account and period
    PRIMARY KEY (account_id, period_last),
    CHECK (opening_minor + credits_minor - debits_minor = closing_minor),
    CHECK (lines > 0 OR (credits_minor = 0 AND debits_minor = 0))
);

-- The job pages through one subject's accounts in id order (keyset), not through every deposit account.
CREATE INDEX accounts_by_subject ON deposits.accounts (subject, id);
