-- The subject an account was opened as: a 総合口座 converted from an ordinary account later still answers
-- a retry of its ordinary opening request; a request that opened a 総合口座 is not one that opened an ordinary.
ALTER TABLE deposits.accounts ADD COLUMN opened_as text;
UPDATE deposits.accounts SET opened_as = subject;
ALTER TABLE deposits.accounts ALTER COLUMN opened_as SET NOT NULL, ALTER COLUMN opened_as SET DEFAULT 'ordinary',
    ADD CONSTRAINT opened_as_subject CHECK (opened_as IN ('ordinary', 'sogo'));
