-- Account security: addresses this service verified, login throttling per
-- client address instead of a lock anyone could trigger, one lock for
-- changes to who is an admin, OpenID Connect logins that can join a
-- signed-in account, and indexes for the background sweep.

-- When this service proved that the account holder receives mail there.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
-- The per-account lock is replaced by login throttling (window_counters).
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;

-- Counts in fixed windows, each under a key: password checks per account
-- and client address, and per account over all addresses (`login:…`); mail
-- sent to an address (`mail:…`, the address hashed). Each count is reserved
-- here before the work it limits is done.
CREATE TABLE window_counters (
    key          TEXT    PRIMARY KEY,
    count        INTEGER NOT NULL,
    -- Unix milliseconds, so that windows compare and expire in plain SQL.
    window_ends  BIGINT  NOT NULL
);

CREATE INDEX window_counters_by_end ON window_counters (window_ends);

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
