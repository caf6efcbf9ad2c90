-- 当座預金 (current accounts): the subject 'current'. Numbered from the same per-branch counter as every
-- other subject (deposits.branches.next_account_number), so a number is never reused across subjects.
-- The money is in the ledger (product code 2002); no interest, no passbook, no overdraft rows.

-- Widen the subject CHECK by 'current', keeping whatever subjects earlier migrations allowed.
DO $$
DECLARE
    allowed text;
BEGIN
    SELECT string_agg(DISTINCT quote_literal(m[1]), ', ') INTO allowed
    FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
    WHERE c.conrelid = 'deposits.accounts'::regclass AND c.conname = 'accounts_subject_check';
    EXECUTE 'ALTER TABLE deposits.accounts DROP CONSTRAINT IF EXISTS accounts_subject_check';
    EXECUTE format('ALTER TABLE deposits.accounts ADD CONSTRAINT accounts_subject_check CHECK (subject IN (%s))',
                   concat_ws(', ', allowed, quote_literal('current')));
END
$$;

-- A current account is opened as one and stays one (it never becomes a 総合口座), and nothing else becomes one.
ALTER TABLE deposits.accounts DROP CONSTRAINT opened_as_subject,
    ADD CONSTRAINT opened_as_subject CHECK (opened_as IN ('ordinary', 'sogo', 'current')),
    ADD CONSTRAINT current_stays_current CHECK ((subject = 'current') = (opened_as = 'current'));
