-- The registrar's state (docs/parties.md): its identity and root, the certificates it issued,
-- their revocations and every CRL it published. Serials and CRL numbers come from single-row
-- counters that writers update first in their transaction: that row lock orders concurrent
-- writers, so numbers never repeat even with several instances on one database.
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    role TEXT NOT NULL,
    party_id TEXT NOT NULL,
    root_der BLOB NOT NULL
);

CREATE TABLE serial_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_serial BIGINT NOT NULL
);
-- Serial 1 is the root certificate's.
INSERT INTO serial_counter (id, last_serial) VALUES (1, 1);

CREATE TABLE certificates (
    serial BIGINT PRIMARY KEY,
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    der BLOB NOT NULL
);
CREATE INDEX certificates_by_subject ON certificates (subject, serial);

CREATE TABLE revocations (
    serial BIGINT PRIMARY KEY REFERENCES certificates (serial),
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE crl_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    number BIGINT NOT NULL
);
INSERT INTO crl_head (id, number) VALUES (1, 0);

CREATE TABLE crls (
    number BIGINT PRIMARY KEY,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der BLOB NOT NULL
);
