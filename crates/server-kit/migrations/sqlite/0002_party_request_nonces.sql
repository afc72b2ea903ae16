-- Nonces of accepted party requests (docs/parties.md, "Authentication"): a (caller, nonce) pair
-- is accepted once; rows are kept until the request would be stale anyway (expires_at), so
-- every instance on this database refuses a replay.
CREATE TABLE party_request_nonces (
    caller TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (caller, nonce)
);
CREATE INDEX party_request_nonces_by_expiry ON party_request_nonces (expires_at);
