-- Cash in, in two phases like cash out: a deposit's counted notes wait in the ATM's escrow until the machine says it
-- stored them (then the account is credited) or returned them. An in-doubt item now names its operation.
ALTER TABLE atm.in_doubt ADD COLUMN operation text NOT NULL DEFAULT 'withdrawal'
    CHECK (operation IN ('withdrawal', 'deposit'));
ALTER TABLE atm.in_doubt DROP CONSTRAINT in_doubt_resolution_check;
ALTER TABLE atm.in_doubt ADD CONSTRAINT in_doubt_resolution_check
    CHECK (resolution IN ('posted', 'nothing_dispensed', 'credited', 'cash_returned', 'break'));
