-- Card-loan cash (カードローン借入) at ATMs, two-phase like a withdrawal: its in-doubt items name the operation
-- 'loan_draw', and their account is the card-loan contract's ledger account (the line the cash came from).
ALTER TABLE atm.in_doubt DROP CONSTRAINT in_doubt_operation_check;
ALTER TABLE atm.in_doubt ADD CONSTRAINT in_doubt_operation_check
    CHECK (operation IN ('withdrawal', 'deposit', 'loan_draw'));
