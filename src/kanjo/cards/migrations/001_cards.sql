-- Cash cards (キャッシュカード): the cards, their append-only event history, the requests that changed them
-- (idempotency), and the daily ATM withdrawal usage with the reservations that make it up.
-- No PIN is ever stored: only its keyed verification value (HMAC-SHA256, ADR 0005).
CREATE SCHEMA IF NOT EXISTS cards;

-- The 9-digit serial inside a card number (issuer prefix + serial + Luhn digit): never cycles, never reused.
CREATE SEQUENCE cards.card_serial AS bigint MINVALUE 1 MAXVALUE 999999999 NO CYCLE;

CREATE TABLE cards.cards (
    card_id           uuid     PRIMARY KEY,
    issue_request_id  uuid     NOT NULL UNIQUE,  -- the issue (or reissue) request that made it
    card_number       text     NOT NULL UNIQUE CHECK (card_number ~ '^[0-9]{16}$'),
    account_id        uuid     NOT NULL,  -- the deposit account it draws on (普通, 総合口座, 当座)
    customer_id       uuid     NOT NULL,
    status            text     NOT NULL
        CHECK (status IN ('active', 'lost', 'stolen', 'fraud_suspected', 'cancelled')),
    issued_on         date     NOT NULL,
    expires_on        date     NOT NULL CHECK (expires_on > issued_on),
    cancelled_on      date,
    pin_value         bytea    NOT NULL CHECK (octet_length(pin_value) = 32),  -- HMAC-SHA256(key, number, PIN)
    pin_failures      smallint NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),  -- consecutive wrong PINs
    daily_limit_minor bigint   NOT NULL CHECK (daily_limit_minor >= 0),
    replaces_card_id  uuid     UNIQUE REFERENCES cards.cards,  -- a card is replaced at most once
    CHECK ((status = 'cancelled') = (cancelled_on IS NOT NULL))
) WITH (fillfactor = 90);  -- PIN counters and statuses change in place: room for HOT updates
-- One card in force per deposit account; a replacement comes by reissue, which cancels the old one first.
CREATE UNIQUE INDEX cards_one_live_per_account ON cards.cards (account_id) WHERE status <> 'cancelled';
CREATE INDEX cards_by_account ON cards.cards (account_id, issued_on);
CREATE INDEX cards_by_customer ON cards.cards (customer_id, issued_on);

-- Every command that changed a card, by request id: a retry finds it and changes nothing. `fingerprint` is
-- the command's other fields in canonical form (never a PIN).
CREATE TABLE cards.requests (
    request_id  uuid        PRIMARY KEY,
    command     text        NOT NULL,
    card_id     uuid        NOT NULL REFERENCES cards.cards DEFERRABLE INITIALLY DEFERRED,
    fingerprint text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- What happened to each card, who did it and why; append-only. Every event is written while its card's row is
-- locked, so event_id order is the card's history order and its last event carries the card's status.
CREATE TABLE cards.card_events (
    event_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id       uuid        NOT NULL REFERENCES cards.cards,
    request_id    uuid,  -- null for what no request did (a PIN locked by wrong tries at an ATM)
    kind          text        NOT NULL,
    status_after  text        NOT NULL,
    actor         text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 64),
    reason        text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 200),
    at            timestamptz NOT NULL DEFAULT now(),
    business_date date        NOT NULL
);
CREATE INDEX card_events_by_card ON cards.card_events (card_id, event_id);

CREATE FUNCTION cards.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cards.card_events is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER card_events_append_only BEFORE UPDATE OR DELETE ON cards.card_events
    FOR EACH ROW EXECUTE FUNCTION cards.refuse_change();
CREATE TRIGGER card_events_no_truncate BEFORE TRUNCATE ON cards.card_events
    FOR EACH STATEMENT EXECUTE FUNCTION cards.refuse_change();

-- Withdrawals counted against a card's daily limit, per business date; `limit_minor` is the card's limit when
-- the usage last rose (a limit lowered later does not make earlier withdrawals wrong).
CREATE TABLE cards.daily_usage (
    card_id       uuid   NOT NULL REFERENCES cards.cards,
    business_date date   NOT NULL,
    used_minor    bigint NOT NULL CHECK (used_minor >= 0),
    limit_minor   bigint NOT NULL CHECK (limit_minor >= 0),
    PRIMARY KEY (card_id, business_date),
    CHECK (used_minor <= limit_minor)
);
CREATE INDEX daily_usage_by_date ON cards.daily_usage (business_date);

-- Each reservation request, its outcome remembered: reserved (counted), refused (over the limit: a retry gets
-- the same refusal) or released (given back; with no card when the release came before any reservation, so a
-- late reservation under that id is refused).
CREATE TABLE cards.reservations (
    request_id      uuid        PRIMARY KEY,
    card_id         uuid        REFERENCES cards.cards,
    business_date   date        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor >= 0),
    state           text        NOT NULL CHECK (state IN ('reserved', 'refused', 'released')),
    remaining_minor bigint      CHECK (remaining_minor >= 0),  -- refused: what remained that day
    limit_minor     bigint      CHECK (limit_minor >= 0),  -- refused: the limit it would have passed
    reserved_at     timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    CHECK (card_id IS NOT NULL OR (state = 'released' AND amount_minor = 0)),
    CHECK ((state = 'refused') = (remaining_minor IS NOT NULL AND limit_minor IS NOT NULL)),
    CHECK ((state = 'released') = (released_at IS NOT NULL))
);
CREATE INDEX reservations_by_card_date ON cards.reservations (card_id, business_date);
CREATE INDEX reservations_by_date ON cards.reservations (business_date);
