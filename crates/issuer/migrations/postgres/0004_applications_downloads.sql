-- Issue 4 (docs/app-download.md): the issuer's application DB (APP-1), the standing checks
-- (S1–S3: issuer nonces for the card's signed listing), download operations with their
-- authorization attempts (S8–S14, REC-2) and the member-notification outbox (S15). Also the
-- holder's name and e-mail from the registration information (APP-1's personal information;
-- cards registered before this migration have them empty).
ALTER TABLE registrations ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE registrations ADD COLUMN user_email TEXT NOT NULL DEFAULT '';

-- Installable applications, immutable per (aid, version): the code is kept here and served as
-- each download's package.
CREATE TABLE applications (
    aid TEXT NOT NULL,
    version BIGINT NOT NULL,
    size BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    policy BIGINT NOT NULL,
    code BYTEA NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (aid, version)
);

-- S1: single-use nonces the card's signed listing must answer (spent_at set once used).
CREATE TABLE card_checks (
    nonce TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT
);

-- S8–S14: one row per operation ID (minted by the terminal). At most one open operation per
-- card and application (the partial unique index), whichever instance opens it.
CREATE TABLE downloads (
    operation_id TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    provider TEXT NOT NULL,
    service_id TEXT NOT NULL,
    aid TEXT NOT NULL,
    version BIGINT NOT NULL,
    request_der BYTEA NOT NULL,
    application_der BYTEA NOT NULL,
    sdi_der BYTEA NOT NULL,
    sdi_digest TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    installed_at BIGINT,
    receipt_counter BIGINT,
    FOREIGN KEY (aid, version) REFERENCES applications (aid, version)
);
CREATE UNIQUE INDEX downloads_one_open ON downloads (card_id, aid) WHERE state = 'opened';
CREATE INDEX downloads_by_state ON downloads (state, opened_at);

-- S11: the issuer's SAR per card challenge (recorded before the provider is asked), then the
-- provider's SA over it. A receipt names its SA by digest: that finds the operation.
CREATE TABLE download_attempts (
    operation_id TEXT NOT NULL REFERENCES downloads (operation_id),
    attempt BIGINT NOT NULL,
    challenge TEXT NOT NULL,
    sar_digest TEXT NOT NULL UNIQUE,
    sar_der BYTEA NOT NULL,
    sa_der BYTEA,
    sa_digest TEXT UNIQUE,
    not_after BIGINT,
    issued_at BIGINT NOT NULL,
    PRIMARY KEY (operation_id, attempt),
    UNIQUE (operation_id, challenge)
);

-- S15: the outbox, one row per installed operation, inserted in the receipt's transaction.
-- The body is stored once so every retry sends the same bytes; a notifier claims a due row by
-- a conditional update of its lease.
CREATE TABLE member_notifications (
    operation_id TEXT PRIMARY KEY REFERENCES downloads (operation_id),
    provider TEXT NOT NULL,
    body BYTEA NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_holder TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX member_notifications_due ON member_notifications (state, next_attempt_at);
