-- Passbooks (通帳) of ordinary accounts: the books, their printed lines, prints and lifecycle events,
-- idempotent by request id; and what the dormancy job needs (an index and job request ids derived in SQL).

-- One row per passbook ever issued to an account; at most one is current (active, full or lost).
CREATE TABLE deposits.passbooks (
    id                    uuid    PRIMARY KEY,  -- derived from (account, number): the same on every node
    account_id            uuid    NOT NULL REFERENCES deposits.accounts,
    number                integer NOT NULL CHECK (number >= 1),  -- issue sequence: +1 at each 繰越 or 再発行
    status                text    NOT NULL
        CHECK (status IN ('active', 'full', 'lost', 'carried_forward', 'replaced')),
    issue_kind            text    NOT NULL CHECK (issue_kind IN ('first', 'carry_forward', 'reissue')),
    issued_on             date    NOT NULL,
    page                  integer NOT NULL CHECK (page >= 1),  -- the printed position: last line used
    line                  integer NOT NULL CHECK (line >= 0),  -- 0: nothing printed on the page yet
    printed_timestamp     bigint  NOT NULL CHECK (printed_timestamp >= 0),  -- ledger timestamp printed up to
    printed_balance_minor bigint  NOT NULL,  -- the balance printed last (差引残高)
    retired_on            date,
    UNIQUE (account_id, number),
    CHECK ((status IN ('carried_forward', 'replaced')) = (retired_on IS NOT NULL))
);
CREATE UNIQUE INDEX passbooks_current ON deposits.passbooks (account_id)
    WHERE status IN ('active', 'full', 'lost');

-- What was printed where: one row per line of a passbook.
CREATE TABLE deposits.passbook_lines (
    passbook_id      uuid    NOT NULL REFERENCES deposits.passbooks,
    page             integer NOT NULL CHECK (page >= 1),
    line             integer NOT NULL CHECK (line >= 1),
    request_id       uuid    NOT NULL,  -- the print, carry-forward or reissue that printed it
    kind             text    NOT NULL CHECK (kind IN ('movement', 'consolidated', 'carried_forward')),
    business_date    date    NOT NULL,
    description      text    NOT NULL,  -- 摘要
    withdrawal_minor bigint  NOT NULL CHECK (withdrawal_minor >= 0),  -- お支払金額
    deposit_minor    bigint  NOT NULL CHECK (deposit_minor >= 0),  -- お預り金額
    balance_minor    bigint  NOT NULL,  -- 差引残高
    items            integer NOT NULL CHECK (items >= 0),  -- movements the line stands for (合算記帳: several)
    first_timestamp  bigint  NOT NULL,
    last_timestamp   bigint  NOT NULL CHECK (last_timestamp >= first_timestamp),
    PRIMARY KEY (passbook_id, page, line)
);
CREATE INDEX passbook_lines_by_request ON deposits.passbook_lines (request_id);

-- Prints (記帳), idempotent by request id: a retry answers the same lines.
CREATE TABLE deposits.passbook_prints (
    request_id    uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES deposits.accounts,
    passbook_id   uuid        NOT NULL REFERENCES deposits.passbooks,
    business_date date        NOT NULL,
    lines         integer     NOT NULL CHECK (lines >= 0),
    items_left    integer     NOT NULL CHECK (items_left >= 0),
    page_turns    integer     NOT NULL CHECK (page_turns >= 0),
    passbook_full boolean     NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);

-- Carry-forward (繰越), loss reports (喪失届) and reissues (再発行), idempotent by request id.
CREATE TABLE deposits.passbook_events (
    request_id      uuid        PRIMARY KEY,
    account_id      uuid        NOT NULL REFERENCES deposits.accounts,
    passbook_id     uuid        NOT NULL REFERENCES deposits.passbooks,
    action          text        NOT NULL CHECK (action IN ('carry_forward', 'report_lost', 'reissue')),
    from_status     text        NOT NULL,
    to_status       text        NOT NULL,
    new_passbook_id uuid        REFERENCES deposits.passbooks,
    reason          text        NOT NULL,
    business_date   date        NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX passbook_events_by_account ON deposits.passbook_events (account_id, at);

-- The dormancy job reads only active accounts silent since before a cut-off date.
CREATE INDEX accounts_active_by_last_activity ON deposits.accounts (last_activity_on) WHERE status = 'active';

-- The request id of a daily job's change to one account: RFC 4122 version 3 (MD5) of
-- '<account uuid>:<business date>:<job>' in the deposits job namespace, so that set-based SQL and
-- Python (uuid.uuid3, kanjo.deposits.dormancy.job_request_id) derive the same id. MD5, not the SHA-1
-- of version 5, because PostgreSQL has MD5 built in and SHA-1 only in the pgcrypto extension.
-- One immutable expression, so the planner inlines it (a few µs a row instead of ~20 µs for a call);
-- the name is ASCII, so decode(…, 'escape') gives its bytes (convert_to would be only stable).
-- YYYY-MM-DD from the date's fields (to_char and date_out are only stable, which would stop the inlining).
CREATE FUNCTION deposits.iso_date(day date) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT lpad(extract(year FROM day)::integer::text, 4, '0') || '-'
           || lpad(extract(month FROM day)::integer::text, 2, '0') || '-'
           || lpad(extract(day FROM day)::integer::text, 2, '0')
$$;

CREATE FUNCTION deposits.job_request_id(account_id uuid, business_date date, job text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT overlay(overlay(
               md5('\x6b616e6a6f0040008000646f726d6e74'::bytea
                   || decode(account_id::text || ':' || deposits.iso_date(business_date) || ':' || job, 'escape'))
               PLACING '3' FROM 13 FOR 1)  -- the version nibble
           PLACING substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr(
               md5('\x6b616e6a6f0040008000646f726d6e74'::bytea
                   || decode(account_id::text || ':' || deposits.iso_date(business_date) || ':' || job, 'escape')),
               17, 1)), 1) FROM 17 FOR 1)::uuid  -- the variant bits 10xx
$$;
