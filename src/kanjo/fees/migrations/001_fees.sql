-- Fees: the fees charged to customers' accounts, their refunds (at most one per fee) and the bulk
-- refund requests. The money is in the ledger; these rows say which transfer carried which fee.
CREATE SCHEMA IF NOT EXISTS fees;

CREATE TABLE fees.charges (
    fee_id        uuid PRIMARY KEY,
    request_id    uuid        NOT NULL UNIQUE,  -- the charge request; a retry finds its fee
    transfer_id   uuid        NOT NULL UNIQUE,  -- the ledger transfer that moved the fee
    account_id    uuid        NOT NULL,         -- the customer's ordinary deposit (ledger) account
    amount_minor  bigint      NOT NULL CHECK (amount_minor > 0),  -- tax-inclusive yen
    rule_id       text        NOT NULL,
    channel       text        NOT NULL,
    reason        text        NOT NULL,
    charged_at    timestamptz NOT NULL DEFAULT now(),
    business_date date        NOT NULL
);
CREATE INDEX charges_by_channel_time ON fees.charges (channel, charged_at);
CREATE INDEX charges_by_account ON fees.charges (account_id, charged_at);

-- A bulk refund request, idempotent by request id; `selection` is what it asked for, in canonical form.
CREATE TABLE fees.refund_requests (
    request_id  uuid PRIMARY KEY,
    selection   text        NOT NULL,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- A fee is refunded at most once (fee_id unique), whichever request did it.
CREATE TABLE fees.refunds (
    refund_id    uuid PRIMARY KEY,  -- also the ledger transfer id, derived from the fee id
    fee_id       uuid        NOT NULL UNIQUE REFERENCES fees.charges,
    request_id   uuid        NOT NULL REFERENCES fees.refund_requests,
    amount_minor bigint      NOT NULL CHECK (amount_minor > 0),
    refunded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_by_request ON fees.refunds (request_id);
