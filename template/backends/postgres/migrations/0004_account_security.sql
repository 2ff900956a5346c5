-- Account security: addresses this service verified, login throttling per
-- client address instead of a lock anyone could trigger, one lock for
-- changes to who is an admin, OpenID Connect logins that can join a
-- signed-in account, and indexes for the background sweep.

-- When this service proved that the account holder receives mail there.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
-- The per-account lock is replaced by login_throttles.
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;

-- Password checks per account and client address within a window, and per
-- account over all addresses (source '*'). Each check is reserved here
-- before the hash is computed.
CREATE TABLE login_throttles (
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source        TEXT    NOT NULL,
    attempts      INTEGER NOT NULL,
    -- Unix milliseconds, so that windows compare and expire in plain SQL.
    window_start  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, source)
);

CREATE INDEX login_throttles_by_window ON login_throttles (window_start);

-- One row that every change of roles or of an account's state locks first,
-- so that "would an active admin remain?" and the change are one step even
-- when two admins act at the same moment.
CREATE TABLE admin_guard (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    changed_at  TIMESTAMPTZ
);

INSERT INTO admin_guard (id) VALUES (1);

-- A login started by a signed-in user to link a provider identity to their
-- account; NULL for a plain login.
ALTER TABLE oidc_logins ADD COLUMN link_user_id UUID REFERENCES users (id) ON DELETE CASCADE;

CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
CREATE INDEX refresh_tokens_by_family_expiry ON refresh_tokens (family_expires_at);
