-- REG-3: the issuer revokes its cards' RCs (a lost or stolen card) and publishes CRLs of them,
-- signed with its own key (it is the RCs' CA). CRL numbers come from a single-row counter that
-- every writer updates first (the registrar's pattern), so two instances on one database never
-- sign two CRLs under one number and each CRL lists every revocation committed before it.
CREATE TABLE rc_revocations (
    serial BIGINT PRIMARY KEY REFERENCES registrations (serial),
    card_id TEXT NOT NULL UNIQUE REFERENCES registrations (card_id),
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    revoked_by TEXT NOT NULL
);

CREATE TABLE rc_crl_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    number BIGINT NOT NULL
);
INSERT INTO rc_crl_head (id, number) VALUES (1, 0);

CREATE TABLE rc_crls (
    number BIGINT PRIMARY KEY,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der BLOB NOT NULL
);
