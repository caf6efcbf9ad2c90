-- A 総合口座's collateral is read under the account's lock: find its placed deposits by index, not by a scan.
CREATE INDEX deposits_placed_by_account ON time_deposits.deposits (ordinary_account_id) WHERE status = 'placed';
