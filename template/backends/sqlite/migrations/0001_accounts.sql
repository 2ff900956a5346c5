-- Accounts, their roles, and refresh-token families (sessions).
-- Ids are UUIDs (BLOB), times RFC 3339 text in UTC; STRICT tables reject
-- values of the wrong type instead of storing them.

CREATE TABLE users (
    id             BLOB    PRIMARY KEY NOT NULL,
    -- Lower-cased by the application, so UNIQUE is case-insensitive.
    email          TEXT    NOT NULL UNIQUE,
    display_name   TEXT,
    -- PHC string; NULL for accounts that only sign in through a provider.
    password_hash  TEXT,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   TEXT,
    disabled_at    TEXT,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
) STRICT;

CREATE TABLE user_roles (
    user_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    PRIMARY KEY (user_id, role)
) STRICT;

CREATE TABLE refresh_tokens (
    id                 BLOB PRIMARY KEY NOT NULL,
    -- Every token issued since one login shares a family.
    family_id          BLOB NOT NULL,
    user_id            BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the token: a leaked table does not yield usable tokens.
    token_hash         BLOB NOT NULL UNIQUE,
    auth_method        TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    family_expires_at  TEXT NOT NULL,
    -- Set when the token was exchanged; presenting it again is reuse.
    used_at            TEXT,
    revoked_at         TEXT
) STRICT;

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
