-- Every SDCI' a data registrar signed (SPEC STO-5; docs/parties.md): which provider asked, for
-- which SDI and data, when. An append-only audit log: certifying the same SDI again is allowed
-- (the answer is the same statement) and recorded again.
CREATE TABLE certifications (
    id INTEGER PRIMARY KEY,
    sdi_digest BLOB NOT NULL,
    provider TEXT NOT NULL,
    data_digest BLOB NOT NULL,
    certified_at BIGINT NOT NULL
);
CREATE INDEX certifications_by_provider ON certifications (provider, id);
