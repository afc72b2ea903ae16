-- Operators' console sessions (server_kit::console, docs/app-download.md §6). Only the SHA-256 of
-- the session id is kept, so a copy of the database does not sign anyone in; the CSRF token is
-- useless without the session cookie. State lives here and nowhere else, so any instance on this
-- database serves any session. A disabled operator's sessions stop working at once (the lookup
-- joins operators); expired rows are deleted at the next sign-in.
CREATE TABLE console_sessions (
    session_sha256 TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES operators (name),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
