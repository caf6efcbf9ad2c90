-- Time deposits (定期預金): the rate table, the deposits and their settlements, idempotent requests.
-- The money is in the ledger (a deposit's id is its ledger account id); this is the product state.
CREATE SCHEMA IF NOT EXISTS time_deposits;

-- Rates in percent p.a., by term and amount band (lower bound in yen), in force from a date.
CREATE TABLE time_deposits.rates (
    term_months    integer      NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    band_min_minor bigint       NOT NULL CHECK (band_min_minor >= 0),
    rate_percent   numeric(7,3) NOT NULL CHECK (rate_percent >= 0),
    effective_from date         NOT NULL,
    PRIMARY KEY (term_months, band_min_minor, effective_from)
);
-- Bands: 定期預金 (< ¥3M), スーパー定期300 (¥3M–¥9,999,999), 大口定期 (≥ ¥10M).
INSERT INTO time_deposits.rates (term_months, band_min_minor, rate_percent, effective_from)
SELECT t.term_months, b.band_min_minor,
       CASE WHEN b.band_min_minor >= 10000000 THEN t.rate + 0.025 ELSE t.rate END, DATE '2000-01-01'
FROM (VALUES (1, 0.100), (3, 0.125), (6, 0.125), (12, 0.125), (24, 0.150), (36, 0.200), (48, 0.220),
             (60, 0.250), (84, 0.300), (120, 0.400)) AS t (term_months, rate)
CROSS JOIN (VALUES (0), (3000000), (10000000)) AS b (band_min_minor);

CREATE TABLE time_deposits.deposits (
    id                  uuid         PRIMARY KEY,
    customer_id         uuid         NOT NULL,
    ordinary_account_id uuid         NOT NULL,  -- funds the placement and receives payouts
    principal_minor     bigint       NOT NULL CHECK (principal_minor > 0),
    rate_percent        numeric(7,3) NOT NULL CHECK (rate_percent >= 0),
    term_months         integer      NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    tax_class           text         NOT NULL CHECK (tax_class IN ('individual', 'corporate', 'exempt')),
    placed_on           date         NOT NULL,
    matures_on          date         NOT NULL CHECK (matures_on > placed_on),
    pays_on             date         NOT NULL CHECK (pays_on >= matures_on),
    instruction         text         NOT NULL
        CHECK (instruction IN ('renew_principal', 'renew_principal_and_interest', 'pay_out')),
    status              text         NOT NULL CHECK (status IN ('placed', 'matured', 'withdrawn')),
    generation          integer      NOT NULL CHECK (generation >= 1),
    closed_on           date,
    CHECK ((status = 'placed') = (closed_on IS NULL))
);
CREATE INDEX deposits_due ON time_deposits.deposits (pays_on, id) WHERE status = 'placed';
CREATE INDEX deposits_by_customer ON time_deposits.deposits (customer_id);

-- One row per settled generation: what maturity or early withdrawal moved.
CREATE TABLE time_deposits.settlements (
    deposit_id              uuid    NOT NULL REFERENCES time_deposits.deposits,
    generation              integer NOT NULL,
    kind                    text    NOT NULL CHECK (kind IN ('maturity', 'early')),
    business_date           date    NOT NULL,
    principal_minor         bigint  NOT NULL,
    interest_minor          bigint  NOT NULL,
    national_tax_minor      bigint  NOT NULL,
    local_tax_minor         bigint  NOT NULL,
    paid_out_minor          bigint  NOT NULL,
    renewed_principal_minor bigint  NOT NULL,
    PRIMARY KEY (deposit_id, generation)
);

-- Requests already carried out (placement, early withdrawal): a retry answers the first outcome.
CREATE TABLE time_deposits.requests (
    request_id uuid        PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('place', 'withdraw_early')),
    deposit_id uuid        NOT NULL REFERENCES time_deposits.deposits,
    at         timestamptz NOT NULL DEFAULT now()
);
