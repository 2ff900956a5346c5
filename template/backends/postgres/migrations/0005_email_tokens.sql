-- Single-use tokens sent by mail: confirming an address (a new account's,
-- or the new address of an email change) and resetting a password.

CREATE TABLE email_tokens (
    -- SHA-256 of the token: a leaked table does not yield usable links.
    token_hash  BYTEA   PRIMARY KEY,
    user_id     UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('verify', 'reset')),
    -- The address the token proves: the account's, or the one it moves to.
    email       TEXT    NOT NULL,
    -- Unix seconds, so that expired tokens are deleted in plain SQL.
    expires_at  BIGINT  NOT NULL
);

-- One outstanding token per account and purpose: a new one replaces it.
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);
