-- 満期時の入金口座: a deposit pays its interest and principal to a named ordinary account of the same customer,
-- which may differ from the account it was placed from and is attached to (ordinary_account_id: the 総合口座
-- whose overdraft the deposit secures). Existing deposits pay where they always did: their ordinary account.
ALTER TABLE time_deposits.deposits ADD COLUMN payout_account_id uuid;
UPDATE time_deposits.deposits SET payout_account_id = ordinary_account_id;

-- A writer that does not name the payout account (a bulk load written before this column) gets the default the
-- product states: the funding account. A row trigger, because a column default cannot name another column.
CREATE FUNCTION time_deposits.payout_defaults_to_funding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.payout_account_id := NEW.ordinary_account_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER deposits_payout_default BEFORE INSERT ON time_deposits.deposits
    FOR EACH ROW WHEN (NEW.payout_account_id IS NULL) EXECUTE FUNCTION time_deposits.payout_defaults_to_funding();
ALTER TABLE time_deposits.deposits ALTER COLUMN payout_account_id SET NOT NULL;

-- "What pays into this ordinary account?" (before closing it, say) is answered by index, as the collateral is.
CREATE INDEX deposits_placed_by_payout_account ON time_deposits.deposits (payout_account_id)
    WHERE status = 'placed';

-- 満期時の取扱変更 joins the requests carried out once; a placement or a change records what it asked for, so a
-- retry that asks for something else is told that its request id was already used.
ALTER TABLE time_deposits.requests DROP CONSTRAINT requests_kind_check;
ALTER TABLE time_deposits.requests ADD CONSTRAINT requests_kind_check
    CHECK (kind IN ('place', 'withdraw_early', 'change_instruction'));
ALTER TABLE time_deposits.requests ADD COLUMN instruction text
    CHECK (instruction IN ('renew_principal', 'renew_principal_and_interest', 'pay_out'));
ALTER TABLE time_deposits.requests ADD COLUMN payout_account_id uuid;  -- a change's NULL: the payout account kept
ALTER TABLE time_deposits.requests ADD CONSTRAINT change_names_its_instruction
    CHECK (kind <> 'change_instruction' OR instruction IS NOT NULL);
