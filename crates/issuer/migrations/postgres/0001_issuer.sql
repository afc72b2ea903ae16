-- The issuer's state (docs/parties.md, "issuer"): its card registry and personalisation
-- records, registration challenges and RCs, its provider policy, the storing authorizations it
-- signed (single-use by SAR digest), delegations, and per card its view of the contents and
-- its hash-chained ledger. Binary values are BYTEA; card IDs, challenges and digests used as
-- keys are lowercase hex TEXT so both backends compare them the same way.
CREATE TABLE cards (
    card_id TEXT PRIMARY KEY,
    -- Sk wrapped (AES-256-GCM) under a key derived from the issuer's signing key; never clear.
    sk_wrapped BYTEA NOT NULL,
    sk_version BIGINT NOT NULL,
    pin_salt BYTEA NOT NULL,
    pin_try_limit BIGINT NOT NULL,
    issuer_authenticator BYTEA NOT NULL,
    capacity BIGINT NOT NULL,
    personalised_at BIGINT NOT NULL,
    personalised_by TEXT NOT NULL
);

CREATE TABLE registration_challenges (
    challenge TEXT PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT
);

-- RC serials: a single-row counter, updated first by whoever takes a serial.
CREATE TABLE rc_serial_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_serial BIGINT NOT NULL
);
INSERT INTO rc_serial_counter (id, last_serial) VALUES (1, 0);

CREATE TABLE registrations (
    card_id TEXT PRIMARY KEY REFERENCES cards (card_id),
    serial BIGINT NOT NULL UNIQUE,
    challenge TEXT NOT NULL UNIQUE REFERENCES registration_challenges (challenge),
    rc_der BYTEA NOT NULL,
    rc_digest TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

CREATE TABLE providers (
    provider TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    quota_bytes BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every SAR this issuer granted (STO-2, direction 'grant') or signed (STO-1, 'request'):
-- the primary key makes each SAR single-use across every instance on this database.
CREATE TABLE authorizations (
    sar_digest TEXT PRIMARY KEY,
    direction TEXT NOT NULL,
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    provider TEXT NOT NULL,
    sdi_digest TEXT NOT NULL,
    sdi_der BYTEA NOT NULL,
    object_der BYTEA NOT NULL,
    issued_at BIGINT NOT NULL,
    not_after BIGINT NOT NULL
);
CREATE INDEX authorizations_by_sdi ON authorizations (sdi_digest);

CREATE TABLE delegations (
    digest TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    card_id TEXT,
    issued_at BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    der BYTEA NOT NULL
);

-- One row per registered card: the head of its ledger. Appending a receipt updates it first,
-- conditioned on the length it read, so two instances never append at one position.
CREATE TABLE card_views (
    card_id TEXT PRIMARY KEY REFERENCES cards (card_id),
    last_counter BIGINT NOT NULL,
    ledger_len BIGINT NOT NULL,
    head BYTEA NOT NULL
);

CREATE TABLE card_items (
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    item_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    size BIGINT NOT NULL,
    data_digest BYTEA NOT NULL,
    owner TEXT NOT NULL,
    policy BIGINT NOT NULL,
    PRIMARY KEY (card_id, item_id)
);

CREATE TABLE ledger_entries (
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    seq BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    receipt_digest TEXT NOT NULL UNIQUE,
    entry_der BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (card_id, seq),
    UNIQUE (card_id, counter)
);
