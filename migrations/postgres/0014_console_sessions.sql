-- Server-side sessions of the web console (issue 19). A session belongs to
-- the one service that issued it; the browser holds only a random token,
-- the table only its SHA-256, so a read of this table opens no session.
CREATE TABLE console_sessions (
    token_hash   TEXT        PRIMARY KEY,
    service      TEXT        NOT NULL,
    staff_id     TEXT        NOT NULL,
    csrf_token   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE INDEX console_sessions_staff ON console_sessions (staff_id) WHERE ended_at IS NULL;
