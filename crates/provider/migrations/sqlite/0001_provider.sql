-- The provider's state (docs/parties.md, "provider"): its catalog, every consent it signed,
-- and per card the RC it verified receipts under, its view of this provider's items on the
-- card and the hash-chained ledger of receipts. The `cards` row is each card's lock: a
-- receipt's transaction updates it before reading anything, so concurrent receipts for one
-- card queue and the ledger never forks.
CREATE TABLE items (
    item_id BLOB NOT NULL,
    version BIGINT NOT NULL,
    size BIGINT NOT NULL,
    data_digest BLOB NOT NULL,
    policy BIGINT NOT NULL,
    data BLOB NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (item_id, version)
);

-- consent_digest: SHA-256 of the issuer's SAR (grant), of the SAR we signed (request) or of
-- the SA we signed (alone). Its uniqueness makes a granted SAR single-use across instances.
CREATE TABLE consents (
    consent_digest BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    card_id BLOB NOT NULL,
    item_id BLOB NOT NULL,
    version BIGINT NOT NULL,
    sdi_digest BLOB NOT NULL,
    sdi_der BLOB NOT NULL,
    signed_der BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX consents_by_sdi ON consents (card_id, sdi_digest);
CREATE INDEX consents_by_item ON consents (card_id, item_id, version);

CREATE TABLE cards (
    card_id BLOB PRIMARY KEY,
    rc_der BLOB NOT NULL,
    last_counter BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    head BLOB NOT NULL
);

CREATE TABLE card_items (
    card_id BLOB NOT NULL REFERENCES cards (card_id),
    item_id BLOB NOT NULL,
    version BIGINT NOT NULL,
    size BIGINT NOT NULL,
    data_digest BLOB NOT NULL,
    policy BIGINT NOT NULL,
    PRIMARY KEY (card_id, item_id)
);
CREATE INDEX card_items_by_item ON card_items (item_id, card_id);

CREATE TABLE ledger_entries (
    card_id BLOB NOT NULL REFERENCES cards (card_id),
    seq BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    receipt_digest BLOB NOT NULL,
    entry_der BLOB NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (card_id, seq),
    UNIQUE (card_id, receipt_digest)
);
