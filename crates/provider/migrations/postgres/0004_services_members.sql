-- Adding an application over the Internet (docs/app-download.md §3 "Provider", §4, §5): the
-- membership terms (every version kept: a download binds one by digest), the services catalog
-- (APP-2: each pins one application of an issuer's application DB), the download operations
-- (keyed by the terminal's operation ID, REC-2), the SAs granted on them (keyed by the
-- issuer's SAR digest: the same SAR again answers the recorded SA) and the members (keyed by
-- the operation ID: a repeated notification changes nothing).
CREATE TABLE terms (
    version BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    digest BYTEA NOT NULL,
    published_at BIGINT NOT NULL
);
CREATE INDEX terms_by_digest ON terms (digest);

CREATE TABLE services (
    service_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    issuer TEXT NOT NULL,
    aid BYTEA NOT NULL,
    version BIGINT NOT NULL,
    size BIGINT NOT NULL,
    digest BYTEA NOT NULL,
    policy BIGINT NOT NULL,
    application_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- state: requested | granted | member.
CREATE TABLE downloads (
    operation_id BYTEA PRIMARY KEY,
    card_id BYTEA NOT NULL,
    issuer TEXT NOT NULL,
    service_id TEXT NOT NULL REFERENCES services (service_id),
    terms_digest BYTEA NOT NULL,
    request_der BYTEA NOT NULL,
    not_after BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX downloads_by_card ON downloads (card_id, service_id);

CREATE TABLE download_grants (
    sar_digest BYTEA PRIMARY KEY,
    operation_id BYTEA NOT NULL REFERENCES downloads (operation_id),
    sa_digest BYTEA NOT NULL,
    sa_der BYTEA NOT NULL,
    not_after BIGINT NOT NULL,
    granted_at BIGINT NOT NULL
);
CREATE INDEX download_grants_by_operation ON download_grants (operation_id, sa_digest);

-- state: active. The receipt is recorded in the card's ledger in the same transaction.
CREATE TABLE members (
    operation_id BYTEA PRIMARY KEY REFERENCES downloads (operation_id),
    service_id TEXT NOT NULL REFERENCES services (service_id),
    card_id BYTEA NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    state TEXT NOT NULL,
    download_application_der BYTEA NOT NULL,
    receipt_der BYTEA NOT NULL,
    member_since BIGINT NOT NULL
);
CREATE INDEX members_by_service ON members (service_id, member_since);
CREATE INDEX members_by_card ON members (card_id, service_id);
