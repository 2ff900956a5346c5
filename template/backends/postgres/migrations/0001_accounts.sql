-- Accounts, their roles, and refresh-token families (sessions).

CREATE TABLE users (
    id             UUID        PRIMARY KEY,
    -- Lower-cased by the application, so UNIQUE is case-insensitive.
    email          TEXT        NOT NULL UNIQUE,
    display_name   TEXT,
    -- PHC string; NULL for accounts that only sign in through a provider.
    password_hash  TEXT,
    failed_logins  INTEGER     NOT NULL DEFAULT 0,
    locked_until   TIMESTAMPTZ,
    disabled_at    TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_roles (
    user_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE refresh_tokens (
    id                 UUID        PRIMARY KEY,
    -- Every token issued since one login shares a family.
    family_id          UUID        NOT NULL,
    user_id            UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the token: a leaked table does not yield usable tokens.
    token_hash         BYTEA       NOT NULL UNIQUE,
    auth_method        TEXT        NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    family_expires_at  TIMESTAMPTZ NOT NULL,
    -- Set when the token was exchanged; presenting it again is reuse.
    used_at            TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
