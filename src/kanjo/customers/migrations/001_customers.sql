-- The customers context's own schema: the customer information file (CIF), the request ids already
-- processed (so a retry answers the first outcome), and each customer's append-only history.
CREATE SCHEMA IF NOT EXISTS customers;

-- CIF numbers: assigned by the bank, printed as 10 digits, never reused (no CYCLE; a rolled-back
-- registration leaves a gap, never a second owner of a number).
CREATE SEQUENCE customers.cif_number_seq AS bigint MINVALUE 1 MAXVALUE 9999999999 NO CYCLE;

-- The CHECKs mirror the domain rules (kanjo.customers.model) where they are cheap: defence in depth
-- against a faulty writer, never the first line of validation.
CREATE TABLE customers.customers (
    id                    uuid PRIMARY KEY,
    cif_number            bigint NOT NULL UNIQUE DEFAULT nextval('customers.cif_number_seq')
                          CHECK (cif_number BETWEEN 1 AND 9999999999),
    kind                  text NOT NULL CHECK (kind IN ('individual', 'corporate')),
    name_kanji            text NOT NULL CHECK (char_length(name_kanji) BETWEEN 1 AND 60),
    -- Collation "C": code-point order, which for katakana is 五十音 order, the same on every host;
    -- and a plain B-tree index on a "C" column serves both prefix ranges and ORDER BY (as
    -- text_pattern_ops would serve the prefix alone).
    name_kana             text COLLATE "C" NOT NULL
                          CHECK (char_length(name_kana) BETWEEN 1 AND 60
                                 AND name_kana ~ '^[ァ-ヶー・][ァ-ヶー・　]*$'),
    birth_date            date,
    registration_date     date,
    phone                 text NOT NULL CHECK (phone ~ '^[0-9]+(-[0-9]+)*$'),
    phone_digits          text NOT NULL CHECK (phone_digits ~ '^0[0-9]{9,10}$'
                                               AND phone_digits = replace(phone, '-', '')),
    email                 text CHECK (email IS NULL
                                  OR (char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
    postal_code           text NOT NULL CHECK (postal_code ~ '^[0-9]{3}-[0-9]{4}$'),
    address               text NOT NULL CHECK (char_length(address) BETWEEN 1 AND 200),
    identity_verification text NOT NULL CHECK (identity_verification IN ('unverified', 'verified', 'expired')),
    identity_verified_on  date,
    status                text NOT NULL CHECK (status IN ('active', 'frozen', 'deceased')),
    status_reason         text CHECK (char_length(status_reason) BETWEEN 1 AND 200),
    died_on               date,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    version               integer NOT NULL CHECK (version >= 1),
    CONSTRAINT born_or_registered CHECK (
        (kind = 'individual' AND birth_date IS NOT NULL AND registration_date IS NULL)
        OR (kind = 'corporate' AND registration_date IS NOT NULL AND birth_date IS NULL)),
    CONSTRAINT verified_has_a_date CHECK (
        (identity_verification = 'unverified') = (identity_verified_on IS NULL)),
    CONSTRAINT deceased_has_a_date CHECK ((status = 'deceased') = (died_on IS NOT NULL)),
    CONSTRAINT only_people_die CHECK (status <> 'deceased' OR kind = 'individual'),
    CONSTRAINT updated_after_created CHECK (updated_at >= created_at)
);
CREATE INDEX customers_by_name_kana ON customers.customers (name_kana, cif_number);
CREATE INDEX customers_by_phone ON customers.customers (phone_digits);

-- Every request id the context has answered: a replay with the same fields gets the stored outcome
-- (the customer as it was then, or the refusal); the same id with different fields is refused,
-- naming the first field that differs. Registrations are keyed by the customer id.
CREATE TABLE customers.requests (
    request_id   uuid PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers.customers (id),
    kind         text NOT NULL CHECK (kind IN ('register_customer', 'update_contact',
                                               'record_identity_verification', 'freeze_customer',
                                               'unfreeze_customer', 'record_death')),
    fields       jsonb NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'illegal_transition')),
    result       jsonb NOT NULL,
    processed_at timestamptz NOT NULL
);
CREATE INDEX requests_by_customer ON customers.requests (customer_id);

-- A customer's history, written in the transaction of each change. Insert-only.
CREATE TABLE customers.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers.customers (id),
    request_id  uuid NOT NULL,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('registered', 'contact_updated', 'identity_verification_recorded',
                                              'frozen', 'unfrozen', 'death_recorded')),
    version     integer NOT NULL,
    details     jsonb NOT NULL,
    UNIQUE (customer_id, version)
);

CREATE FUNCTION customers.refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'customers.% is append-only', TG_TABLE_NAME USING ERRCODE = 'KJ101';
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON customers.events
    FOR EACH ROW EXECUTE FUNCTION customers.refuse_history_rewrite();
CREATE TRIGGER requests_append_only BEFORE UPDATE OR DELETE ON customers.requests
    FOR EACH ROW EXECUTE FUNCTION customers.refuse_history_rewrite();
