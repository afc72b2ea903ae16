-- Operators of this party (docs/parties.md, "Authentication"): people at its console or CLI.
-- Only the SHA-256 of a token is kept, so a copy of the database does not give access.
CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
